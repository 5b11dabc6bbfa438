// The device -> backend mapping, and the tables of the backends this program has.
#include "backends/candidates.hpp"
#include "backends/cpu/cpu_backend.hpp"
#include "backends/reference/reference_backend.hpp"
#include "cnngraph/errors.hpp"
#include "core/cuda_hooks.hpp"

namespace cnngraph::detail {

std::unique_ptr<Backend> make_backend(const Device& device, const GraphOptions& options) {
  switch (device.kind()) {
    case DeviceKind::cpu_reference:
      return make_reference_backend();
    case DeviceKind::cpu:
#ifdef CNNGRAPH_HAS_ONEDNN
      return make_onednn_backend();
#else
      throw DeviceError(
          "Device::cpu(): this build of cnngraph has no oneDNN backend "
          "(libdnnl-dev was not found); use Device::cpu_reference()");
#endif
    case DeviceKind::cuda:
      return require_cuda_backend(device.name()).make_backend(device, options);
  }
  throw DeviceError("device " + device.name() + " has no backend in this build");
}

std::vector<DispatchTable> dispatch_tables() {
  std::vector<DispatchTable> tables{reference_dispatch_table()};
#ifdef CNNGRAPH_HAS_ONEDNN
  tables.push_back(onednn_dispatch_table());
#endif
  if (const CudaBackendHooks* cuda = cuda_backend_hooks()) tables.push_back(cuda->dispatch_table());
  return tables;
}

}  // namespace cnngraph::detail
