"""ConvolutionDataSource subclassed in Python: the load / purge lifecycle, failures that become
DataSourceError naming the source (and leave the graph usable), weights checked against the
descriptor, the source kept alive by the graph, TrainingStyle.cpu updates, and Python
sources called from the library's threads."""

import gc
import threading
import weakref

import numpy as np
import pytest

import cnngraph as cg
from conftest import conv2d_same, tolerance


def image(a):
    return cg.Image(np.ascontiguousarray(a, dtype=np.float32))


class NumpySource(cg.ConvolutionDataSource):
    """Weights and biases held as NumPy arrays, with counts of the library's calls."""

    def __init__(self, name, descriptor, weights, bias=None):
        super().__init__()
        self.name, self.d, self.w, self.b = name, descriptor, weights, bias
        self.loads = self.purges = self.weight_reads = 0
        self.loaded = False
        self.fail_load = None
        self.read_outside_load = False

    def label(self):
        return self.name

    def descriptor(self):
        return self.d

    def load(self):
        self.loads += 1
        if self.fail_load:
            raise self.fail_load
        self.loaded = True
        return True

    def purge(self):
        self.purges += 1
        self.loaded = False

    def weights(self):
        self.weight_reads += 1
        self.read_outside_load |= not self.loaded
        return self.w

    def bias_terms(self):
        return self.b


def conv_graph(source, device=None):
    conv = cg.ConvolutionNode(cg.ImageNode("x"), source, label="conv")
    return cg.Graph(device or cg.Device.cpu_reference(), conv), conv


def test_a_python_source_gives_the_weights_of_a_graph(device, rng):
    d = cg.ConvolutionDescriptor(3, 3, 2, 4)
    w = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    source = NumpySource("numpy", d, w, b)
    graph, conv = conv_graph(source, device)
    assert conv.weights is source and repr(source) == "<NumpySource 'numpy'>"
    x = rng.standard_normal((2, 5, 5, 2)).astype(np.float32)
    out = graph.run([image(x)])[0].numpy()
    np.testing.assert_allclose(out, conv2d_same(x, w, b), atol=tolerance(device) * 10)


def test_load_and_purge_are_called_once_per_reading_of_the_weights(rng):
    d = cg.ConvolutionDescriptor(1, 1, 2, 2)
    source = NumpySource("counted", d, np.eye(2, dtype=np.float32).reshape(2, 1, 1, 2))
    graph, conv = conv_graph(source)
    assert (source.loads, source.purges) == (0, 0)  # nothing is read before the first compile
    graph.run([image(np.ones((1, 2, 2, 2)))])
    assert (source.loads, source.purges, source.weight_reads) == (1, 1, 1)
    graph.run([image(np.ones((1, 2, 2, 2)))])
    graph.run([image(np.ones((3, 4, 4, 2)))])  # new sizes: compiled again, weights kept
    assert (source.loads, source.purges) == (1, 1)
    graph.reload_from_data_sources()
    graph.run([image(np.ones((1, 2, 2, 2)))])
    assert (source.loads, source.purges) == (2, 2)
    other = cg.Graph(cg.Device.cpu_reference(), conv)  # a second graph reads them itself
    other.compile([cg.ImageShape(1, 2, 2, 2)])
    assert (source.loads, source.purges) == (3, 3)
    assert not source.read_outside_load and not source.loaded


def test_a_failing_load_is_a_data_source_error_and_the_graph_recovers():
    d = cg.ConvolutionDescriptor(1, 1, 1, 1)
    source = NumpySource("flaky", d, np.full(1, 2.0, np.float32))
    source.fail_load = RuntimeError("the disk is on fire")
    graph, _ = conv_graph(source)
    x = image(np.ones((1, 1, 1, 1)))
    with pytest.raises(cg.DataSourceError, match="the disk is on fire") as info:
        graph.run([x])
    message = str(info.value)
    assert "'flaky'" in message and "conv" in message and "RuntimeError" in message
    assert isinstance(info.value, OSError)
    assert source.purges == 0  # load failed: nothing to purge
    source.fail_load = None
    assert graph.run([x])[0].numpy().item() == 2.0
    # A later failure while reloading fails that run only; fixed, the reload goes through.
    source.w = np.full(1, 3.0, np.float32)
    source.fail_load = ValueError("not now")
    graph.reload_from_data_sources()
    with pytest.raises(cg.DataSourceError, match="ValueError: not now"):
        graph.run([x])
    source.fail_load = None
    graph.reload_from_data_sources()
    assert graph.run([x])[0].numpy().item() == 3.0


def test_load_returning_false_is_a_data_source_error():
    class Refusing(NumpySource):
        def load(self):
            return False

    graph, _ = conv_graph(Refusing("no", cg.ConvolutionDescriptor(1, 1, 1, 1), np.ones(1, np.float32)))
    with pytest.raises(cg.DataSourceError, match="'no'.*returned false"):
        graph.run([image(np.ones((1, 1, 1, 1)))])


