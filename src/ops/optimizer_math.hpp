// The optimizer formulas, once, per element, for the host optimizers
// (kernels/optimizers.cpp) and the fused GPU step (backends/cuda/training/optimizer_step.cu,
// compiled by nvcc), as MPS documents them. The callers do the memory: they read a value and its
// moments, call these, and store what changed. The operations and their order are fixed
// here, so that both give the same bits.
#pragma once

#include <cmath>
#include <cstdint>

#include "cnngraph/optimizer.hpp"
#include "ops/host_device.hpp"

namespace cnngraph::detail {

// The gradient pre-processing of OptimizerDescriptor, in its order: clip, rescale, then the
// regularization term of the value `w`.
struct GradientPreprocessing {
  bool clip = false;
  float clip_min = 0, clip_max = 0, rescale = 1;
  RegularizationType regularization = RegularizationType::none;
  float regularization_scale = 0;
};

inline GradientPreprocessing gradient_preprocessing(const OptimizerDescriptor& d) {
  return {d.apply_gradient_clipping, d.gradient_clip_min,   d.gradient_clip_max,
          d.gradient_rescale,        d.regularization_type, d.regularization_scale};
}

CNNGRAPH_HOST_DEVICE inline float preprocessed_gradient(float g, float w,
                                                        const GradientPreprocessing& p) {
  if (p.clip) g = std::fmin(std::fmax(g, p.clip_min), p.clip_max);
  g *= p.rescale;
  if (p.regularization == RegularizationType::l1) {
    g += p.regularization_scale * static_cast<float>((w > 0.0f) - (w < 0.0f));
  } else if (p.regularization == RegularizationType::l2) {
    g += p.regularization_scale * w;
  }
  return g;
}

// SGD: w -= lr g.
CNNGRAPH_HOST_DEVICE inline void sgd_step(float& w, float g, float lr) { w -= lr * g; }

// SGD with momentum mu: m = mu m + lr g, w -= m.
CNNGRAPH_HOST_DEVICE inline void sgd_momentum_step(float& w, float& m, float g, float lr,
                                                   float mu) {
  m = mu * m + lr * g;
  w -= m;
}

// Nesterov momentum: m = mu m + g, w -= lr (g + mu m).
CNNGRAPH_HOST_DEVICE inline void sgd_nesterov_step(float& w, float& m, float g, float lr,
                                                   float mu) {
  m = mu * m + g;
  w -= lr * (g + mu * m);
}

// Adam's moments: m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2.
CNNGRAPH_HOST_DEVICE inline void adam_moments(float& m, float& v, float g, float b1, float b2) {
  m = b1 * m + (1.0f - b1) * g;
  v = b2 * v + (1.0f - b2) * g * g;
}

// AMSGrad's running maximum of v, which then stands for v in the update.
CNNGRAPH_HOST_DEVICE inline float amsgrad_maximum(float v_max, float v) {
  return std::fmax(v_max, v);
}

// Adam's update with the step's rate lr_t (adam_step_rate) and u = v (AMSGrad: its maximum).
CNNGRAPH_HOST_DEVICE inline void adam_update(float& w, float m, float u, float lr_t, float eps) {
  w -= lr_t * m / (std::sqrt(u) + eps);
}

// Adam's bias-corrected rate for step t (from 1), in double:
// lr sqrt(1 - beta2^t) / (1 - beta1^t).
inline float adam_step_rate(float learning_rate, double beta1, double beta2, std::uint64_t t) {
  const double td = static_cast<double>(t);
  return static_cast<float>(learning_rate * std::sqrt(1.0 - std::pow(beta2, td)) /
                            (1.0 - std::pow(beta1, td)));
}

// RMSProp: s = decay s + (1 - decay) g^2, w -= lr g / (sqrt(s) + eps).
CNNGRAPH_HOST_DEVICE inline void rmsprop_step(float& w, float& s, float g, float lr, float decay,
                                              float eps) {
  s = decay * s + (1.0f - decay) * g * g;
  w -= lr * g / (std::sqrt(s) + eps);
}

}  // namespace cnngraph::detail
