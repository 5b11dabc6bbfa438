// Device selection. There is no CUDA backend in this build yet, so Device::cuda() refuses.
#include "cnngraph/device.hpp"

#include "cnngraph/errors.hpp"

namespace cnngraph {

Device Device::cpu() { return Device(DeviceKind::cpu, 0); }
Device Device::cpu_reference() { return Device(DeviceKind::cpu_reference, 0); }

Device Device::cuda(int index) {
  throw DeviceError("Device::cuda(" + std::to_string(index) +
                    "): this build of cnngraph has no CUDA backend");
}

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
