// The CUDA backend (cuDNN, cuBLASLt and our own kernels), one per graph.
#pragma once

#include <memory>

#include "backends/backend.hpp"

namespace cnngraph::detail {

std::unique_ptr<Backend> make_cuda_backend(const Device& device, const GraphOptions& options);

}  // namespace cnngraph::detail
