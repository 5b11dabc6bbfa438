// The CUDA backend's kernel factories (one table in cuda_backend.cpp lists them in order).
#pragma once

#include "backends/cuda/cuda_common.hpp"

namespace cnngraph::detail::cuda {

using Factory = std::unique_ptr<Kernel> (*)(const Op&, const GraphOptions&, Context&);

std::unique_ptr<Kernel> make_cudnn_convolution(const Op&, const GraphOptions&, Context&);
std::unique_ptr<Kernel> make_direct_convolution(const Op&, const GraphOptions&, Context&);
std::unique_ptr<Kernel> make_cublaslt_fully_connected(const Op&, const GraphOptions&, Context&);
std::unique_ptr<Kernel> make_binary_convolution(const Op&, const GraphOptions&, Context&);
// The device copies of a convolution's weights (OHWI) and bias in the storage type, made
// once per graph device and type (cached on the prepared weights) and shared by every
// program of the graph.
struct DeviceWeights {
  std::shared_ptr<std::byte[]> weights, bias;
};
std::shared_ptr<DeviceWeights> device_weights(const PreparedWeights& prepared, Context& context);

}  // namespace cnngraph::detail::cuda
