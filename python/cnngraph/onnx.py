"""The ONNX importer (docs/onnx.md): cnngraph.onnx.import_model(path) turns a model file into
nodes and data sources. `available` says whether this build has it; without it,
import_model raises cnngraph.Unsupported."""

from ._cnngraph import _onnx

available = _onnx.available
import_model = _onnx.import_model
if available:
    ImportedModel = _onnx.ImportedModel
