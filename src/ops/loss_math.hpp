// The loss formulas, once, for every backend: each element's loss and gradient (the
// per-element types), and the divisor of a reduction. Compiled for the host and, in the
// CUDA kernels, for the device.
#pragma once

#include <cmath>
#include <cstddef>

#include "cnngraph/loss.hpp"
#include "ops/host_device.hpp"

namespace cnngraph::detail {

template <typename T>
struct LossElement {
  T loss, gradient;
};

// Prediction y against label t, for every type but the per-pixel ones (soft-max cross
// entropy and cosine distance, which the backends compute over a pixel's channels).
// Descriptor: LossDescriptor, or a copy of its numbers with the same field names.
template <typename T, typename Descriptor>
CNNGRAPH_HOST_DEVICE LossElement<T> element_loss(const Descriptor& d, T y, T t) {
  switch (d.type) {
    case LossType::mean_absolute_error:
      return {std::fabs(y - t), static_cast<T>((y > t) - (y < t))};
    case LossType::mean_squared_error:
      return {(y - t) * (y - t), T(2) * (y - t)};
    case LossType::sigmoid_cross_entropy: {
      const T s = t * (T(1) - T(d.label_smoothing)) + T(0.5) * T(d.label_smoothing);
      return {(y > T(0) ? y : T(0)) - y * s + std::log1p(std::exp(-std::fabs(y))),
              T(1) / (T(1) + std::exp(-y)) - s};
    }
    case LossType::categorical_cross_entropy:
      return {t == T(0) ? T(0) : -t * std::log(y), t == T(0) ? T(0) : -t / y};
    case LossType::hinge: {
      const T sign = T(2) * t - T(1);
      return {T(1) - sign * y > T(0) ? T(1) - sign * y : T(0),
              T(1) - sign * y > T(0) ? -sign : T(0)};
    }
    case LossType::huber: {
      const T e = y - t, delta = T(d.delta);
      if (std::fabs(e) <= delta) return {T(0.5) * e * e, e};
      return {delta * (std::fabs(e) - T(0.5) * delta), e > T(0) ? delta : -delta};
    }
    case LossType::log: {
      const T eps = T(d.epsilon);
      return {-t * std::log(y + eps) - (T(1) - t) * std::log(T(1) - y + eps),
              -t / (y + eps) + (T(1) - t) / (T(1) - y + eps)};
    }
    case LossType::kullback_leibler_divergence:
      return {t > T(0) ? t * (std::log(t) - y) : T(0), -t};
    case LossType::softmax_cross_entropy:
    case LossType::cosine_distance:
      break;  // per pixel
  }
  return {T(0), T(0)};
}

CNNGRAPH_HOST_DEVICE inline bool per_pixel_loss(LossType type) {
  return type == LossType::softmax_cross_entropy || type == LossType::cosine_distance;
}

// What the summed loss is divided by: 1 (sum, none), the number of terms (mean: elements,
// or pixels for the per-pixel types), or the number of non-zero label weights (per pixel:
// rounded up to whole pixels); infinity when there is none.
CNNGRAPH_HOST_DEVICE inline double loss_divisor(ReductionType reduction, bool per_pixel,
                                                std::size_t elements, std::size_t channels,
                                                std::size_t non_zero_weights) {
  if (reduction == ReductionType::mean)
    return static_cast<double>(per_pixel ? elements / channels : elements);
  if (reduction == ReductionType::sum_by_non_zero_weights) {
    const std::size_t terms =
        per_pixel ? (non_zero_weights + channels - 1) / channels : non_zero_weights;
    return terms == 0 ? HUGE_VAL : static_cast<double>(terms);
  }
  return 1.0;
}

}  // namespace cnngraph::detail
