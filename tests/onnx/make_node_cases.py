#!/usr/bin/env python3
"""Writes ONNX's own backend node test cases (python3-onnx's onnx.backend.test.case.node) of
every operator the importer converts into a folder: one folder per case with model.onnx,
input_<i>.npy and output_<i>.npy, and manifest.tsv listing each case as
"op <TAB> case <TAB> run" or "op <TAB> case <TAB> skip <TAB> reason".
Usage: make_node_cases.py OUTPUT_DIR"""
import os
import sys
import warnings

import numpy as np

# ONNX 1.12's test cases use numpy aliases that later numpy removed.
for alias, value in (("float", float), ("int", int), ("bool", bool), ("object", object)):
    if alias not in np.__dict__:
        setattr(np, alias, value)

import onnx  # noqa: E402
from onnx import numpy_helper  # noqa: E402

# The operators with a converter (src/onnx/operators.cpp), and the inputs each takes as a
# constant: ONNX's cases feed every tensor as a graph input, so these become initializers.
CONSTANT_INPUTS = {
    "Conv": [1, 2], "ConvTranspose": [1, 2], "Gemm": [1, 2], "MatMul": [1], "PRelu": [1],
    "BatchNormalization": [1, 2, 3, 4], "Clip": [1, 2], "Reshape": [1], "ReduceMean": [1],
    "Dropout": [1, 2],
    "Relu": [], "LeakyRelu": [], "Sigmoid": [], "Tanh": [], "Add": [], "MaxPool": [],
    "AveragePool": [], "GlobalAveragePool": [], "Flatten": [], "Softmax": [], "Concat": [],
    "Identity": [], "Elu": [], "Selu": [], "HardSigmoid": [], "Softplus": [], "Softsign": [],
    "Abs": [], "Gelu": [], "LRN": [], "LogSoftmax": [],
    "Mul": [], "Sub": [], "Div": [], "Pad": [1, 2, 3], "GlobalMaxPool": [], "HardSwish": [],
}
MIN_OPSET = 7


def as_array(value, type_proto):
    if isinstance(value, np.ndarray) or type_proto is None or \
            not type_proto.HasField("tensor_type"):
        return value
    if not isinstance(value, (np.generic, float, int, bool)):
        return value
    dtype = onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[type_proto.tensor_type.elem_type]
    return np.asarray(value, dtype=dtype)


def skip_reason(op, case, inputs, outputs):
    graph_inputs = [i for k, i in enumerate(inputs) if k not in CONSTANT_INPUTS[op]]
    for a in list(inputs) + list(outputs):
        if not isinstance(a, np.ndarray):
            return "a sequence or optional value (cnngraph computes tensors)"
        if a.dtype != np.float32 and not (a.dtype in (np.int64, np.bool_)):
            return "data type %s (cnngraph computes float32)" % a.dtype
    for a in graph_inputs + list(outputs):
        if a.dtype != np.float32:
            return "a computed tensor of data type %s (cnngraph computes float32)" % a.dtype
    for a in graph_inputs:
        if a.ndim not in (2, 4):
            return "a %d-D input (cnngraph images are [N, C, H, W] or [N, K])" % a.ndim
    return None


def main():
    folder = sys.argv[1]
    os.makedirs(folder, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from onnx.backend.test.case.node import collect_testcases
        cases = collect_testcases(None)  # every case (a second call would find none)
    lines = []
    for case in sorted(cases, key=lambda c: c.name):
        model = case.model
        if len(model.graph.node) != 1:
            continue  # a function's expansion ("_expanded"): other operators
        node = model.graph.node[0]
        op = node.op_type
        if op not in CONSTANT_INPUTS or node.domain not in ("", "ai.onnx"):
            continue
        inputs, outputs = case.data_sets[0]
        # Scalars (Clip's bounds, Dropout's ratio) as arrays of the model's declared type.
        declared = {v.name: v.type for v in model.graph.input}
        present = [name for name in node.input if name]
        inputs = [as_array(v, declared.get(name)) for name, v in zip(present, inputs)]
        reason = skip_reason(op, case.name, inputs, outputs)
        if reason:
            lines.append("%s\t%s\tskip\t%s" % (op, case.name, reason))
            continue
        model = onnx.ModelProto()
        model.CopyFrom(case.model)
        # A case older than opset 7 (Elu-6, Softplus-1, ...) is raised to 7 where the
        # operator's schema is unchanged.
        for entry in model.opset_import:
            if entry.domain in ("", "ai.onnx") and entry.version < MIN_OPSET:
                if onnx.defs.get_schema(op, MIN_OPSET).since_version <= entry.version:
                    entry.version = MIN_OPSET
        kept = []
        for k, (name, value) in enumerate(zip(present, inputs)):
            index = list(node.input).index(name)
            if index in CONSTANT_INPUTS[op]:
                model.graph.initializer.append(numpy_helper.from_array(value, name))
                for i, v in enumerate(model.graph.input):
                    if v.name == name:
                        del model.graph.input[i]
                        break
            else:
                kept.append(value)
        out = os.path.join(folder, case.name)
        os.makedirs(out, exist_ok=True)
        onnx.save(model, os.path.join(out, "model.onnx"))
        for i, v in enumerate(kept):
            np.save(os.path.join(out, "input_%d.npy" % i), np.ascontiguousarray(v))
        for i, v in enumerate(outputs):
            np.save(os.path.join(out, "output_%d.npy" % i), np.ascontiguousarray(v))
        lines.append("%s\t%s\trun" % (op, case.name))
    with open(os.path.join(folder, "manifest.tsv"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
