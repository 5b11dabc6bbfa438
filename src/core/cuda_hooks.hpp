// The one link between the core library and the CUDA backend (the library cnngraph::cuda):
// a table of the backend's entry points. The core references the table weakly, so a program
// that does not link cnngraph::cuda has none and needs no CUDA library; linking
// cnngraph::cuda forces in the object that defines it (cmake/cuda.cmake says why this way).
#pragma once

#include <cstdint>
#include <memory>

#include "backends/backend.hpp"
#include "core/device_memory.hpp"

namespace cnngraph::detail {

struct DispatchTable;

struct CudaBackendHooks {
  int (*device_count)();
  DeviceMemory* (*device_memory)(const Device& device);
  std::uint64_t (*parameter_downloads)();
  std::unique_ptr<Backend> (*make_backend)(const Device& device, const GraphOptions& options);
  DispatchTable (*dispatch_table)();  // what the backend's kernel table covers
};

// The table, or null when this program does not link the CUDA backend.
const CudaBackendHooks* cuda_backend_hooks();
// The table; throws DeviceError naming `what` and saying how to get the backend when absent.
const CudaBackendHooks& require_cuda_backend(const std::string& what);

}  // namespace cnngraph::detail

// Defined only by src/backends/cuda/hooks.cpp; unmangled, so that the link option can name it.
extern "C" const cnngraph::detail::CudaBackendHooks cnngraph_cuda_backend_hooks;
