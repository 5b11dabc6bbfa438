"""cnngraph's exceptions as Python classes: names, bases and the library's messages."""

import numpy as np
import pytest

import cnngraph as cg

BASES = {
    "InvalidArgument": ValueError,
    "ShapeError": ValueError,
    "DataSourceError": OSError,
    "DeviceError": RuntimeError,
    "Unsupported": NotImplementedError,
    "NumericalError": ArithmeticError,
}


def test_every_exception_derives_from_error_and_its_builtin():
    assert issubclass(cg.Error, Exception) and cg.Error.__module__ == "cnngraph"
    for name, builtin in BASES.items():
        cls = getattr(cg, name)
        assert cls.__name__ == name and cls.__module__ == "cnngraph"
        assert issubclass(cls, cg.Error) and issubclass(cls, builtin), name
        assert cls.__doc__


def test_the_library_message_comes_through_and_is_caught_by_the_builtin():
    x = cg.ImageNode("x")
    d = cg.ConvolutionDescriptor(1, 1, 4, 2)
    conv = cg.ConvolutionNode(x, cg.ArrayDataSource("w", d, np.ones(8, np.float32)),
                              label="first_layer")
    graph = cg.Graph(cg.Device.cpu_reference(), conv)
    try:
        graph.compile([cg.ImageShape(1, 3, 3, 3)])
    except ValueError as e:  # a ShapeError
        assert type(e) is cg.ShapeError
        assert "first_layer" in str(e) and "3" in str(e)
    else:
        pytest.fail("no ShapeError")


def test_an_unsupported_operator_is_not_implemented(tmp_path):
    if not cg.onnx.available:
        with pytest.raises(NotImplementedError, match="no ONNX importer"):
            cg.onnx.import_model(tmp_path / "x.onnx")
        return
    onnx = pytest.importorskip("onnx", reason="the onnx package writes the test model")
    from onnx import TensorProto, helper
    graph = helper.make_graph(
        [helper.make_node("Hardmax", ["x"], ["y"], name="hm")], "hardmax",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.save(model, str(tmp_path / "hardmax.onnx"))
    with pytest.raises(NotImplementedError, match=r"node 'hm' \(Hardmax\)") as info:
        cg.onnx.import_model(tmp_path / "hardmax.onnx")
    assert type(info.value) is cg.Unsupported


def test_exceptions_can_be_raised_and_caught_from_python():
    with pytest.raises(cg.Error):
        raise cg.NumericalError("loss is nan")
    e = cg.DataSourceError("file x: truncated")
    assert str(e) == "file x: truncated"
