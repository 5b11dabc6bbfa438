"""Saved graphs, checkpoints and ONNX import from Python."""

import numpy as np
import pytest

import cnngraph as cg
from conftest import conv2d_same


def small_network(rng):
    x = cg.ImageNode("image")
    d = cg.ConvolutionDescriptor(3, 3, 2, 4, neuron=cg.NeuronType.relu)
    weights = cg.TrainableDataSource("conv1", d, rng.standard_normal((4, 3, 3, 2)) * 0.5,
                                     rng.standard_normal(4))
    conv = cg.ConvolutionNode(x, weights, label="conv1")
    pool = cg.AveragePoolingNode(conv, 2, label="pool")
    return cg.SoftMaxNode(pool, label="probabilities"), weights


def test_a_saved_graph_loads_back_and_computes_the_same(tmp_path, rng):
    result, _ = small_network(rng)
    batch = cg.Image(rng.standard_normal((2, 6, 6, 2)).astype(np.float32))
    before = cg.Graph(cg.Device.cpu_reference(), result).run([batch])[0].numpy()

    path = tmp_path / "net.cnngraph"
    cg.save_graph(path, [result])
    saved = cg.load_graph(str(path))  # str or pathlib.Path
    assert [s.handle for s in saved.sources] == ["image"]
    assert [n.kind for n in saved.nodes] == ["convolution", "average_pooling", "softmax"]
    assert isinstance(saved.nodes[0], cg.ConvolutionNode) and saved.nodes[0].label == "conv1"
    assert list(saved.weights) == ["conv1"]
    assert isinstance(saved.weights["conv1"], cg.TrainableDataSource)
    assert repr(saved) == "<SavedGraph: 3 nodes, 1 sources, 1 results>"
    after = cg.Graph(cg.Device.cpu_reference(), saved.results).run([batch])[0].numpy()
    np.testing.assert_array_equal(after, before)

    graph_path = tmp_path / "graph.cnngraph"
    cg.Graph(cg.Device.cpu_reference(), saved.results[0]).save(graph_path)
    again = cg.load_graph(graph_path)
    np.testing.assert_array_equal(
        cg.Graph(cg.Device.cpu_reference(), again.results).run([batch])[0].numpy(), before)


def test_a_missing_or_malformed_saved_graph_is_a_data_source_error(tmp_path):
    with pytest.raises(cg.DataSourceError, match="nothing-here") as info:
        cg.load_graph(tmp_path / "nothing-here.cnngraph")
    assert isinstance(info.value, OSError) and isinstance(info.value, cg.Error)
    bad = tmp_path / "bad.cnngraph"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(cg.DataSourceError, match="bad.cnngraph"):
        cg.load_graph(bad)


def test_save_graph_refuses_two_data_sources_of_one_label(tmp_path, rng):
    x = cg.ImageNode("x")
    d = cg.ConvolutionDescriptor(1, 1, 1, 1)
    a = cg.ConvolutionNode(x, cg.ArrayDataSource("same", d, np.ones(1, np.float32)))
    b = cg.ConvolutionNode(a, cg.ArrayDataSource("same", d, np.ones(1, np.float32)))
    with pytest.raises(cg.InvalidArgument, match="same"):
        cg.save_graph(tmp_path / "x.cnngraph", b)


def test_checkpoints_restore_the_weights(tmp_path, rng):
    result, weights = small_network(rng)
    graph = cg.Graph(cg.Device.cpu_reference(), result)
    batch = cg.Image(rng.standard_normal((1, 4, 4, 2)).astype(np.float32))
    before = graph.run([batch])[0].numpy()
    graph.save_checkpoint(tmp_path / "weights.safetensors")
    weights.assign(np.zeros((4, 3, 3, 2), np.float32), np.zeros(4, np.float32))
    graph.reload_from_data_sources()
    assert not np.allclose(graph.run([batch])[0].numpy(), before)
    graph.load_checkpoint(tmp_path / "weights.safetensors")
    np.testing.assert_array_equal(graph.run([batch])[0].numpy(), before)


onnx = pytest.importorskip("onnx", reason="the onnx package writes the test model")
needs_importer = pytest.mark.skipif(not cg.onnx.available,
                                    reason="this build has no ONNX importer")


def conv_relu_model(path, w, b):
    from onnx import TensorProto, helper, numpy_helper
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                          name="conv"),
         helper.make_node("Relu", ["c"], ["y"], name="relu")],
        "conv_relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 5, 5])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.save(model, str(path))


@needs_importer
def test_an_onnx_model_imports_and_equals_numpy(tmp_path, rng, device):
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)  # OIHW
    b = rng.standard_normal(3).astype(np.float32)
    conv_relu_model(tmp_path / "m.onnx", w, b)
    model = cg.onnx.import_model(tmp_path / "m.onnx")
    assert model.opset == 13 and model.output_names == ["y"]
    assert [i.handle for i in model.inputs] == ["x"]
    assert model.input_shapes == [cg.ImageShape(1, 5, 5, 2)]
    assert list(model.weights) == ["w"]
    assert repr(model) == "<ImportedModel: opset 13, 1 inputs, 1 outputs>"
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)  # NCHW, as ONNX
    out = cg.Graph(device, model.outputs).run([cg.Image(x, nchw=True)])[0].numpy(nchw=True)
    want = np.maximum(conv2d_same(x.transpose(0, 2, 3, 1), w.transpose(0, 2, 3, 1), b), 0)
    np.testing.assert_allclose(out, want.transpose(0, 3, 1, 2), atol=1e-4)

    trainable = cg.onnx.import_model(tmp_path / "m.onnx", trainable=True,
                                     optimizer=cg.AdamOptimizer())
    assert isinstance(trainable.weights["w"], cg.TrainableDataSource)


@needs_importer
def test_a_missing_onnx_file_is_a_data_source_error(tmp_path):
    with pytest.raises(cg.DataSourceError, match="absent.onnx"):
        cg.onnx.import_model(tmp_path / "absent.onnx")


def test_without_the_importer_import_model_is_unsupported():
    if cg.onnx.available:
        pytest.skip("this build has the ONNX importer")
    with pytest.raises(cg.Unsupported, match="no ONNX importer"):
        cg.onnx.import_model("model.onnx")
