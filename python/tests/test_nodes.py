"""Descriptors, optimizers, data sources and nodes: keyword arguments, repr, attributes."""

import numpy as np
import pytest

import cnngraph as cg


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
