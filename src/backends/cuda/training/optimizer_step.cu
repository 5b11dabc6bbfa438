// The fused optimizer step (see optimizer_step.hpp): one thread per parameter element over
// all tensors at once; each finds its tensor by a binary search of the running offsets
// (a ResNet-50 has 161 tensors: 8 probes, served from L1).
#include <cmath>
#include <string>
#include <type_traits>

#include "backends/cuda/kernels/device_math.cuh"
#include "backends/cuda/training/optimizer_step.hpp"
#include "cnngraph/errors.hpp"
#include "ops/optimizer_math.hpp"

namespace cnngraph::detail::cuda {

namespace {

using Kind = DeviceStepRule::Kind;

// S: the storage type of the values' copy (float: none is written).
// The tensor holding element e: the last one whose offset is <= e.
__device__ int tensor_of(const std::size_t* offsets, int tensors, std::size_t e) {
  int lo = 0, hi = tensors - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (offsets[mid] <= e) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

// *flag = 1 when any gradient is NaN or infinite.
__global__ void finite_check_kernel(const DeviceParameter* parameters, const std::size_t* offsets,
                                    int tensors, std::size_t total, unsigned* flag) {
  bool bad = false;
  for (std::size_t e = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; e < total;
       e += std::size_t(gridDim.x) * blockDim.x) {
    const int t = tensor_of(offsets, tensors, e);
    bad |= !isfinite(parameters[t].gradients[e - offsets[t]]);
  }
  if (__syncthreads_or(bad) && threadIdx.x == 0) *flag = 1u;
}

// The rule is read from device memory, so that a recorded CUDA graph uses each run's (the
// host writes it before the run); nothing changes when *skip is set.
template <typename S>
__global__ void optimizer_step_kernel(const DeviceParameter* parameters, const std::size_t* offsets,
                                      int tensors, std::size_t total, const DeviceStepRule* rule,
                                      const unsigned* skip) {
  if (skip && *skip) return;
  const DeviceStepRule r = *rule;
  for (std::size_t e = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; e < total;
       e += std::size_t(gridDim.x) * blockDim.x) {
    const int lo = tensor_of(offsets, tensors, e);
    const DeviceParameter& p = parameters[lo];
    const std::size_t i = e - offsets[lo];
    float w = p.values[i];
    // Pre-processing, as Optimizer::step (after the loss scale's inverse).
    const float g = preprocessed_gradient(p.gradients[i] * r.unscale, w, r.preprocessing);
    switch (r.kind) {
      case Kind::sgd:
        sgd_step(w, g, r.learning_rate);
        break;
      case Kind::sgd_momentum: {
        float m = p.momentum[i];
        sgd_momentum_step(w, m, g, r.learning_rate, r.momentum);
        p.momentum[i] = m;
        break;
      }
      case Kind::sgd_nesterov: {
        float m = p.momentum[i];
        sgd_nesterov_step(w, m, g, r.learning_rate, r.momentum);
        p.momentum[i] = m;
        break;
      }
      case Kind::adam: {
        float m = p.momentum[i], v = p.velocity[i];
        adam_moments(m, v, g, r.beta1, r.beta2);
        p.momentum[i] = m;
        p.velocity[i] = v;
        float u = v;
        if (r.amsgrad) u = p.maximum_velocity[i] = amsgrad_maximum(p.maximum_velocity[i], v);
        adam_update(w, m, u, r.learning_rate, r.epsilon);
        break;
      }
      case Kind::rmsprop: {
        float s = p.velocity[i];
        rmsprop_step(w, s, g, r.learning_rate, r.decay, r.epsilon);
        p.velocity[i] = s;
        break;
      }
    }
    p.values[i] = w;
    if constexpr (!std::is_same_v<S, float>) static_cast<S*>(p.storage_copy)[i] = from_float<S>(w);
  }
}

}  // namespace

DeviceStepRule device_step_rule(const Optimizer& optimizer, std::uint64_t time_step) {
  DeviceStepRule r;
  const OptimizerDescriptor& d = optimizer.descriptor();
  r.learning_rate = d.learning_rate;
  r.preprocessing = gradient_preprocessing(d);
  if (const auto* sgd = dynamic_cast<const SgdOptimizer*>(&optimizer)) {
    r.momentum = sgd->momentum();
    r.kind = sgd->nesterov()           ? Kind::sgd_nesterov
             : sgd->momentum() == 0.0f ? Kind::sgd
                                       : Kind::sgd_momentum;
  } else if (const auto* adam = dynamic_cast<const AdamOptimizer*>(&optimizer)) {
    r.kind = Kind::adam;
    r.amsgrad = adam->amsgrad();
    r.beta1 = static_cast<float>(adam->beta1());
    r.beta2 = static_cast<float>(adam->beta2());
    r.epsilon = adam->epsilon();
    r.learning_rate = adam_step_rate(d.learning_rate, adam->beta1(), adam->beta2(), time_step);
  } else if (const auto* rms = dynamic_cast<const RmsPropOptimizer*>(&optimizer)) {
    r.kind = Kind::rmsprop;
    r.decay = static_cast<float>(rms->decay());
    r.epsilon = rms->epsilon();
  } else {
    throw Unsupported("optimizer '" + optimizer.name() +
                      "' has no GPU step (only sgd, adam, amsgrad and rmsprop do); its apply() "
                      "runs on the host");
  }
  return r;
}

bool has_moments(const DeviceParameter& p, const DeviceStepRule& r) {
  switch (r.kind) {
    case Kind::sgd:
      return true;
    case Kind::sgd_momentum:
    case Kind::sgd_nesterov:
      return p.momentum != nullptr;
    case Kind::adam:
      return p.momentum && p.velocity && (!r.amsgrad || p.maximum_velocity != nullptr);
    case Kind::rmsprop:
      return p.velocity != nullptr;
  }
  return false;
}

DeviceOptimizerTable::DeviceOptimizerTable(std::vector<DeviceParameter> parameters,
                                           DataType storage, DeviceMemory& memory)
    : parameters_(std::move(parameters)), storage_(storage), memory_(memory) {
  std::vector<std::size_t> offsets{0};
  for (std::size_t t = 0; t < parameters_.size(); ++t) {
    const DeviceParameter& p = parameters_[t];
    if (!p.values || !p.gradients || (storage != DataType::f32 && !p.storage_copy)) {
      throw InvalidArgument("optimizer step: tensor " + std::to_string(t) +
                            " lacks its values, gradients or " + to_string(storage) + " copy");
    }
    offsets.push_back(offsets.back() + p.count);
  }
  total_ = offsets.back();
  if (parameters_.empty()) return;
  const std::size_t table_bytes = parameters_.size() * sizeof(DeviceParameter);
  const std::size_t offset_bytes = offsets.size() * sizeof(std::size_t);
  device_parameters_ = memory.allocate(table_bytes, "the optimizer step's tensor table");
  device_offsets_ = memory.allocate(offset_bytes, "the optimizer step's tensor table");
  memory.copy_to_device(device_parameters_.get(), parameters_.data(), table_bytes);
  memory.copy_to_device(device_offsets_.get(), offsets.data(), offset_bytes);
}

void DeviceOptimizerTable::step(const DeviceStepRule& rule, cudaStream_t stream) const {
  if (!rule_) rule_ = memory_.allocate(sizeof(DeviceStepRule), "an optimizer step's rule");
  check(cudaMemcpyAsync(rule_.get(), &rule, sizeof rule, cudaMemcpyHostToDevice, stream),
        "copying an optimizer step's rule");
  step(rule, reinterpret_cast<const DeviceStepRule*>(rule_.get()), nullptr, stream);
  // The rule's host copy must outlive the copy.
  check(cudaStreamSynchronize(stream), "an optimizer step");
}

void DeviceOptimizerTable::check_finite(unsigned* flag, cudaStream_t stream) const {
  if (total_ == 0) return;
  finite_check_kernel<<<blocks_for(total_, 256), 256, 0, stream>>>(
      reinterpret_cast<const DeviceParameter*>(device_parameters_.get()),
      reinterpret_cast<const std::size_t*>(device_offsets_.get()),
      static_cast<int>(parameters_.size()), total_, flag);
  check_launch("finite_check");
}

void DeviceOptimizerTable::step(const DeviceStepRule& kind, const DeviceStepRule* rule,
                                const unsigned* skip, cudaStream_t stream) const {
  for (std::size_t t = 0; t < parameters_.size(); ++t) {
    if (!has_moments(parameters_[t], kind)) {
      throw InvalidArgument("optimizer step: tensor " + std::to_string(t) +
                            " lacks the moment buffers its rule needs");
    }
  }
  if (total_ == 0) return;
  const int tensors = static_cast<int>(parameters_.size());
  const unsigned blocks = blocks_for(total_, 256);
  dispatch(storage_, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, unsigned char>) {
      throw InvalidArgument("optimizer step: u8 storage has no trainable copy");
    } else {
      optimizer_step_kernel<T><<<blocks, 256, 0, stream>>>(
          reinterpret_cast<const DeviceParameter*>(device_parameters_.get()),
          reinterpret_cast<const std::size_t*>(device_offsets_.get()), tensors, total_, rule, skip);
    }
  });
  check_launch("optimizer_step");
}

}  // namespace cnngraph::detail::cuda
