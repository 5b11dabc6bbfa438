// The neuron formulas, once, for every backend that evaluates them element by element: the
// CPU backends with a NeuronDescriptor, the CUDA kernels (compiled by nvcc) with a plain
// copy of it whose prelu slopes live in device memory.
#pragma once

#include <cmath>
#include <cstddef>

#include "cnngraph/descriptor.hpp"
#include "ops/host_device.hpp"

namespace cnngraph::detail {

inline float prelu_slope(const NeuronDescriptor& n, int channel) {
  return n.prelu_slopes[static_cast<std::size_t>(channel)];
}

// The formulas below avoid exp of a large positive argument: in float exp overflows once
// its argument passes about 88.7 (in double about 709), which would turn finite results
// such as soft_plus(100) = 100 into inf.

// 1 / (1 + exp(-x)), exact in both tails.
template <typename T>
CNNGRAPH_HOST_DEVICE T stable_sigmoid(T x) {
  if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);
  return e / (T(1) + e);
}

// log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)).
template <typename T>
CNNGRAPH_HOST_DEVICE T stable_soft_plus(T x) {
  return std::fmax(x, T(0)) + std::log1p(std::exp(-std::fabs(x)));
}

// Neuron is NeuronDescriptor or any type with type, a, b, c and a prelu_slope() overload.
template <typename T, typename Neuron>
CNNGRAPH_HOST_DEVICE T apply_neuron(const Neuron& n, T x, int channel) {
  const T a = static_cast<T>(n.a), b = static_cast<T>(n.b), c = static_cast<T>(n.c);
  switch (n.type) {
    case NeuronType::none:
      return x;
    case NeuronType::relu:
      return x >= T(0) ? x : a * x;
    case NeuronType::linear:
      return a * x + b;
    case NeuronType::sigmoid:
      return stable_sigmoid(x);
    case NeuronType::hard_sigmoid:
      return std::fmin(std::fmax(a * x + b, T(0)), T(1));
    case NeuronType::tanh:
      return a * std::tanh(b * x);
    case NeuronType::absolute:
      return std::fabs(x);
    case NeuronType::soft_plus:
      return a * stable_soft_plus(b * x);
    case NeuronType::soft_sign:
      return x / (T(1) + std::fabs(x));
    case NeuronType::elu:
      return x >= T(0) ? x : a * std::expm1(x);
    case NeuronType::prelu:
      return x >= T(0) ? x : static_cast<T>(prelu_slope(n, channel)) * x;
    case NeuronType::relu_n:
      return std::fmin(x >= T(0) ? x : a * x, b);
    case NeuronType::power:
      return std::pow(a * x + b, c);
    case NeuronType::exponential:
      return c > T(0) ? std::pow(c, a * x + b) : std::exp(a * x + b);
    case NeuronType::logarithm:
      return c > T(0) ? std::log(a * x + b) / std::log(c) : std::log(a * x + b);
    // erfc keeps the small negative tail that 1 + erf(x) would cancel to zero.
    case NeuronType::gelu:
      return T(0.5) * x * std::erfc(-x / std::sqrt(T(2)));
    case NeuronType::silu:
      return x * stable_sigmoid(x);
  }
  return x;
}

// d neuron(x) / dx. At the kinks of relu, prelu, elu and absolute the right-hand side is
// used for x > 0 and the left-hand one at 0 (PyTorch's convention: relu'(0) = 0).
template <typename T, typename Neuron>
CNNGRAPH_HOST_DEVICE T neuron_derivative(const Neuron& n, T x, int channel) {
  const T a = static_cast<T>(n.a), b = static_cast<T>(n.b), c = static_cast<T>(n.c);
  switch (n.type) {
    case NeuronType::none:
      return T(1);
    case NeuronType::relu:
      return x > T(0) ? T(1) : a;
    case NeuronType::linear:
      return a;
    case NeuronType::sigmoid: {
      // s (1 - s) = e / (1 + e)^2 with e = exp(-|x|): no overflow, no cancellation.
      const T e = std::exp(-std::fabs(x));
      return e / ((T(1) + e) * (T(1) + e));
    }
    case NeuronType::hard_sigmoid: {
      const T v = a * x + b;
      return v > T(0) && v < T(1) ? a : T(0);
    }
    case NeuronType::tanh: {
      const T t = std::tanh(b * x);
      return a * b * (T(1) - t * t);
    }
    case NeuronType::absolute:
      return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
    case NeuronType::soft_plus:
      return a * b * stable_sigmoid(b * x);
    case NeuronType::soft_sign: {
      const T d = T(1) + std::fabs(x);
      return T(1) / (d * d);
    }
    case NeuronType::elu:
      return x > T(0) ? T(1) : a * std::exp(x);
    case NeuronType::prelu:
      return x > T(0) ? T(1) : static_cast<T>(prelu_slope(n, channel));
    case NeuronType::relu_n: {
      const T v = x >= T(0) ? x : a * x;
      return v < b ? (x > T(0) ? T(1) : a) : T(0);
    }
    case NeuronType::power:
      return c * a * std::pow(a * x + b, c - T(1));
    case NeuronType::exponential:
      return c > T(0) ? std::log(c) * a * std::pow(c, a * x + b) : a * std::exp(a * x + b);
    case NeuronType::logarithm:
      return c > T(0) ? a / ((a * x + b) * std::log(c)) : a / (a * x + b);
    case NeuronType::gelu: {
      const T pi = T(3.14159265358979323846);
      return T(0.5) * std::erfc(-x / std::sqrt(T(2))) +
             x * std::exp(-x * x / T(2)) / std::sqrt(T(2) * pi);
    }
    case NeuronType::silu: {
      const T s = stable_sigmoid(x);
      return s + x * s * (T(1) - s);
    }
  }
  return T(1);
}

// The relu that training fusion folds into a batch norm's passes: a plain relu (ceiling
// +infinity) or a relu_n of slope 0, min(max(x, 0), ceiling), each as apply_neuron writes it
// (relu_n's min with an infinite ceiling would turn a not-a-number into one).
template <typename T>
CNNGRAPH_HOST_DEVICE T fused_relu(T x, T ceiling) {
  const T v = x >= T(0) ? x : T(0) * x;
  return ceiling < T(INFINITY) ? std::fmin(v, ceiling) : v;
}

// Whether that relu's derivative is 1 at `mask` (its source or its result; 0 elsewhere):
// 0 < mask < ceiling, as neuron_derivative has it for either neuron at its source, and at
// its result too wherever the storage type holds the ceiling exactly.
template <typename T>
CNNGRAPH_HOST_DEVICE bool fused_relu_passes(T mask, T ceiling) {
  return mask > T(0) && (mask < ceiling || !(ceiling < T(INFINITY)));
}

}  // namespace cnngraph::detail
