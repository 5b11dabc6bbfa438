// Memory of a device other than the host, and copies in and out of it. The device registry
// hands out one per CUDA device; the CPU devices have none (they use host memory).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "cnngraph/device.hpp"
#include "cnngraph/image.hpp"

namespace cnngraph::detail {

class DeviceMemory {
 public:
  virtual ~DeviceMemory() = default;
  // `bytes` of device memory. Freed blocks go back to a cache that later requests of the
  // same size reuse, so steady-state runs allocate nothing. Throws DeviceError naming
  // `purpose` when the device is out of memory.
  virtual std::shared_ptr<std::byte[]> allocate(std::size_t bytes, const std::string& purpose) = 0;
  // Synchronous copies.
  virtual void copy_to_device(void* dst, const void* host_src, std::size_t bytes) = 0;
  virtual void copy_to_host(void* host_dst, const void* src, std::size_t bytes) = 0;
  // Throws InvalidArgument naming `what` unless `data` is memory this device's kernels can
  // read (its own memory, or managed memory).
  virtual void check_readable(const void* data, const std::string& what) = 0;
  // Device::synchronize.
  virtual void synchronize() = 0;
  // Device::memory_statistics and Device::reset_peak_memory.
  virtual DeviceMemoryStatistics statistics() = 0;
  virtual void reset_peak() = 0;
};

// The registry: null for the CPU devices. Throws DeviceError when the device is unavailable.
DeviceMemory* device_memory(const Device& device);
// 0 when this build has no CUDA backend or the machine no GPU.
int cuda_device_count();
// Device-to-host copies of training values (gradients, weights, moments) that device
// graphs of this process have made: tests check that device-style training makes none.
std::uint64_t parameter_downloads();

// Makes images whose storage the library allocated (on a device, or on the host).
struct ImageAccess {
  static Image make(ImageShape shape, DataType type, Device device,
                    std::shared_ptr<std::byte[]> storage) {
    Image image;
    image.shape_ = shape;
    image.type_ = type;
    image.device_ = device;
    image.storage_ = std::move(storage);
    return image;
  }
};

}  // namespace cnngraph::detail
