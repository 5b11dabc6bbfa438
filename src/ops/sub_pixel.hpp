// The sub-pixel rearrangement's one formula, for every backend's shuffle (the CUDA kernel
// included, through nvcc).
#pragma once

#include "cnngraph/descriptor.hpp"
#include "ops/host_device.hpp"

namespace cnngraph::detail {

// The convolution channel that result channel c (of C) reads at offset (i, j) of its s x s
// block (i the row, j the column): see SubPixelOrder.
CNNGRAPH_HOST_DEVICE inline int sub_pixel_source_channel(SubPixelOrder order, int c, int i, int j,
                                                         int s, int C) {
  return order == SubPixelOrder::depth_to_space ? (i * s + j) * C + c : (c * s + i) * s + j;
}

}  // namespace cnngraph::detail
