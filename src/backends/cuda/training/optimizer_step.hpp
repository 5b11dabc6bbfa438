// One optimizer step on the GPU over every trainable tensor of a graph, in one launch: the
// gradient pre-processing (clip, rescale, L1/L2) fused with the rule (SGD with momentum or
// Nesterov, Adam or AMSGrad, RMSProp), fp32 master values and moments in device memory,
// and, where the graph computes in 16 bits, the values' storage-type copy written in the
// same pass. The formulas are ops/optimizer_math.hpp's, as for the host optimizers.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "cnngraph/image.hpp"
#include "cnngraph/optimizer.hpp"
#include "core/device_memory.hpp"
#include "ops/optimizer_math.hpp"

namespace cnngraph::detail::cuda {

// One tensor of a step, all pointers into device memory. The moments a rule does not use
// may be null; storage_copy is null when the graph computes in fp32.
struct DeviceParameter {
  float* values = nullptr;  // the fp32 master copy
  const float* gradients = nullptr;
  float* momentum = nullptr;          // SGD momentum, Adam first moment
  float* velocity = nullptr;          // Adam second moment, RMSProp mean square
  float* maximum_velocity = nullptr;  // AMSGrad
  void* storage_copy = nullptr;       // the values in the storage type (f16 or bf16)
  std::size_t count = 0;
};

// A step's rule and numbers, taken from one of the library's optimizers.
struct DeviceStepRule {
  enum class Kind { sgd, sgd_momentum, sgd_nesterov, adam, rmsprop } kind = Kind::sgd;
  bool amsgrad = false;
  float learning_rate = 0;  // Adam: lr_t, the step's bias-corrected rate
  float momentum = 0, beta1 = 0, beta2 = 0, decay = 0, epsilon = 0;
  GradientPreprocessing preprocessing;
  float unscale = 1;  // applied to the gradients first (the inverse loss scale)
};

// The rule of `optimizer` for its step number `time_step` (counting from 1). Throws
// Unsupported for an optimizer class of the caller's own: its apply() runs on the host.
DeviceStepRule device_step_rule(const Optimizer& optimizer, std::uint64_t time_step);

// Whether `parameter` has the moments `rule` needs.
bool has_moments(const DeviceParameter& parameter, const DeviceStepRule& rule);

// The tensors of a graph's step, kept on the device once (a table and the running element
// offsets), so that a step is one launch with no upload, and can be recorded in a CUDA
// graph.
class DeviceOptimizerTable {
 public:
  // Throws InvalidArgument when a tensor lacks a pointer the storage type needs; the table
  // lives in `memory` (the GPU's).
  DeviceOptimizerTable(std::vector<DeviceParameter> parameters, DataType storage,
                       DeviceMemory& memory);

  // One step of `rule` over every tensor on `stream`, waited for. Throws InvalidArgument
  // when a tensor lacks the moments the rule needs.
  void step(const DeviceStepRule& rule, cudaStream_t stream) const;
  // Enqueues a step whose rule is read on the device from `rule` when it runs (`kind` is
  // its host copy, for the checks), so that a recording replays with each run's numbers;
  // the device skips it when `skip` (device memory, may be null) holds non-zero.
  void step(const DeviceStepRule& kind, const DeviceStepRule* rule, const unsigned* skip,
            cudaStream_t stream) const;
  // Enqueues a check that sets *flag (device memory) to 1 when a gradient is not finite.
  void check_finite(unsigned* flag, cudaStream_t stream) const;
  std::size_t elements() const { return total_; }

 private:
  std::vector<DeviceParameter> parameters_;
  DataType storage_;
  DeviceMemory& memory_;
  mutable std::shared_ptr<std::byte[]> rule_;  // for the first step()
  std::shared_ptr<std::byte[]> device_parameters_;
  std::shared_ptr<std::byte[]> device_offsets_;  // tensors + 1 running sums of count
  std::size_t total_ = 0;
};

}  // namespace cnngraph::detail::cuda
