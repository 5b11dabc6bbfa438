// The device registry of the CUDA backend: one caching allocator per GPU (freed blocks are
// kept for the next request of the same size, as PyTorch's allocator does), the library
// error checks, and the context helpers.
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <map>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "backends/cuda/cuda_backend.hpp"
#include "backends/cuda/cuda_common.hpp"
#include "cnngraph/errors.hpp"

namespace cnngraph::detail {

namespace cuda {

void check(cudaError_t status, const std::string& what) {
  if (status == cudaSuccess) return;
  cudaGetLastError();  // clear a sticky non-fatal error so that the next call starts clean
  throw DeviceError(what + ": " + cudaGetErrorString(status));
}

void check(cudnnStatus_t status, const std::string& what) {
  if (status == CUDNN_STATUS_SUCCESS) return;
  char detail[512] = {};
  cudnnGetLastErrorString(detail, sizeof detail);
  throw DeviceError(what + ": " + cudnnGetErrorString(status) +
                    (detail[0] ? std::string(" (") + detail + ")" : std::string()));
}

void check(cublasStatus_t status, const std::string& what) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  throw DeviceError(what + ": cuBLAS status " + std::to_string(static_cast<int>(status)));
}

namespace {

std::shared_mutex& capture_mutex() {
  static auto& mutex = *new std::shared_mutex;  // never destroyed: see StreamHandles
  return mutex;
}
thread_local bool capturing = false;

}  // namespace

CaptureScope::CaptureScope() {
  capture_mutex().lock_shared();
  capturing = true;
}
CaptureScope::~CaptureScope() {
  capturing = false;
  capture_mutex().unlock_shared();
}

namespace {

struct HandlePool {
  std::mutex mutex;
  std::map<int, std::vector<StreamHandles>> free;
};
HandlePool& handle_pool() {
  static auto& pool = *new HandlePool;
  return pool;
}

}  // namespace

StreamHandles acquire_stream_handles(int device) {
  HandlePool& pool = handle_pool();
  {
    std::lock_guard lock(pool.mutex);
    auto& free = pool.free[device];
    if (!free.empty()) {
      StreamHandles handles = free.back();
      free.pop_back();
      return handles;
    }
  }
  std::unique_lock exclusive(capture_mutex());
  check(cudaSetDevice(device), "cudaSetDevice");
  StreamHandles h;
  check(cudaStreamCreateWithFlags(&h.stream, cudaStreamNonBlocking), "cudaStreamCreate");
  check(cudnnCreate(&h.cudnn), "cudnnCreate");
  check(cudnnSetStream(h.cudnn, h.stream), "cudnnSetStream");
  check(cublasLtCreate(&h.cublas), "cublasLtCreate");
  return h;
}

void release_stream_handles(int device, StreamHandles handles) noexcept {
  HandlePool& pool = handle_pool();
  std::lock_guard lock(pool.mutex);
  try {
    pool.free[device].push_back(handles);
  } catch (const std::bad_alloc&) {  // out of host memory: the handles leak
  }
}

std::shared_ptr<std::byte[]> allocate_pinned(std::size_t bytes, const std::string& what) {
  struct PinnedCache {
    std::mutex mutex;
    std::map<std::size_t, std::vector<void*>> free;
  };
  static auto& cache = *new PinnedCache;
  const std::size_t size = (std::max<std::size_t>(bytes, 1) + 255) / 256 * 256;
  void* block = nullptr;
  {
    std::lock_guard lock(cache.mutex);
    auto& free = cache.free[size];
    if (!free.empty()) {
      block = free.back();
      free.pop_back();
    }
  }
  if (!block) {
    std::unique_lock exclusive(capture_mutex());
    check(cudaMallocHost(&block, size), what + ": pinned memory");
  }
  return std::shared_ptr<std::byte[]>(static_cast<std::byte*>(block), [size](std::byte* p) {
    std::lock_guard lock(cache.mutex);
    try {
      cache.free[size].push_back(p);
    } catch (const std::bad_alloc&) {  // out of host memory: the block leaks
    }
  });
}

namespace {

class CachingDeviceMemory : public DeviceMemory {
 public:
  explicit CachingDeviceMemory(int index) : index_(index) {}

  std::shared_ptr<std::byte[]> allocate(std::size_t bytes, const std::string& purpose) override {
    const std::size_t size = (std::max<std::size_t>(bytes, 1) + 511) / 512 * 512;
    void* block = take_cached(size);
    if (!block) {
      check(cudaSetDevice(index_), "cudaSetDevice");
      if (cudaMalloc(&block, size) != cudaSuccess) {
        cudaGetLastError();
        // cudaFree synchronizes the device: never within a capture of this thread, and
        // never while another thread captures.
        if (!capturing) release_cache();
        if (cudaMalloc(&block, size) != cudaSuccess) {
          cudaGetLastError();
          std::size_t free = 0, total = 0;
          cudaMemGetInfo(&free, &total);
          throw DeviceError("cuda:" + std::to_string(index_) + ": out of memory allocating " +
                            std::to_string(size) + " bytes for " + purpose + " (" +
                            std::to_string(free) + " of " + std::to_string(total) + " bytes free)");
        }
      }
      std::lock_guard lock(mutex_);
      statistics_.bytes_reserved += size;
    }
    count_taken(size);
    return std::shared_ptr<std::byte[]>(static_cast<std::byte*>(block),
                                        [this, size](std::byte* p) { give_back(p, size); });
  }

