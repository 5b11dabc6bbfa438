// Launchers of kernels/depthwise_convolution.cu: the depthwise convolution. Counts are elements;
// `type` is the element type of the images.
#pragma once

#include "backends/cuda/cuda_common.hpp"

namespace cnngraph::detail::cuda {

// Depthwise convolution (groups == input channels == output channels), weights in
// [kernel_y][kernel_x][channel] order; images under 2^31 elements.
void depthwise_convolution(DataType type, const ConvolutionOp& op, const void* src,
                           const void* weights_hwc, const DeviceEpilogue& e, void* dst,
                           cudaStream_t stream);

}  // namespace cnngraph::detail::cuda