@pytest.mark.parametrize("weights,bias,match", [
    (np.ones(6, np.float64), None, "weights\\(\\) returned a float64 array; data_type\\(\\) is f32"),
    (np.ones(5, np.float32), None, "weights\\(\\) returned 5 elements; the descriptor needs 6"),
    ([1.0] * 6, None, "weights\\(\\) returned list; expected a NumPy array"),
    (np.ones((6, 2), np.float32)[:, 0], None, "not C-contiguous"),
    (np.ones(6, np.float32), np.ones(2, np.float32), "bias_terms\\(\\) returned 2 elements"),
    (np.ones(6, np.float32), np.ones(3, np.int32), "bias_terms\\(\\) returned a int32 array"),
])
def test_wrong_weights_from_python_raise_data_source_error_naming_the_source(weights, bias, match):
    source = NumpySource("bad weights", cg.ConvolutionDescriptor(1, 1, 2, 3), weights, bias)
    graph, _ = conv_graph(source)
    with pytest.raises(cg.DataSourceError, match=match) as info:
        graph.run([image(np.ones((1, 1, 1, 2)))])
    assert "Python data source 'bad weights' (NumpySource)" in str(info.value)
    assert source.purges == source.loads == 1  # purged however the reading ended
    source.w, source.b = np.ones(6, np.float32), None
    assert graph.run([image(np.ones((1, 1, 1, 2)))])[0].numpy().tolist() == [[[[2.0] * 3]]]


