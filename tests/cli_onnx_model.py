"""Writes mlp.onnx (Gemm, Relu, Gemm, Softmax on [N, 12]) with an input and numpy's
expected output into a folder: the cnngraph program's convert test needs a model without
convolutions or pools, whose explicit ONNX pads the importer keeps as padding callbacks
that saved graphs cannot hold (docs/cli.md)."""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main():
    folder = sys.argv[1]
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, (3, 12)).astype(np.float32)
    w1 = rng.uniform(-0.5, 0.5, (12, 8)).astype(np.float32)
    b1 = rng.uniform(-0.5, 0.5, (8,)).astype(np.float32)
    w2 = rng.uniform(-0.5, 0.5, (6, 8)).astype(np.float32)  # transB = 1
    b2 = rng.uniform(-0.5, 0.5, (6,)).astype(np.float32)
    h = np.maximum(x @ w1 + b1, 0)
    z = h @ w2.T + b2
    y = np.exp(z - z.max(axis=1, keepdims=True))
    y /= y.sum(axis=1, keepdims=True)
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Gemm", ["r", "w2", "b2"], ["z"], name="fc2", transB=1),
        helper.make_node("Softmax", ["z"], ["y"], name="softmax", axis=1),
    ]
    inits = [numpy_helper.from_array(a, n) for n, a in
             [("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2)]]
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 12])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 6])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="cnngraph-tests")
    model.ir_version = 8
    onnx.save(model, os.path.join(folder, "mlp.onnx"))
    np.save(os.path.join(folder, "mlp.input.npy"), x)
    np.save(os.path.join(folder, "mlp.expected.npy"), y.astype(np.float32))


if __name__ == "__main__":
    main()
