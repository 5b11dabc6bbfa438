#!/usr/bin/env python3
"""Writes the ONNX models bench/onnx_cpu times: ResNet-50, MobileNetV2 and EfficientNet-B0
with torchvision's architectures (layer for layer, as PyTorch's exporter writes them: Conv,
BatchNormalization, Relu / Clip / x * Sigmoid(x), Add, pooling, Flatten, Gemm) and the
project's reference network (examples/reference_network.cpp), with seeded random weights.
Made with the onnx helper API of Debian's python3-onnx, so that no torch is needed; the
torchvision exports themselves are tested on the GPU machine (tests/onnx_models_test.cpp).

Usage: make_onnx_models.py OUT_DIR [--models resnet50,mobilenet_v2,efficientnet_b0,reference]
Writes OUT_DIR/<model>.onnx, batch dimension symbolic ("N")."""
import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class Builder:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.initializers, self.count = [], [], 0

    def name(self, base):
        self.count += 1
        return f"{base}_{self.count}"

    def constant(self, base, array):
        name = self.name(base)
        self.initializers.append(numpy_helper.from_array(array.astype(np.float32), name))
        return name

    def node(self, op, inputs, **attributes):
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attributes))
        return out

    def conv(self, x, cin, cout, k, stride=1, groups=1, bias=False):
        fan_in = cin // groups * k * k
        w = self.rng.normal(0, np.sqrt(2.0 / fan_in), (cout, cin // groups, k, k))
        inputs = [x, self.constant("w", w)]
        if bias:
            inputs.append(self.constant("b", self.rng.uniform(-0.1, 0.1, cout)))
        return self.node("Conv", inputs, kernel_shape=[k, k], strides=[stride, stride],
                         pads=[k // 2] * 4, group=groups)

    def bn(self, x, c):
        params = [self.rng.uniform(0.8, 1.2, c), self.rng.uniform(-0.1, 0.1, c),
                  self.rng.uniform(-0.1, 0.1, c), self.rng.uniform(0.5, 1.5, c)]
        return self.node("BatchNormalization", [x] + [self.constant("bn", p) for p in params],
                         epsilon=1e-5)

    def relu(self, x):
        return self.node("Relu", [x])

    def relu6(self, x):
        return self.node("Clip", [x, self.constant("min", np.array(0.0)),
                                  self.constant("max", np.array(6.0))])

    def silu(self, x):
        return self.node("Mul", [x, self.node("Sigmoid", [x])])

    def classifier(self, x, features, classes):
        x = self.node("Flatten", [self.node("GlobalAveragePool", [x])], axis=1)
        return self.gemm(x, features, classes)

    def gemm(self, x, features, classes):
        w = self.rng.normal(0, np.sqrt(1.0 / features), (classes, features))
        return self.node("Gemm", [x, self.constant("fc_w", w),
                                  self.constant("fc_b", self.rng.uniform(-0.1, 0.1, classes))],
                         transB=1)

    def model(self, output, channels, size, name):
        x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", channels, size, size])
        y = helper.make_tensor_value_info(output, TensorProto.FLOAT, ["N", None])
        graph = helper.make_graph(self.nodes, name, [x], [y], self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                  producer_name="cnngraph bench/make_onnx_models.py")
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def resnet50(b):
    x = b.node("MaxPool", [b.relu(b.bn(b.conv("input", 3, 64, 7, 2), 64))], kernel_shape=[3, 3],
               strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for width, blocks, stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
        for i in range(blocks):
            s = stride if i == 0 else 1
            y = b.relu(b.bn(b.conv(x, cin, width, 1), width))
            y = b.relu(b.bn(b.conv(y, width, width, 3, s), width))
            y = b.bn(b.conv(y, width, width * 4, 1), width * 4)
            shortcut = b.bn(b.conv(x, cin, width * 4, 1, s), width * 4) if i == 0 else x
            x = b.relu(b.node("Add", [y, shortcut]))
            cin = width * 4
    return b.model(b.classifier(x, 2048, 1000), 3, 224, "resnet50")


def mobilenet_v2(b):
    x = b.relu6(b.bn(b.conv("input", 3, 32, 3, 2), 32))
    cin = 32
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                       (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(n):
            stride, hidden = (s if i == 0 else 1), cin * t
            y = x if t == 1 else b.relu6(b.bn(b.conv(x, cin, hidden, 1), hidden))
            y = b.relu6(b.bn(b.conv(y, hidden, hidden, 3, stride, groups=hidden), hidden))
            y = b.bn(b.conv(y, hidden, c, 1), c)
            x = b.node("Add", [x, y]) if stride == 1 and cin == c else y
            cin = c
    x = b.relu6(b.bn(b.conv(x, 320, 1280, 1), 1280))
    return b.model(b.classifier(x, 1280, 1000), 3, 224, "mobilenet_v2")


def efficientnet_b0(b):
    x = b.silu(b.bn(b.conv("input", 3, 32, 3, 2), 32))
    cin = 32
    for t, k, s, c, n in [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                          (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]:
        for i in range(n):
            stride, hidden = (s if i == 0 else 1), cin * t
            y = x if t == 1 else b.silu(b.bn(b.conv(x, cin, hidden, 1), hidden))
            y = b.silu(b.bn(b.conv(y, hidden, hidden, k, stride, groups=hidden), hidden))
            squeezed = max(1, cin // 4)
            se = b.node("GlobalAveragePool", [y])
            se = b.silu(b.conv(se, hidden, squeezed, 1, bias=True))
            se = b.node("Sigmoid", [b.conv(se, squeezed, hidden, 1, bias=True)])
            y = b.bn(b.conv(b.node("Mul", [y, se]), hidden, c, 1), c)
            x = b.node("Add", [y, x]) if stride == 1 and cin == c else y
            cin = c
    x = b.silu(b.bn(b.conv(x, 320, 1280, 1), 1280))
    return b.model(b.classifier(x, 1280, 1000), 3, 224, "efficientnet_b0")


def reference(b):
    x = b.node("MaxPool", [b.relu(b.conv("input", 1, 32, 5, bias=True))], kernel_shape=[2, 2],
               strides=[2, 2])
    x = b.node("MaxPool", [b.relu(b.conv(x, 32, 64, 5, bias=True))], kernel_shape=[2, 2],
               strides=[2, 2])
    x = b.relu(b.gemm(b.node("Flatten", [x], axis=1), 7 * 7 * 64, 1024))
    return b.model(b.gemm(x, 1024, 10), 1, 28, "reference")


MODELS = {"resnet50": resnet50, "mobilenet_v2": mobilenet_v2, "efficientnet_b0": efficientnet_b0,
          "reference": reference}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    for i, name in enumerate(args.models.split(",")):
        onnx.save(MODELS[name](Builder(seed=i)), os.path.join(args.out_dir, name + ".onnx"))


if __name__ == "__main__":
    main()
