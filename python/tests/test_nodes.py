"""Descriptors, optimizers, data sources and nodes: keyword arguments, repr, attributes."""

import numpy as np
import pytest

import cnngraph as cg
from conftest import tolerance


def test_neuron_descriptors_take_mps_defaults_unless_given():
    assert cg.NeuronDescriptor(cg.NeuronType.relu_n).b == 6.0
    hard = cg.NeuronDescriptor(cg.NeuronType.hard_sigmoid)
    assert (hard.a, hard.b) == pytest.approx((0.2, 0.5))
    leaky = cg.NeuronDescriptor(cg.NeuronType.relu, a=0.1)
    assert leaky.a == pytest.approx(0.1)
    assert repr(leaky).startswith("NeuronDescriptor(NeuronType.relu, a=0.1")
    prelu = cg.NeuronDescriptor(cg.NeuronType.prelu, prelu_slopes=[0.1, 0.2])
    assert prelu.prelu_slopes == pytest.approx([0.1, 0.2])
    with pytest.raises(cg.InvalidArgument):
        cg.NeuronDescriptor(cg.NeuronType.prelu).validate()


def test_convolution_descriptors_mirror_the_cpp_one():
    d = cg.ConvolutionDescriptor(3, 5, 4, 8, stride_x=2, groups=2, neuron=cg.NeuronType.tanh)
    assert (d.kernel_width, d.kernel_height, d.input_feature_channels) == (3, 5, 4)
    assert (d.output_feature_channels, d.stride_x, d.stride_y, d.groups) == (8, 2, 1, 2)
    assert d.neuron.type == cg.NeuronType.tanh and d.neuron.a == 1.0
    assert d.weight_count() == 8 * 5 * 3 * 2
    d.neuron.a = 2.0  # a reference to the descriptor's own neuron
    assert d.neuron.a == 2.0
    d.set_neuron(cg.NeuronType.linear, b=3.0)
    assert (d.neuron.a, d.neuron.b) == (1.0, 3.0)
    assert "kernel_width=3, kernel_height=5" in repr(d) and "linear" in repr(d)
    dw = cg.ConvolutionDescriptor.depthwise(3, 3, 8, channel_multiplier=2)
    assert dw.is_depthwise() and dw.channel_multiplier() == 2 and dw.groups == 8
    d.groups = 3
    with pytest.raises(cg.InvalidArgument, match="groups"):
        d.validate()
    d.set_batch_normalization([0.0] * 8, [1.0] * 8, [1.0] * 8, [0.0] * 8, 1e-3)
    assert d.batch_normalization.epsilon == pytest.approx(1e-3)


def test_optimizers_take_a_descriptor_and_their_own_parameters():
    desc = cg.OptimizerDescriptor(learning_rate=0.01, regularization_type=cg.RegularizationType.l2,
                                  regularization_scale=1e-4)
    sgd = cg.SgdOptimizer(desc, momentum=0.9, nesterov=True)
    assert sgd.name == "sgd" and sgd.momentum == pytest.approx(0.9) and sgd.nesterov
    assert sgd.learning_rate == pytest.approx(0.01)
    sgd.learning_rate = 0.5
    assert sgd.descriptor.learning_rate == 0.5
    assert cg.AdamOptimizer(amsgrad=True).name == "amsgrad"
    assert cg.RmsPropOptimizer(decay=0.8).decay == pytest.approx(0.8)
    with pytest.raises(cg.InvalidArgument, match="learning"):
        cg.SgdOptimizer(cg.OptimizerDescriptor(learning_rate=-1.0))


def test_array_data_sources_take_ohwi_or_flat_weights(rng):
    d = cg.ConvolutionDescriptor(3, 3, 2, 4)
    w = rng.standard_normal((4, 3, 3, 2))
    source = cg.ArrayDataSource("w", d, w, bias=np.zeros(4))  # float64 is converted
    assert source.label == "w" and source.data_type == cg.DataType.f32
    assert source.descriptor.output_feature_channels == 4
    assert repr(source) == "<ArrayDataSource 'w'>"
    cg.ArrayDataSource("flat", d, w.ravel().astype(np.float32))


