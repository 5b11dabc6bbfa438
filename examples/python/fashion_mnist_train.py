#!/usr/bin/env python3
"""Trains the Fashion-MNIST reference network (the one of examples/reference_network.cpp:
conv 5x5 32, pool, conv 5x5 64, pool, fully connected 1024 with dropout, 10) from Python,
with Adam, a progress bar, the test accuracy after every epoch and a chart of the curves.

    python3 examples/python/fashion_mnist_train.py --epochs 3 --plot curves.png
"""

import argparse
import sys

import numpy as np
from tqdm import tqdm

import cnngraph as cg
import fashion_mnist

LAYERS = [("conv1", 5, 1, 32), ("conv2", 5, 32, 64), ("fc1", 7, 64, 1024), ("fc2", 1, 1024, 10)]


def reference_network(weights, dropout_seed=None):
    """The logits node; dropout (keep 0.5) for training when dropout_seed is given."""
    relu = cg.NeuronType.relu
    h = cg.ImageNode("image")
    h = cg.MaxPoolingNode(cg.NeuronNode(cg.ConvolutionNode(h, weights[0]), relu), 2)
    h = cg.MaxPoolingNode(cg.NeuronNode(cg.ConvolutionNode(h, weights[1]), relu), 2)
    h = cg.NeuronNode(cg.FullyConnectedNode(h, weights[2]), relu)
    if dropout_seed is not None:
        h = cg.DropoutNode(h, 0.5, seed=dropout_seed)
    return cg.FullyConnectedNode(h, weights[3])


def evaluate(graph, images, labels, device, batch=1000):
    """(accuracy in %, mean cross-entropy) of the probabilities graph on a test set."""
    correct, loss = 0, 0.0
    for i in range(0, len(labels), batch):
        p = graph.run(cg.Image(images[i:i + batch], device=device))[0].numpy().reshape(-1, 10)
        y = labels[i:i + batch]
        correct += int((p.argmax(1) == y).sum())
        loss -= float(np.log(np.maximum(p[np.arange(len(y)), y], 1e-12)).sum())
    return 100.0 * correct / len(labels), loss / len(labels)


def train(args, train_x, train_y, test_x, test_y):
    device, batch = cg.Device(args.device), args.batch_size
    adam = cg.AdamOptimizer(cg.OptimizerDescriptor(learning_rate=args.learning_rate))
    weights = [cg.TrainableDataSource.uniform(name, cg.ConvolutionDescriptor(k, k, i, o), 0.2,
                                              bias_value=0.1, seed=args.seed * 16 + n,
                                              optimizer=adam)
               for n, (name, k, i, o) in enumerate(LAYERS)]
    logits = reference_network(weights, dropout_seed=args.seed)
    logits.result_image.export_from_graph = True  # for the training accuracy
    # The loss summed over the batch, weighted 1 / batch: the mean, as the C++ trainer.
    loss = cg.LossNode(logits, cg.LossDescriptor(cg.LossType.softmax_cross_entropy,
                                                 cg.ReductionType.sum, weight=1.0 / batch))
    training = cg.Graph(device, loss.training_graph(), results_are_needed=[False])
    inference = cg.Graph(device, cg.SoftMaxNode(reference_network(weights)))  # same sources

    history = {"step": [], "loss": [], "epoch": [], "train_accuracy": [], "test_accuracy": [],
               "test_loss": []}
    rng = np.random.default_rng(args.seed)
    steps = len(train_y) // batch  # full batches only: the loss weight is 1 / batch
    for epoch in range(1, args.epochs + 1):
        order, correct = rng.permutation(len(train_y)), 0
        for step in (bar := tqdm(range(steps), desc=f"epoch {epoch}", unit="batch")):
            chosen = order[step * batch:(step + 1) * batch]
            results = training.run(cg.Image(train_x[chosen], device=device),
                                   cg.LossLabels.from_classes(train_y[chosen].tolist(), 10))
            out = results.exported_image(logits.result_image).numpy().reshape(batch, 10)
            correct += int((out.argmax(1) == train_y[chosen]).sum())
            history["step"].append(epoch - 1 + (step + 1) / steps)
            history["loss"].append(results.loss())
            bar.set_postfix(loss=f"{results.loss():.4f}")
        adam.learning_rate *= 0.7
        inference.reload_from_data_sources()  # the weights the epoch trained
        accuracy, test_loss = evaluate(inference, test_x, test_y, device)
        history["epoch"].append(epoch)
        history["train_accuracy"].append(100.0 * correct / (steps * batch))
        history["test_accuracy"].append(accuracy)
        history["test_loss"].append(test_loss)
        print(f"epoch {epoch}: test accuracy {accuracy:.2f}%, test loss {test_loss:.4f}; "
              f"training accuracy {history['train_accuracy'][-1]:.2f}%", flush=True)
    return history


def plot(history, path, title):
    import matplotlib
    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot(history["step"], history["loss"], lw=0.6, alpha=0.5, label="training (batch)")
    window = min(50, len(history["loss"]) // 10)
    if window > 1:
        smooth = np.convolve(history["loss"], np.ones(window) / window, mode="valid")
        left.plot(history["step"][window - 1:], smooth, label=f"training (mean of {window})")
    left.plot(history["epoch"], history["test_loss"], "o-", label="test")
    left.set(title="Cross-entropy loss", xlabel="epoch", ylabel="loss")
    right.plot(history["epoch"], history["train_accuracy"], "o-", label="training (dropout)")
    right.plot(history["epoch"], history["test_accuracy"], "o-", label="test")
    right.set(title="Accuracy", xlabel="epoch", ylabel="accuracy (%)")
    right.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    for axes in (left, right):
        axes.grid(alpha=0.3)
        axes.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--device", default="cpu", help="cpu, cpu_reference, cuda or cuda:N")
    parser.add_argument("--limit", type=int, help="training images to use (default: all 60000)")
    parser.add_argument("--test-limit", type=int, help="test images (default: all 10000)")
    parser.add_argument("--data-dir", default=fashion_mnist.DEFAULT_DIR)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--plot", default="fashion_mnist_training.png", help="PNG of the curves")
    args = parser.parse_args()
    if args.epochs <= 0 or args.batch_size <= 0:
        parser.error("--epochs and --batch-size must be positive")
    try:
        train_x, train_y = fashion_mnist.load("train", args.data_dir, args.limit)
        test_x, test_y = fashion_mnist.load("t10k", args.data_dir, args.test_limit)
    except OSError as e:
        sys.exit(f"fashion_mnist_train: {e}")
    if len(train_y) < args.batch_size:
        parser.error(f"--limit {len(train_y)} is less than one batch of {args.batch_size}")
    print(f"training the reference network on {len(train_y)} Fashion-MNIST images, "
          f"{args.epochs} epoch(s), batch {args.batch_size}, Adam, device {args.device}")
    history = train(args, train_x, train_y, test_x, test_y)
    plot(history, args.plot, f"Fashion-MNIST, reference network: {len(train_y)} training "
         f"images, Adam, batch {args.batch_size}")
    print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
