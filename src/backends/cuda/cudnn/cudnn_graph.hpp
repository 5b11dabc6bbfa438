// A thin C++ layer over cuDNN's graph (backend) API: descriptors with RAII, tensors, the
// convolution-forward graph with its pointwise fusions, and plans picked from cuDNN's
// heuristics (filtered by the precision options) that run on a stream.
#pragma once

#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cnngraph/graph.hpp"
#include "core/device_memory.hpp"
#include "ops/op.hpp"

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

// A 4-d tensor in NHWC memory order, or NCHW with `nchw` (cuDNN's dims are always N, C,
// H, W).
DescriptorPtr make_tensor(std::int64_t uid, cudnnDataType_t type, std::int64_t n, std::int64_t c,
                          std::int64_t h, std::int64_t w, bool is_virtual = false,
                          bool nchw = false);

// An executable plan and the descriptors it was made from (kept alive with it).
class Plan {
 public:
  std::vector<DescriptorPtr> keep;
  DescriptorPtr plan;
  std::int64_t workspace_bytes = 0;
  double milliseconds = -1;  // per run, when autotuning measured it (also from the cache)
  std::string engine;  // for describe() and verbose logs: "eng<index>", then how it was chosen
  // Runs with data pointers for `uids` (in order) on the handle's stream.
  void execute(cudnnHandle_t handle, const std::vector<std::int64_t>& uids,
               const std::vector<void*>& pointers, void* workspace) const;

 private:
  mutable DescriptorPtr variant_pack_;
  mutable std::vector<void*> variant_pointers_;
};

// Runs a candidate plan a few times and returns its milliseconds per run (negative when
// it fails to run). `best_ms` is the best time so far (negative: none yet).
using PlanTimer = std::function<double(const Plan&, double best_ms)>;

// How many of cuDNN's candidates GraphOptions::autotune times per problem: 8, or
// CNNGRAPH_CUDA_AUTOTUNE_CANDIDATES (1 to 64) from the environment, for experiments.
int autotune_candidates();
// Of which at most this many runtime-compiled ones (each costs a kernel compilation).
constexpr int kMaxCompiledCandidates = 2;

// The plan for an operation graph. `problem` names it (shapes, types, fusion); with the
// options, the GPU model and the cuDNN version it keys the plan cache. On a cache miss the
// candidates are cuDNN's heuristics in order, keeping only engines the options allow (TF32
// only with tf32_allowed, no down-converting engines, no non-deterministic ones in
// deterministic mode, workspace within the limit) that finalize: the first one, or with
// `timer` (autotuning) the fastest of the first autotune_candidates(). Null when none does.
std::shared_ptr<Plan> find_plan(cudnnHandle_t handle, std::vector<DescriptorPtr> operations,
                                bool float_data, const GraphOptions& options,
                                const std::string& problem, const PlanTimer* timer);

// Times `plan` on these buffers (its workspace is allocated for the purpose): one warm-up
// run, then the mean of three. A candidate whose warm-up alone takes over 4 times
// `best_ms` is out of the running: its warm-up time is returned without the three runs
// (slow engines would otherwise dominate the time autotuning takes).
double time_plan(const Plan& plan, cudnnHandle_t handle, cudaStream_t stream, DeviceMemory& memory,
                 const std::vector<std::int64_t>& uids, const std::vector<void*>& pointers,
                 double best_ms);

cudnnDataType_t cudnn_type(DataType type);

// The convolution descriptor of a planned convolution (its padding, strides, dilation);
// null when cuDNN cannot express its placement (convolution.cpp).
DescriptorPtr convolution_descriptor(const ConvolutionOp& op, cudnnDataType_t compute);
// The convolution-forward operation y = conv(x, w) (alpha 1, beta 0); null when cuDNN
// refuses it.
DescriptorPtr convolution_forward(const DescriptorPtr& x, const DescriptorPtr& w,
                                  const DescriptorPtr& y, const DescriptorPtr& conv);
// Names a convolution's shapes, placement and memory layout in plan cache keys.
std::string convolution_problem(const ConvolutionOp& op, cudnnDataType_t io,
                                cudnnDataType_t compute, const std::string& layout = "nhwc");

}  // namespace cnngraph::detail::cuda
