// Launchers of kernels/channel_reduction.cu: per-channel reductions in a fixed order, and batch
// normalization in training mode built on them. Counts are elements; `type` is the element type of
// the images.
#pragma once

#include <cmath>

#include "backends/cuda/cuda_common.hpp"

namespace cnngraph::detail::cuda {

// Per-channel sums over NHWC pixels in a fixed order; `scratch`
// holds channel_reduction_scratch_bytes(pixels, channels). sums[c] = scale * sum of src.
std::size_t channel_reduction_scratch_bytes(std::size_t pixels, int channels);
void channel_sums(DataType type, const void* src, std::size_t pixels, int channels, float scale,
                  float* sums, float* scratch, cudaStream_t stream);
// Batch normalization in training mode, statistics and parameters f32 on the device: the
// batch's mean and biased variance; dst = (src - mean) / sqrt(variance + epsilon) * gamma
// + beta; and the gradient (diff_src, and the sums of dy and dy * xhat as beta's and
// gamma's gradients).
void batch_statistics(DataType type, const void* src, std::size_t pixels, int channels, float* mean,
                      float* variance, float* scratch, cudaStream_t stream);
// With `relu`, dst = max(that, 0) in the same pass (training fusion).
void batch_normalize(DataType type, const void* src, const float* mean, const float* variance,
                     const float* gamma, const float* beta, float epsilon, void* dst,
                     std::size_t pixels, int channels, float* scratch, cudaStream_t stream,
                     bool relu = false, float relu_ceiling = INFINITY);
// With a `mask` (a relu's source or result; null: none), dy counts only where the relu
// passes it (fused_relu_passes with `relu_ceiling`, ops/neuron_math.hpp): the relu's
// gradient folded into both passes (training fusion). With `beta` too, the
// mask is this batch norm's own result, as batch_normalize wrote it with these statistics,
// gamma and beta: it is recomputed from src instead of read.
void batch_normalization_gradient(DataType type, const void* diff_dst, const void* src,
                                  const float* mean, const float* variance, const float* gamma,
                                  float epsilon, void* diff_src, float* gamma_gradient,
                                  float* beta_gradient, std::size_t pixels, int channels,
                                  float* scratch, cudaStream_t stream, const void* mask = nullptr,
                                  const float* beta = nullptr, float relu_ceiling = INFINITY);

// A source of normalized_sum_relu: with `mean` (and the rest), the source of a batch norm
// whose result is summed without being stored; without, a source read as it is.
struct SummedSource {
  const void* src = nullptr;
  const float* mean = nullptr;
  const float* variance = nullptr;
  const float* gamma = nullptr;
  const float* beta = nullptr;
  float epsilon = 0.0f;
};
// dst = relu(a' + b'): s' is s normalized as batch_normalize writes it (rounded to the
// storage type) where s has statistics, else s (training fusion: batch norm, sum and relu
// in one pass). `scratch` as for batch_statistics.
void normalized_sum_relu(DataType type, const SummedSource& a, const SummedSource& b, void* dst,
                         std::size_t pixels, int channels, float* scratch, cudaStream_t stream);

}  // namespace cnngraph::detail::cuda
