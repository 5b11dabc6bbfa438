// The CUDA backend's kernel factories (one table in cuda_backend.cpp lists them in order).
#pragma once

#include "backends/cuda/cuda_common.hpp"

namespace cnngraph::detail::cuda {

using Factory = std::unique_ptr<Kernel> (*)(const Op&, const GraphOptions&, Context&);

std::unique_ptr<Kernel> make_cudnn_convolution(const Op&, const GraphOptions&, Context&);
std::unique_ptr<Kernel> make_depthwise_convolution(const Op&, const GraphOptions&, Context&);
std::unique_ptr<Kernel> make_direct_convolution(const Op&, const GraphOptions&, Context&);
std::unique_ptr<Kernel> make_cublaslt_fully_connected(const Op&, const GraphOptions&, Context&);
std::unique_ptr<Kernel> make_cudnn_convolution_transpose(const Op&, const GraphOptions&, Context&);
std::unique_ptr<Kernel> make_binary_convolution(const Op&, const GraphOptions&, Context&);
// Strict fp32 (no TF32) only, with autotuning or CNNGRAPH_CUDA_F32_LAYOUT=nchw: the NCHW
// variant of the convolution when it times faster than `nhwc` (or is forced); else `nhwc`.
std::unique_ptr<Kernel> strict_f32_layout(const ConvolutionOp& op, const GraphOptions& options,
                                          Context& context, std::unique_ptr<Kernel> nhwc);
// The device copies of a convolution's weights (OHWI) and bias in the storage type, made
// once per graph device and type (cached on the prepared weights) and shared by every
// program of the graph.
struct DeviceWeights {
  std::shared_ptr<std::byte[]> weights, bias;
};
std::shared_ptr<DeviceWeights> device_weights(const PreparedWeights& prepared, Context& context);
// The epilogue kernel's work for a convolution or fully connected op: its post-ops from
// `first` on and, when `with_bias`, the bias. Keeps the prelu slopes it uploads in `keep`.
// Returns whether there is any work.
bool make_epilogue(const ConvolutionOp& op, Context& context, const DeviceWeights& weights,
                   bool with_bias, std::size_t first, DeviceEpilogue& e,
                   std::vector<std::shared_ptr<std::byte[]>>& keep);

}  // namespace cnngraph::detail::cuda
