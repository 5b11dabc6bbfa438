// Launchers of kernels/training_ops.cu: gradients of neurons, pooling, dropout, soft-max and
// arithmetic. Counts
// are elements; `type` is the element type of the images.
#pragma once

#include "backends/cuda/cuda_common.hpp"

namespace cnngraph::detail::cuda {

// diff_src = diff_dst * neuron'(src), channel = index % channels.
void neuron_gradient(DataType type, const DeviceNeuron& n, const void* diff_dst, const void* src,
                     void* diff_src, std::size_t count, int channels, cudaStream_t stream);
// diff_src (op.dst_shape) from diff_dst (op.src_shapes[0]) and the forward src. Max
// pooling first records each window's first maximum in `argmax` (pooling_argmax_bytes of
// device memory, 0 for average pooling: then null). With op.kind
// fused_max_pooling_relu_gradient, diff_src is also multiplied by relu'(src).
std::size_t pooling_argmax_bytes(const PoolingGradientOp& op);
void pooling_gradient(DataType type, const PoolingGradientOp& op, const void* diff_dst,
                      const void* src, void* diff_src, void* argmax, cudaStream_t stream);
// The relu gradient of a sum: dst = (a + b) * relu'(mask), mask a relu's source or result
// (training fusion).
void addition_relu_gradient(DataType type, const void* a, const void* b, const void* mask,
                            void* dst, std::size_t count, cudaStream_t stream);
// dst = src * mask / keep, the mask of kernels/dropout_mask.hpp for the batch at *batch.
void dropout(DataType type, float keep_probability, std::uint64_t seed, const std::uint64_t* batch,
             const void* src, void* dst, std::size_t count, cudaStream_t stream);
// diff_src (op.dst_shape) of an arithmetic node's source op.source_index from diff_dst (the
// result's size) and, for a product or quotient, the forward primary and secondary (null for
// a sum or difference): one thread per diff_src element sums over the result elements that
// read it.
void arithmetic_gradient(DataType type, const ArithmeticGradientOp& op, const void* diff_dst,
                         const void* primary, const void* secondary, void* diff_src,
                         cudaStream_t stream);
// From diff_dst and the forward dst (the soft-max or log-soft-max itself).
void softmax_gradient(DataType type, bool logarithmic, const void* diff_dst, const void* dst,
                      void* diff_src, std::size_t pixels, int channels, cudaStream_t stream);

}  // namespace cnngraph::detail::cuda
