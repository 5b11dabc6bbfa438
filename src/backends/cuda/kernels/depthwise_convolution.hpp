// Launchers of kernels/depthwise_convolution.cu: the depthwise convolution. Counts are elements;
// `type` is the element type of the images.
#pragma once

#include <string>
#include <vector>

#include "backends/cuda/cuda_common.hpp"

namespace cnngraph::detail::cuda {

// The kernel's variants. `untiled` takes every shape; the tiled ones (a block stages a
// tile of the source plus its halo in shared memory once, a thread computes `rows` result
// rows of one column and one 16-byte channel vector, `threads` threads a block) take
// square 3x3 and 5x5 kernels with equal strides of 1 or 2, any dilation and padding, over
// channel counts that fill 16-byte vectors. The register-tiled ones (`cols` > 0: a thread
// computes `rows` x `cols` results of two channels, its weights and each source pixel it
// loads held in f32 registers) take the same kernels and strides undilated, over even
// channel counts.
struct DepthwiseVariant {
  int rows = 0;  // 0: untiled
  int threads = 0;
  int cols = 0;              // > 0: register-tiled
  std::string name() const;  // "untiled", "tiled-r4-t256", "regs-r4-c4", ...
};

// The variants that take `op` in `type`, the default (fastest measured by design) first.
std::vector<DepthwiseVariant> depthwise_variants(DataType type, const ConvolutionOp& op);

// Depthwise convolution (groups == input channels == output channels), weights in
// [kernel_y][kernel_x][channel] order; images under 2^31 elements. `variant` must be one
// of depthwise_variants(type, op).
void depthwise_convolution(DataType type, const ConvolutionOp& op, const DepthwiseVariant& variant,
                           const void* src, const void* weights_hwc, const DeviceEpilogue& e,
                           void* dst, cudaStream_t stream);

}  // namespace cnngraph::detail::cuda