def test_weights_of_the_wrong_shape_count_or_type_are_refused(rng):
    d = cg.ConvolutionDescriptor(3, 3, 2, 4)
    with pytest.raises(cg.ShapeError, match=r"OHWI \(4, 3, 3, 2\)"):
        cg.ArrayDataSource("w", d, np.zeros((4, 2, 3, 3), np.float32))
    with pytest.raises(cg.ShapeError, match="dimensions"):
        cg.ArrayDataSource("w", d, np.zeros((4, 18), np.float32))
    with pytest.raises(cg.InvalidArgument, match="weights count"):
        cg.ArrayDataSource("w", d, np.zeros(5, np.float32))
    with pytest.raises(cg.InvalidArgument, match="bias"):
        cg.ArrayDataSource("w", d, np.zeros(72, np.float32), bias=np.zeros(3, np.float32))
    with pytest.raises(cg.InvalidArgument, match="int64"):
        cg.ArrayDataSource("w", d, np.zeros(72, np.int64))
    with pytest.raises(cg.InvalidArgument, match="not C-contiguous"):
        cg.ArrayDataSource("w", d, np.zeros(144, np.float32)[::2])


def test_trainable_sources_give_their_weights_back_as_numpy(rng):
    d = cg.ConvolutionDescriptor(1, 1, 3, 2)
    w = rng.standard_normal((2, 1, 1, 3)).astype(np.float32)
    source = cg.TrainableDataSource("t", d, w, np.ones(2, np.float32))
    np.testing.assert_array_equal(source.current_weights(), w)
    np.testing.assert_array_equal(source.current_bias(), [1.0, 1.0])
    assert source.optimizer.name == "sgd" and source.update_count == 0
    source.assign(np.zeros((2, 1, 1, 3), np.float32), np.zeros(2, np.float32))
    assert not source.current_weights().any()
    uniform = cg.TrainableDataSource.uniform("u", d, limit=0.5, seed=3,
                                             optimizer=cg.AdamOptimizer())
    weights = uniform.current_weights()
    assert weights.shape == (2, 1, 1, 3) and np.all(np.abs(weights) <= 0.5)
    assert uniform.current_bias().shape == (2,) and uniform.optimizer.name == "adam"


def test_file_data_sources_fail_to_load_a_missing_file_at_compile(tmp_path):
    d = cg.ConvolutionDescriptor(1, 1, 1, 1)
    source = cg.FileDataSource(tmp_path / "missing.safetensors", d, label="f")
    assert not source.is_loaded
    graph = cg.Graph(cg.Device.cpu_reference(), cg.ConvolutionNode(cg.ImageNode("x"), source))
    with pytest.raises(cg.DataSourceError, match="missing.safetensors") as info:
        graph.run([cg.Image(np.zeros((1, 1, 1, 1), np.float32))])
    assert isinstance(info.value, OSError)


def test_nodes_take_images_or_filters_and_describe_themselves():
    x = cg.ImageNode("x")
    assert repr(x) == "ImageNode('x')" and x.is_source and x.producer is None
    d = cg.ConvolutionDescriptor(3, 3, 1, 2, neuron=cg.NeuronType.relu)
    conv = cg.ConvolutionNode(x, cg.ArrayDataSource("w", d, np.ones(18, np.float32)),
                              label="conv1", padding_policy=cg.PaddingPolicy.valid())
    assert conv.kind == "convolution" and conv.display_name == "convolution 'conv1'"
    assert conv.source_images == [x] and conv.result_image.producer is conv
    assert conv.weights.label == "w" and conv.is_trainable
    assert conv.padding_policy.size == cg.PaddingSize.valid
    attributes = conv.attributes()
    assert attributes["kernel_width"] == 3 and attributes["neuron"] == "relu"
    assert attributes["padding"] == "valid" and attributes["weights"] == "w"
    assert repr(conv).startswith("ConvolutionNode(label='conv1', source='x', padding='valid', ")
    conv.training_style = cg.TrainingStyle.none
    assert not conv.is_trainable
    pool = cg.MaxPoolingNode(conv, 2)  # a filter stands for its result image
    assert pool.source_images[0] is conv.result_image
    assert (pool.kernel_width, pool.stride_y, pool.type) == (2, 2, cg.PoolingType.max)
    assert "source=convolution 'conv1'" in repr(pool)
    avg = cg.AveragePoolingNode(x, 3, 2, 1, 1, label="avg")
    assert (avg.kernel_width, avg.kernel_height, avg.stride_x) == (3, 2, 1)
    avg.counts_padding = True
    assert avg.counts_padding and avg.attributes()["counts_padding"] is True
    with pytest.raises(cg.InvalidArgument):
        pool.counts_padding = True
    neuron = cg.NeuronNode(x, cg.NeuronType.sigmoid)
    assert neuron.kind == "neuron_sigmoid" and neuron.neuron.type == cg.NeuronType.sigmoid
    add = cg.AdditionNode(conv, neuron, label="add")
    assert add.operation == cg.ArithmeticOperation.addition
    assert add.attributes().get("padding") == "same"
    assert "primary=convolution 'conv1'" in repr(add) and "secondary=" in repr(add)
    assert cg.SoftMaxNode(add).kind == "softmax"
    assert cg.FullyConnectedNode(x, conv.weights).kind == "fully_connected"
    assert cg.ReshapeNode(x, 1, 1, 4).channels == 4
    assert cg.ConcatenationNode([x, conv]).kind == "concatenation"


