"""Training from Python: losses and labels, training_graph and its node handler, the gradient
node classes, one SGD step against NumPy, a seeded run whose loss falls, run_async against
run, and training graphs run from several threads."""

import threading

import numpy as np
import pytest

import cnngraph as cg


def image(a):
    return cg.Image(np.ascontiguousarray(a, dtype=np.float32))


def fast_cpu():
    try:
        return cg.Device.cpu()
    except cg.Unsupported:
        return cg.Device.cpu_reference()


def small_net(seed, optimizer, style=cg.TrainingStyle.device):
    """conv 3x3 (2 -> 4, relu fused) -> max pool 2 -> fully connected (4x4x4 -> 2) -> soft-max loss."""
    x = cg.ImageNode("x")
    conv_source = cg.TrainableDataSource.uniform(
        "conv", cg.ConvolutionDescriptor(3, 3, 2, 4, neuron=cg.NeuronType.relu), 0.3,
        bias_value=0.05, seed=seed, optimizer=optimizer)
    fc_source = cg.TrainableDataSource.uniform(
        "fc", cg.ConvolutionDescriptor(4, 4, 4, 2), 0.3, bias_value=0.0, seed=seed + 1,
        optimizer=optimizer)
    conv = cg.ConvolutionNode(x, conv_source, label="conv")
    fc = cg.FullyConnectedNode(cg.MaxPoolingNode(conv, 2), fc_source, label="fc")
    conv.training_style = fc.training_style = style
    loss = cg.LossNode(fc, cg.LossDescriptor(cg.LossType.softmax_cross_entropy,
                                             cg.ReductionType.mean))
    return loss, [conv_source, fc_source]


def separable_batch(rng, batch=16):
    """Class 1 images are bright in the left half, class 0 in the right half."""
    classes = rng.integers(0, 2, batch)
    x = rng.standard_normal((batch, 8, 8, 2)).astype(np.float32) * 0.5
    x[classes == 1, :, :4, :] += 1.0
    x[classes == 0, :, 4:, :] += 1.0
    return image(x), cg.LossLabels.from_classes(classes.tolist(), 2)


def test_loss_descriptors_take_keyword_arguments_and_validate():
    d = cg.LossDescriptor(cg.LossType.huber, cg.ReductionType.sum, weight=0.5, delta=2.0)
    assert (d.type, d.reduction, d.weight, d.delta) == (cg.LossType.huber, cg.ReductionType.sum,
                                                       0.5, 2.0)
    assert repr(d) == "LossDescriptor(LossType.huber, ReductionType.sum, weight=0.5, delta=2)"
    loss = cg.LossNode(cg.ImageNode("x"), d, label="huber")
    assert loss.descriptor.delta == 2.0 and loss.kind == "loss_huber"
    assert loss.labels.is_labels and loss.label_weights.is_labels
    d.label_smoothing = 2.0
    with pytest.raises(cg.InvalidArgument, match="label_smoothing"):
        d.validate()
    with pytest.raises(cg.InvalidArgument, match="label_smoothing"):
        cg.LossNode(cg.ImageNode("x"), d)


