// The contract every backend's kernels keep with the executors (KernelArgs in
// src/backends/backend.hpp): a fused residual is read from its source, srcs[1], whatever dst
// holds on entry. Runs the kernels directly, on every backend this build and machine have.
#include <gtest/gtest.h>

#include <random>

#include "backends/backend.hpp"
#include "cnngraph/errors.hpp"
#include "support.hpp"

using namespace cnngraph;
using namespace cnngraph::detail;
using cnngraph::testing::max_relative_error;
using cnngraph::testing::random_floats;
using cnngraph::testing::random_image;

namespace {

std::vector<Device> devices() {
  std::vector<Device> found{Device::cpu_reference()};
  try {
    make_backend(Device::cpu(), {});
    found.push_back(Device::cpu());
  } catch (const DeviceError&) {
    // a build without oneDNN
  }
  if (Device::cuda_device_count() > 0) found.push_back(Device::cuda());
  return found;
}

AxisGeometry axis(int source, int result, int kernel, int pad) {
  return {source, result, kernel, 1, pad, pad};
}

// A 3x3 "same" convolution of 1x4x4x2 into 3 channels, or a fully connected layer of 1x2x2x2
// into 3 values, with a bias and `post_ops`.
ConvolutionOp convolution_op(bool fully_connected, std::vector<PostOp> post_ops,
                             std::mt19937& rng) {
  ConvolutionOp op;
  op.name = "conv";
  const int side = fully_connected ? 2 : 4, kernel = fully_connected ? 2 : 3;
  const int result = fully_connected ? 1 : 4, pad = fully_connected ? 0 : 1;
  op.src_shapes = {{1, side, side, 2}};
  op.dst_shape = {1, result, result, 3};
  op.kernel_width = op.kernel_height = kernel;
  op.input_channels = 2;
  op.output_channels = 3;
  op.fully_connected = fully_connected;
  op.x = op.y = axis(side, result, kernel, pad);
  auto weights = std::make_shared<PreparedWeights>();
  weights->descriptor = ConvolutionDescriptor(kernel, kernel, 2, 3);
  weights->source_label = "conv";
  weights->weights = random_floats(static_cast<std::size_t>(3 * kernel * kernel * 2), rng);
  weights->bias = random_floats(3, rng);
  weights->has_bias = true;
  op.weights = weights;
  op.post_ops = std::move(post_ops);
  for (const PostOp& post : op.post_ops) {
    if (post.kind == PostOp::Kind::sum) op.src_shapes.push_back(op.dst_shape);
  }
  return op;
}

// Runs `op`'s kernel on `device` with dst filled with `dst_fill` on entry; returns dst.
std::vector<float> run_kernel(const Device& device, const ConvolutionOp& op,
                              const std::vector<Image>& sources, float dst_fill,
                              std::string& implementation) {
  const auto backend = make_backend(device, {});
  const auto kernel = backend->compile(op, {});
  implementation = kernel->implementation();
  std::vector<Image> on_device;
  KernelArgs args;
  for (const Image& source : sources) {
    on_device.push_back(source.to(device));
    args.srcs.push_back(reinterpret_cast<const float*>(on_device.back().data()));
  }
  Image dst =
      Image::from_floats(op.dst_shape, std::vector<float>(op.dst_shape.elements(), dst_fill))
          .to(device);
  args.dst = reinterpret_cast<float*>(dst.data());
  kernel->before_run();
  kernel->run(args);
  if (DeviceExecution* execution = backend->device_execution()) execution->synchronize();
  kernel->after_run();
  return dst.to(Device::cpu()).to_floats();
}

// The kernel with a fused sum gives the kernel without it plus the residual, read from
// srcs[1]: dst's contents on entry make no difference.
void expect_residual_read_from_its_source(bool fully_connected, bool with_neuron) {
  std::mt19937 rng(7);
  NeuronDescriptor relu;
  relu.type = NeuronType::relu;
  std::vector<PostOp> fused, bare;
  if (with_neuron) {
    fused.push_back({PostOp::Kind::neuron, relu});
    bare.push_back({PostOp::Kind::neuron, relu});
  }
  fused.push_back({PostOp::Kind::sum, {}});
  const ConvolutionOp with_sum = convolution_op(fully_connected, fused, rng);
  ConvolutionOp without_sum = convolution_op(fully_connected, bare, rng);
  without_sum.weights = with_sum.weights;
  const Image source = random_image(with_sum.src_shapes[0], rng);
  const Image residual = random_image(with_sum.dst_shape, rng);
  for (const Device& device : devices()) {
    SCOPED_TRACE(device.name());
    std::string name;
    std::vector<float> expected =
        run_kernel(Device::cpu_reference(), without_sum, {source}, 0.0f, name);
    const std::vector<float> r = residual.to_floats();
    for (std::size_t i = 0; i < expected.size(); ++i) expected[i] += r[i];
    for (const float fill : {0.0f, 1000.0f}) {
      const std::vector<float> actual =
          run_kernel(device, with_sum, {source, residual}, fill, name);
      SCOPED_TRACE(name);
      EXPECT_LE(max_relative_error(actual, expected), 1e-4) << "dst filled with " << fill;
    }
  }
}

TEST(KernelContract, AConvolutionReadsItsFusedResidualFromItsSourceNotFromDst) {
  expect_residual_read_from_its_source(false, false);
}

TEST(KernelContract, AConvolutionWithANeuronThenASumReadsTheResidualFromItsSource) {
  expect_residual_read_from_its_source(false, true);
}

TEST(KernelContract, AFullyConnectedLayerReadsItsFusedResidualFromItsSource) {
  expect_residual_read_from_its_source(true, false);
}

}  // namespace
