#!/usr/bin/env python3
"""Writes the ONNX import tests' models into a folder, with inputs and the expected outputs
(.npy) computed by the numpy reference below (ONNX 1.12 has no reference evaluator).
Usage: make_models.py OUTPUT_DIR"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(7)


def rand(*shape, scale=0.5):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


# --- numpy reference, NCHW ---
def conv(x, w, b, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), group=1):
    n, c, h, wd = x.shape
    o, ig, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    ekh, ekw = (kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1
    oh = (xp.shape[2] - ekh) // stride[0] + 1
    ow = (xp.shape[3] - ekw) // stride[1] + 1
    out = np.zeros((n, o, oh, ow), np.float64)
    og = o // group
    for g in range(group):
        for i in range(kh):
            for j in range(kw):
                patch = xp[:, g * ig:(g + 1) * ig,
                           i * dilation[0]:i * dilation[0] + stride[0] * (oh - 1) + 1:stride[0],
                           j * dilation[1]:j * dilation[1] + stride[1] * (ow - 1) + 1:stride[1]]
                out[:, g * og:(g + 1) * og] += np.einsum(
                    "nchw,oc->nohw", patch, w[g * og:(g + 1) * og, :, i, j])
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out.astype(np.float32)


def maxpool(x, k, s, pads=(0, 0, 0, 0)):
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])),
                constant_values=-np.inf)
    oh = (xp.shape[2] - k) // s + 1
    ow = (xp.shape[3] - k) // s + 1
    out = np.full((x.shape[0], x.shape[1], oh, ow), -np.inf, np.float32)
    for i in range(k):
        for j in range(k):
            out = np.maximum(out, xp[:, :, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s])
    return out


def avgpool(x, k, s):
    oh = (x.shape[2] - k) // s + 1
    ow = (x.shape[3] - k) // s + 1
    out = np.zeros((x.shape[0], x.shape[1], oh, ow), np.float64)
    for i in range(k):
        for j in range(k):
            out += x[:, :, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s]
    return (out / (k * k)).astype(np.float32)


def bn(x, gamma, beta, mean, var, eps=1e-5):
    r = lambda v: v.reshape(1, -1, 1, 1)
    return ((x - r(mean)) / np.sqrt(r(var) + eps) * r(gamma) + r(beta)).astype(np.float32)


relu = lambda x: np.maximum(x, 0)


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def conv_transpose(x, w, b, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), group=1,
                   output_padding=(0, 0)):
    # ONNX's definition: every input pixel scatters its kernel into the full result, which
    # pads crop (top, left, bottom, right) and output_padding extends at the end.
    n, c, h, wd = x.shape
    ci, og, kh, kw = w.shape
    ig = c // group
    fh = (h - 1) * stride[0] + (kh - 1) * dilation[0] + 1
    fw = (wd - 1) * stride[1] + (kw - 1) * dilation[1] + 1
    full = np.zeros((n, og * group, fh + output_padding[0], fw + output_padding[1]), np.float64)
    for g in range(group):
        for i in range(kh):
            for j in range(kw):
                contrib = np.einsum("nchw,co->nohw", x[:, g * ig:(g + 1) * ig],
                                    w[g * ig:(g + 1) * ig, :, i, j])
                full[:, g * og:(g + 1) * og,
                     i * dilation[0]:i * dilation[0] + stride[0] * (h - 1) + 1:stride[0],
                     j * dilation[1]:j * dilation[1] + stride[1] * (wd - 1) + 1:stride[1]] += contrib
    out = full[:, :, pads[0]:full.shape[2] - pads[2], pads[1]:full.shape[3] - pads[3]]
    if b is not None:
        out = out + b.reshape(1, -1, 1, 1)
    return out.astype(np.float32)


def elu(x, alpha=1.0):
    return np.where(x >= 0, x, alpha * (np.exp(x) - 1))


def gelu(x):
    from math import erf
    return (x * 0.5 * (1 + np.vectorize(erf)(x / np.sqrt(2)))).astype(np.float32)


def lrn(x, size, alpha, beta, bias):
    c = x.shape[1]
    sq = np.zeros_like(x, dtype=np.float64)
    for k in range(c):
        lo, hi = max(0, k - (size - 1) // 2), min(c - 1, k + (size - 1 + 1) // 2)
        sq[:, k] = (x[:, lo:hi + 1] ** 2).sum(axis=1)
    return (x / (bias + alpha / size * sq) ** beta).astype(np.float32)


def log_softmax(x):
    m = x - x.max(axis=1, keepdims=True)
    return m - np.log(np.exp(m).sum(axis=1, keepdims=True))


# --- models ---
def init(name, array):
    return numpy_helper.from_array(array, name)


def save(folder, name, nodes, inputs, outputs, inits, x, expected, opset=13):
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="cnngraph-tests")
    model.ir_version = 8
    onnx.save(model, os.path.join(folder, name + ".onnx"))
    if x is not None:
        np.save(os.path.join(folder, name + ".input.npy"), x)
        np.save(os.path.join(folder, name + ".expected.npy"), expected)


def vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def conv_relu_pool(folder):
    x = rand(2, 3, 8, 8, scale=1.0)
    w, b = rand(4, 3, 3, 3), rand(4)
    y = maxpool(relu(conv(x, w, b, pads=(1, 1, 1, 1))), 2, 2)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1],
                              kernel_shape=[3, 3]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("MaxPool", ["r"], ["y"], name="pool", kernel_shape=[2, 2],
                              strides=[2, 2])]
    save(folder, "conv_relu_pool", nodes, [vi("x", ["N", 3, 8, 8])], [vi("y", ["N", 4, 4, 4])],
         [init("w", w), init("b", b)], x, y)


def residual_bn(folder):
    x = rand(2, 4, 6, 6, scale=1.0)
    w1, w2 = rand(4, 4, 3, 3), rand(4, 4, 3, 3)
    p1 = [rand(4) + 1, rand(4), rand(4), np.abs(rand(4)) + 0.5]
    p2 = [rand(4) + 1, rand(4), rand(4), np.abs(rand(4)) + 0.5]
    a = relu(bn(conv(x, w1, None, pads=(1, 1, 1, 1)), *p1))
    bb = bn(conv(a, w2, None, pads=(1, 1, 1, 1)), *p2)
    y = relu(bb + x)
    names = ["gamma", "beta", "mean", "var"]
    inits = [init("w1", w1), init("w2", w2)]
    inits += [init(n + "1", v) for n, v in zip(names, p1)]
    inits += [init(n + "2", v) for n, v in zip(names, p2)]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1"] + [n + "1" for n in names], ["b1"],
                         name="bn1"),
        helper.make_node("Relu", ["b1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c2"] + [n + "2" for n in names], ["b2"],
                         name="bn2"),
        helper.make_node("Add", ["b2", "x"], ["s"], name="add"),
        helper.make_node("Relu", ["s"], ["y"], name="relu2")]
    save(folder, "residual_bn", nodes, [vi("x", [2, 4, 6, 6])], [vi("y", [2, 4, 6, 6])], inits,
         x, y)


def lenet(folder):
    # The fully connected layer reads a 64 x 7 x 7 map in ONNX's NCHW flattening order.
    x = rand(2, 1, 28, 28, scale=1.0)
    w1, b1 = rand(32, 1, 5, 5, scale=0.3), rand(32)
    w2, b2 = rand(64, 32, 5, 5, scale=0.05), rand(64)
    fw, fb = rand(10, 64 * 7 * 7, scale=0.02), rand(10)
    a = maxpool(relu(conv(x, w1, b1, pads=(2, 2, 2, 2))), 2, 2)
    a = maxpool(relu(conv(a, w2, b2, pads=(2, 2, 2, 2))), 2, 2)
    logits = a.reshape(2, -1) @ fw.T + fb
    y = softmax(logits).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[2, 2, 2, 2]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], name="conv2", pads=[2, 2, 2, 2]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("MaxPool", ["r2"], ["p2"], name="pool2", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("Flatten", ["p2"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["g"], name="fc", transB=1),
        helper.make_node("Softmax", ["g"], ["y"], name="softmax")]
    inits = [init(n, v) for n, v in
             [("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2), ("fw", fw), ("fb", fb)]]
    save(folder, "lenet", nodes, [vi("x", ["N", 1, 28, 28])], [vi("y", ["N", 10])], inits, x, y)


def depthwise(folder):
    x = rand(2, 6, 7, 7, scale=1.0)
    w, b = rand(6, 1, 3, 3), rand(6)
    y = np.minimum(relu(conv(x, w, b, stride=(2, 2), pads=(1, 1, 1, 1), group=6)), 6)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="dw", group=6,
                              strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("Clip", ["c", "lo", "hi"], ["y"], name="relu6")]
    save(folder, "depthwise", nodes, [vi("x", [2, 6, 7, 7])], [vi("y", [2, 6, 4, 4])],
         [init("w", w), init("b", b), init("lo", np.array(0, np.float32)),
          init("hi", np.array(6, np.float32))], x, y)


def asymmetric(folder):
    # pads [top, left, bottom, right] = [0, 1, 2, 0], a dilated kernel, then AveragePool, a
    # GlobalAveragePool and a Gemm (transB = 0) on the 1 x 1 map.
    x = rand(1, 2, 9, 8, scale=1.0)
    w = rand(3, 2, 3, 2)
    fw, fb = rand(3, 5), rand(5)
    c = conv(x, w, None, pads=(0, 1, 2, 0), dilation=(2, 1))
    a = avgpool(c, 2, 1)
    g = a.mean(axis=(2, 3)).reshape(1, -1)
    y = (np.tanh(g @ fw + fb)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[0, 1, 2, 0],
                              dilations=[2, 1]),
             helper.make_node("AveragePool", ["c"], ["a"], name="avg", kernel_shape=[2, 2]),
             helper.make_node("GlobalAveragePool", ["a"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["m"], name="fc"),
             helper.make_node("Tanh", ["m"], ["y"], name="tanh")]
    save(folder, "asymmetric", nodes, [vi("x", [1, 2, 9, 8])], [vi("y", [1, 5])],
         [init("w", w), init("fw", fw), init("fb", fb)], x, y)


def unsupported(folder):
    # Unsupported parts of four kinds (an operator, an attribute, an attribute value, an
    # input's data type) and nodes after them, which are not listed again.
    w = rand(2, 2, 1, 1)
    fw = rand(32, 3)
    w16 = rand(2, 2, 1, 1).astype(np.float16)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Erf", ["c"], ["l"], name="erf"),
             helper.make_node("Relu", ["l"], ["y"], name="relu"),
             helper.make_node("Flatten", ["x"], ["f"], name="flat2", axis=2),
             helper.make_node("Flatten", ["x"], ["f1"], name="flat1"),
             helper.make_node("Gemm", ["f1", "fw"], ["g"], name="gemm", transA=1),
             helper.make_node("Conv", ["x16", "w16"], ["y16"], name="conv16")]
    save(folder, "unsupported", nodes, [vi("x", [1, 2, 4, 4]),
                                        helper.make_tensor_value_info("x16", TensorProto.FLOAT16,
                                                                      [1, 2, 4, 4])],
         [vi("y", [1, 2, 4, 4]), vi("f", [2, 16]), vi("g", [32, 3]),
          helper.make_tensor_value_info("y16", TensorProto.FLOAT16, [1, 2, 4, 4])],
         [init("w", w), init("fw", fw), init("w16", w16)], None, None)


def branches(folder):
    # auto_pad SAME_UPPER, LeakyRelu, Sigmoid, Concat, MaxPool with ceil_mode, Dropout,
    # Identity, and PyTorch's x.view(x.size(0), -1) (Shape, Gather, Unsqueeze, Concat,
    # Reshape) before a Gemm; opset 11 (Softmax over axis 1 of the 2-D logits).
    x = rand(2, 3, 9, 9, scale=1.0)
    wa, ba = rand(5, 3, 3, 3), rand(5)
    wb = rand(3, 3, 1, 1)
    fw, fb = rand(4, 8 * 3 * 3, scale=0.2), rand(4)
    a = conv(x, wa, ba, stride=(2, 2), pads=(1, 1, 1, 1))
    a = np.where(a >= 0, a, 0.1 * a)
    b = 1 / (1 + np.exp(-conv(x, wb, None, stride=(2, 2))))
    c = np.concatenate([a, b], axis=1).astype(np.float32)
    p = maxpool(c, 2, 2, pads=(0, 0, 1, 1))
    y = softmax(p.reshape(2, -1) @ fw.T + fb).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "wa", "ba"], ["a0"], name="conva", strides=[2, 2],
                         auto_pad="SAME_UPPER", kernel_shape=[3, 3]),
        helper.make_node("LeakyRelu", ["a0"], ["a"], name="leaky", alpha=0.1),
        helper.make_node("Conv", ["x", "wb"], ["b0"], name="convb", strides=[2, 2]),
        helper.make_node("Sigmoid", ["b0"], ["b"], name="sigmoid"),
        helper.make_node("Concat", ["a", "b"], ["c"], name="concat", axis=1),
        helper.make_node("MaxPool", ["c"], ["p"], name="pool", kernel_shape=[2, 2],
                         strides=[2, 2], ceil_mode=1),
        helper.make_node("Dropout", ["p"], ["d"], name="dropout", ratio=0.3),
        helper.make_node("Identity", ["d"], ["i"], name="identity"),
        helper.make_node("Shape", ["i"], ["s"], name="shape"),
        helper.make_node("Constant", [], ["zero"], name="zero",
                         value=helper.make_tensor("zero_value", TensorProto.INT64, [], [0])),
        helper.make_node("Gather", ["s", "zero"], ["n"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["n"], ["n1"], name="unsqueeze", axes=[0]),
        helper.make_node("Concat", ["n1", "minus_one"], ["target"], name="target", axis=0),
        helper.make_node("Reshape", ["i", "target"], ["f"], name="view"),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["g"], name="fc", transB=1),
        helper.make_node("Softmax", ["g"], ["y"], name="softmax")]
    inits = [init("wa", wa), init("ba", ba), init("wb", wb), init("fw", fw), init("fb", fb),
             init("minus_one", np.array([-1], np.int64))]
    save(folder, "branches", nodes, [vi("x", ["N", 3, 9, 9])], [vi("y", ["N", 4])], inits, x,
         y, opset=11)


def opset9_clip_and_padded_average(folder):
    # Clip's min and max as attributes (before opset 11); AveragePool with pads, which
    # leaves the padding out of the count.
    x = rand(1, 2, 5, 5, scale=3.0)
    w = rand(3, 2, 1, 1, scale=2.0)
    c = np.clip(conv(x, w, None), 0, 6)
    cp = np.pad(c, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ones = np.pad(np.ones_like(c), ((0, 0), (0, 0), (1, 1), (1, 1)))
    s = np.zeros_like(c, dtype=np.float64)
    n = np.zeros_like(c, dtype=np.float64)
    for i in range(3):
        for j in range(3):
            s += cp[:, :, i:i + 5, j:j + 5]
            n += ones[:, :, i:i + 5, j:j + 5]
    y = (s / n).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Clip", ["c"], ["r"], name="relu6", min=0.0, max=6.0),
             helper.make_node("AveragePool", ["r"], ["y"], name="avg", kernel_shape=[3, 3],
                              pads=[1, 1, 1, 1])]
    save(folder, "opset9", nodes, [vi("x", [1, 2, 5, 5])], [vi("y", [1, 3, 5, 5])],
         [init("w", w)], x, y, opset=9)


def opset21(folder):
    # A later opset than ONNX 1.12 knows: checked as opset 17.
    x = rand(1, 2, 4, 4, scale=1.0)
    w = rand(2, 2, 3, 3)
    y = relu(conv(x, w, None, pads=(1, 1, 1, 1)))
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"], name="relu")]
    save(folder, "opset21", nodes, [vi("x", [1, 2, 4, 4])], [vi("y", [1, 2, 4, 4])],
         [init("w", w)], x, y, opset=21)
    save(folder, "opset22", nodes, [vi("x", [1, 2, 4, 4])], [vi("y", [1, 2, 4, 4])],
         [init("w", w)], None, None, opset=22)


def external_data(folder):
    # Conv weights in a file next to the model; and a model whose data lies outside its
    # folder (refused).
    from onnx.external_data_helper import set_external_data
    x = rand(1, 2, 4, 4, scale=1.0)
    w = rand(3, 2, 3, 3)
    y = conv(x, w, None, pads=(1, 1, 1, 1))

    def model_with(location, name):
        t = numpy_helper.from_array(w, "w")
        with open(os.path.join(folder, location), "wb") as f:
            f.write(b"\0" * 16 + t.raw_data)
        set_external_data(t, location=location, offset=16, length=len(t.raw_data))
        t.ClearField("raw_data")
        t.data_location = TensorProto.EXTERNAL
        nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1])]
        save(folder, name, nodes, [vi("x", [1, 2, 4, 4])], [vi("y", [1, 3, 4, 4])], [t], x, y)

    model_with("external.bin", "external")
    model_with("../outside_the_models_folder.bin", "escaping")


def old_opset(folder):
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="relu")]
    save(folder, "opset6", nodes, [vi("x", [1, 2, 2, 2])], [vi("y", [1, 2, 2, 2])], [], None,
         None, opset=6)


def conv_transpose_models(folder):
    # DCGAN's kernel 4, stride 2, pads 1 (the full result cropped), with a bias and a PRelu
    # of one slope per channel; weights [C_in, C_out, kh, kw] to cnngraph's OHWI.
    x = rand(2, 4, 5, 5, scale=1.0)
    w, b = rand(4, 3, 4, 4), rand(3)
    slope = rand(3, 1, 1)
    t = conv_transpose(x, w, b, stride=(2, 2), pads=(1, 1, 1, 1))
    y = np.where(t >= 0, t, slope.reshape(1, 3, 1, 1) * t).astype(np.float32)
    nodes = [helper.make_node("ConvTranspose", ["x", "w", "b"], ["t"], name="up",
                              kernel_shape=[4, 4], strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("PRelu", ["t", "slope"], ["y"], name="prelu")]
    save(folder, "conv_transpose", nodes, [vi("x", ["N", 4, 5, 5])], [vi("y", ["N", 3, 10, 10])],
         [init("w", w), init("b", b), init("slope", slope)], x, y)

    # Groups, dilation, unequal strides, asymmetric pads and output_padding past the full
    # result (where ONNX adds the bias too).
    x = rand(1, 4, 3, 4, scale=1.0)
    w, b = rand(4, 3, 3, 2), rand(6)
    y = conv_transpose(x, w, b, stride=(2, 3), pads=(1, 0, 0, 1), dilation=(2, 1), group=2,
                       output_padding=(1, 2))
    nodes = [helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], name="up", group=2,
                              strides=[2, 3], pads=[1, 0, 0, 1], dilations=[2, 1],
                              output_padding=[1, 2])]
    save(folder, "conv_transpose_groups", nodes, [vi("x", [1, 4, 3, 4])],
         [vi("y", list(y.shape))], [init("w", w), init("b", b)], x, y)

    # auto_pad SAME_UPPER: the result is the input times the stride; no pads, no bias.
    x = rand(1, 2, 3, 3, scale=1.0)
    w = rand(2, 2, 3, 3)
    full = conv_transpose(x, w, None, stride=(2, 2))  # 7 x 7; SAME_UPPER crops 0 before, 1 after
    y = full[:, :, 0:6, 0:6]
    nodes = [helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up", strides=[2, 2],
                              auto_pad="SAME_UPPER")]
    save(folder, "conv_transpose_same", nodes, [vi("x", [1, 2, 3, 3])], [vi("y", [1, 2, 6, 6])],
         [init("w", w)], x, np.ascontiguousarray(y))


def activations(folder):
    # Elu, Selu, HardSigmoid, Softplus, Softsign, Abs and a scalar PRelu side by side.
    x = rand(2, 3, 4, 4, scale=2.0)
    selu = 1.0507 * elu(x, 1.6733)
    parts = [elu(x, 0.5), selu, np.clip(0.3 * x + 0.4, 0, 1), np.log1p(np.exp(x)),
             x / (1 + np.abs(x)), np.abs(x), np.where(x >= 0, x, 0.25 * x)]
    y = np.concatenate(parts, axis=1).astype(np.float32)
    nodes = [helper.make_node("Elu", ["x"], ["a"], name="elu", alpha=0.5),
             helper.make_node("Selu", ["x"], ["b"], name="selu", alpha=1.6733, gamma=1.0507),
             helper.make_node("HardSigmoid", ["x"], ["c"], name="hard", alpha=0.3, beta=0.4),
             helper.make_node("Softplus", ["x"], ["d"], name="softplus"),
             helper.make_node("Softsign", ["x"], ["e"], name="softsign"),
             helper.make_node("Abs", ["x"], ["f"], name="abs"),
             helper.make_node("PRelu", ["x", "slope"], ["g"], name="prelu"),
             helper.make_node("Concat", ["a", "b", "c", "d", "e", "f", "g"], ["y"], axis=1,
                              name="concat")]
    save(folder, "activations", nodes, [vi("x", [2, 3, 4, 4])], [vi("y", [2, 21, 4, 4])],
         [init("slope", np.array([0.25], np.float32))], x, y)


def lrn_mean_matmul(folder):
    # LRN (ONNX divides alpha by size), ReduceMean over H and W without keepdims (a 2-D
    # [N, C]), MatMul with a constant B and LogSoftmax; opset 13 (axes an attribute).
    x = rand(2, 7, 4, 4, scale=2.0)
    bm = rand(7, 5)
    l = lrn(x, 5, 0.3, 0.75, 2.0)
    m = l.mean(axis=(2, 3))
    y = log_softmax(m @ bm).astype(np.float32)
    nodes = [helper.make_node("LRN", ["x"], ["l"], name="lrn", size=5, alpha=0.3, beta=0.75,
                              bias=2.0),
             helper.make_node("ReduceMean", ["l"], ["m"], name="mean", axes=[2, 3], keepdims=0),
             helper.make_node("MatMul", ["m", "bm"], ["g"], name="matmul"),
             helper.make_node("LogSoftmax", ["g"], ["y"], name="logsoftmax", axis=1)]
    save(folder, "lrn_mean_matmul", nodes, [vi("x", [2, 7, 4, 4])], [vi("y", [2, 5])],
         [init("bm", bm)], x, y)


def later_opsets(folder):
    # Opsets after ONNX 1.12's 17: ReduceMean's axes as an input (18), AveragePool's
    # dilations attribute (19), Gelu (20).
    x = rand(1, 3, 6, 6, scale=1.0)
    w = rand(4, 3, 3, 3)
    fw, fb = rand(4, 2), rand(2)
    c = conv(x, w, None)
    for opset in (18, 19, 20, 21):
        a = avgpool(c, 2, 1)
        if opset >= 20:
            a = gelu(a)
        m = a.mean(axis=(2, 3), keepdims=True)
        y = (m.reshape(1, -1) @ fw + fb).astype(np.float32)
        pool = dict(kernel_shape=[2, 2])
        if opset >= 19:
            pool["dilations"] = [1, 1]
        nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
                 helper.make_node("AveragePool", ["c"], ["a"], name="avg", **pool)]
        last = "a"
        if opset >= 20:
            nodes.append(helper.make_node("Gelu", ["a"], ["ge"], name="gelu"))
            last = "ge"
        nodes += [helper.make_node("ReduceMean", [last, "axes"], ["m"], name="mean"),
                  helper.make_node("Flatten", ["m"], ["f"], name="flatten"),
                  helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="fc")]
        save(folder, "opset%d_ops" % opset, nodes, [vi("x", [1, 3, 6, 6])], [vi("y", [1, 2])],
             [init("w", w), init("fw", fw), init("fb", fb),
              init("axes", np.array([2, 3], np.int64))], x, y, opset=opset)


def shared_weights(folder):
    # One initializer read by two convolutions.
    x = rand(1, 3, 5, 5, scale=1.0)
    w = rand(3, 3, 3, 3)
    y = conv(relu(conv(x, w, None, pads=(1, 1, 1, 1))), w, None, pads=(1, 1, 1, 1))
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "w"], ["y"], name="conv2", pads=[1, 1, 1, 1])]
    save(folder, "shared_weights", nodes, [vi("x", [1, 3, 5, 5])], [vi("y", [1, 3, 5, 5])],
         [init("w", w)], x, y)


def conv_of_2d_input(folder):
    # Found by the fuzzer: ONNX 1.12's shape inference crashes on a Conv of a 2-D input.
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")]
    save(folder, "conv_of_2d_input", nodes, [vi("x", [1, 5])], [vi("y", [1, 3, 1, 1])],
         [init("w", rand(3, 2, 1, 1))], None, None, opset=9)


def unsupported_converters(folder):
    # The new converters' refusals, all in one model (opset 20 for Gelu).
    nodes = [helper.make_node("Gelu", ["x"], ["g"], name="gelu_tanh", approximate="tanh"),
             helper.make_node("LRN", ["x"], ["l"], name="lrn_even", size=4),
             helper.make_node("ReduceMean", ["x", "axes1"], ["m"], name="mean_c"),
             helper.make_node("PRelu", ["x", "slope_w"], ["p"], name="prelu_w"),
             helper.make_node("Div", ["one", "x"], ["q"], name="div_c"),
             helper.make_node("ConvTranspose", ["x", "w3"], ["t"], name="up3d"),
             helper.make_node("Mul", ["x", "along_w"], ["mw"], name="mul_w"),
             helper.make_node("Pad", ["x", "pads"], ["pr"], name="pad_reflect", mode="reflect"),
             helper.make_node("Pad", ["x", "pads_c"], ["pc"], name="pad_c_before"),
             helper.make_node("Pad", ["x", "pads_neg"], ["pn"], name="pad_negative"),
             helper.make_node("GlobalAveragePool", ["x"], ["gap"], name="gap"),
             helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"),
             helper.make_node("Add", ["x", "flat"], ["mixed"], name="add_2d_4d")]
    save(folder, "unsupported_converters", nodes, [vi("x", [1, 2, 4, 4])],
         [vi("g", [1, 2, 4, 4]), vi("l", [1, 2, 4, 4]), vi("m", [1, 1, 4, 4]),
          vi("p", [1, 2, 4, 4]), vi("q", [1, 2, 4, 4]), vi("t", [1, 2, 6, 6, 6]),
          vi("mw", [1, 2, 4, 4]), vi("pr", [1, 2, 6, 6]), vi("pc", [1, 3, 4, 4]),
          vi("pn", [1, 2, 3, 4]), vi("mixed", [1, 2, 4, 2])],
         [init("axes1", np.array([1], np.int64)), init("slope_w", rand(4)),
          init("w3", rand(2, 2, 3, 3, 3)), init("one", np.array(1.0, np.float32)),
          init("along_w", rand(4)), init("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)),
          init("pads_c", np.array([0, 1, 0, 0, 0, 0, 0, 0], np.int64)),
          init("pads_neg", np.array([0, 0, -1, 0, 0, 0, 0, 0], np.int64))], None, None,
         opset=20)


sigmoid = lambda x: 1 / (1 + np.exp(-x))


def se_silu(folder):
    # SiLU as x * Sigmoid(x), then squeeze-and-excitation: x * sigmoid(conv(relu(conv(GAP(x)))))
    # (a [N, C, 1, 1] gate broadcast over H and W).
    x = rand(2, 4, 5, 5, scale=1.0)
    w, b = rand(4, 4, 3, 3), rand(4)
    w1, b1 = rand(2, 4, 1, 1), rand(2)
    w2, b2 = rand(4, 2, 1, 1), rand(4)
    c = conv(x, w, b, pads=(1, 1, 1, 1))
    s = c * sigmoid(c)
    g = s.mean(axis=(2, 3), keepdims=True)
    gate = sigmoid(conv(relu(conv(g, w1, b1)), w2, b2))
    y = (s * gate).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Sigmoid", ["c"], ["cs"], name="silu_sigmoid"),
             helper.make_node("Mul", ["c", "cs"], ["s"], name="silu"),
             helper.make_node("GlobalAveragePool", ["s"], ["g"], name="squeeze"),
             helper.make_node("Conv", ["g", "w1", "b1"], ["e1"], name="reduce"),
             helper.make_node("Relu", ["e1"], ["e2"], name="relu"),
             helper.make_node("Conv", ["e2", "w2", "b2"], ["e3"], name="expand"),
             helper.make_node("Sigmoid", ["e3"], ["gate"], name="gate"),
             helper.make_node("Mul", ["s", "gate"], ["y"], name="excite")]
    save(folder, "se_silu", nodes, [vi("x", ["N", 4, 5, 5])], [vi("y", ["N", 4, 5, 5])],
         [init(n, v) for n, v in [("w", w), ("b", b), ("w1", w1), ("b1", b1), ("w2", w2),
                                  ("b2", b2)]], x, y)


def hard_swish(folder):
    x = rand(2, 3, 4, 4, scale=4.0)
    y = (x * np.clip(x / 6 + 0.5, 0, 1)).astype(np.float32)
    nodes = [helper.make_node("HardSwish", ["x"], ["y"], name="hswish")]
    save(folder, "hard_swish", nodes, [vi("x", [2, 3, 4, 4])], [vi("y", [2, 3, 4, 4])], [], x, y,
         opset=14)


def normalize_constants(folder):
    # Input normalization per channel ((x - mean) / std, [1, C, 1, 1] and [C, 1, 1]), a
    # per-channel Mul and Add with the constant first, then scalar Mul, Add, Sub (both orders)
    # and Div; one scalar is a Constant node.
    x = rand(2, 3, 5, 4, scale=2.0)
    mean = rand(1, 3, 1, 1)
    std = (np.abs(rand(3, 1, 1)) + 0.5).astype(np.float32)
    scale, shift = rand(3, 1, 1), rand(1, 3, 1, 1)
    n = (x - mean) / std
    n = scale * n
    n = shift + n
    n = n * np.float32(2.5)
    n = np.float32(0.5) + n
    n = np.float32(1.25) - n
    n = n - np.float32(0.75)
    y = (n / np.float32(4.0)).astype(np.float32)
    scalar = lambda name, v: init(name, np.array(v, np.float32))
    nodes = [helper.make_node("Sub", ["x", "mean"], ["a"], name="sub_mean"),
             helper.make_node("Div", ["a", "std"], ["b"], name="div_std"),
             helper.make_node("Mul", ["scale", "b"], ["c"], name="mul_scale"),
             helper.make_node("Add", ["shift", "c"], ["d"], name="add_shift"),
             helper.make_node("Constant", [], ["k"], name="k",
                              value=helper.make_tensor("k_value", TensorProto.FLOAT, [], [2.5])),
             helper.make_node("Mul", ["d", "k"], ["e"], name="mul_k"),
             helper.make_node("Add", ["half", "e"], ["f"], name="add_half"),
             helper.make_node("Sub", ["c125", "f"], ["g"], name="sub_from"),
             helper.make_node("Sub", ["g", "c075"], ["h"], name="sub_c"),
             helper.make_node("Div", ["h", "four"], ["y"], name="div_four")]
    save(folder, "normalize_constants", nodes, [vi("x", [2, 3, 5, 4])], [vi("y", [2, 3, 5, 4])],
         [init("mean", mean), init("std", std), init("scale", scale), init("shift", shift),
          scalar("half", [0.5]), scalar("c125", 1.25), scalar("c075", [[0.75]]),
          scalar("four", 4.0)], x, y)


def flat_constants(folder):
    # Constants on a 2-D [N, C] (after GlobalAveragePool and Flatten): [1, C], [C] and a scalar.
    x = rand(2, 5, 3, 3, scale=1.0)
    m, a = rand(1, 5), rand(5)
    g = x.mean(axis=(2, 3))
    y = ((g * m + a) / np.float32(3.0) - np.float32(0.5)).astype(np.float32)
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
             helper.make_node("Mul", ["f", "m"], ["p"], name="mul"),
             helper.make_node("Add", ["p", "a"], ["q"], name="add"),
             helper.make_node("Div", ["q", "three"], ["r"], name="div"),
             helper.make_node("Sub", ["r", "half"], ["y"], name="sub")]
    save(folder, "flat_constants", nodes, [vi("x", [2, 5, 3, 3])], [vi("y", [2, 5])],
         [init("m", m), init("a", a), init("three", np.array(3.0, np.float32)),
          init("half", np.array([0.5], np.float32))], x, y)


def broadcast_computed(folder):
    # Mul, Sub and Div of two computed tensors that broadcast: [N, C, H, W] with [N, C, 1, 1]
    # (either side) and with [N, 1, H, W].
    x = rand(2, 4, 3, 3, scale=1.0)
    wa, wb = rand(4, 4, 1, 1), rand(1, 4, 1, 1)
    a = conv(x, wa, None)
    g = x.mean(axis=(2, 3), keepdims=True)
    e = sigmoid(conv(x, wb, None)) + np.float32(0.5)
    y = np.concatenate([a * g, g - a, a / e], axis=1).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "wa"], ["a"], name="conva"),
             helper.make_node("GlobalAveragePool", ["x"], ["g"], name="gap"),
             helper.make_node("Conv", ["x", "wb"], ["e0"], name="convb"),
             helper.make_node("Sigmoid", ["e0"], ["e1"], name="sigmoid"),
             helper.make_node("Add", ["e1", "half"], ["e"], name="add_half"),
             helper.make_node("Mul", ["a", "g"], ["m"], name="mul"),
             helper.make_node("Sub", ["g", "a"], ["s"], name="sub"),
             helper.make_node("Div", ["a", "e"], ["d"], name="div"),
             helper.make_node("Concat", ["m", "s", "d"], ["y"], name="concat", axis=1)]
    save(folder, "broadcast_computed", nodes, [vi("x", [2, 4, 3, 3])], [vi("y", [2, 12, 3, 3])],
         [init("wa", wa), init("wb", wb), init("half", np.array(0.5, np.float32))], x, y)


def global_max_pool(folder):
    x = rand(2, 3, 5, 4, scale=1.0)
    y = x.max(axis=(2, 3), keepdims=True)
    nodes = [helper.make_node("GlobalMaxPool", ["x"], ["y"], name="gmp")]
    save(folder, "global_max_pool", nodes, [vi("x", [2, 3, 5, 4])], [vi("y", [2, 3, 1, 1])], [],
         x, y)


def pad(x, before, after, value):
    return np.pad(x, list(zip(before, after)), constant_values=value).astype(np.float32)


def pad_models(folder):
    # Pad-2 (opset 9): pads and value attributes, C padded after, then a Conv.
    x = rand(1, 2, 4, 3, scale=1.0)
    w = rand(3, 3, 2, 2)
    p = pad(x, (0, 0, 1, 2), (0, 1, 0, 3), 0.5)
    y = conv(p, w, None)
    nodes = [helper.make_node("Pad", ["x"], ["p"], name="pad", mode="constant",
                              pads=[0, 0, 1, 2, 0, 1, 0, 3], value=0.5),
             helper.make_node("Conv", ["p", "w"], ["y"], name="conv")]
    save(folder, "pad_opset9", nodes, [vi("x", [1, 2, 4, 3])], [vi("y", list(y.shape))],
         [init("w", w)], x, y, opset=9)

    # Pad-13: pads and constant_value inputs, then a MaxPool.
    x = rand(2, 3, 4, 4, scale=1.0)
    p = pad(x, (0, 0, 2, 1), (0, 0, 1, 0), -1.5)
    y = maxpool(p, 2, 1)
    nodes = [helper.make_node("Pad", ["x", "pads", "value"], ["p"], name="pad"),
             helper.make_node("MaxPool", ["p"], ["y"], name="pool", kernel_shape=[2, 2])]
    save(folder, "pad_opset13", nodes, [vi("x", [2, 3, 4, 4])], [vi("y", list(y.shape))],
         [init("pads", np.array([0, 0, 2, 1, 0, 0, 1, 0], np.int64)),
          init("value", np.array(-1.5, np.float32))], x, y, opset=13)

    # Pad-18: an axes input [-1, 2] (W, then H): pads [W begin, H begin, W end, H end].
    x = rand(1, 2, 3, 4, scale=1.0)
    y = pad(x, (0, 0, 2, 1), (0, 0, 3, 0), 0.0)
    nodes = [helper.make_node("Pad", ["x", "pads", "", "axes"], ["y"], name="pad")]
    save(folder, "pad_opset18", nodes, [vi("x", [1, 2, 3, 4])], [vi("y", list(y.shape))],
         [init("pads", np.array([1, 2, 0, 3], np.int64)),
          init("axes", np.array([-1, 2], np.int64))], x, y, opset=18)


def average_pool_counting_padding(x, k, s, pads, ceil_mode):
    # ONNX's count_include_pad = 1: a window divides by its pixels within the padded image
    # (pads top, left, bottom, right); ceil mode's last windows may reach past it.
    n, c, h, w = x.shape

    def size(i, pb, pe):
        span = i + pb + pe - k
        out = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (out - 1) * s >= i + pb:
            out -= 1
        return out

    oh, ow = size(h, pads[0], pads[2]), size(w, pads[1], pads[3])
    y = np.zeros((n, c, oh, ow), np.float64)
    for i in range(oh):
        hs = i * s - pads[0]
        he = min(hs + k, h + pads[2])
        for j in range(ow):
            ws = j * s - pads[1]
            we = min(ws + k, w + pads[3])
            total = x[:, :, max(hs, 0):min(he, h), max(ws, 0):min(we, w)].sum(axis=(2, 3))
            y[:, :, i, j] = total / ((he - hs) * (we - ws))
    return y.astype(np.float32)


def average_pool_count_include_pad(folder):
    # Asymmetric pads and ceil mode: the last row's and column's windows reach past the
    # padded image, whose pixels there are not counted.
    x = rand(2, 3, 6, 7, scale=1.0)
    pads = (1, 0, 1, 1)
    y = average_pool_counting_padding(x, 3, 2, pads, True)
    nodes = [helper.make_node("AveragePool", ["x"], ["y"], name="avg", kernel_shape=[3, 3],
                              strides=[2, 2], pads=[1, 0, 1, 1], ceil_mode=1,
                              count_include_pad=1)]
    save(folder, "average_pool_count_include_pad", nodes, [vi("x", [2, 3, 6, 7])],
         [vi("y", list(y.shape))], [], x, y)


def identity_weights(folder):
    # PyTorch's TorchScript exporter aliases deduplicated initializers through Identity.
    x = rand(1, 2, 4, 4, scale=1.0)
    w, b = rand(3, 2, 3, 3), rand(3)
    y = relu(conv(x, w, b, pads=(1, 1, 1, 1)))
    nodes = [helper.make_node("Identity", ["w"], ["w_alias"], name="alias_w"),
             helper.make_node("Identity", ["b"], ["b_alias"], name="alias_b"),
             helper.make_node("Conv", ["x", "w_alias", "b_alias"], ["c"], name="conv",
                              pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"], name="relu")]
    save(folder, "identity_weights", nodes, [vi("x", [1, 2, 4, 4])], [vi("y", [1, 3, 4, 4])],
         [init("w", w), init("b", b)], x, y)


def reshape_allowzero(folder):
    # PyTorch 2.11's exporter flattens with Reshape(x, [N, K], allowzero = 1).
    x = rand(2, 3, 4, 4, scale=1.0)
    w, b = rand(4, 3, 3, 3), rand(4)
    fw, fb = rand(5, 4 * 4 * 4, scale=0.1), rand(5)
    y = (relu(conv(x, w, b, pads=(1, 1, 1, 1))).reshape(2, -1) @ fw.T + fb).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Reshape", ["r", "shape"], ["f"], name="view", allowzero=1),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="fc", transB=1)]
    inits = [init(n, v) for n, v in [("w", w), ("b", b), ("fw", fw), ("fb", fb)]]
    inits.append(numpy_helper.from_array(np.array([2, 64], np.int64), "shape"))
    save(folder, "reshape_allowzero", nodes, [vi("x", [2, 3, 4, 4])], [vi("y", [2, 5])], inits,
         x, y, opset=14)


def main():
    folder = sys.argv[1]
    os.makedirs(folder, exist_ok=True)
    for make in (conv_relu_pool, residual_bn, lenet, depthwise, asymmetric, branches,
                 opset9_clip_and_padded_average, opset21, external_data, unsupported, old_opset,
                 conv_transpose_models, activations, lrn_mean_matmul, later_opsets,
                 shared_weights, unsupported_converters, conv_of_2d_input, se_silu, hard_swish,
                 normalize_constants, flat_constants, broadcast_computed, global_max_pool,
                 pad_models, average_pool_count_include_pad, identity_weights, reshape_allowzero):
        make(folder)
    with open(os.path.join(folder, "malformed.onnx"), "wb") as f:
        f.write(b"\x08\x07this is not an ONNX model\xff\xff\xff")


if __name__ == "__main__":
    main()
