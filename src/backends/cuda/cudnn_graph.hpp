// A thin C++ layer over cuDNN's graph (backend) API: descriptors with RAII, tensors, the
// convolution-forward graph with its pointwise fusions, and plans picked from cuDNN's
// heuristics (filtered by the precision options) that run on a stream.
#pragma once

#include <cudnn.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cnngraph/graph.hpp"

namespace cnngraph::detail::cuda {

class Descriptor {
 public:
  explicit Descriptor(cudnnBackendDescriptorType_t type);
  ~Descriptor();
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  cudnnBackendDescriptor_t get() const { return handle_; }
  template <typename T>
  Descriptor& set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type,
                  const T* values, std::int64_t count = 1) {
    return set_raw(name, type, count, values);
  }
  Descriptor& set_raw(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type,
                      std::int64_t count, const void* values);
  // Throws DeviceError naming `what`.
  void finalize(const std::string& what);
  // False instead of throwing (for candidates that may not apply).
  bool try_finalize();

 private:
  cudnnBackendDescriptor_t handle_ = nullptr;
};
using DescriptorPtr = std::shared_ptr<Descriptor>;

// A 4-d tensor in NHWC memory order (cuDNN's dims are always N, C, H, W).
DescriptorPtr make_tensor(std::int64_t uid, cudnnDataType_t type, std::int64_t n, std::int64_t c,
                          std::int64_t h, std::int64_t w, bool is_virtual = false);

// An executable plan and the descriptors it was made from (kept alive with it).
class Plan {
 public:
  std::vector<DescriptorPtr> keep;
  DescriptorPtr plan;
  std::int64_t workspace_bytes = 0;
  std::string engine;  // for describe() and verbose logs
  // Runs with data pointers for `uids` (in order) on the handle's stream.
  void execute(cudnnHandle_t handle, const std::vector<std::int64_t>& uids,
               const std::vector<void*>& pointers, void* workspace) const;

 private:
  mutable DescriptorPtr variant_pack_;
  mutable std::vector<void*> variant_pointers_;
};

// The first plan, in heuristics order, whose engine the options allow (TF32 only with
// tf32_allowed, no down-converting engines, no non-deterministic ones in deterministic
// mode, workspace within the limit) and that finalizes. Null when none does.
std::shared_ptr<Plan> find_plan(cudnnHandle_t handle, std::vector<DescriptorPtr> operations,
                                bool float_data, const GraphOptions& options);

cudnnDataType_t cudnn_type(DataType type);

}  // namespace cnngraph::detail::cuda
