// Launchers of kernels/direct_convolution.cu: the direct convolution. Counts are elements;
// `type` is the element type of the images.
#pragma once

#include "backends/cuda/cuda_common.hpp"

namespace cnngraph::detail::cuda {

// The direct convolution for what cuDNN does not take: f32 accumulation, then the epilogue.
void direct_convolution(DataType type, const ConvolutionOp& op, const void* src,
                        const void* weights, const DeviceEpilogue& e, void* dst,
                        cudaStream_t stream);

}  // namespace cnngraph::detail::cuda
