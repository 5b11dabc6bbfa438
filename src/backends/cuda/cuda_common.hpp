// What every part of the CUDA backend shares: error checks that become DeviceError, the
// per-graph context (stream, library handles, workspace), and the launchers of our own
// kernels (defined in the .cu files).
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.hpp"
#include "core/device_memory.hpp"

namespace cnngraph::detail::cuda {

// Throw DeviceError("<what>: <library's message>") on failure.
void check(cudaError_t status, const std::string& what);
void check(cudnnStatus_t status, const std::string& what);
void check(cublasStatus_t status, const std::string& what);

// Process-wide resources. Destroying a cuDNN or cuBLASLt handle and freeing pinned host
// memory synchronize the whole device; done while another thread of the process captures a
// CUDA graph, that crashed the process. So a graph takes its stream and handles from a
// pool and gives them back when it is destroyed, pinned blocks are cached likewise, and
// neither is ever destroyed while the process runs.
struct StreamHandles {
  cudaStream_t stream = nullptr;
  cudnnHandle_t cudnn = nullptr;  // bound to `stream`
  cublasLtHandle_t cublas = nullptr;
};
StreamHandles acquire_stream_handles(int device);
// Once nothing is pending on handles.stream.
void release_stream_handles(int device, StreamHandles handles) noexcept;
// Page-locked host memory (kept for reuse when let go of).
std::shared_ptr<std::byte[]> allocate_pinned(std::size_t bytes, const std::string& what);

// Held (shared) around each capture of a CUDA graph; what must never overlap one (making
// library handles, freeing device memory) holds it exclusively.
class CaptureScope {
 public:
  CaptureScope();
  ~CaptureScope();
  CaptureScope(const CaptureScope&) = delete;
  CaptureScope& operator=(const CaptureScope&) = delete;
};

// One per graph: kernels enqueue on `stream`. Compilation may grow the shared workspace;
// kernels read `workspace` when they run, never keep it.
struct Context {
  int device = 0;
  cudaStream_t stream = nullptr;
  cudnnHandle_t cudnn = nullptr;
  cublasLtHandle_t cublas = nullptr;
  DeviceMemory* memory = nullptr;
  DataType storage = DataType::f32;
  std::shared_ptr<std::byte[]> workspace;
  std::size_t workspace_bytes = 0;
  // The run's batch counter in pinned host memory (DeviceExecution::set_batch writes it);
  // kernels copy it to the device on their stream, which a recording replays.
  std::shared_ptr<std::byte[]> pinned;  // holds `batch` and `loss_scale`
  std::uint64_t* batch = nullptr;
  // The loss scale likewise (DeviceExecution::set_loss_scale; 1 unless training scales).
  float* loss_scale = nullptr;

  // Makes the workspace at least `bytes` (at compile time, never while running).
  void reserve_workspace(std::size_t bytes);
  // Device memory owned by a kernel (weights, scratch), filled from the host when given.
  std::shared_ptr<std::byte[]> upload(const void* host, std::size_t bytes, const std::string& what);
  // Host floats converted to the storage type, in device memory.
  std::shared_ptr<std::byte[]> upload_as_storage(const std::vector<float>& values,
                                                 const std::string& what);
};

// A neuron for device code: NeuronDescriptor's numbers with the prelu slopes on the device.
struct DeviceNeuron {
  NeuronType type = NeuronType::none;
  float a = 0, b = 0, c = 0;
  const float* slopes = nullptr;
};

// A post-op chain for the epilogue kernel: up to kMaxPostOps neurons and sums, in order.
// Kernels take it as `const __grid_constant__ DeviceEpilogue`: as a plain parameter, the
// run-time indexing of its post-ops made every thread copy its 120 bytes to local memory
// first (ncu on the H100: a transpose moved 391 MB for 102, a bf16 bias pass 1.06 GB for
// 51 MB).
constexpr int kMaxPostOps = 4;
struct DeviceEpilogue {
  const void* bias = nullptr;  // storage type, one per channel; null: none
  int count = 0;
  bool is_sum[kMaxPostOps] = {};
  DeviceNeuron neuron[kMaxPostOps];
  const void* residual = nullptr;  // for sums, same layout as dst
};

}  // namespace cnngraph::detail::cuda
