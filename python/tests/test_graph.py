"""Graphs: results equal NumPy's computation (the reference backend in double precision, and
oneDNN), the Results sequence, describe() and to_dot(), bad runs, and the GIL released
while a graph runs."""

import threading
import time

import numpy as np
import pytest

import cnngraph as cg
from conftest import conv2d_same, pool2x2, softmax, tolerance


def image(a):
    return cg.Image(np.ascontiguousarray(a, dtype=np.float32))


def test_a_small_cnn_equals_numpy(device, rng):
    x = rng.standard_normal((2, 8, 8, 3)).astype(np.float32)
    w1 = rng.standard_normal((4, 3, 3, 3)).astype(np.float32) * 0.3
    b1 = rng.standard_normal(4).astype(np.float32)
    w2 = rng.standard_normal((5, 4, 4, 4)).astype(np.float32) * 0.3
    b2 = rng.standard_normal(5).astype(np.float32)

    source = cg.ImageNode("x")
    d1 = cg.ConvolutionDescriptor(3, 3, 3, 4, neuron=cg.NeuronType.relu)
    conv = cg.ConvolutionNode(source, cg.ArrayDataSource("conv", d1, w1, b1))
    pool = cg.MaxPoolingNode(conv, 2)
    fc = cg.FullyConnectedNode(pool, cg.ArrayDataSource("fc", cg.ConvolutionDescriptor(4, 4, 4, 5),
                                                        w2, b2))
    graph = cg.Graph(device, cg.SoftMaxNode(fc))
    assert graph.source_image_handles == [source]

    results = graph.run([image(x)])
    assert len(results) == 1 and isinstance(results[0], cg.Image)
    out = results[0].numpy()
    assert out.shape == (2, 1, 1, 5)

    h = np.maximum(conv2d_same(x, w1, b1), 0)
    h = pool2x2(h, np.max)
    logits = np.einsum("nhwc,ohwc->no", h, w2) + b2
    np.testing.assert_allclose(out.reshape(2, 5), softmax(logits), atol=tolerance(device))


def test_the_fast_cpu_backend_equals_the_reference_backend(rng):
    try:
        fast = cg.Device.cpu()
    except cg.Unsupported:
        pytest.skip("this build has no oneDNN backend")
    x = rng.standard_normal((1, 6, 6, 2)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 2)).astype(np.float32)
    node = cg.AveragePoolingNode(
        cg.ConvolutionNode(cg.ImageNode("x"), cg.ArrayDataSource("w", cg.ConvolutionDescriptor(3, 3, 2, 3), w)),
        2)
    ref = cg.Graph(cg.Device.cpu_reference(), node).run([image(x)])[0].numpy()
    out = cg.Graph(fast, node).run([image(x)])[0].numpy()
    np.testing.assert_allclose(out, ref, atol=1e-4)


