#!/usr/bin/env python3
"""A convolution data source written in Python: a bank of Gabor filters generated
procedurally (no weights file), logging the library's load() and purge() calls, used as the
first layer of a small classifier of stripe orientations and trained in TrainingStyle.cpu
by its own update() (SGD with momentum, in NumPy), beside a TrainableDataSource that the
library trains itself.

    python3 examples/python/custom_data_source.py --steps 200 --plot filters.png
"""

import argparse
import logging

import numpy as np

import cnngraph as cg

log = logging.getLogger("gabor")


def gabor_bank(size, orientations, wavelength=4.0, sigma=2.0):
    """(2 * orientations, size, size, 1) OHWI filters: an even (cosine) and an odd (sine)
    Gabor filter per orientation, each of zero mean and unit norm."""
    r = np.arange(size) - (size - 1) / 2
    y, x = np.meshgrid(r, r, indexing="ij")
    filters = []
    for k in range(orientations):
        theta = np.pi * k / orientations
        along = x * np.cos(theta) + y * np.sin(theta)
        across = -x * np.sin(theta) + y * np.cos(theta)
        envelope = np.exp(-(along**2 + across**2) / (2 * sigma**2))
        for phase in (0.0, np.pi / 2):
            g = envelope * np.cos(2 * np.pi * along / wavelength + phase)
            g -= g.mean()
            filters.append(g / np.linalg.norm(g))
    return np.stack(filters)[..., np.newaxis].astype(np.float32)


class GaborFilters(cg.ConvolutionDataSource):
    """Gabor weights made in load() until update() has trained them; then the trained ones."""

    def __init__(self, name, size=7, orientations=4, learning_rate=0.02, momentum=0.9):
        super().__init__()
        self.name, self.size, self.orientations = name, size, orientations
        self.learning_rate, self.momentum = learning_rate, momentum
        self.d = cg.ConvolutionDescriptor(size, size, 1, 2 * orientations,
                                          neuron=cg.NeuronType.relu)
        self.trained = None  # (weights, bias) after the first update
        self.velocity = 0.0
        self.loads = self.purges = self.updates = 0

    def label(self):
        return self.name

    def descriptor(self):
        return self.d

    def load(self):
        self.loads += 1
        if self.trained is None:
            self.w = gabor_bank(self.size, self.orientations)
            self.b = np.zeros(self.d.output_feature_channels, np.float32)
        else:
            self.w, self.b = self.trained
        log.log(logging.INFO if self.loads == 1 else logging.DEBUG,
                "load #%d of '%s': %s weights %s", self.loads, self.name,
                "generated" if self.trained is None else "trained", self.w.shape)
        return True

    def purge(self):
        self.purges += 1
        log.log(logging.INFO if self.purges == 1 else logging.DEBUG,
                "purge #%d of '%s': the library has its copy", self.purges, self.name)
        del self.w, self.b

    def weights(self):
        return self.w

    def bias_terms(self):
        return self.b

    def update(self, gradient, source_state):
        """Called after every batch (cpu style) with the batch's gradients and the weights
        it used; returning True makes the library load() the new weights."""
        self.updates += 1
        g = gradient.weights_gradient  # OHWI, float32
        self.velocity = self.momentum * self.velocity + g
        w = source_state.weights.reshape(g.shape) - self.learning_rate * self.velocity
        b = source_state.biases - self.learning_rate * gradient.bias_gradient
        self.trained = (np.ascontiguousarray(w, np.float32), np.ascontiguousarray(b, np.float32))
        return True


def stripes(rng, count, size, classes):
    """Noisy sinusoidal stripes at one of `classes` orientations, random wavelength and phase."""
    label = rng.integers(0, classes, count)
    theta = np.pi * label / classes + rng.normal(0, 0.08, count)
    wavelength = rng.uniform(3.5, 6.0, count)
    phase = rng.uniform(0, 2 * np.pi, count)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    along = (x[None] * np.cos(theta)[:, None, None] + y[None] * np.sin(theta)[:, None, None])
    images = np.cos(2 * np.pi * along / wavelength[:, None, None] + phase[:, None, None])
    images += rng.normal(0, 1.0, images.shape)
    return np.ascontiguousarray(images[..., None], np.float32), label


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="cpu", help="cpu, cpu_reference or cuda")
    parser.add_argument("--plot", help="PNG of the filters before and after training")
    parser.add_argument("--verbose", action="store_true", help="log every load and purge")
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(name)s: %(message)s")
    classes, size, rng = 4, 24, np.random.default_rng(0)

    gabor = GaborFilters("gabor")
    initial = gabor_bank(gabor.size, gabor.orientations)
    conv = cg.ConvolutionNode(cg.ImageNode("image"), gabor)
    conv.training_style = cg.TrainingStyle.cpu  # gradients to GaborFilters.update()
    head = cg.TrainableDataSource.uniform(
        "head", cg.ConvolutionDescriptor(1, 1, gabor.d.output_feature_channels, classes), 0.3,
        seed=1, optimizer=cg.AdamOptimizer(cg.OptimizerDescriptor(learning_rate=0.05)))
    logits = cg.FullyConnectedNode(cg.GlobalAveragePoolingNode(conv), head)
    loss = cg.LossNode(logits, cg.LossDescriptor(cg.LossType.softmax_cross_entropy,
                                                 cg.ReductionType.mean))
    device = cg.Device(args.device)
    training = cg.Graph(device, loss.training_graph(), results_are_needed=[False])
    inference = cg.Graph(device, cg.SoftMaxNode(logits))

    test_x, test_y = stripes(np.random.default_rng(1), 256, size, classes)

    def accuracy():
        inference.reload_from_data_sources()
        p = inference.run(cg.Image(test_x))[0].numpy().reshape(-1, classes)
        return 100.0 * float((p.argmax(1) == test_y).mean())

    print(f"test accuracy before training: {accuracy():.1f}%")
    for step in range(1, args.steps + 1):
        x, y = stripes(rng, args.batch, size, classes)
        value = training.run(cg.Image(x), cg.LossLabels.from_classes(y.tolist(), classes)).loss()
        if step % max(1, args.steps // 5) == 0 or step == args.steps:
            print(f"step {step}: loss {value:.4f}")
    trained = gabor.trained[0]
    print(f"test accuracy after {args.steps} steps: {accuracy():.1f}%")
    print(f"'{gabor.name}': {gabor.loads} loads, {gabor.purges} purges, {gabor.updates} updates; "
          f"filters moved by {np.linalg.norm(trained - initial) / np.linalg.norm(initial):.1%}")
    if args.plot:
        plot_filters(initial, trained, args.plot)
        print(f"wrote {args.plot}")


def plot_filters(before, after, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = len(before)
    fig, axes = plt.subplots(2, count, figsize=(1.4 * count, 3.2))
    for row, (bank, name) in enumerate(((before, "generated"), (after, "trained"))):
        for i in range(count):
            axes[row, i].imshow(bank[i, :, :, 0], cmap="RdBu_r")
            axes[row, i].set_xticks([])
            axes[row, i].set_yticks([])
            if row == 0:
                axes[row, i].set_title(f"filter {i}", fontsize=8)
        axes[row, 0].set_ylabel(name)
    fig.suptitle("Gabor filters of the Python data source")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
