// The CUDA backend's kernel table: per op, candidates in order of preference, and the
// simple kernels that are one launch of ours. What the backend class does with a kernel
// (streams, recording, training) is in cuda_backend.cpp.
#include "backends/candidates.hpp"
#include "backends/cuda/cuda_kernels.hpp"
#include "backends/cuda/kernels/elementwise.hpp"
#include "backends/cuda/kernels/normalization.hpp"
#include "backends/cuda/kernels/pooling_softmax.hpp"
#include "cnngraph/errors.hpp"

namespace cnngraph::detail {

namespace cuda {

namespace {

std::unique_ptr<Kernel> make_neuron(const Op& base, const GraphOptions&, Context& context) {
  const auto& op = static_cast<const NeuronOp&>(base);
  std::vector<std::shared_ptr<std::byte[]>> slopes;
  const DeviceNeuron n = device_neuron(op.neuron, context, op.name, slopes);
  return function_kernel<NeuronOp>(
      op, "cuda:neuron", [&context, n, slopes](const NeuronOp& o, const KernelArgs& a) {
        neuron(context.storage, n, a.srcs[0], a.dst, o.dst_shape.elements(), o.dst_shape.channels,
               context.stream);
      });
}

std::unique_ptr<Kernel> make_pooling(const Op& op, const GraphOptions&, Context& context) {
  const std::size_t bytes =
      pooling_scratch_bytes(context.storage, static_cast<const PoolingOp&>(op));
  std::shared_ptr<std::byte[]> scratch;
  if (bytes) scratch = context.memory->allocate(bytes, op.name + " scratch");
  return function_kernel<PoolingOp>(
      op, "cuda:pooling", [&context, scratch](const PoolingOp& o, const KernelArgs& a) {
        pooling(context.storage, o, a.srcs[0], a.dst, scratch.get(), context.stream);
      });
}

std::unique_ptr<Kernel> make_padding(const Op& op, const GraphOptions&, Context& context) {
  return function_kernel<PaddingOp>(op, "cuda:padding",
                                    [&context](const PaddingOp& o, const KernelArgs& a) {
                                      padding(context.storage, o, a.srcs[0], a.dst, context.stream);
                                    });
}

std::unique_ptr<Kernel> make_addition(const Op& op, const GraphOptions&, Context& context) {
  return function_kernel<AdditionOp>(
      op, "cuda:add", [&context](const AdditionOp& o, const KernelArgs& a) {
        add(context.storage, a.srcs[0], a.srcs[1], a.dst, o.dst_shape.elements(), context.stream);
      });
}

std::unique_ptr<Kernel> make_addition_relu(const Op& op, const GraphOptions&, Context& context) {
  return function_kernel<AdditionOp>(op, "cuda:add_relu",
                                     [&context](const AdditionOp& o, const KernelArgs& a) {
                                       add(context.storage, a.srcs[0], a.srcs[1], a.dst,
                                           o.dst_shape.elements(), context.stream, true);
                                     });
}

std::unique_ptr<Kernel> make_arithmetic(const Op& op, const GraphOptions&, Context& context) {
  return function_kernel<ArithmeticOp>(
      op, "cuda:arithmetic", [&context](const ArithmeticOp& o, const KernelArgs& a) {
        arithmetic(context.storage, o.operation, a.srcs[0], o.src_shapes[0], a.srcs[1],
                   o.src_shapes[1], a.dst, o.dst_shape, context.stream);
      });
}

std::unique_ptr<Kernel> make_concatenation(const Op& op, const GraphOptions&, Context& context) {
  return function_kernel<ConcatenationOp>(
      op, "cuda:concat", [&context](const ConcatenationOp& o, const KernelArgs& a) {
        const std::size_t element = size_of(context.storage);
        const std::size_t pixels = o.dst_shape.elements() / o.dst_shape.channels;
        const std::size_t row = o.dst_shape.channels * element;
        std::size_t offset = 0;
        for (std::size_t s = 0; s < o.src_shapes.size(); ++s) {
          const std::size_t width = o.src_shapes[s].channels * element;
          check(cudaMemcpy2DAsync(reinterpret_cast<std::byte*>(a.dst) + offset, row, a.srcs[s],
                                  width, width, pixels, cudaMemcpyDeviceToDevice, context.stream),
                o.name + ": concatenation");
          offset += width;
        }
      });
}

std::unique_ptr<Kernel> make_softmax(const Op& op, const GraphOptions&, Context& context) {
  return function_kernel<SoftMaxOp>(op, "cuda:softmax",
                                    [&context](const SoftMaxOp& o, const KernelArgs& a) {
                                      softmax(context.storage, o.logarithmic, a.srcs[0], a.dst,
                                              o.dst_shape.elements() / o.dst_shape.channels,
                                              o.dst_shape.channels, context.stream);
                                    });
}

std::unique_ptr<Kernel> make_batch_normalization(const Op& base, const GraphOptions&,
                                                 Context& context) {
  const auto& op = static_cast<const BatchNormalizationOp&>(base);
  auto scale = context.upload(op.scale.data(), op.scale.size() * sizeof(float), op.name);
  auto shift = context.upload(op.shift.data(), op.shift.size() * sizeof(float), op.name);
  return function_kernel<BatchNormalizationOp>(
      op, "cuda:affine",
      [&context, scale, shift](const BatchNormalizationOp& o, const KernelArgs& a) {
        affine(context.storage, a.srcs[0], reinterpret_cast<const float*>(scale.get()),
               reinterpret_cast<const float*>(shift.get()), a.dst, o.dst_shape.elements(),
               o.dst_shape.channels, context.stream);
      });
}

std::unique_ptr<Kernel> make_reshape(const Op& op, const GraphOptions&, Context& context) {
  return function_kernel<ReshapeOp>(
      op, "cuda:copy", [&context](const ReshapeOp& o, const KernelArgs& a) {
        check(cudaMemcpyAsync(a.dst, a.srcs[0], o.dst_shape.elements() * size_of(context.storage),
                              cudaMemcpyDeviceToDevice, context.stream),
              o.name + ": copy");
      });
}

std::unique_ptr<Kernel> make_local_response_normalization(const Op& op, const GraphOptions&,
                                                          Context& context) {
  return function_kernel<CrossChannelNormalizationOp>(
      op, "cuda:local_response_normalization",
      [&context](const CrossChannelNormalizationOp& o, const KernelArgs& a) {
        local_response_normalization(context.storage, o, a.srcs[0], a.dst, context.stream);
      });
}

std::unique_ptr<Kernel> make_local_response_normalization_gradient(const Op& op,
                                                                   const GraphOptions&,
                                                                   Context& context) {
  auto scratch =
      context.memory->allocate(2 * op.dst_shape.elements() * sizeof(float), op.name + " scratch");
  return function_kernel<CrossChannelNormalizationOp>(
      op, "cuda:local_response_normalization_gradient",
      [&context, scratch](const CrossChannelNormalizationOp& o, const KernelArgs& a) {
        local_response_normalization_gradient(context.storage, o, a.srcs[0], a.srcs[1], a.dst,
                                              reinterpret_cast<float*>(scratch.get()),
                                              context.stream);
      });
}

const KernelCandidate<Context> cuda_kernels[] = {
    {OpKind::convolution, "cublaslt:fully_connected", make_cublaslt_fully_connected},
    {OpKind::convolution, "cuda:depthwise_convolution", make_depthwise_convolution},
    {OpKind::convolution, "cublaslt:pointwise_convolution", make_cublaslt_pointwise_convolution},
    {OpKind::convolution, "cudnn:convolution", make_cudnn_convolution},
    {OpKind::convolution, "cuda:direct_convolution", make_direct_convolution},
    {OpKind::convolution_transpose, "cudnn:convolution_transpose",
     make_cudnn_convolution_transpose},
    {OpKind::neuron, "cuda:neuron", make_neuron},
    {OpKind::pooling, "cuda:pooling", make_pooling},
    {OpKind::addition, "cuda:add", make_addition},
    {OpKind::arithmetic, "cuda:arithmetic", make_arithmetic},
    {OpKind::concatenation, "cuda:concat", make_concatenation},
    {OpKind::softmax, "cuda:softmax", make_softmax},
    {OpKind::batch_normalization, "cuda:affine", make_batch_normalization},
    {OpKind::reshape, "cuda:copy", make_reshape},
    {OpKind::padding, "cuda:padding", make_padding},
    {OpKind::cross_channel_normalization, "cuda:local_response_normalization",
     make_local_response_normalization},
    {OpKind::binary_convolution, "cuda:binary_convolution", make_binary_convolution},
    {OpKind::convolution_gradient, "cublaslt:fully_connected_gradient",
     make_cublaslt_fully_connected_gradient},
    {OpKind::convolution_gradient, "cudnn:convolution_gradient", make_cudnn_convolution_gradient},
    {OpKind::convolution_transpose_gradient, "cudnn:convolution_transpose_gradient",
     make_cudnn_convolution_transpose_gradient},
    {OpKind::neuron_gradient, "cuda:neuron_gradient", make_neuron_gradient},
    {OpKind::pooling_gradient, "cuda:pooling_gradient", make_pooling_gradient},
    {OpKind::softmax_gradient, "cuda:softmax_gradient", make_softmax_gradient},
    {OpKind::channel_slice, "cuda:channel_slice", make_channel_slice},
    {OpKind::arithmetic_gradient, "cuda:arithmetic_gradient", make_arithmetic_gradient},
    {OpKind::loss, "cuda:loss", make_loss},
    {OpKind::dropout, "cuda:dropout", make_dropout},
    {OpKind::cross_channel_normalization_gradient, "cuda:local_response_normalization_gradient",
     make_local_response_normalization_gradient},
    {OpKind::batch_normalization_training, "cuda:batch_normalization_training",
     make_batch_normalization_training},
    {OpKind::batch_normalization_gradient, "cuda:batch_normalization_gradient",
     make_batch_normalization_gradient},
    {OpKind::binary_convolution_gradient, "cuda:binary_convolution_gradient",
     make_binary_convolution_gradient},
    {OpKind::fused_batch_normalization_relu, "cuda:batch_normalization_relu",
     make_batch_normalization_training},
    {OpKind::fused_relu_batch_normalization_gradient, "cuda:relu_batch_normalization_gradient",
     make_batch_normalization_gradient},
    {OpKind::fused_addition_relu, "cuda:add_relu", make_addition_relu},
    {OpKind::fused_addition_relu_gradient, "cuda:addition_relu_gradient",
     make_addition_relu_gradient},
    {OpKind::fused_max_pooling_relu_gradient, "cuda:max_pooling_relu_gradient",
     make_pooling_gradient},
    {OpKind::fused_batch_normalization_addition_relu, "cuda:batch_normalization_addition_relu",
     make_batch_normalization_addition_relu},
};

// The CUDA backend takes every op kind.
const UnsupportedOpKind cuda_unsupported_storage[1] = {};
constexpr std::span<const UnsupportedOpKind> cuda_unsupported(cuda_unsupported_storage, 0);

constexpr const char* cuda_hint =
    "docs/cuda.md lists what trains on CUDA; the rest runs on the CPU devices";

}  // namespace

std::unique_ptr<Kernel> pick_cuda_kernel(const Op& op, const GraphOptions& options,
                                         Context& context) {
  return pick_kernel(cuda_kernels, cuda_unsupported, op, options, "cuda", cuda_hint, context);
}

}  // namespace cuda

DispatchTable cuda_dispatch_table() {
  return describe_table<cuda::Context>("cuda", cuda::cuda_kernels, cuda::cuda_unsupported);
}

}  // namespace cnngraph::detail