def test_padding_policies():
    assert repr(cg.PaddingPolicy.same()) == "PaddingPolicy(size=PaddingSize.same)"
    tf = cg.PaddingPolicy.tensorflow_same()
    assert tf.remainder == cg.PaddingRemainder.bottom_right
    pads = cg.PaddingPolicy.explicit_padding(1, 2, 3, 4, ceil_mode=True)
    assert (pads.pads.top, pads.pads.right, pads.pads.ceil_mode) == (1, 4, True)
    assert "explicit_padding(top=1, bottom=2, left=3, right=4, ceil_mode=True)" in repr(pads)
    p = cg.PaddingPolicy(cg.PaddingSize.full, alignment=cg.PaddingAlignment.top_left)
    assert p.size == cg.PaddingSize.full and p.alignment == cg.PaddingAlignment.top_left
    with pytest.raises(cg.InvalidArgument, match="callback"):
        cg.PaddingPolicy(cg.PaddingSize.custom)


def test_bad_node_arguments_raise_the_library_exception():
    x = cg.ImageNode("x")
    with pytest.raises(TypeError):
        cg.ConvolutionNode(x, None)  # a node needs its data source
    with pytest.raises(TypeError):
        cg.ConvolutionNode("x", None)
    with pytest.raises(cg.InvalidArgument):
        cg.ReshapeNode(x, 0, 1, 1)


# The remaining forward nodes: each is built, describes itself, runs on a small image against
# NumPy, and refuses bad arguments with the library's exception.

def run1(device, node, x):
    return cg.Graph(device, node).run([cg.Image(np.ascontiguousarray(x, np.float32))])[0].numpy()


def conv2d_valid(x, w):
    """NHWC x, OHWI w, stride 1, no padding, in double precision."""
    n, h, wd, _ = x.shape
    o, kh, kw, _ = w.shape
    out = np.zeros((n, h - kh + 1, wd - kw + 1, o))
    for dy in range(kh):
        for dx in range(kw):
            out += np.einsum("nhwc,oc->nhwo", x[:, dy:dy + h - kh + 1, dx:dx + wd - kw + 1, :]
                             .astype(np.float64), w[:, dy, dx, :])
    return out


def signs(a):
    return np.where(a >= 0, 1.0, -1.0)


def test_padding_nodes_surround_the_image_with_a_constant(device, rng):
    x = cg.ImageNode("x")
    amounts = cg.PaddingAmounts(top=1, bottom=2, left=0, right=3, channels_after=1)
    assert repr(amounts) == ("PaddingAmounts(top=1, bottom=2, left=0, right=3, "
                             "channels_after=1)")
    node = cg.PaddingNode(x, amounts, 0.5, label="pad")
    assert node.kind == "padding" and node.value == 0.5 and node.amounts.right == 3
    assert node.attributes()["channels_after"] == 1 and node.attributes()["value"] == 0.5
    assert repr(node).startswith("PaddingNode(label='pad', source='x', padding='valid', top=1")
    same = cg.PaddingNode(x, top=1, right=2)  # the amounts as keywords
    assert (same.amounts.top, same.amounts.right, same.amounts.bottom) == (1, 2, 0)
    a = rng.standard_normal((2, 3, 4, 2))
    out = run1(device, node, a)
    expected = np.pad(a, ((0, 0), (1, 2), (0, 3), (0, 1)), constant_values=0.5)
    np.testing.assert_allclose(out, expected, atol=tolerance(device))
    with pytest.raises(cg.InvalidArgument, match="non-negative"):
        cg.PaddingNode(x, top=-1)
    with pytest.raises(cg.InvalidArgument, match="finite"):
        cg.PaddingNode(x, amounts, float("nan"))


