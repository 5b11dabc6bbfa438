// Launchers of kernels/pooling_softmax.cu: pooling, padding (and its crop) and soft-max. Counts are
// elements; `type` is the element type of the images.
#pragma once

#include "backends/cuda/cuda_common.hpp"

namespace cnngraph::detail::cuda {

// The f32 scratch a global pooling spreads over several blocks an image needs (small
// batches), or 0; pooling() takes it (or null: one block an image).
std::size_t pooling_scratch_bytes(DataType type, const PoolingOp& op);
void pooling(DataType type, const PoolingOp& op, const void* src, void* dst, void* scratch,
             cudaStream_t stream);
void padding(DataType type, const PaddingOp& op, const void* src, void* dst, cudaStream_t stream);
void softmax(DataType type, bool logarithmic, const void* src, void* dst, std::size_t pixels,
             int channels, cudaStream_t stream);

}  // namespace cnngraph::detail::cuda
