// The CUDA backend (cuDNN, cuBLASLt and our own kernels), one per graph.
#pragma once

#include <memory>

#include "backends/backend.hpp"
#include "core/device_memory.hpp"

namespace cnngraph::detail {

std::unique_ptr<Backend> make_cuda_backend(const Device& device, const GraphOptions& options);
// What the backend's kernel table covers (backends/candidates.hpp).
struct DispatchTable;
DispatchTable cuda_dispatch_table();
// What the core's cuda_device_count(), device_memory() and parameter_downloads() return for
// CUDA devices when the program links this backend (core/cuda_hooks.hpp).
int cuda_runtime_device_count();
DeviceMemory* cuda_device_memory(const Device& device);
std::uint64_t cuda_parameter_downloads();

}  // namespace cnngraph::detail
