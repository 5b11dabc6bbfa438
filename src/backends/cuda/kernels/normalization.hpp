// Launchers of kernels/normalization.cu: local response normalization (cross-channel and spatial)
// and its gradient. Counts are elements; `type` is the element type of the images.
#pragma once

#include "backends/cuda/cuda_common.hpp"

namespace cnngraph::detail::cuda {

void local_response_normalization(DataType type, const CrossChannelNormalizationOp& op,
                                  const void* src, void* dst, cudaStream_t stream);
// Its gradient from diff_dst and the forward src; `scratch` holds 2 f32 per element.
void local_response_normalization_gradient(DataType type, const CrossChannelNormalizationOp& op,
                                           const void* diff_dst, const void* src, void* diff_src,
                                           float* scratch, cudaStream_t stream);

}  // namespace cnngraph::detail::cuda
