"""Parity with the C++ program: each node family's graph, built in Python and saved with
save_graph, gives the same output when the `cnngraph run` program (tools/cli, docs/cli.md)
loads the file and runs it on the same input as Graph.run here. CNNGRAPH_CLI names the
program (the CTest entry Python.Pytest sets it); without it these tests skip."""

import os
import pathlib
import subprocess

import numpy as np
import pytest

import cnngraph as cg
from conftest import cpu_devices

CLI = os.environ.get("CNNGRAPH_CLI")
pytestmark = pytest.mark.skipif(
    not CLI, reason="CNNGRAPH_CLI is not set (the path of the cnngraph program)")

# The program's --device name of each device.
CLI_DEVICE = {cg.DeviceKind.cpu_reference: "reference", cg.DeviceKind.cpu: "cpu"}

SHAPE = (2, 6, 6, 4)  # NHWC: the input every family reads


def weights(rng, label, descriptor, bias=True, trainable=False):
    w = (rng.standard_normal(descriptor.weight_count()) * 0.3).astype(np.float32)
    b = rng.standard_normal(descriptor.output_feature_channels).astype(np.float32) if bias else None
    if trainable:
        return cg.TrainableDataSource(label, descriptor, w, b)
    return cg.ArrayDataSource(label, descriptor, w, b)


def convolution(x, rng):
    d = cg.ConvolutionDescriptor(3, 3, 4, 5, neuron=cg.NeuronType.relu)
    return cg.ConvolutionNode(x, weights(rng, "conv", d))


def strided_convolution(x, rng):
    d = cg.ConvolutionDescriptor(3, 3, 4, 6, stride_x=2, stride_y=2, dilation_x=1, groups=2)
    return cg.ConvolutionNode(x, weights(rng, "conv", d, trainable=True),
                              padding_policy=cg.PaddingPolicy.explicit_padding(1, 0, 0, 1))


def fully_connected(x, rng):
    return cg.FullyConnectedNode(x, weights(rng, "fc", cg.ConvolutionDescriptor(6, 6, 4, 7)))


def neurons(x, rng):
    prelu = cg.NeuronDescriptor(cg.NeuronType.prelu, prelu_slopes=[0.1, 0.2, 0.3, 0.4])
    return cg.NeuronNode(cg.NeuronNode(x, cg.NeuronType.tanh), prelu)


def pooling(x, rng):
    average = cg.AveragePoolingNode(x, 3, 3, 2, 2, padding_policy=cg.PaddingPolicy.tensorflow_same())
    average.counts_padding = True
    return cg.MaxPoolingNode(average, 2, 2, 1, 1)


def global_pooling(x, rng):
    return cg.ConcatenationNode([cg.GlobalAveragePoolingNode(x), cg.GlobalMaxPoolingNode(x)])


def padding(x, rng):
    return cg.PaddingNode(x, top=1, bottom=2, left=3, channels_after=2, value=-0.5)


def arithmetic(x, rng):
    sigmoid = cg.NeuronNode(x, cg.NeuronType.sigmoid)
    total = cg.AdditionNode(cg.MultiplicationNode(x, sigmoid), cg.SubtractionNode(sigmoid, x))
    return cg.DivisionNode(total, cg.NeuronNode(sigmoid, cg.NeuronDescriptor(
        cg.NeuronType.linear, a=1.0, b=1.0)))


def softmax(x, rng):
    return cg.ConcatenationNode([cg.SoftMaxNode(x), cg.LogSoftMaxNode(x)])


def reshape(x, rng):
    return cg.ReshapeNode(x, 3, 12, 4)


def batch_normalization(x, rng):
    parameters = cg.BatchNormalizationParameters(
        rng.standard_normal(4), rng.random(4) + 0.5, rng.standard_normal(4),
        rng.standard_normal(4), 1e-3)
    return cg.BatchNormalizationNode(x, cg.BatchNormalizationDataSource("bn", parameters))


def convolution_transpose(x, rng):
    d = cg.ConvolutionDescriptor(3, 3, 4, 6, stride_x=2, stride_y=2)
    down = cg.ConvolutionNode(x, weights(rng, "down", d))
    return cg.ConvolutionTransposeNode(  # back to the convolution's source size
        down, weights(rng, "up", cg.ConvolutionDescriptor(3, 3, 6, 4, stride_x=2, stride_y=2)),
        down)


def free_convolution_transpose(x, rng):
    d = cg.ConvolutionDescriptor(2, 2, 4, 3, stride_x=2, stride_y=2)
    return cg.ConvolutionTransposeNode(x, weights(rng, "free", d),
                                       padding_policy=cg.PaddingPolicy.full())


def binary_convolution(x, rng):
    d = cg.ConvolutionDescriptor(3, 3, 4, 5)
    terms = cg.BinaryConvolutionTerms(input_bias=[0.1, -0.1, 0.0, 0.2],
                                      output_scale=[1.0, 2.0, 0.5, -1.0, 1.5])
    xnor = cg.BinaryConvolutionNode(x, weights(rng, "xnor", d), 0.25,
                                    cg.BinaryConvolutionType.xnor, terms=terms,
                                    padding_policy=cg.PaddingPolicy.same())
    beta = cg.BinaryConvolutionNode(x, weights(rng, "and", d), 1.0, cg.BinaryConvolutionType.and_,
                                    flags=cg.BinaryConvolutionFlags(use_beta_scaling=True),
                                    padding_policy=cg.PaddingPolicy.same())
    return cg.ConcatenationNode([xnor, beta])


def binary_fully_connected(x, rng):
    return cg.BinaryFullyConnectedNode(x, weights(rng, "bfc", cg.ConvolutionDescriptor(6, 6, 4, 3)),
                                       0.5, cg.BinaryConvolutionType.binary_weights)


def normalizations(x, rng):
    across = cg.CrossChannelNormalizationNode(x, 3, alpha=0.5, beta=0.75, delta=2.0)
    return cg.SpatialNormalizationNode(across, 3, 2, alpha=0.8, beta=0.5)


def dropout(x, rng):
    return cg.DropoutNode(x, 0.6, seed=5)


FAMILIES = [convolution, strided_convolution, fully_connected, neurons, pooling, global_pooling,
            padding, arithmetic, softmax, reshape, batch_normalization, convolution_transpose,
            free_convolution_transpose, binary_convolution, binary_fully_connected,
            normalizations, dropout]


@pytest.mark.parametrize("device", cpu_devices(), ids=lambda d: d.kind.name)
@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.__name__)
def test_the_program_runs_a_saved_python_graph_to_the_same_output(family, device, tmp_path):
    rng = np.random.default_rng(11)
    node = family(cg.ImageNode("x"), rng)
    batch = rng.standard_normal(SHAPE).astype(np.float32)
    expected = cg.Graph(device, node).run([cg.Image(batch)])[0].numpy()
    assert np.isfinite(expected).all() and np.any(expected != 0)

    model = tmp_path / f"{family.__name__}.safetensors"
    cg.save_graph(model, node)
    np.save(tmp_path / "x.npy", batch)
    program = pathlib.Path(CLI)
    if not program.exists():
        pytest.skip(f"the cnngraph program {program} is not built")
    run = subprocess.run(
        [str(program), "run", str(model), "--device", CLI_DEVICE[device.kind], "--layout", "nhwc",
         "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")],
        capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr + run.stdout
    out = np.load(tmp_path / "y.npy")
    assert out.dtype == np.float32 and out.size == expected.size
    np.testing.assert_allclose(out.reshape(expected.shape), expected, rtol=0, atol=1e-6)
