// Device selection, and the core's side of the CUDA backend's hook (core/cuda_hooks.hpp):
// without cnngraph::cuda in the program there are no CUDA devices, and asking for one says
// what to link.
#include "cnngraph/device.hpp"

#include "cnngraph/errors.hpp"
#include "core/cuda_hooks.hpp"
#include "core/device_memory.hpp"

// Weak: null unless the program links cnngraph::cuda, whose link option brings the definition.
#pragma weak cnngraph_cuda_backend_hooks

namespace cnngraph {

namespace detail {

const CudaBackendHooks* cuda_backend_hooks() { return &cnngraph_cuda_backend_hooks; }

const CudaBackendHooks& require_cuda_backend(const std::string& what) {
  if (const CudaBackendHooks* hooks = cuda_backend_hooks()) return *hooks;
#ifdef CNNGRAPH_CUDA_COMPONENT_BUILT
  throw DeviceError(what +
                    ": this program does not link cnngraph's CUDA backend; link cnngraph::cuda "
                    "(find_package(cnngraph COMPONENTS cuda)) to use CUDA devices");
#else
  throw DeviceError(what +
                    ": this build of cnngraph has no CUDA backend (CUDA and cuDNN were not "
                    "found, or CNNGRAPH_WITH_CUDA was OFF, when it was configured)");
#endif
}

int cuda_device_count() {
  const CudaBackendHooks* hooks = cuda_backend_hooks();
  return hooks ? hooks->device_count() : 0;
}

std::uint64_t parameter_downloads() {
  const CudaBackendHooks* hooks = cuda_backend_hooks();
  return hooks ? hooks->parameter_downloads() : 0;
}

DeviceMemory* device_memory(const Device& device) {
  if (device.kind() != DeviceKind::cuda) return nullptr;
  return require_cuda_backend(device.name()).device_memory(device);
}

}  // namespace detail

Device Device::cpu() { return Device(DeviceKind::cpu, 0); }
Device Device::cpu_reference() { return Device(DeviceKind::cpu_reference, 0); }

Device Device::cuda(int index) {
  const int count =
      detail::require_cuda_backend("Device::cuda(" + std::to_string(index) + ")").device_count();
  if (index < 0 || index >= count) {
    throw DeviceError("Device::cuda(" + std::to_string(index) + "): " +
                      (count == 0 ? std::string("no CUDA GPU is available on this machine")
                                  : "this machine has " + std::to_string(count) +
                                        " CUDA GPU(s), numbered from 0"));
  }
  return Device(DeviceKind::cuda, index);
}

int Device::cuda_device_count() { return detail::cuda_device_count(); }

void Device::synchronize() const {
  if (kind_ == DeviceKind::cuda) detail::device_memory(*this)->synchronize();
}

namespace {
detail::DeviceMemory& counted_memory(const Device& device) {
  if (device.kind() != DeviceKind::cuda) {
    throw Unsupported(device.name() + ": memory statistics are kept for CUDA devices only");
  }
  return *detail::device_memory(device);
}
}  // namespace

DeviceMemoryStatistics Device::memory_statistics() const {
  return counted_memory(*this).statistics();
}

void Device::reset_peak_memory() const { counted_memory(*this).reset_peak(); }

std::string Device::name() const {
  switch (kind_) {
    case DeviceKind::cpu:
      return "cpu (oneDNN)";
    case DeviceKind::cpu_reference:
      return "cpu_reference";
    case DeviceKind::cuda:
      return "cuda:" + std::to_string(index_);
  }
  return "?";
}

}  // namespace cnngraph
