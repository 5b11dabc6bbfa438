// Every neuron at extreme inputs against its formula evaluated in long double (wide enough
// that exp(1e4) is finite), shared by the CPU and the CUDA tests.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "support.hpp"

namespace cnngraph::testing {

// Far past float's exp overflow (88.7) on both sides, and ordinary values around zero.
inline std::vector<float> extreme_neuron_inputs() {
  return {-1e4f, -1000.0f, -100.0f, -88.8f, -50.0f, -20.0f, -1.0f,   -0.5f, 0.0f,
          0.5f,  1.0f,     20.0f,   50.0f,  88.8f,  100.0f, 1000.0f, 1e4f};
}

// Each type with MPS's defaults, plus large and small b where b scales the input.
inline std::vector<NeuronDescriptor> extreme_neuron_cases() {
  std::vector<NeuronDescriptor> all;
  for (int t = 0; t <= static_cast<int>(NeuronType::silu); ++t) {
    const auto type = static_cast<NeuronType>(t);
    if (type == NeuronType::prelu) {
      all.push_back(NeuronDescriptor::make_prelu({0.25f}));
    } else if (type == NeuronType::logarithm) {
      all.push_back(NeuronDescriptor::make(type, 1.0f, 2e4f, -1.0f));  // base e, positive
    } else if (type == NeuronType::power) {
      all.push_back(NeuronDescriptor::make(type, 1.0f, 0.0f, 2.0f));
    } else {
      all.push_back(NeuronDescriptor::make(type));
    }
  }
  all.push_back(NeuronDescriptor::make(NeuronType::relu, 0.1f));
  all.push_back(NeuronDescriptor::make(NeuronType::tanh, 1.5f, 100.0f));
  all.push_back(NeuronDescriptor::make(NeuronType::soft_plus, 0.5f, 50.0f));
  all.push_back(NeuronDescriptor::make(NeuronType::soft_plus, 2.0f, 0.01f));
  all.push_back(NeuronDescriptor::make(NeuronType::soft_plus, 1.0f, -1.0f));
  all.push_back(NeuronDescriptor::make(NeuronType::elu, 0.5f));
  all.push_back(NeuronDescriptor::make(NeuronType::power, 1.0f, 0.0f, 3.0f));
  all.push_back(NeuronDescriptor::make(NeuronType::exponential, 0.01f, 0.0f, 2.0f));
  all.push_back(NeuronDescriptor::make(NeuronType::logarithm, 1e-3f, 20.0f, 10.0f));
  return all;
}

inline std::string neuron_case_name(const NeuronDescriptor& n) {
  return to_string(n.type) + " a=" + std::to_string(n.a) + " b=" + std::to_string(n.b) +
         " c=" + std::to_string(n.c);
}

// log(1 + exp(v)); past 11000 exp overflows even long double, and v is exact to far more
// digits than float holds.
inline long double long_soft_plus(long double v) {
  return v > 11000.0L ? v : std::log1p(std::exp(v));
}

inline long double expected_neuron_value(const NeuronDescriptor& n, long double x) {
  const long double a = n.a, b = n.b, c = n.c;
  switch (n.type) {
    case NeuronType::none:
      return x;
    case NeuronType::relu:
      return x >= 0 ? x : a * x;
    case NeuronType::linear:
      return a * x + b;
    case NeuronType::sigmoid:
      return 1.0L / (1.0L + std::exp(-x));
    case NeuronType::hard_sigmoid:
      return std::fmin(std::fmax(a * x + b, 0.0L), 1.0L);
    case NeuronType::tanh:
      return a * std::tanh(b * x);
    case NeuronType::absolute:
      return std::fabs(x);
    case NeuronType::soft_plus:
      return a * long_soft_plus(b * x);
    case NeuronType::soft_sign:
      return x / (1.0L + std::fabs(x));
    case NeuronType::elu:
      return x >= 0 ? x : a * (std::exp(x) - 1.0L);
    case NeuronType::prelu:
      return x >= 0 ? x : n.prelu_slopes[0] * x;
    case NeuronType::relu_n:
      return std::fmin(x >= 0 ? x : a * x, b);
    case NeuronType::power:
      return std::pow(a * x + b, c);
    case NeuronType::exponential:
      return c > 0 ? std::pow(c, a * x + b) : std::exp(a * x + b);
    case NeuronType::logarithm:
      return c > 0 ? std::log(a * x + b) / std::log(c) : std::log(a * x + b);
    case NeuronType::gelu:
      return 0.5L * x * std::erfc(-x / std::sqrt(2.0L));
    case NeuronType::silu:
      return x / (1.0L + std::exp(-x));
  }
  return x;
}

// The derivative, with the library's one-sided conventions at the kinks (x = 0).
inline long double expected_neuron_derivative(const NeuronDescriptor& n, long double x) {
  const long double a = n.a, b = n.b, c = n.c;
  switch (n.type) {
    case NeuronType::none:
      return 1;
    case NeuronType::relu:
      return x > 0 ? 1 : a;
    case NeuronType::linear:
      return a;
    case NeuronType::sigmoid: {
      const long double s = 1.0L / (1.0L + std::exp(-x));
      return s * (1 - s);
    }
    case NeuronType::hard_sigmoid: {
      const long double v = a * x + b;
      return v > 0 && v < 1 ? a : 0;
    }
    case NeuronType::tanh: {
      const long double ch = std::cosh(b * x);
      return std::isinf(ch) ? 0.0L : a * b / (ch * ch);
    }
    case NeuronType::absolute:
      return x > 0 ? 1 : (x < 0 ? -1 : 0);
    case NeuronType::soft_plus:
      return a * b / (1.0L + std::exp(-b * x));
    case NeuronType::soft_sign:
      return 1.0L / ((1.0L + std::fabs(x)) * (1.0L + std::fabs(x)));
    case NeuronType::elu:
      return x > 0 ? 1 : a * std::exp(x);
    case NeuronType::prelu:
      return x > 0 ? 1 : n.prelu_slopes[0];
    case NeuronType::relu_n: {
      const long double v = x >= 0 ? x : a * x;
      return v < b ? (x > 0 ? 1 : a) : 0;
    }
    case NeuronType::power:
      return c * a * std::pow(a * x + b, c - 1);
    case NeuronType::exponential:
      return c > 0 ? std::log(c) * a * std::pow(c, a * x + b) : a * std::exp(a * x + b);
    case NeuronType::logarithm:
      return c > 0 ? a / ((a * x + b) * std::log(c)) : a / (a * x + b);
    case NeuronType::gelu:
      return 0.5L * std::erfc(-x / std::sqrt(2.0L)) +
             x * std::exp(-x * x / 2) / std::sqrt(2.0L * 3.14159265358979323846L);
    case NeuronType::silu: {
      const long double s = 1.0L / (1.0L + std::exp(-x));
      return s + x * s * (1.0L - s);
    }
  }
  return 1;
}

// got[i] against expected(inputs[i]) rounded to float: an infinity must be matched exactly,
// anything else to |got - expected| <= tolerance * (1 + |expected|).
template <typename Expected>
void expect_matches_formula(const std::vector<float>& got, const std::vector<float>& inputs,
                            Expected expected, double tolerance, const std::string& what) {
  ASSERT_EQ(got.size(), inputs.size()) << what;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const float want = static_cast<float>(expected(static_cast<long double>(inputs[i])));
    if (std::isinf(want)) {
      EXPECT_EQ(got[i], want) << what << " at x = " << inputs[i];
    } else {
      EXPECT_LE(std::fabs(static_cast<double>(got[i]) - want), tolerance * (1.0 + std::fabs(want)))
          << what << " at x = " << inputs[i] << ": got " << got[i] << ", expected " << want;
    }
  }
}

}  // namespace cnngraph::testing
