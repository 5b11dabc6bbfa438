// The per-axis size and placement rules of MPS's padding policies.
#include "cnngraph/padding.hpp"

#include <algorithm>
#include <string>

#include "cnngraph/errors.hpp"

namespace cnngraph {

namespace {
int ceil_div(int a, int b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }
}  // namespace

AxisGeometry forward_axis_geometry(int source_size, int kernel, int stride, int dilation,
                                   PaddingSize size, PaddingAlignment alignment,
                                   PaddingRemainder remainder) {
  AxisGeometry g;
  g.source_size = source_size;
  g.kernel_size = (kernel - 1) * dilation + 1;
  g.stride = stride;
  const int K = g.kernel_size;
  switch (size) {
    case PaddingSize::valid:
      g.result_size = ceil_div(source_size - K + 1, stride);
      break;
    case PaddingSize::full:
      g.result_size = ceil_div(source_size + K - 1, stride);
      break;
    case PaddingSize::same:
    case PaddingSize::custom:
      g.result_size = ceil_div(source_size, stride);
      break;
  }
  if (g.result_size <= 0) {
    throw ShapeError("source size " + std::to_string(source_size) + " is smaller than the " +
                     std::to_string(K) + "-pixel window: the valid result would be empty");
  }
  const int extra = (g.result_size - 1) * stride + K - source_size;
  // A negative extra means the last window stops short of the end: the windows start at
  // the first pixel and the unused pixels are all at the end.
  if (extra <= 0) {
    g.pad_before = 0;
  } else if (alignment == PaddingAlignment::top_left) {
    g.pad_before = extra;
  } else if (alignment == PaddingAlignment::bottom_right) {
    g.pad_before = 0;
  } else {
    g.pad_before = (extra + (remainder == PaddingRemainder::top_left ? 1 : 0)) / 2;
  }
  g.pad_after = extra - g.pad_before;
  return g;
}

}  // namespace cnngraph
