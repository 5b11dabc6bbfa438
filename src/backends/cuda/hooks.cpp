// The CUDA backend's entry points for the core library (core/cuda_hooks.hpp). Linking
// cnngraph::cuda forces this object into the program by the name of the table.
#include "core/cuda_hooks.hpp"

#include "backends/cuda/cuda_backend.hpp"

extern "C" const cnngraph::detail::CudaBackendHooks cnngraph_cuda_backend_hooks{
    &cnngraph::detail::cuda_runtime_device_count, &cnngraph::detail::cuda_device_memory,
    &cnngraph::detail::cuda_parameter_downloads,  &cnngraph::detail::make_cuda_backend,
    &cnngraph::detail::cuda_dispatch_table,
};
