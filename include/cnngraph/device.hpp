// Device: where a graph runs (MPS's MTLDevice).
#pragma once

#include <cstddef>
#include <string>

namespace cnngraph {

enum class DeviceKind { cpu, cpu_reference, cuda };

// What this process's cnngraph holds of a CUDA device's memory (PyTorch's
// torch.cuda.memory_allocated, max_memory_allocated and memory_reserved).
struct DeviceMemoryStatistics {
  // Blocks handed out now: images, graph arenas, weights, optimizer moments, workspaces.
  std::size_t bytes_in_use = 0;
  // The most in use at once since the first allocation or the last reset_peak_memory().
  std::size_t peak_bytes_in_use = 0;
  // Taken from the driver: the blocks in use and those cached for reuse.
  std::size_t bytes_reserved = 0;
};

class Device {
 public:
  // The fast CPU backend (oneDNN).
  static Device cpu();
  // Plain loops in double precision: the oracle every other backend is tested against.
  static Device cpu_reference();
  // An NVIDIA GPU. Throws DeviceError when this build has no CUDA backend or the GPU is
  // absent; there is never a silent fall back to the CPU.
  static Device cuda(int index = 0);
  // How many CUDA devices this build can use: 0 without the CUDA backend or without a GPU
  // (tests use it to skip, saying so).
  static int cuda_device_count();

  DeviceKind kind() const { return kind_; }
  int index() const { return index_; }
  std::string name() const;
  // Waits until all work queued on this device by this process (any stream, other
  // libraries' too) is done: for a CUDA buffer of another library wrapped with Image::wrap
  // while its producer may still be writing it. Nothing to wait for on the CPU devices.
  void synchronize() const;
  // CUDA devices only (memory is counted per block, rounded up to 512 bytes); throws
  // Unsupported for the CPU devices, whose memory is the process's heap.
  DeviceMemoryStatistics memory_statistics() const;
  // Starts the peak over from the bytes in use now.
  void reset_peak_memory() const;
  bool operator==(const Device&) const = default;

 private:
  Device(DeviceKind kind, int index) : kind_(kind), index_(index) {}
  DeviceKind kind_;
  int index_;
};

}  // namespace cnngraph
