// The per-axis size and placement rules of MPS's padding policies.
#include "cnngraph/padding.hpp"

#include <algorithm>
#include <cstdint>
#include <string>

#include "cnngraph/checked_math.hpp"
#include "cnngraph/errors.hpp"

namespace cnngraph {

namespace {
// Geometry is computed in 64 bits, so that a stride or dilation near INT_MAX cannot wrap.
std::int64_t ceil_div(std::int64_t a, std::int64_t b) {
  return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

int as_int(std::int64_t value, const std::string& what) {
  const auto v = detail::fits_int(value);
  if (!v) {
    throw InvalidArgument(what + " = " + std::to_string(value) + " does not fit an int");
  }
  return *v;
}
}  // namespace

AxisGeometry forward_axis_geometry(int source_size, int kernel, int stride, int dilation,
                                   PaddingSize size, PaddingAlignment alignment,
                                   PaddingRemainder remainder) {
  AxisGeometry g;
  g.source_size = source_size;
  const std::int64_t K = (static_cast<std::int64_t>(kernel) - 1) * dilation + 1;
  g.kernel_size = as_int(K, "the dilated window (kernel " + std::to_string(kernel) +
                                " - 1) * dilation " + std::to_string(dilation) + " + 1");
  g.stride = stride;
  std::int64_t result = 0;
  switch (size) {
    case PaddingSize::valid:
      result = ceil_div(source_size - K + 1, stride);
      break;
    case PaddingSize::full:
      result = ceil_div(source_size + K - 1, stride);
      break;
    case PaddingSize::same:
    case PaddingSize::custom:
    case PaddingSize::explicit_pads:
      result = ceil_div(source_size, stride);
      break;
  }
  if (result <= 0) {
    throw ShapeError("source size " + std::to_string(source_size) + " is smaller than the " +
                     std::to_string(K) + "-pixel window: the valid result would be empty");
  }
  g.result_size = as_int(result, "the result size");
  // Every tap index p * stride - pad_before + r * dilation of the kernels then fits an int.
  const std::int64_t span = (result - 1) * stride + K;
  as_int(span, "the span (result size - 1) * stride + window of the windows");
  const std::int64_t extra = span - source_size;
  // A negative extra means the last window stops short of the end: the windows start at
  // the first pixel and the unused pixels are all at the end.
  std::int64_t before = 0;
  if (extra <= 0) {
    before = 0;
  } else if (alignment == PaddingAlignment::top_left) {
    before = extra;
  } else if (alignment == PaddingAlignment::bottom_right) {
    before = 0;
  } else {
    before = (extra + (remainder == PaddingRemainder::top_left ? 1 : 0)) / 2;
  }
  g.pad_before = static_cast<int>(before);
  g.pad_after = static_cast<int>(extra - before);
  return g;
}

std::int64_t explicit_result_size(std::int64_t source_size, std::int64_t dilated_kernel,
                                  std::int64_t stride, std::int64_t pad_before,
                                  std::int64_t pad_after, bool ceil_mode) {
  const std::int64_t span = source_size + pad_before + pad_after - dilated_kernel;
  if (span < 0 || stride < 1) return 0;
  std::int64_t result = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
  // ceil_mode keeps a partial last window only where it starts inside the image or its
  // leading padding, as ONNX and PyTorch do.
  if (ceil_mode && (result - 1) * stride >= source_size + pad_before) --result;
  return result;
}

}  // namespace cnngraph