@pytest.mark.parametrize("neuron,reference", [
    (cg.NeuronType.relu, lambda x: np.maximum(x, 0)),
    (cg.NeuronType.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    (cg.NeuronType.tanh, np.tanh),
    (cg.NeuronType.absolute, np.abs),
    (cg.NeuronDescriptor(cg.NeuronType.linear, a=2.0, b=-1.0), lambda x: 2 * x - 1),
    (cg.NeuronDescriptor(cg.NeuronType.relu, a=0.1), lambda x: np.where(x >= 0, x, 0.1 * x)),
])
def test_neuron_nodes_equal_numpy(device, rng, neuron, reference):
    x = rng.standard_normal((1, 3, 3, 4)).astype(np.float32)
    out = cg.Graph(device, cg.NeuronNode(cg.ImageNode("x"), neuron)).run([image(x)])[0].numpy()
    np.testing.assert_allclose(out, reference(x.astype(np.float64)), atol=tolerance(device))


def test_pooling_arithmetic_and_other_nodes_equal_numpy(device, rng):
    a = rng.standard_normal((2, 4, 4, 3)).astype(np.float32)
    b = rng.standard_normal((2, 4, 4, 3)).astype(np.float32) + 3.0
    scale = rng.standard_normal((2, 1, 1, 3)).astype(np.float32)
    xa, xb, xs = cg.ImageNode("a"), cg.ImageNode("b"), cg.ImageNode("s")
    results = [
        cg.MaxPoolingNode(xa, 2),
        cg.AveragePoolingNode(xa, 2),
        cg.GlobalAveragePoolingNode(xa),
        cg.GlobalMaxPoolingNode(xa),
        cg.AdditionNode(xa, xb),
        cg.SubtractionNode(xa, xb),
        cg.MultiplicationNode(xa, xs),  # broadcast over height and width
        cg.DivisionNode(xa, xb),
        cg.SoftMaxNode(xa),
        cg.LogSoftMaxNode(xa),
        cg.ConcatenationNode([xa, xb]),
        cg.ReshapeNode(xa, 1, 1, 48),
    ]
    graph = cg.Graph(device, results)
    handles = [h.handle for h in graph.source_image_handles]
    inputs = {"a": a, "b": b, "s": scale}
    out = [r.numpy() for r in graph.run([image(inputs[h]) for h in handles])]
    expected = [
        pool2x2(a, np.max),
        pool2x2(a, np.mean),
        a.mean(axis=(1, 2), keepdims=True),
        a.max(axis=(1, 2), keepdims=True),
        a + b,
        a - b,
        a * scale,
        a / b,
        softmax(a),
        np.log(softmax(a)),
        np.concatenate([a, b], axis=-1),
        a.reshape(2, 1, 1, 48),
    ]
    for node, got, want in zip(results, out, expected):
        np.testing.assert_allclose(got, want, atol=tolerance(device), err_msg=node.kind)


def test_results_are_a_sequence_and_results_not_needed_are_empty(rng):
    x = cg.ImageNode("x")
    relu = cg.NeuronNode(x, cg.NeuronType.relu)
    absolute = cg.NeuronNode(x, cg.NeuronType.absolute)
    graph = cg.Graph(cg.Device.cpu_reference(), [relu, absolute.result_image],
                     results_are_needed=[True, False])
    a = rng.standard_normal((1, 2, 2, 1)).astype(np.float32)
    results = graph.run(image(a))  # one source: the Image alone will do
    assert len(results) == 2 and len(results.images) == 2
    np.testing.assert_array_equal(results[0].numpy(), np.maximum(a, 0))
    np.testing.assert_array_equal(results[-2].numpy(), results[0].numpy())
    assert [r.shape for r in results][0] == cg.ImageShape(1, 2, 2, 1)
    assert repr(results) == "Results(2 images, 0 exported, 0 losses)"
    with pytest.raises(IndexError):
        results[2]
    assert graph.batch_count == 1
    assert graph.compiled_sizes == [[cg.ImageShape(1, 2, 2, 1)]]


def test_exported_intermediates_come_back_with_the_results(rng):
    x = cg.ImageNode("x")
    relu = cg.NeuronNode(x, cg.NeuronType.relu)
    relu.result_image.export_from_graph = True
    graph = cg.Graph(cg.Device.cpu_reference(), cg.NeuronNode(relu, cg.NeuronType.absolute))
    a = rng.standard_normal((1, 2, 2, 1)).astype(np.float32)
    results = graph.run([image(a)])
    assert len(results.exported) == 1 and results.exported[0][0] is relu.result_image
    np.testing.assert_array_equal(results.exported_image(relu.result_image).numpy(),
                                  np.maximum(a, 0))
    with pytest.raises(cg.InvalidArgument):
        results.loss()  # no loss node


def test_describe_and_to_dot_name_the_nodes(device):
    x = cg.ImageNode("input")
    graph = cg.Graph(device, cg.SoftMaxNode(cg.NeuronNode(x, cg.NeuronType.relu, label="act"),
                                            label="probabilities"),
                     options=cg.GraphOptions(deterministic=True))
    assert graph.device == device and graph.options.deterministic
    assert "probabilities" in graph.describe()
    graph.compile([cg.ImageShape(1, 2, 2, 3)])
    text = graph.describe()
    assert "'act'" in text and "n1h2w2c3" in text
    dot = graph.to_dot()
    assert dot.startswith("digraph") and "act" in dot
    assert repr(graph).startswith("<Graph on ")


def test_a_run_with_bad_sources_raises_and_the_graph_still_runs(rng):
    d = cg.ConvolutionDescriptor(1, 1, 3, 2)
    conv = cg.ConvolutionNode(cg.ImageNode("x"), cg.ArrayDataSource("w", d, np.ones(6, np.float32)),
                              label="conv")
    graph = cg.Graph(cg.Device.cpu_reference(), conv)
    with pytest.raises(cg.ShapeError, match="conv") as info:
        graph.run([image(np.zeros((1, 2, 2, 5)))])
    assert isinstance(info.value, ValueError)
    with pytest.raises(cg.InvalidArgument):
        graph.run([])
    with pytest.raises(TypeError):
        graph.run([np.zeros((1, 2, 2, 3), np.float32)])  # arrays go in as cg.Image
    out = graph.run([image(np.ones((1, 2, 2, 3)))])[0].numpy()
    np.testing.assert_array_equal(out, np.full((1, 2, 2, 2), 3.0))


def test_mismatched_sizes_name_the_node():
    add = cg.AdditionNode(cg.ImageNode("a"), cg.ImageNode("b"), label="residual")
    graph = cg.Graph(cg.Device.cpu_reference(), add)
    with pytest.raises(cg.ShapeError, match="residual"):
        graph.compile([cg.ImageShape(1, 2, 2, 3), cg.ImageShape(1, 3, 3, 3)])


def test_the_gil_is_released_while_a_graph_runs(rng):
    d = cg.ConvolutionDescriptor(3, 3, 16, 16)
    w = rng.standard_normal((16, 3, 3, 16)).astype(np.float32)
    graph = cg.Graph(cg.Device.cpu_reference(),
                     cg.ConvolutionNode(cg.ImageNode("x"), cg.ArrayDataSource("w", d, w)))
    x = image(rng.standard_normal((1, 96, 96, 16)))
    graph.run([x])  # compiled now: the timed run below only computes
    ticks = []
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks.append(time.perf_counter())

    counter = threading.Thread(target=count)
    counter.start()
    try:
        time.sleep(0.01)
        start = time.perf_counter()
        graph.run([x])
        end = time.perf_counter()
    finally:
        stop.set()
        counter.join()
    inside = [t for t in ticks if start < t < end]
    # Held, the GIL would have stopped the counting thread for the whole run.
    assert end - start > 0.02, "the run is too short to tell"
    assert len(inside) > 10


def test_python_threads_run_graphs_concurrently(rng):
    x = cg.ImageNode("x")
    graph = cg.Graph(cg.Device.cpu_reference(), cg.NeuronNode(x, cg.NeuronType.absolute))
    arrays = [rng.standard_normal((1, 8, 8, 4)).astype(np.float32) for _ in range(8)]
    outputs = [None] * len(arrays)

    def work(i):
        for _ in range(5):
            outputs[i] = graph.run([cg.Image(arrays[i])])[0].numpy()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(arrays))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, out in zip(arrays, outputs):
        np.testing.assert_array_equal(out, np.abs(a))
