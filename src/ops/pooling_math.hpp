// The divisor of an average-pooling window, shared by the host kernels and the CUDA ones.
#pragma once

#include "ops/host_device.hpp"
#include "ops/op.hpp"

namespace cnngraph::detail {

// The pixels of the window [start, start + kernel) of one axis that the divisor counts: those
// inside the source [0, size), or, counting padding, those inside the padded source
// [-pad_before, size + padded_after). Zero or more.
CNNGRAPH_HOST_DEVICE inline int divisor_extent(int start, int kernel, int size, int pad_before,
                                               bool counts_padding, int padded_after) {
  const int lo = counts_padding ? -pad_before : 0;
  const int hi = counts_padding ? size + padded_after : size;
  const int begin = start > lo ? start : lo;
  const int end = start + kernel < hi ? start + kernel : hi;
  return end > begin ? end - begin : 0;
}

// The divisor of result (p, q)'s window when `d` counts padding (host kernels).
inline int padded_divisor(const AverageDivisor& d, const AxisGeometry& x, const AxisGeometry& y,
                          int height, int width, int p, int q) {
  return divisor_extent(p * y.stride - y.pad_before, y.kernel_size, height, y.pad_before, true,
                        d.padded_after_y) *
         divisor_extent(q * x.stride - x.pad_before, x.kernel_size, width, x.pad_before, true,
                        d.padded_after_x);
}

}  // namespace cnngraph::detail