def test_batch_normalization_nodes_take_a_data_source_or_fixed_parameters(device, rng):
    x = cg.ImageNode("x")
    mean, var = rng.standard_normal(3), rng.random(3) + 0.5
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    parameters = cg.BatchNormalizationParameters(mean, var, gamma, beta, 1e-3)
    fixed = cg.BatchNormalizationNode(x, parameters, label="bn")
    assert fixed.kind == "batch_normalization" and not fixed.is_trainable
    assert fixed.parameters.epsilon == pytest.approx(1e-3)
    assert fixed.attributes()["data_source"] == "batch_normalization"
    assert "training_style='device'" in repr(fixed)
    source = cg.BatchNormalizationDataSource("bn1", parameters, cg.SgdOptimizer())
    trained = cg.BatchNormalizationNode(x, source)
    assert trained.data_source is source and trained.is_trainable
    trained.training_style = cg.TrainingStyle.none
    assert not trained.is_trainable and trained.attributes()["training_style"] == "none"
    a = rng.standard_normal((2, 4, 4, 3))
    expected = gamma * (a - mean) / np.sqrt(var + 1e-3) + beta
    np.testing.assert_allclose(run1(device, fixed, a), expected, atol=tolerance(device))
    with pytest.raises(TypeError):
        cg.BatchNormalizationNode(x, None)
    with pytest.raises((cg.InvalidArgument, cg.ShapeError), match="3"):
        run1(device, fixed, rng.standard_normal((1, 2, 2, 4)))  # 4 channels, 3 parameters


def test_transposed_convolutions_are_the_adjoint_of_the_convolution_they_are_sized_by(device, rng):
    x = cg.ImageNode("x")
    y = cg.ImageNode("y")
    w = rng.standard_normal((2, 3, 3, 4)).astype(np.float32)  # the transpose: 4 -> 2 channels
    conv = cg.ConvolutionNode(x, cg.ArrayDataSource(
        "conv", cg.ConvolutionDescriptor(3, 3, 2, 4, stride_x=2, stride_y=2),
        np.ascontiguousarray(w.transpose(3, 1, 2, 0))))
    transpose = cg.ConvolutionTransposeNode(
        y, cg.ArrayDataSource("t", cg.ConvolutionDescriptor(3, 3, 4, 2, stride_x=2, stride_y=2), w),
        conv, label="up")
    assert transpose.kind == "convolution_transpose" and transpose.sized_by is conv
    assert transpose.attributes()["sized_by"] == conv.display_name
    assert transpose.source_images == [y, x]  # it reads the convolution's source for its size
    assert "sized_by=convolution 'conv'" in repr(transpose)
    a = rng.standard_normal((1, 7, 5, 2)).astype(np.float32)
    b = rng.standard_normal((1, 4, 3, 4)).astype(np.float32)
    graph = cg.Graph(device, [conv, transpose])
    handles = [h.handle for h in graph.source_image_handles]
    inputs = {"x": cg.Image(a), "y": cg.Image(b)}
    conv_out, transpose_out = graph.run([inputs[h] for h in handles])
    assert conv_out.shape.height == 4 and transpose_out.numpy().shape == a.shape
    lhs = np.vdot(conv_out.numpy().astype(np.float64), b)
    rhs = np.vdot(a.astype(np.float64), transpose_out.numpy())
    assert lhs == pytest.approx(rhs, rel=1e-4)
    free = cg.ConvolutionTransposeNode(
        y, transpose.weights, padding_policy=cg.PaddingPolicy.full())
    assert free.sized_by is None and free.padding_policy.size == cg.PaddingSize.full
    assert run1(device, free, b).shape == (1, 9, 7, 2)  # full: (in - 1) * stride + kernel
    with pytest.raises(TypeError, match="convolution_gradient_state"):
        cg.ConvolutionTransposeNode(y, transpose.weights, 3)
    with pytest.raises(TypeError):
        cg.ConvolutionTransposeNode(y, None)