def test_sixteen_bit_weights_come_as_float16_or_bfloat16_bit_patterns(rng):
    w = rng.standard_normal((3, 1, 1, 2)).astype(np.float16)

    class Half(NumpySource):
        def data_type(self):
            return self.kind

    source = Half("half", cg.ConvolutionDescriptor(1, 1, 2, 3), w)
    source.kind = cg.DataType.f16
    x = rng.standard_normal((1, 2, 2, 2)).astype(np.float32)
    expected = conv2d_same(x, w.astype(np.float32))
    graph, _ = conv_graph(source)
    np.testing.assert_allclose(graph.run([image(x)])[0].numpy(), expected, atol=1e-5)
    source.kind = cg.DataType.bf16
    bf16 = (w.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    source.w = bf16
    graph.reload_from_data_sources()
    as_float = (bf16.astype(np.uint32) << 16).view(np.float32)
    np.testing.assert_allclose(graph.run([image(x)])[0].numpy(), conv2d_same(x, as_float),
                               atol=1e-5)
    source.w = w  # float16 where bf16 bit patterns are due
    graph.reload_from_data_sources()
    with pytest.raises(cg.DataSourceError, match="needs uint16"):
        graph.run([image(x)])


def test_members_may_be_attributes_and_missing_ones_are_named():
    class Minimal(cg.ConvolutionDataSource):
        descriptor = cg.ConvolutionDescriptor(1, 1, 1, 1)  # a value instead of a method

        def load(self):
            self.weights = np.full(1, 4.0, np.float32)  # read by the library as a value

        def purge(self):
            del self.weights

    source = Minimal()
    assert source.label == "Minimal" and source.data_type == cg.DataType.f32  # the defaults
    graph, _ = conv_graph(source)
    assert graph.run([image(np.ones((1, 1, 1, 1)))])[0].numpy().item() == 4.0

    class NoDescriptor(cg.ConvolutionDataSource):
        def load(self):
            return True

    graph, _ = conv_graph(NoDescriptor())
    with pytest.raises(cg.DataSourceError, match="'NoDescriptor'.*does not define descriptor"):
        graph.run([image(np.ones((1, 1, 1, 1)))])
    with pytest.raises(cg.DataSourceError, match="does not define copy"):
        Minimal.copy(source)  # the C++ protocol's copy(), which the subclass left out


def test_copy_returns_an_independent_source():
    class Copyable(NumpySource):
        def copy(self):
            return Copyable(self.name + " copy", self.d, self.w.copy())

    source = Copyable("original", cg.ConvolutionDescriptor(1, 1, 1, 1), np.ones(1, np.float32))
    copied = source.copy()
    assert copied.label() == "original copy" and copied.w is not source.w
    array_copy = cg.ArrayDataSource("a", cg.ConvolutionDescriptor(1, 1, 1, 1), np.ones(1)).copy()
    assert isinstance(array_copy, cg.ArrayDataSource) and array_copy.label == "a"


def test_the_graph_keeps_a_python_source_alive():
    def build():
        source = NumpySource("temporary", cg.ConvolutionDescriptor(1, 1, 1, 1),
                             np.full(1, 5.0, np.float32))
        return conv_graph(source), weakref.ref(source)

    (graph, conv), alive = build()
    gc.collect()
    assert alive() is not None
    assert graph.run([image(np.ones((1, 1, 1, 1)))])[0].numpy().item() == 5.0
    del graph, conv
    gc.collect()
    assert alive() is None


class CpuTrained(NumpySource):
    """Plain SGD in update(), as TrainingStyle.cpu hands it the gradients."""

    def __init__(self, *args, learning_rate=0.1, fail_update=False):
        super().__init__(*args)
        self.learning_rate = learning_rate
        self.fail_update = fail_update
        self.gradients = []

    def update(self, gradient, source_state):
        if self.fail_update:
            raise ValueError("no update today")
        self.gradients.append(gradient)
        np.testing.assert_array_equal(source_state.weights, self.w.reshape(-1))
        self.w = self.w - self.learning_rate * gradient.weights_gradient
        self.b = self.b - self.learning_rate * gradient.bias_gradient
        return True


def cpu_training_graph(source):
    conv = cg.ConvolutionNode(cg.ImageNode("x"), source, label="conv")
    conv.training_style = cg.TrainingStyle.cpu
    loss = cg.LossNode(conv, cg.LossDescriptor(cg.LossType.mean_squared_error, cg.ReductionType.mean))
    return cg.Graph(cg.Device.cpu_reference(), loss.training_graph(), results_are_needed=[False])


def test_a_python_source_trains_in_cpu_style(rng):
    d = cg.ConvolutionDescriptor(3, 3, 2, 3)
    w0 = rng.standard_normal((3, 3, 3, 2)).astype(np.float32) * 0.3
    source = CpuTrained("sgd", d, w0, np.zeros(3, np.float32))
    graph = cpu_training_graph(source)
    x = rng.standard_normal((4, 5, 5, 2)).astype(np.float32)
    target = conv2d_same(x, rng.standard_normal((3, 3, 3, 2)) * 0.3).astype(np.float32)
    losses = [graph.run([image(x)], [cg.LossLabels(target)]).loss() for _ in range(5)]
    assert len(source.gradients) == 5
    g = source.gradients[-1]
    assert g.weights_gradient.shape == (3, 3, 3, 2) and g.bias_gradient.shape == (3,)
    assert g.batch_size == 4 and g.node_label == "convolution 'conv'"
    assert g.descriptor.output_feature_channels == 3
    assert not np.array_equal(source.w, w0)
    assert source.loads == 6  # the first compile, then a reload after each update
    assert losses[-1] < losses[0] * 0.9
    # The first gradient is the exact derivative of the mean squared error.
    y = conv2d_same(x, w0)
    dy = 2 * (y - target) / y.size
    ph = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    dw = np.stack([np.einsum("nhwo,nhwi->oi", dy, ph[:, r:r + 5, s:s + 5, :])
                   for r in range(3) for s in range(3)], axis=1).reshape(3, 3, 3, 2)
    np.testing.assert_allclose(source.gradients[0].weights_gradient, dw, atol=1e-5)


def test_an_update_that_raises_fails_the_run_and_keeps_the_weights(rng):
    d = cg.ConvolutionDescriptor(1, 1, 2, 2)
    w = np.ones((2, 1, 1, 2), np.float32)
    source = CpuTrained("failing", d, w, np.zeros(2, np.float32), fail_update=True)
    graph = cpu_training_graph(source)
    x, labels = image(np.ones((1, 2, 2, 2))), cg.LossLabels(np.zeros((1, 2, 2, 2), np.float32))
    with pytest.raises(cg.DataSourceError, match="update\\(\\) raised ValueError: no update today"):
        graph.run([x], [labels])
    assert graph.run_async([x], [labels]).done() in (True, False)  # runs in the background
    source.fail_update = False
    first = graph.run([x], [labels]).loss()
    assert first == pytest.approx(4.0)  # the weights the failed batches left unchanged
    assert graph.run([x], [labels]).loss() < first


def test_a_source_without_update_cannot_train_in_cpu_style():
    source = NumpySource("static", cg.ConvolutionDescriptor(1, 1, 1, 1), np.ones(1, np.float32))
    graph = cpu_training_graph(source)
    with pytest.raises(cg.Unsupported, match="update"):
        graph.run([image(np.ones((1, 1, 1, 1)))], [cg.LossLabels(np.zeros((1, 1, 1, 1), np.float32))])


def test_python_sources_are_called_from_the_librarys_threads(rng):
    d = cg.ConvolutionDescriptor(1, 1, 4, 4)
    shared = NumpySource("shared", d, rng.standard_normal(16).astype(np.float32))
    x = rng.standard_normal((1, 16, 16, 4)).astype(np.float32)
    expected = conv2d_same(x, shared.w.reshape(4, 1, 1, 4))
    outputs, errors = [], []

    def work():
        try:
            for _ in range(3):  # a graph of its own each time: every one loads the source
                graph, _ = conv_graph(shared)
                outputs.append(graph.run([image(x)])[0].numpy())
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(outputs) == 12
    for out in outputs:
        np.testing.assert_allclose(out, expected, atol=1e-5)
    assert shared.loads == shared.purges == 12 and not shared.read_outside_load

    # run_async: the library's own thread loads the Python source while this one waits.
    graph, _ = conv_graph(NumpySource("async", d, shared.w))
    np.testing.assert_allclose(graph.run_async([image(x)]).result()[0].numpy(), expected, atol=1e-5)
    # A future dropped while its run still needs the GIL does not deadlock.
    graph, _ = conv_graph(NumpySource("dropped", d, shared.w))
    graph.run_async([image(x)])
    gc.collect()