  DeviceMemoryStatistics statistics() override {
    std::lock_guard lock(mutex_);
    return statistics_;
  }
  void reset_peak() override {
    std::lock_guard lock(mutex_);
    statistics_.peak_bytes_in_use = statistics_.bytes_in_use;
  }

  void copy_to_device(void* dst, const void* host_src, std::size_t bytes) override {
    check(cudaSetDevice(index_), "cudaSetDevice");
    check(cudaMemcpy(dst, host_src, bytes, cudaMemcpyHostToDevice), "copy to cuda");
  }
  void copy_to_host(void* host_dst, const void* src, std::size_t bytes) override {
    check(cudaSetDevice(index_), "cudaSetDevice");
    check(cudaMemcpy(host_dst, src, bytes, cudaMemcpyDeviceToHost), "copy from cuda");
  }
  void synchronize() override {
    check(cudaSetDevice(index_), "cudaSetDevice");
    check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  }
  void check_readable(const void* data, const std::string& what) override {
    cudaPointerAttributes attributes{};
    if (cudaPointerGetAttributes(&attributes, data) != cudaSuccess) {
      cudaGetLastError();
      attributes.type = cudaMemoryTypeUnregistered;
    }
    const bool managed = attributes.type == cudaMemoryTypeManaged;
    const bool own = attributes.type == cudaMemoryTypeDevice && attributes.device == index_;
    if (managed || own) return;
    const std::string found =
        attributes.type == cudaMemoryTypeDevice
            ? "memory of cuda:" + std::to_string(attributes.device)
            : (attributes.type == cudaMemoryTypeHost ? "pinned host memory" : "host memory");
    throw InvalidArgument(what + ": the pointer is " + found + ", not memory of cuda:" +
                          std::to_string(index_) + " (copy host data with Image::to)");
  }

 private:
  void* take_cached(std::size_t size) {
    std::lock_guard lock(mutex_);
    auto it = free_.find(size);
    if (it == free_.end() || it->second.empty()) return nullptr;
    void* block = it->second.back();
    it->second.pop_back();
    return block;
  }
  void count_taken(std::size_t size) {
    std::lock_guard lock(mutex_);
    statistics_.bytes_in_use += size;
    statistics_.peak_bytes_in_use =
        std::max(statistics_.peak_bytes_in_use, statistics_.bytes_in_use);
  }
  void give_back(std::byte* p, std::size_t size) {
    std::lock_guard lock(mutex_);
    free_[size].push_back(p);
    statistics_.bytes_in_use -= size;
  }
  void release_cache() {
    std::unique_lock exclusive(capture_mutex());
    std::lock_guard lock(mutex_);
    for (auto& [size, blocks] : free_) {
      for (void* block : blocks) cudaFree(block);
      statistics_.bytes_reserved -= size * blocks.size();
    }
    free_.clear();
  }

  int index_;
  std::mutex mutex_;
  std::map<std::size_t, std::vector<void*>> free_;
  DeviceMemoryStatistics statistics_;
};

}  // namespace

void Context::reserve_workspace(std::size_t bytes) {
  if (bytes <= workspace_bytes) return;
  workspace = memory->allocate(bytes, "the cuDNN/cuBLAS workspace");
  workspace_bytes = bytes;
}

std::shared_ptr<std::byte[]> Context::upload(const void* host, std::size_t bytes,
                                             const std::string& what) {
  auto block = memory->allocate(bytes, what);
  if (host && bytes) memory->copy_to_device(block.get(), host, bytes);
  return block;
}

std::shared_ptr<std::byte[]> Context::upload_as_storage(const std::vector<float>& values,
                                                        const std::string& what) {
  const Image image =
      Image::from_floats({1, 1, 1, static_cast<int>(std::max<std::size_t>(values.size(), 1))},
                         values.empty() ? std::vector<float>{0.0f} : values, storage);
  return upload(image.data(), image.size_in_bytes(), what);
}

}  // namespace cuda

int cuda_runtime_device_count() {
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    return n;
  }();
  return count;
}

DeviceMemory* cuda_device_memory(const Device& device) {
  if (device.kind() != DeviceKind::cuda) return nullptr;
  static std::mutex mutex;
  // Never destroyed: images may outlive static destruction and still return their blocks.
  static auto& registry = *new std::map<int, std::unique_ptr<cuda::CachingDeviceMemory>>;
  std::lock_guard lock(mutex);
  if (device.index() < 0 || device.index() >= cuda_runtime_device_count())
    throw DeviceError(device.name() + ": no such CUDA device");
  auto& memory = registry[device.index()];
  if (!memory) memory = std::make_unique<cuda::CachingDeviceMemory>(device.index());
  return memory.get();
}

}  // namespace cnngraph::detail
