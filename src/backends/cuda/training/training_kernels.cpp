// The CUDA backend's gradient kernels that are one launch or one copy: neuron, pooling,
// soft-max and arithmetic gradients and dropout (training_ops.cu), and the channel slice of a
// concatenation's gradient.
#include "backends/cuda/cuda_kernels.hpp"
#include "backends/cuda/kernels/elementwise.hpp"
#include "backends/cuda/kernels/pooling_softmax.hpp"
#include "backends/cuda/kernels/training_ops.hpp"
#include "cnngraph/errors.hpp"

namespace cnngraph::detail::cuda {

std::unique_ptr<Kernel> make_neuron_gradient(const Op& base, const GraphOptions&,
                                             Context& context) {
  const auto& op = static_cast<const NeuronGradientOp&>(base);
  std::vector<std::shared_ptr<std::byte[]>> slopes;
  const DeviceNeuron n = device_neuron(op.neuron, context, op.name, slopes);
  return function_kernel<NeuronGradientOp>(
      op, "cuda:neuron_gradient",
      [&context, n, slopes](const NeuronGradientOp& o, const KernelArgs& a) {
        neuron_gradient(context.storage, n, a.srcs[0], a.srcs[1], a.dst, o.dst_shape.elements(),
                        o.dst_shape.channels, context.stream);
      });
}

std::unique_ptr<Kernel> make_addition_relu_gradient(const Op& op, const GraphOptions&,
                                                    Context& context) {
  return function_kernel<NeuronGradientOp>(
      op, "cuda:addition_relu_gradient",
      [&context](const NeuronGradientOp& o, const KernelArgs& a) {
        addition_relu_gradient(context.storage, a.srcs[0], a.srcs[1], a.srcs[2], a.dst,
                               o.dst_shape.elements(), context.stream);
      });
}

// Also the fused kind (fused_max_pooling_relu_gradient): the relu's mask in the same pass.
std::unique_ptr<Kernel> make_pooling_gradient(const Op& base, const GraphOptions&,
                                              Context& context) {
  const auto& op = static_cast<const PoolingGradientOp&>(base);
  std::shared_ptr<std::byte[]> argmax;
  if (const std::size_t bytes = pooling_argmax_bytes(op))
    argmax = context.memory->allocate(bytes, op.name + " window maxima");
  return function_kernel<PoolingGradientOp>(
      op,
      op.kind == OpKind::fused_max_pooling_relu_gradient ? "cuda:max_pooling_relu_gradient"
                                                         : "cuda:pooling_gradient",
      [&context, argmax](const PoolingGradientOp& o, const KernelArgs& a) {
        pooling_gradient(context.storage, o, a.srcs[0], a.srcs[1], a.dst, argmax.get(),
                         context.stream);
      });
}

std::unique_ptr<Kernel> make_softmax_gradient(const Op& op, const GraphOptions&, Context& context) {
  return function_kernel<SoftMaxGradientOp>(
      op, "cuda:softmax_gradient", [&context](const SoftMaxGradientOp& o, const KernelArgs& a) {
        softmax_gradient(context.storage, o.logarithmic, a.srcs[0], a.srcs[1], a.dst,
                         o.dst_shape.elements() / o.dst_shape.channels, o.dst_shape.channels,
                         context.stream);
      });
}

std::unique_ptr<Kernel> make_channel_slice(const Op& op, const GraphOptions&, Context& context) {
  return function_kernel<ChannelSliceOp>(
      op, "cuda:channel_slice", [&context](const ChannelSliceOp& o, const KernelArgs& a) {
        const std::size_t element = size_of(context.storage);
        const std::size_t pixels = o.dst_shape.elements() / o.dst_shape.channels;
        const std::size_t width = o.dst_shape.channels * element;
        check(cudaMemcpy2DAsync(a.dst, width,
                                reinterpret_cast<const std::byte*>(a.srcs[0]) +
                                    std::size_t(o.first_channel) * element,
                                o.src_shapes[0].channels * element, width, pixels,
                                cudaMemcpyDeviceToDevice, context.stream),
              o.name + ": channel slice");
      });
}

std::unique_ptr<Kernel> make_arithmetic_gradient(const Op& op, const GraphOptions&,
                                                 Context& context) {
  return function_kernel<ArithmeticGradientOp>(
      op, "cuda:arithmetic_gradient",
      [&context](const ArithmeticGradientOp& o, const KernelArgs& a) {
        const bool values = a.srcs.size() > 1;
        arithmetic_gradient(context.storage, o, a.srcs[0], values ? a.srcs[1] : nullptr,
                            values ? a.srcs[2] : nullptr, a.dst, context.stream);
      });
}

std::unique_ptr<Kernel> make_dropout(const Op& op, const GraphOptions&, Context& context) {
  // The batch counter is copied to the device on the stream, so that a replayed recording
  // reads each run's (the forward and the gradient of one batch share the mask).
  auto batch = context.memory->allocate(sizeof(std::uint64_t), op.name + " batch");
  return function_kernel<DropoutOp>(
      op, "cuda:dropout", [&context, batch](const DropoutOp& o, const KernelArgs& a) {
        check(cudaMemcpyAsync(batch.get(), context.batch, sizeof(std::uint64_t),
                              cudaMemcpyHostToDevice, context.stream),
              o.name + ": the batch counter");
        dropout(context.storage, o.keep_probability, o.seed,
                reinterpret_cast<const std::uint64_t*>(batch.get()), a.srcs[0], a.dst,
                o.dst_shape.elements(), context.stream);
      });
}

}  // namespace cnngraph::detail::cuda
