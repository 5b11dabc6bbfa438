// Device selection, and the device registry's stand-in for builds without the CUDA backend.
#include "cnngraph/device.hpp"

#include "backends/device_memory.hpp"
#include "cnngraph/errors.hpp"

namespace cnngraph {

Device Device::cpu() { return Device(DeviceKind::cpu, 0); }
Device Device::cpu_reference() { return Device(DeviceKind::cpu_reference, 0); }

Device Device::cuda(int index) {
  const int count = detail::cuda_device_count();
#ifndef CNNGRAPH_HAS_CUDA
  throw DeviceError("Device::cuda(" + std::to_string(index) +
                    "): this build of cnngraph has no CUDA backend (CUDA and cuDNN were not "
                    "found when it was configured)");
#endif
  if (index < 0 || index >= count) {
    throw DeviceError("Device::cuda(" + std::to_string(index) + "): " +
                      (count == 0 ? std::string("no CUDA GPU is available on this machine")
                                  : "this machine has " + std::to_string(count) +
                                        " CUDA GPU(s), numbered from 0"));
  }
  return Device(DeviceKind::cuda, index);
}

int Device::cuda_device_count() { return detail::cuda_device_count(); }

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

#ifndef CNNGRAPH_HAS_CUDA
namespace detail {
int cuda_device_count() { return 0; }
std::uint64_t parameter_downloads() { return 0; }
DeviceMemory* device_memory(const Device& device) {
  if (device.kind() != DeviceKind::cuda) return nullptr;
  throw DeviceError(device.name() + ": this build of cnngraph has no CUDA backend");
}
}  // namespace detail
#endif

}  // namespace cnngraph
