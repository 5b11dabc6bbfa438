// Per-channel sums over the pixels of NHWC images, in a fixed order (no atomics, so runs
// repeat bit for bit): a convolution's bias gradient, and batch normalization in training
// mode (statistics, gamma/beta gradients). Each block sums 32 channels over one chunk of
// pixels into a partial row; a second kernel adds the rows in order. Math in float; the
// formulas are the reference backend's (src/backends/reference/training_ops.cpp).
#include <algorithm>
#include <string>
#include <type_traits>

#include "backends/cuda/device_math.cuh"
#include "cnngraph/errors.hpp"

namespace cnngraph::detail::cuda {

namespace {

constexpr int kChannels = 32;  // channels per block (threadIdx.x), one 128-byte f32 row
constexpr int kRows = 8;       // pixels a block reads at once (threadIdx.y)
constexpr int kTargetBlocks = 1024;

struct Chunks {
  unsigned count;
  std::size_t per_chunk;
};

Chunks chunks_for(std::size_t pixels, int channels) {
  const unsigned channel_blocks = unsigned((channels + kChannels - 1) / kChannels);
  std::size_t count = std::max<std::size_t>(1, kTargetBlocks / channel_blocks);
  count = std::min(count, std::max<std::size_t>(1, pixels / 64));
  const std::size_t per_chunk = (pixels + count - 1) / count;
  return {unsigned((pixels + per_chunk - 1) / per_chunk), per_chunk};
}

// partial[chunk][c] = sum over the chunk's pixels p of f(p, c), for up to two sums at once
// (f returns a float2; .y is ignored where one sum is wanted).
template <typename F>
__global__ void partial_sums_kernel(F f, std::size_t pixels, int channels, std::size_t per_chunk,
                                    float2* partial) {
  const int c = blockIdx.x * kChannels + threadIdx.x;
  const std::size_t begin = blockIdx.y * per_chunk;
  const std::size_t end = min(pixels, begin + per_chunk);
  float2 sum = {0.0f, 0.0f};
  if (c < channels) {
    for (std::size_t p = begin + threadIdx.y; p < end; p += kRows) {
      const float2 v = f(p, c);
      sum.x += v.x;
      sum.y += v.y;
    }
  }
  __shared__ float2 rows[kRows][kChannels];
  rows[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y == 0 && c < channels) {
    float2 total = rows[0][threadIdx.x];
    for (int r = 1; r < kRows; ++r) {
      total.x += rows[r][threadIdx.x].x;
      total.y += rows[r][threadIdx.x].y;
    }
    partial[std::size_t(blockIdx.y) * channels + c] = total;
  }
}

// Adds the partial rows in order and hands each channel's totals to `finish(c, x, y)`.
template <typename G>
__global__ void finish_sums_kernel(const float2* partial, unsigned chunks, int channels, G finish) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= channels) return;
  float x = 0.0f, y = 0.0f;
  for (unsigned k = 0; k < chunks; ++k) {
    x += partial[std::size_t(k) * channels + c].x;
    y += partial[std::size_t(k) * channels + c].y;
  }
  finish(c, x, y);
}

template <typename F, typename G>
void channel_reduce(F f, G finish, std::size_t pixels, int channels, float* scratch,
                    cudaStream_t stream, const char* name) {
  const Chunks chunks = chunks_for(pixels, channels);
  auto* partial = reinterpret_cast<float2*>(scratch);
  const dim3 grid(unsigned((channels + kChannels - 1) / kChannels), chunks.count);
  partial_sums_kernel<<<grid, dim3(kChannels, kRows), 0, stream>>>(f, pixels, channels,
                                                                   chunks.per_chunk, partial);
  check_launch(name);
  finish_sums_kernel<<<unsigned((channels + 127) / 128), 128, 0, stream>>>(partial, chunks.count,
                                                                          channels, finish);
  check_launch(name);
}

template <typename T>
struct Values {
  const T* src;
  int channels;
  __device__ float2 operator()(std::size_t p, int c) const {
    return {to_float(src[p * channels + c]), 0.0f};
  }
};

// Values and their squares.
template <typename T>
struct ValuesAndSquares {
  const T* src;
  int channels;
  __device__ float2 operator()(std::size_t p, int c) const {
    const float v = to_float(src[p * channels + c]);
    return {v, v * v};
  }
};

// dy and dy * xhat.
template <typename T>
struct GradientTerms {
  const T* diff_dst;
  const T* src;
  int channels;
  const float* mean;
  const float* variance;
  float epsilon;
  __device__ float2 operator()(std::size_t p, int c) const {
    const float dy = to_float(diff_dst[p * channels + c]);
    const float xhat = (to_float(src[p * channels + c]) - mean[c]) * rsqrtf(variance[c] + epsilon);
    return {dy, dy * xhat};
  }
};

struct StoreScaled {
  float* out;
  float scale;
  __device__ void operator()(int c, float x, float) const { out[c] = x * scale; }
};

