// The arithmetic formulas and the broadcast index of ArithmeticNode, once, for every backend:
// the CPU loops and the CUDA kernels (compiled by nvcc).
#pragma once

#include <cstddef>

#include "cnngraph/image.hpp"
#include "cnngraph/nodes.hpp"
#include "ops/host_device.hpp"

namespace cnngraph::detail {

// The node kind of each operation.
constexpr const char* arithmetic_name(ArithmeticOperation operation) {
  switch (operation) {
    case ArithmeticOperation::addition:
      return "addition";
    case ArithmeticOperation::subtraction:
      return "subtraction";
    case ArithmeticOperation::multiplication:
      return "multiplication";
    case ArithmeticOperation::division:
      return "division";
  }
  return "?";
}

template <typename T>
CNNGRAPH_HOST_DEVICE T apply_arithmetic(ArithmeticOperation operation, T a, T b) {
  switch (operation) {
    case ArithmeticOperation::addition:
      return a + b;
    case ArithmeticOperation::subtraction:
      return a - b;
    case ArithmeticOperation::multiplication:
      return a * b;
    case ArithmeticOperation::division:
      return a / b;
  }
  return a + b;
}

// d(a op b) / d(source `index`) times the result's gradient g: sum g, g and -g, product
// g * b and g * a, quotient g / b and -g * a / b^2 (as (g / b) * (a / b), which overflows
// only where the gradient itself does).
template <typename T>
CNNGRAPH_HOST_DEVICE T arithmetic_gradient_term(ArithmeticOperation operation, int index, T g, T a,
                                                T b) {
  switch (operation) {
    case ArithmeticOperation::addition:
      return g;
    case ArithmeticOperation::subtraction:
      return index == 0 ? g : -g;
    case ArithmeticOperation::multiplication:
      return index == 0 ? g * b : g * a;
    case ArithmeticOperation::division:
      return index == 0 ? g / b : -(g / b) * (a / b);
  }
  return g;
}

// Where a source of size `source` sits in a result of size `result` that broadcasts it: the
// source's element strides per result dimension, 0 along a dimension it is broadcast along.
struct BroadcastIndex {
  int height = 1, width = 1, channels = 1;  // the result's
  std::size_t n = 0, y = 0, x = 0, c = 0;   // the source's strides
};

inline BroadcastIndex broadcast_index(const ImageShape& source, const ImageShape& result) {
  BroadcastIndex b;
  b.height = result.height;
  b.width = result.width;
  b.channels = result.channels;
  const std::size_t c = 1, x = c * source.channels, y = x * source.width, n = y * source.height;
  b.c = source.channels == 1 ? 0 : c;
  b.x = source.width == 1 ? 0 : x;
  b.y = source.height == 1 ? 0 : y;
  b.n = source.batch == 1 ? 0 : n;
  return b;
}

// The source element that result element `i` (flat NHWC) reads.
CNNGRAPH_HOST_DEVICE inline std::size_t source_offset(const BroadcastIndex& b, std::size_t i) {
  const std::size_t c = i % b.channels;
  std::size_t rest = i / b.channels;
  const std::size_t x = rest % b.width;
  rest /= b.width;
  const std::size_t y = rest % b.height;
  return rest / b.height * b.n + y * b.y + x * b.x + c * b.c;
}

}  // namespace cnngraph::detail