def test_binary_convolutions_binarize_by_sign(device, rng):
    x = cg.ImageNode("x")
    w = rng.standard_normal((3, 3, 3, 2)).astype(np.float32)
    bias = rng.standard_normal(3).astype(np.float32)
    weights = cg.ArrayDataSource("bw", cg.ConvolutionDescriptor(3, 3, 2, 3), w, bias)
    node = cg.BinaryConvolutionNode(x, weights, 0.5, cg.BinaryConvolutionType.binary_weights)
    assert node.kind == "binary_convolution" and node.scale_value == 0.5
    assert node.type == cg.BinaryConvolutionType.binary_weights
    assert not node.flags.use_beta_scaling and node.terms.output_scale == []
    attributes = node.attributes()
    assert attributes["binary_type"] == "binary_weights" and attributes["weights_kind"] == "binary"
    assert attributes["padding"] == "valid" and attributes["input_bias"] == []
    assert "input_bias" not in repr(node) and "scale_value=0.5" in repr(node)
    a = rng.standard_normal((2, 5, 6, 2))
    expected = 0.5 * conv2d_valid(a, signs(w)) + bias
    np.testing.assert_allclose(run1(device, node, a), expected, atol=10 * tolerance(device))

    terms = cg.BinaryConvolutionTerms(output_scale=[2.0, 1.0, -1.0], output_bias=[0.0, 1.0, 0.0])
    xnor = cg.BinaryConvolutionNode(x, weights, 1.0, cg.BinaryConvolutionType.xnor, terms=terms,
                                    flags=cg.BinaryConvolutionFlags(), label="xnor")
    assert xnor.terms.output_scale == [2.0, 1.0, -1.0]
    assert "output_scale=[3 values]" in repr(xnor) and repr(terms).startswith(
        "BinaryConvolutionTerms(input_bias=[], input_scale=[], output_bias=[0, 1, 0]")
    expected = (conv2d_valid(signs(a), signs(w)) + bias) * [2.0, 1.0, -1.0] + [0.0, 1.0, 0.0]
    np.testing.assert_allclose(run1(device, xnor, a), expected, atol=10 * tolerance(device))
    beta = cg.BinaryConvolutionNode(x, weights, 1.0, cg.BinaryConvolutionType.and_,
                                    flags=cg.BinaryConvolutionFlags(use_beta_scaling=True))
    assert beta.flags.use_beta_scaling and "use_beta_scaling=True" in repr(beta)
    assert beta.attributes()["binary_type"] == "and"
    assert run1(device, beta, a).shape == (2, 3, 4, 3)

    fc = cg.BinaryFullyConnectedNode(x, weights, 1.0, cg.BinaryConvolutionType.binary_weights)
    assert fc.kind == "binary_fully_connected"
    small = rng.standard_normal((2, 3, 3, 2))
    np.testing.assert_allclose(run1(device, fc, small).reshape(2, 3),
                               np.einsum("nhwc,ohwc->no", small, signs(w)) + bias,
                               atol=10 * tolerance(device))

    with pytest.raises(cg.InvalidArgument, match="finite"):
        cg.BinaryConvolutionNode(x, weights, float("inf"), cg.BinaryConvolutionType.xnor)
    with pytest.raises(cg.InvalidArgument, match="finite"):
        cg.BinaryConvolutionNode(x, weights, 1.0, cg.BinaryConvolutionType.xnor,
                                 terms=cg.BinaryConvolutionTerms(input_bias=[float("nan")] * 2))
    wrong = cg.BinaryConvolutionNode(x, weights, 1.0, cg.BinaryConvolutionType.xnor,
                                     terms=cg.BinaryConvolutionTerms(input_scale=[1.0]))
    with pytest.raises(cg.InvalidArgument, match="input_scale has 1 entries, expected 2"):
        run1(device, wrong, a)


def local_response(a, alpha, beta, delta, n, window_sum):
    return a * (delta + alpha / n * window_sum(a * a)) ** -beta


