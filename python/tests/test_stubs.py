"""The type stubs beside the extension (cnngraph/_cnngraph.pyi and py.typed): editors and type
checkers complete the names of the C++ API from them."""

import ast
import os
import pathlib

import pytest

import cnngraph as cg


def stub_path():
    return pathlib.Path(cg._cnngraph.__file__).parent / "_cnngraph.pyi"


def test_the_stubs_name_the_bound_classes():
    path = stub_path()
    if not path.exists():
        if os.environ.get("CNNGRAPH_PYTHON_STUBS") == "ON":
            pytest.fail(f"this build makes type stubs, but {path} is missing")
        pytest.skip("built without type stubs (a sanitizer build, or the target "
                    "cnngraph_python_stubs not built)")
    assert (path.parent / "py.typed").exists()
    tree = ast.parse(path.read_text())
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    for name in ("Graph", "Image", "ImageNode", "ConvolutionNode", "BinaryConvolutionNode",
                 "PaddingNode", "DropoutNode", "ConvolutionTransposeNode", "PaddingPolicy"):
        assert name in classes, name
        assert hasattr(cg, name)
    functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert {"save_graph", "load_graph"} <= functions
    # Keyword arguments reach the stubs: an editor shows them.
    conv = ast.unparse(classes["ConvolutionNode"])
    assert "label: str" in conv and "padding_policy: PaddingPolicy | None" in conv