def test_loss_labels_come_from_numpy_arrays_images_or_classes():
    labels = np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3)
    weights = np.ones_like(labels)
    l = cg.LossLabels(labels, weights)
    np.testing.assert_array_equal(l.labels.numpy(), labels)
    np.testing.assert_array_equal(l.weights.numpy(), weights)
    assert cg.LossLabels(image(labels)).weights is None
    one_hot = cg.LossLabels.from_classes(np.array([2, 0]), 3).labels.numpy()
    np.testing.assert_array_equal(one_hot.reshape(2, 3), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(cg.InvalidArgument):
        cg.LossLabels.from_classes([0, 3], 3)
    with pytest.raises(cg.ShapeError):
        cg.LossLabels(labels, np.ones((1, 1, 1, 3), np.float32))
    with pytest.raises(cg.InvalidArgument):  # float64 is refused, as for images
        cg.LossLabels(labels.astype(np.float64))


def test_training_graph_calls_the_handler_for_each_gradient_node():
    loss, _ = small_net(1, cg.SgdOptimizer())
    made = []

    def handler(gradient, forward, forward_source, gradient_source):
        assert gradient.gradient_of is forward
        assert isinstance(forward_source, cg.ImageNode)
        assert isinstance(gradient_source, cg.ImageNode)
        made.append((forward.kind, gradient.kind, type(gradient).__name__))

    terminals = loss.training_graph(node_handler=handler)
    assert made == [
        ("fully_connected", "fully_connected_gradient", "ConvolutionGradientNode"),
        ("max_pooling", "max_pooling_gradient", "GradientNode"),
        ("convolution", "convolution_gradient", "ConvolutionGradientNode"),
    ]
    assert len(terminals) == 1
    first = terminals[0].producer
    assert isinstance(first, cg.ConvolutionGradientNode)
    assert first.gradient_option == cg.GradientOption.weights_and_bias
    assert first.forward.label == "conv" and first.gradient_of is first.forward
    assert repr(first).startswith("ConvolutionGradientNode(") and "'conv'" in repr(first)
    assert loss.gradient_of is None
    # The handler's exception reaches the caller.
    with pytest.raises(ZeroDivisionError):
        loss.training_graph(node_handler=lambda *args: 1 / 0)


def test_gradient_filters_make_the_gradient_nodes_of_one_node():
    x = cg.ImageNode("x")
    relu = cg.NeuronNode(x, cg.NeuronType.relu, label="act")
    g = relu.gradient_filter(cg.ImageNode("dy"))
    assert isinstance(g, cg.GradientNode) and g.source_index == 0 and g.forward is relu
    add = cg.AdditionNode(x, relu)
    gs = add.gradient_filters(cg.ImageNode("dy"))
    assert [n.source_index for n in gs] == [0, 1]
    assert add.gradient_filter_for(1, cg.ImageNode("dy")).source_index == 1


def test_frozen_layers_and_stop_gradient_prune_the_backward_pass():
    loss, _ = small_net(1, cg.SgdOptimizer())
    fc = loss.source_images[0].producer
    conv = fc.source_images[0].producer.source_images[0].producer
    conv.training_style = fc.training_style = cg.TrainingStyle.none
    assert not conv.is_trainable
    with pytest.raises(cg.InvalidArgument):
        loss.training_graph()  # nothing left to train


def test_one_sgd_step_of_a_1x1_convolution_equals_numpy(rng):
    x = rng.standard_normal((3, 2, 2, 2)).astype(np.float32)
    t = rng.standard_normal((3, 2, 2, 3)).astype(np.float32)
    w = rng.standard_normal((3, 1, 1, 2)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    lr = 0.1
    source = cg.TrainableDataSource("conv", cg.ConvolutionDescriptor(1, 1, 2, 3), w, b,
                                    cg.SgdOptimizer(cg.OptimizerDescriptor(learning_rate=lr)))
    conv = cg.ConvolutionNode(cg.ImageNode("x"), source)
    loss = cg.LossNode(conv, cg.LossDescriptor(cg.LossType.mean_squared_error,
                                               cg.ReductionType.mean))
    graph = cg.Graph(cg.Device.cpu_reference(), loss.training_graph(), results_are_needed=[False])
    assert graph.label_handles == [loss.labels]
    results = graph.run([image(x)], [cg.LossLabels(t)])

    x64, t64, w64 = x.astype(np.float64), t.astype(np.float64), w.reshape(3, 2).astype(np.float64)
    y = np.einsum("nhwi,oi->nhwo", x64, w64) + b
    count = y.size
    assert results.loss() == pytest.approx(((y - t64) ** 2).sum() / count, rel=1e-5)
    assert results.losses == [(loss.kind, pytest.approx(results.loss()))]
    dy = 2 * (y - t64) / count
    dw = np.einsum("nhwo,nhwi->oi", dy, x64)
    db = dy.sum(axis=(0, 1, 2))
    np.testing.assert_allclose(source.current_weights().reshape(3, 2), w64 - lr * dw, atol=1e-6)
    np.testing.assert_allclose(source.current_bias(), b - lr * db, atol=1e-6)
    assert source.update_count == 1
    assert graph.loss_scale.active is False and graph.loss_scale.scale == 1.0


def test_a_seeded_training_run_reduces_the_loss():
    loss, sources = small_net(3, cg.AdamOptimizer(cg.OptimizerDescriptor(learning_rate=0.02)))
    graph = cg.Graph(fast_cpu(), loss.training_graph(), results_are_needed=[False])
    rng = np.random.default_rng(8)
    losses = []
    for _ in range(60):
        images, labels = separable_batch(rng)
        losses.append(graph.run(images, labels).loss())  # one LossLabels will do
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last * 4 < first, (first, last)
    assert all(s.update_count == 60 for s in sources)

    # An inference graph on the same sources sees the trained weights: it classifies.
    fc = loss.source_images[0].producer
    inference = cg.Graph(fast_cpu(), cg.SoftMaxNode(fc))
    inference.reload_from_data_sources()
    images, labels = separable_batch(rng, 32)
    predicted = inference.run(images)[0].numpy().reshape(32, 2).argmax(axis=1)
    expected = labels.labels.numpy().reshape(32, 2).argmax(axis=1)
    assert (predicted == expected).mean() > 0.9


def train_steps(run, steps=4):
    loss, sources = small_net(5, cg.SgdOptimizer(cg.OptimizerDescriptor(learning_rate=0.05)))
    graph = cg.Graph(fast_cpu(), loss.training_graph(), results_are_needed=[False])
    rng = np.random.default_rng(9)
    losses = [run(graph, *separable_batch(rng, 8)) for _ in range(steps)]
    return losses, [s.current_weights() for s in sources]


def test_run_async_gives_the_results_of_run():
    sync_losses, sync_weights = train_steps(lambda g, x, l: g.run([x], [l]).loss())

    def run_async(graph, x, labels):
        future = graph.run_async([x], [labels])
        results = future.result()
        assert future.done() and repr(future) == "<RunFuture done>"
        assert future.result().loss() == results.loss()  # result() may be asked again
        return results.loss()

    async_losses, async_weights = train_steps(run_async)
    assert async_losses == sync_losses
    for a, b in zip(async_weights, sync_weights):
        np.testing.assert_array_equal(a, b)

    # The inference form, with one source.
    x = cg.ImageNode("x")
    graph = cg.Graph(cg.Device.cpu_reference(), cg.NeuronNode(x, cg.NeuronType.tanh))
    a = np.linspace(-2, 2, 12, dtype=np.float32).reshape(1, 2, 2, 3)
    futures = [graph.run_async(image(a)) for _ in range(4)]
    for f in futures:
        np.testing.assert_array_equal(f.result(timeout=30)[0].numpy(), graph.run(image(a))[0].numpy())


def test_run_async_raises_the_runs_exception_from_result():
    loss, _ = small_net(1, cg.SgdOptimizer())
    graph = cg.Graph(cg.Device.cpu_reference(), loss.training_graph(), results_are_needed=[False])
    future = graph.run_async([image(np.zeros((2, 8, 8, 2)))],
                             [cg.LossLabels.from_classes([0, 1, 1], 2)])  # 3 labels, 2 images
    with pytest.raises(cg.ShapeError):
        future.result()
    assert future.done()


def test_an_async_run_keeps_its_graph_alive():
    x = cg.ImageNode("x")
    graph = cg.Graph(cg.Device.cpu_reference(), cg.NeuronNode(x, cg.NeuronType.absolute))
    future = graph.run_async([image(-np.ones((1, 64, 64, 8)))])
    del graph
    assert future.result()[0].numpy().min() == 1.0


def test_threads_train_separate_graphs_concurrently():
    expected_losses, expected_weights = train_steps(lambda g, x, l: g.run([x], [l]).loss())
    outcomes = [None] * 4

    def work(i):
        outcomes[i] = train_steps(lambda g, x, l: g.run([x], [l]).loss())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(outcomes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for losses, weights in outcomes:
        assert losses == expected_losses
        for a, b in zip(weights, expected_weights):
            np.testing.assert_array_equal(a, b)


def test_batch_normalization_nodes_have_a_training_style():
    if not hasattr(cg, "BatchNormalizationNode"):
        pytest.skip("BatchNormalizationNode is not bound in this build")
    source = cg.BatchNormalizationDataSource(
        "bn", cg.BatchNormalizationParameters([0.0] * 2, [1.0] * 2, [1.0] * 2, [0.0] * 2))
    node = cg.BatchNormalizationNode(cg.ImageNode("x"), source)
    assert node.training_style == cg.TrainingStyle.device
    node.training_style = cg.TrainingStyle.none
    assert node.training_style == cg.TrainingStyle.none