def test_cross_channel_normalization_equals_numpy(device, rng):
    x = cg.ImageNode("x")
    node = cg.CrossChannelNormalizationNode(x, 3, alpha=0.5, beta=0.75, delta=2.0, label="lrn")
    assert node.kind == "cross_channel_normalization" and node.kernel_size == 3
    assert (node.alpha, node.beta, node.delta) == (0.5, 0.75, 2.0)
    assert node.attributes()["kernel_size"] == 3 and node.attributes()["beta"] == 0.75
    assert repr(node) == ("CrossChannelNormalizationNode(label='lrn', source='x', "
                          "padding='same', alpha=0.5, beta=0.75, delta=2, kernel_size=3)")
    node.alpha = 1.5
    a = rng.standard_normal((2, 3, 3, 5))

    def across(squares):
        total = np.zeros_like(squares)
        for k in range(squares.shape[-1]):
            total[..., k] = squares[..., max(0, k - 1):k + 2].sum(axis=-1)
        return total

    np.testing.assert_allclose(run1(device, node, a), local_response(a, 1.5, 0.75, 2.0, 3, across),
                               atol=tolerance(device))
    with pytest.raises(cg.InvalidArgument, match="kernel_size"):
        cg.CrossChannelNormalizationNode(x, 0)
    node.delta = 0.0
    with pytest.raises(cg.InvalidArgument, match="delta"):
        run1(device, node, a)


def test_spatial_normalization_equals_numpy(device, rng):
    x = cg.ImageNode("x")
    node = cg.SpatialNormalizationNode(x, 3, 2, alpha=0.8, beta=0.5)
    assert node.kind == "spatial_normalization"
    assert (node.kernel_width, node.kernel_height, node.delta) == (3, 2, 1.0)
    assert node.attributes()["kernel_height"] == 2 and "kernel_width=3" in repr(node)
    a = rng.standard_normal((1, 4, 5, 2))

    def window(squares):
        h, w = squares.shape[1:3]
        total = np.zeros_like(squares)
        for i in range(h):
            for j in range(w):
                total[:, i, j] = squares[:, max(0, i - 1):i + 1, max(0, j - 1):j + 2].sum(
                    axis=(1, 2))
        return total

    np.testing.assert_allclose(run1(device, node, a), local_response(a, 0.8, 0.5, 1.0, 6, window),
                               atol=tolerance(device))
    with pytest.raises(cg.InvalidArgument, match="kernel sizes"):
        cg.SpatialNormalizationNode(x, 3, 0)


def test_dropout_keeps_or_zeroes_and_scales_each_element(device, rng):
    x = cg.ImageNode("x")
    node = cg.DropoutNode(x, 0.5, seed=11, label="drop")
    assert node.kind == "dropout" and (node.keep_probability, node.seed) == (0.5, 11)
    assert node.attributes()["seed"] == 11
    assert repr(node) == ("DropoutNode(label='drop', source='x', padding='same', "
                          "keep_probability=0.5, seed=11)")
    a = rng.random((2, 8, 8, 4)) + 0.5
    out = run1(device, node, a)
    kept = out != 0
    np.testing.assert_allclose(out[kept], 2 * a[kept], rtol=1e-6)
    assert 0.3 < kept.mean() < 0.7
    np.testing.assert_array_equal(run1(device, node, a) != 0, kept)  # the same mask again
    np.testing.assert_allclose(run1(device, cg.DropoutNode(x, 1.0), a), a, rtol=1e-6)
    with pytest.raises(cg.InvalidArgument, match="keep_probability"):
        cg.DropoutNode(x, 0.0)
    with pytest.raises(TypeError):
        cg.DropoutNode(x, 0.5, seed=-1)


def test_every_node_exposes_its_result_flags_and_counted_pooling_padding():
    x = cg.ImageNode("x")
    node = cg.SoftMaxNode(x)
    node.export_from_graph = True
    node.stop_gradient = True
    assert node.result_image.export_from_graph and node.result_image.stop_gradient
    assert "export_from_graph=True, stop_gradient=True" in repr(node)
    pool = cg.AveragePoolingNode(x, 3, 3, 2, 2)
    assert pool.counted_padding_bottom is None
    pool.counts_padding = True
    pool.set_counted_padding_end(1, 2)
    assert (pool.counted_padding_bottom, pool.counted_padding_right) == (1, 2)
    with pytest.raises(cg.InvalidArgument):
        pool.set_counted_padding_end(-1, 0)
