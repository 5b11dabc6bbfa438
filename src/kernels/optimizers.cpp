// The optimizer steps: gradient pre-processing (clip, rescale, regularize) fused with each
// rule in one pass over the tensor; the formulas are ops/optimizer_math.hpp's.
#include <cmath>

#include "cnngraph/errors.hpp"
#include "cnngraph/optimizer.hpp"
#include "kernels/flush_denormals.hpp"
#include "ops/optimizer_math.hpp"

namespace cnngraph {

void OptimizerState::validate(const std::vector<std::size_t>& lengths,
                              const std::string& where) const {
  if (tensors.size() > lengths.size()) {
    throw InvalidArgument(where + ": the optimizer state has " + std::to_string(tensors.size()) +
                          " tensors, the parameters " + std::to_string(lengths.size()));
  }
  for (std::size_t t = 0; t < tensors.size(); ++t) {
    const std::pair<const char*, const std::vector<float>*> moments[] = {
        {"momentum", &tensors[t].momentum},
        {"velocity", &tensors[t].velocity},
        {"maximum_velocity", &tensors[t].maximum_velocity}};
    for (const auto& [name, values] : moments) {
      if (!values->empty() && values->size() != lengths[t]) {
        throw InvalidArgument(where + ": optimizer " + name + " of tensor " + std::to_string(t) +
                              " has " + std::to_string(values->size()) + " values, expected " +
                              std::to_string(lengths[t]));
      }
      for (float v : *values) {
        if (!std::isfinite(v)) {
          throw InvalidArgument(where + ": optimizer " + name + " of tensor " + std::to_string(t) +
                                " holds a NaN or infinite value");
        }
      }
    }
  }
}

namespace {
// Tensors above this size are split over the OpenMP threads; below, the fork costs more.
constexpr std::ptrdiff_t kParallelElements = 1 << 15;

// body(i) for i in [0, count), vectorized, over the threads when large, denormals flushed.
template <typename Body>
void for_each_element(std::ptrdiff_t count, Body body) {
#pragma omp parallel if (count > kParallelElements)
  {
    const detail::FlushDenormals flush;
#pragma omp for simd schedule(static)
    for (std::ptrdiff_t i = 0; i < count; ++i) body(i);
  }
}
}  // namespace

void OptimizerDescriptor::validate(const std::string& where) const {
  const auto fail = [&](const std::string& field, float value, const std::string& rule) {
    throw InvalidArgument(where + ": OptimizerDescriptor::" + field + " is " +
                          std::to_string(value) + "; " + rule);
  };
  if (!(std::isfinite(learning_rate) && learning_rate >= 0.0f))
    fail("learning_rate", learning_rate, "it must be finite and >= 0");
  if (!std::isfinite(gradient_rescale))
    fail("gradient_rescale", gradient_rescale, "it must be finite");
  if (apply_gradient_clipping && !(gradient_clip_min <= gradient_clip_max)) {
    fail("gradient_clip_min", gradient_clip_min,
         "it must not exceed gradient_clip_max (" + std::to_string(gradient_clip_max) + ")");
  }
  if (!(std::isfinite(regularization_scale) && regularization_scale >= 0.0f))
    fail("regularization_scale", regularization_scale, "it must be finite and >= 0");
}

Optimizer::Optimizer(OptimizerDescriptor descriptor) : descriptor_(descriptor) {
  descriptor_.validate("optimizer");
}

void Optimizer::set_learning_rate(float learning_rate) {
  OptimizerDescriptor changed = descriptor_;
  changed.learning_rate = learning_rate;
  changed.validate(name() + " optimizer");
  descriptor_ = changed;
}

void Optimizer::step(std::span<const ParameterTensor> tensors, OptimizerState& state) const {
  for (std::size_t t = 0; t < tensors.size(); ++t) {
    if (tensors[t].values.size() != tensors[t].gradients.size()) {
      throw InvalidArgument(name() + " optimizer: tensor " + std::to_string(t) + " has " +
                            std::to_string(tensors[t].values.size()) + " values but " +
                            std::to_string(tensors[t].gradients.size()) + " gradients");
    }
  }
  if (state.tensors.size() < tensors.size()) state.tensors.resize(tensors.size());
  ++state.time_step;
  const OptimizerDescriptor& d = descriptor_;
  const detail::GradientPreprocessing pre = detail::gradient_preprocessing(d);
  const bool raw = !d.apply_gradient_clipping && d.gradient_rescale == 1.0f &&
                   d.regularization_type == RegularizationType::none;
  // Kept between steps: a fresh buffer per step would zero and fault in its pages each time.
  thread_local std::vector<float> processed;
  for (std::size_t t = 0; t < tensors.size(); ++t) {
    const ParameterTensor& tensor = tensors[t];
    if (raw) {
      apply(tensor.values, tensor.gradients, state.tensors[t], state.time_step);
      continue;
    }
    if (processed.size() < tensor.gradients.size()) processed.resize(tensor.gradients.size());
    const auto count = static_cast<std::ptrdiff_t>(tensor.gradients.size());
    const float* gradients = tensor.gradients.data();
    const float* values = tensor.values.data();
    float* out = processed.data();
    for_each_element(count, [&](std::ptrdiff_t i) {
      out[i] = detail::preprocessed_gradient(gradients[i], values[i], pre);
    });
    apply(tensor.values, std::span<const float>(out, tensor.gradients.size()), state.tensors[t],
          state.time_step);
  }
}

namespace {
void ensure_size(std::vector<float>& v, std::size_t n) {
  if (v.size() != n) v.assign(n, 0.0f);
}
}  // namespace

SgdOptimizer::SgdOptimizer(OptimizerDescriptor descriptor, float momentum, bool nesterov)
    : Optimizer(descriptor), momentum_(momentum), nesterov_(nesterov) {
  if (!(momentum >= 0.0f && momentum < 1.0f)) {
    throw InvalidArgument("sgd optimizer: momentum must be in [0, 1), got " +
                          std::to_string(momentum));
  }
}

void SgdOptimizer::apply(std::span<float> w, std::span<const float> g,
                         OptimizerState::Tensor& state, std::uint64_t) const {
  const float lr = learning_rate(), mu = momentum_;
  const auto count = static_cast<std::ptrdiff_t>(w.size());
  float* values = w.data();
  const float* gradients = g.data();
  if (mu == 0.0f && !nesterov_) {
    for_each_element(count,
                     [&](std::ptrdiff_t i) { detail::sgd_step(values[i], gradients[i], lr); });
    return;
  }
  ensure_size(state.momentum, w.size());
  float* m = state.momentum.data();
  if (nesterov_) {
    for_each_element(count, [&](std::ptrdiff_t i) {
      detail::sgd_nesterov_step(values[i], m[i], gradients[i], lr, mu);
    });
  } else {
    for_each_element(count, [&](std::ptrdiff_t i) {
      detail::sgd_momentum_step(values[i], m[i], gradients[i], lr, mu);
    });
  }
}

AdamOptimizer::AdamOptimizer(OptimizerDescriptor descriptor, double beta1, double beta2,
                             float epsilon, bool amsgrad)
    : Optimizer(descriptor), beta1_(beta1), beta2_(beta2), epsilon_(epsilon), amsgrad_(amsgrad) {
  if (!(beta1 >= 0.0 && beta1 < 1.0) || !(beta2 >= 0.0 && beta2 < 1.0)) {
    throw InvalidArgument("adam optimizer: beta1 and beta2 must be in [0, 1), got " +
                          std::to_string(beta1) + " and " + std::to_string(beta2));
  }
  if (!(epsilon >= 0.0f)) {
    throw InvalidArgument("adam optimizer: epsilon must be >= 0, got " + std::to_string(epsilon));
  }
}

void AdamOptimizer::apply(std::span<float> w, std::span<const float> g,
                          OptimizerState::Tensor& state, std::uint64_t t) const {
  ensure_size(state.momentum, w.size());
  ensure_size(state.velocity, w.size());
  if (amsgrad_) ensure_size(state.maximum_velocity, w.size());
  const float lr_t = detail::adam_step_rate(learning_rate(), beta1_, beta2_, t);
  const float b1 = static_cast<float>(beta1_), b2 = static_cast<float>(beta2_);
  const float eps = epsilon_;
  float* m = state.momentum.data();
  float* v = state.velocity.data();
  float* v_max = amsgrad_ ? state.maximum_velocity.data() : nullptr;
  float* values = w.data();
  const float* gradients = g.data();
  const auto count = static_cast<std::ptrdiff_t>(w.size());
  for_each_element(count, [&](std::ptrdiff_t i) {
    detail::adam_moments(m[i], v[i], gradients[i], b1, b2);
    float u = v[i];
    if (v_max) u = v_max[i] = detail::amsgrad_maximum(v_max[i], v[i]);
    detail::adam_update(values[i], m[i], u, lr_t, eps);
  });
}

RmsPropOptimizer::RmsPropOptimizer(OptimizerDescriptor descriptor, double decay, float epsilon)
    : Optimizer(descriptor), decay_(decay), epsilon_(epsilon) {
  if (!(decay >= 0.0 && decay < 1.0)) {
    throw InvalidArgument("rmsprop optimizer: decay must be in [0, 1), got " +
                          std::to_string(decay));
  }
  if (!(epsilon >= 0.0f)) {
    throw InvalidArgument("rmsprop optimizer: epsilon must be >= 0, got " +
                          std::to_string(epsilon));
  }
}

void RmsPropOptimizer::apply(std::span<float> w, std::span<const float> g,
                             OptimizerState::Tensor& state, std::uint64_t) const {
  ensure_size(state.velocity, w.size());
  const float lr = learning_rate(), decay = static_cast<float>(decay_), eps = epsilon_;
  float* s = state.velocity.data();
  float* values = w.data();
  const float* gradients = g.data();
  const auto count = static_cast<std::ptrdiff_t>(w.size());
  for_each_element(count, [&](std::ptrdiff_t i) {
    detail::rmsprop_step(values[i], s[i], gradients[i], lr, decay, eps);
  });
}

}  // namespace cnngraph