// Mean and biased variance from the sums of values and squares over `count`.
struct StoreMoments {
  float* mean;
  float* variance;
  float inverse_count;
  __device__ void operator()(int c, float x, float y) const {
    const float m = x * inverse_count;
    mean[c] = m;
    variance[c] = fmaxf(y * inverse_count - m * m, 0.0f);
  }
};

struct StorePair {
  float* first;
  float* second;
  __device__ void operator()(int c, float x, float y) const {
    first[c] = x;
    second[c] = y;
  }
};

template <typename T>
__global__ void normalize_kernel(const T* src, const float* mean, const float* variance,
                                 const float* gamma, const float* beta, float epsilon, T* dst,
                                 std::size_t count, int channels) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const int c = int(i % channels);
    const float scale = gamma[c] * rsqrtf(variance[c] + epsilon);
    dst[i] = from_float<T>((to_float(src[i]) - mean[c]) * scale + beta[c]);
  }
}

template <typename T>
__global__ void normalization_gradient_kernel(const T* diff_dst, const T* src, const float* mean,
                                              const float* variance, const float* gamma,
                                              const float* gamma_gradient,
                                              const float* beta_gradient, float epsilon,
                                              float inverse_count, T* diff_src, std::size_t count,
                                              int channels) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const int c = int(i % channels);
    const float inv_std = rsqrtf(variance[c] + epsilon);
    const float xhat = (to_float(src[i]) - mean[c]) * inv_std;
    const float dy = to_float(diff_dst[i]);
    diff_src[i] = from_float<T>(gamma[c] * inv_std *
                                (dy - beta_gradient[c] * inverse_count -
                                 xhat * gamma_gradient[c] * inverse_count));
  }
}

template <typename F>
void for_storage(DataType type, const char* name, F&& f) {
  dispatch(type, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, unsigned char>) {
      throw InvalidArgument(std::string(name) + ": u8 images are not a storage type");
    } else {
      f(tag);
    }
  });
}

}  // namespace

std::size_t channel_reduction_scratch_bytes(std::size_t pixels, int channels) {
  return std::size_t(chunks_for(pixels, channels).count) * channels * sizeof(float2);
}

void channel_sums(DataType type, const void* src, std::size_t pixels, int channels, float scale,
                  float* sums, float* scratch, cudaStream_t stream) {
  for_storage(type, "channel_sums", [&](auto tag) {
    using T = decltype(tag);
    channel_reduce(Values<T>{static_cast<const T*>(src), channels}, StoreScaled{sums, scale},
                   pixels, channels, scratch, stream, "channel_sums");
  });
}

void batch_statistics(DataType type, const void* src, std::size_t pixels, int channels,
                      float* mean, float* variance, float* scratch, cudaStream_t stream) {
  for_storage(type, "batch_statistics", [&](auto tag) {
    using T = decltype(tag);
    // One pass over the images (sums of values and of squares, f32 per thread, per chunk
    // and per channel): a network's activations have means of the order of their spread,
    // where E[x^2] - E[x]^2 loses little.
    channel_reduce(ValuesAndSquares<T>{static_cast<const T*>(src), channels},
                   StoreMoments{mean, variance, 1.0f / float(pixels)}, pixels, channels, scratch,
                   stream, "batch_statistics");
  });
}

void batch_normalize(DataType type, const void* src, const float* mean, const float* variance,
                     const float* gamma, const float* beta, float epsilon, void* dst,
                     std::size_t pixels, int channels, cudaStream_t stream) {
  for_storage(type, "batch_normalize", [&](auto tag) {
    using T = decltype(tag);
    const std::size_t count = pixels * channels;
    normalize_kernel<<<blocks_for(count, 256), 256, 0, stream>>>(
        static_cast<const T*>(src), mean, variance, gamma, beta, epsilon, static_cast<T*>(dst),
        count, channels);
    check_launch("batch_normalize");
  });
}

void batch_normalization_gradient(DataType type, const void* diff_dst, const void* src,
                                  const float* mean, const float* variance, const float* gamma,
                                  float epsilon, void* diff_src, float* gamma_gradient,
                                  float* beta_gradient, std::size_t pixels, int channels,
                                  float* scratch, cudaStream_t stream) {
  for_storage(type, "batch_normalization_gradient", [&](auto tag) {
    using T = decltype(tag);
    const auto* dy = static_cast<const T*>(diff_dst);
    const auto* x = static_cast<const T*>(src);
    channel_reduce(GradientTerms<T>{dy, x, channels, mean, variance, epsilon},
                   StorePair{beta_gradient, gamma_gradient}, pixels, channels, scratch, stream,
                   "batch_normalization_gradient");
    const std::size_t count = pixels * channels;
    normalization_gradient_kernel<<<blocks_for(count, 256), 256, 0, stream>>>(
        dy, x, mean, variance, gamma, gamma_gradient, beta_gradient, epsilon, 1.0f / float(pixels),
        static_cast<T*>(diff_src), count, channels);
    check_launch("batch_normalization_gradient");
  });
}

}  // namespace cnngraph::detail::cuda
