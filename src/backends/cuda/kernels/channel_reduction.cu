// Per-channel sums over the pixels of NHWC images, in a fixed order (no atomics, so runs
// repeat bit for bit): a convolution's bias gradient, and batch normalization in training
// mode (statistics, gamma/beta gradients). Each thread reads 16 bytes of one pixel's
// channels at a time, a block a contiguous run of pixels, and the block's rows are added
// into one partial row per chunk of pixels; a second kernel adds the partial rows in order
// and finishes each channel (mean and variance, or the gradient's per-channel
// coefficients). The element-wise passes are map_elements (device_math.cuh). Math in
// float; the formulas are the reference backend's (src/backends/reference/training_ops.cpp).
#include <algorithm>
#include <string>
#include <type_traits>

#include "backends/cuda/kernels/channel_reduction.hpp"
#include "backends/cuda/kernels/device_math.cuh"
#include "backends/cuda/kernels/elementwise.hpp"
#include "cnngraph/errors.hpp"

namespace cnngraph::detail::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kMaxVector = 8;
constexpr unsigned kTargetBlocks = 1024;  // about 8 blocks of 256 threads per H100 SM

// How a reduction is laid out: V channels a thread, `lanes` threads across a pixel's
// channels in a block (the block's other threads take the next pixels, `rows` at once).
struct Layout {
  int vector = 1, lanes = 1, rows = 1;
  unsigned channel_blocks = 1, chunks = 1;
  std::size_t per_chunk = 1;
};

Layout layout_for(std::size_t pixels, int channels, int vector) {
  Layout l;
  l.vector = vector;
  const int lane_total = channels / vector;
  l.lanes = std::min(lane_total, kThreads);
  l.rows = kThreads / l.lanes;
  l.channel_blocks = unsigned((lane_total + l.lanes - 1) / l.lanes);
  std::size_t chunks = std::max<std::size_t>(1, kTargetBlocks / l.channel_blocks);
  chunks = std::min(chunks, std::max<std::size_t>(1, pixels / (4 * std::size_t(l.rows))));
  l.per_chunk = (pixels + chunks - 1) / chunks;
  l.chunks = unsigned((pixels + l.per_chunk - 1) / l.per_chunk);
  return l;
}

// The scratch layout: 5 coefficients per channel (the gradient's a, b and c, the forward's
// scale and shift), then the partial rows.
std::size_t coefficient_floats(int channels) { return (5 * std::size_t(channels) + 3) / 4 * 4; }

// A loader with a thread's channels c0... bound: load.at<V>(c0) where the loader has one (it
// then keeps per-channel constants in registers), else load.add<V>(p, c0, sum) as it is.
template <int V, typename L>
struct LoaderAt {
  L load;
  int c0;
  __device__ void add(std::size_t p, float2 (&sum)[V]) const { load.template add<V>(p, c0, sum); }
};
template <int V, typename L>
__device__ auto loader_at(const L& load, int c0) {
  if constexpr (requires { load.template at<V>(c0); }) {
    return load.template at<V>(c0);
  } else {
    return LoaderAt<V, L>{load, c0};
  }
}

// partial[chunk][c] = sums over the chunk's pixels p of load(p, c) (two sums at once).
template <int V, typename L>
__global__ void partial_sums_kernel(L load, std::size_t pixels, int channels, int lanes, int rows,
                                    std::size_t per_chunk, float2* partial) {
  const int lane = threadIdx.x % lanes, row = threadIdx.x / lanes;
  const int c0 = (blockIdx.x * lanes + lane) * V;
  const bool active = row < rows && c0 < channels;
  const std::size_t begin = blockIdx.y * per_chunk;
  const std::size_t end = min(pixels, begin + per_chunk);
  float2 sum[V];
#pragma unroll
  for (int k = 0; k < V; ++k) sum[k] = {0.0f, 0.0f};
  if (active) {
    const auto bound = loader_at<V>(load, c0);
    // Four pixels a turn: their loads are in flight together.
    std::size_t p = begin + row;
    for (; p + 3 * std::size_t(rows) < end; p += 4 * std::size_t(rows)) {
#pragma unroll
      for (int u = 0; u < 4; ++u) bound.add(p + u * std::size_t(rows), sum);
    }
    for (; p < end; p += rows) bound.add(p, sum);
  }
  __shared__ float2 shared[kThreads * kMaxVector];
#pragma unroll
  for (int k = 0; k < V; ++k) shared[threadIdx.x * V + k] = sum[k];
  __syncthreads();
  if (row != 0 || !active) return;
  for (int r = 1; r < rows; ++r) {
#pragma unroll
    for (int k = 0; k < V; ++k) {
      const float2 v = shared[(r * lanes + lane) * V + k];
      sum[k].x += v.x;
      sum[k].y += v.y;
    }
  }
#pragma unroll
  for (int k = 0; k < V; ++k) partial[std::size_t(blockIdx.y) * channels + c0 + k] = sum[k];
}

// Adds the partial rows and hands each channel's totals to `finish(c, x, y)`: 32 channels
// a block, kFinishRows threads down each channel's column (every kFinishRows-th row),
// then those sums in order. (One thread a channel walking all rows was latency-bound: a
// quarter of a ResNet-50 training step's batch-norm time.)
constexpr int kFinishRows = 16;
template <typename G>
__global__ void finish_sums_kernel(const float2* partial, unsigned chunks, int channels, G finish) {
  const int c = blockIdx.x * 32 + threadIdx.x;
  float2 sum = {0.0f, 0.0f};
  if (c < channels) {
    for (unsigned k = threadIdx.y; k < chunks; k += kFinishRows) {
      const float2 v = partial[std::size_t(k) * channels + c];
      sum.x += v.x;
      sum.y += v.y;
    }
  }
  __shared__ float2 rows[kFinishRows][32];
  rows[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y != 0 || c >= channels) return;
  for (int r = 1; r < kFinishRows; ++r) {
    sum.x += rows[r][threadIdx.x].x;
    sum.y += rows[r][threadIdx.x].y;
  }
  finish(c, sum.x, sum.y);
}

// Loads: the values (and their squares), or dy (and dy * x).
template <typename T>
struct Values {
  const T* src;
  int channels;
  bool squares;
  template <int V>
  __device__ void add(std::size_t p, int c0, float2 (&sum)[V]) const {
    const Pack<T, V> x = *reinterpret_cast<const Pack<T, V>*>(src + p * channels + c0);
#pragma unroll
    for (int k = 0; k < V; ++k) {
      const float v = to_float(x.v[k]);
      sum[k].x += v;
      if (squares) sum[k].y += v * v;
    }
  }
};

template <typename T>
struct GradientTerms {
  const T* diff_dst;
  const T* src;
  int channels;
  template <int V>
  __device__ void add(std::size_t p, int c0, float2 (&sum)[V]) const {
    const std::size_t at = p * channels + c0;
    const Pack<T, V> dy = *reinterpret_cast<const Pack<T, V>*>(diff_dst + at);
    const Pack<T, V> x = *reinterpret_cast<const Pack<T, V>*>(src + at);
#pragma unroll
    for (int k = 0; k < V; ++k) {
      const float g = to_float(dy.v[k]);
      sum[k].x += g;
      sum[k].y += g * to_float(x.v[k]);
    }
  }
};

// GradientTerms of dy where a relu passes its mask (training fusion; fused_relu_passes).
template <typename T>
struct MaskedGradientTerms {
  const T* diff_dst;
  const T* src;
  const T* mask;
  int channels;
  float ceiling;
  template <int V>
  __device__ void add(std::size_t p, int c0, float2 (&sum)[V]) const {
    const std::size_t at = p * channels + c0;
    const Pack<T, V> dy = *reinterpret_cast<const Pack<T, V>*>(diff_dst + at);
    const Pack<T, V> x = *reinterpret_cast<const Pack<T, V>*>(src + at);
    const Pack<T, V> m = *reinterpret_cast<const Pack<T, V>*>(mask + at);
#pragma unroll
    for (int k = 0; k < V; ++k) {
      // relu's derivative times dy, as the unfused gradient (a non-finite dy stays one).
      const float g = to_float(dy.v[k]) * relu_mask(to_float(m.v[k]), ceiling);
      sum[k].x += g;
      sum[k].y += g * to_float(x.v[k]);
    }
  }
};

// Whether this batch norm's relu let x's gradient through: its result as the forward wrote
// it, the same formula (ChannelAffine) on the same scale and shift, rounded to T, passes.
template <typename T>
__device__ __forceinline__ float relu_passes(float x, float scale, float shift, float ceiling) {
  return relu_mask(to_float(from_float<T>(normalized_value(x, scale, shift))), ceiling);
}

// MaskedGradientTerms with the mask recomputed from x (the batch norm's own result was the
// relu's source): one image fewer to read.
template <typename T>
struct DerivedMaskGradientTerms {
  const T* diff_dst;
  const T* src;
  const float* scale;
  const float* shift;
  int channels;
  float ceiling;
  template <int V>
  struct Bound {
    const T* diff_dst;
    const T* src;
    int channels, c0;
    float ceiling;
    float scale[V], shift[V];
    __device__ void add(std::size_t p, float2 (&sum)[V]) const {
      const std::size_t at = p * channels + c0;
      const Pack<T, V> dy = *reinterpret_cast<const Pack<T, V>*>(diff_dst + at);
      const Pack<T, V> x = *reinterpret_cast<const Pack<T, V>*>(src + at);
#pragma unroll
      for (int k = 0; k < V; ++k) {
        const float v = to_float(x.v[k]);
        const float g = to_float(dy.v[k]) * relu_passes<T>(v, scale[k], shift[k], ceiling);
        sum[k].x += g;
        sum[k].y += g * v;
      }
    }
  };
  template <int V>
  __device__ Bound<V> at(int c0) const {
    Bound<V> b{diff_dst, src, channels, c0, ceiling, {}, {}};
#pragma unroll
    for (int k = 0; k < V; ++k) b.scale[k] = scale[c0 + k], b.shift[k] = shift[c0 + k];
    return b;
  }
};

template <typename T, typename L, typename G>
void channel_reduce(const L& load, G finish, const void* a, const void* b, std::size_t pixels,
                    int channels, float* scratch, cudaStream_t stream, const char* name,
                    const void* c = nullptr) {
  constexpr int kVector = 16 / sizeof(T);
  const auto aligned = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; };
  const bool wide = channels % kVector == 0 && aligned(a) && aligned(b) && (!c || aligned(c));
  const Layout l = layout_for(pixels, channels, wide ? kVector : 1);
  auto* partial = reinterpret_cast<float2*>(scratch + coefficient_floats(channels));
  const dim3 grid(l.channel_blocks, l.chunks);
  if (wide) {
    partial_sums_kernel<kVector><<<grid, kThreads, 0, stream>>>(load, pixels, channels, l.lanes,
                                                                l.rows, l.per_chunk, partial);
  } else {
    partial_sums_kernel<1><<<grid, kThreads, 0, stream>>>(load, pixels, channels, l.lanes, l.rows,
                                                          l.per_chunk, partial);
  }
  check_launch(name);
  finish_sums_kernel<<<unsigned((channels + 31) / 32), dim3(32, kFinishRows), 0, stream>>>(
      partial, l.chunks, channels, finish);
  check_launch(name);
}

struct StoreScaled {
  float* out;
  float scale;
  __device__ void operator()(int c, float x, float) const { out[c] = x * scale; }
};

// Mean and biased variance from the sums of values and squares.
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

// The gradients of gamma and beta from the sums of dy and dy * x, and the coefficients of
// diff_src = a dy + b x + c:
//   diff_src = gamma / s (dy - dbeta / M - xhat dgamma / M), xhat = (x - mean) / s.
struct StoreGradients {
  const float* mean;
  const float* variance;
  const float* gamma;
  float epsilon, inverse_count;
  float* gamma_gradient;
  float* beta_gradient;
  float* coefficients;  // a, b, c per channel
  int channels;
  __device__ void operator()(int c, float dy, float dyx) const {
    const float inv_std = rsqrtf(variance[c] + epsilon);
    const float dgamma = (dyx - mean[c] * dy) * inv_std;
    gamma_gradient[c] = dgamma;
    beta_gradient[c] = dy;
    const float a = gamma[c] * inv_std;
    const float b = -a * inv_std * dgamma * inverse_count;
    coefficients[c] = a;
    coefficients[channels + c] = b;
    coefficients[2 * channels + c] = -a * dy * inverse_count - b * mean[c];
  }
};

__global__ void normalization_coefficients_kernel(const float* mean, const float* variance,
                                                  const float* gamma, const float* beta,
                                                  float epsilon, float* coefficients,
                                                  int channels) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= channels) return;
  const float scale = gamma[c] * rsqrtf(variance[c] + epsilon);
  coefficients[c] = scale;
  coefficients[channels + c] = beta[c] - mean[c] * scale;
}

// The scale and shift of every channel into coefficients[c] and [channels + c]: the one
// launch that the forward and the kernels recomputing its result share.
void normalization_coefficients(const float* mean, const float* variance, const float* gamma,
                                const float* beta, float epsilon, float* coefficients, int channels,
                                cudaStream_t stream, const char* name) {
  normalization_coefficients_kernel<<<unsigned((channels + 127) / 128), 128, 0, stream>>>(
      mean, variance, gamma, beta, epsilon, coefficients, channels);
  check_launch(name);
}

// The gradient's element-wise pass (map_elements): a dy + b x + c with the channel's
// coefficients; fused with a relu's gradient, dy counts where the relu passes its mask (the
// mask read, or recomputed from x with the forward's scale and shift).
enum class Mask { none, read, derived };
template <Mask M, typename T>
struct NormalizationGradient {
  const float* coefficients;
  int channels;
  float ceiling = INFINITY;  // the fused relu's
  struct Bound {
    float a, b, c, scale, shift, ceiling;
    __device__ float operator()(float dy, float x, float mask = 1.0f) const {
      float g = dy;
      if constexpr (M == Mask::read) g = dy * relu_mask(mask, ceiling);
      if constexpr (M == Mask::derived) g = dy * relu_passes<T>(x, scale, shift, ceiling);
      return a * g + b * x + c;
    }
  };
  __device__ Bound at(int c) const {
    const float* k = coefficients;
    return {k[c],   k[channels + c], k[2 * channels + c], k[3 * channels + c], k[4 * channels + c],
            ceiling};
  }
};

// relu(a' + b') with a' = a * scale + shift rounded to T as the batch norm's result would be
// (scale 1 and shift 0 leave a source as it is, exactly).
template <typename T>
struct NormalizedSumRelu {
  const float* a_coefficients;  // scale, then shift, per channel; null: none
  const float* b_coefficients;
  int channels;
  struct Bound {
    float a_scale, a_shift, b_scale, b_shift;
    __device__ float operator()(float a, float b) const {
      const float x = to_float(from_float<T>(normalized_value(a, a_scale, a_shift)));
      const float y = to_float(from_float<T>(normalized_value(b, b_scale, b_shift)));
      const float v = x + y;
      return v >= 0.0f ? v : 0.0f * v;  // relu as neuron_math.hpp writes it
    }
  };
  __device__ Bound at(int c) const {
    const auto scale = [&](const float* k) { return k ? k[c] : 1.0f; };
    const auto shift = [&](const float* k) { return k ? k[channels + c] : 0.0f; };
    return {scale(a_coefficients), shift(a_coefficients), scale(b_coefficients),
            shift(b_coefficients)};
  }
};

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
  unsigned chunks = 1;  // the most that any vector width makes
  for (int vector : {1, 4, 8}) {
    if (channels % vector == 0)
      chunks = std::max(chunks, layout_for(pixels, channels, vector).chunks);
  }
  return (coefficient_floats(channels) + 2 * std::size_t(chunks) * channels) * sizeof(float);
}

void channel_sums(DataType type, const void* src, std::size_t pixels, int channels, float scale,
                  float* sums, float* scratch, cudaStream_t stream) {
  for_storage(type, "channel_sums", [&](auto tag) {
    using T = decltype(tag);
    channel_reduce<T>(Values<T>{static_cast<const T*>(src), channels, false},
                      StoreScaled{sums, scale}, src, src, pixels, channels, scratch, stream,
                      "channel_sums");
  });
}

void batch_statistics(DataType type, const void* src, std::size_t pixels, int channels, float* mean,
                      float* variance, float* scratch, cudaStream_t stream) {
  for_storage(type, "batch_statistics", [&](auto tag) {
    using T = decltype(tag);
    // One pass (sums of values and of squares, f32 per thread, chunk and channel): a
    // network's activations have means of the order of their spread, where
    // E[x^2] - E[x]^2 loses little.
    channel_reduce<T>(Values<T>{static_cast<const T*>(src), channels, true},
                      StoreMoments{mean, variance, 1.0f / float(pixels)}, src, src, pixels,
                      channels, scratch, stream, "batch_statistics");
  });
}

void batch_normalize(DataType type, const void* src, const float* mean, const float* variance,
                     const float* gamma, const float* beta, float epsilon, void* dst,
                     std::size_t pixels, int channels, float* scratch, cudaStream_t stream,
                     bool relu, float relu_ceiling) {
  for_storage(type, "batch_normalize", [&](auto tag) {
    using T = decltype(tag);
    normalization_coefficients(mean, variance, gamma, beta, epsilon, scratch, channels, stream,
                               "batch_normalize");
    const auto* x = static_cast<const T*>(src);
    const auto* none = static_cast<const T*>(nullptr);
    if (relu) {
      map_elements(ChannelAffine<true>{scratch, scratch + channels, relu_ceiling}, x, none,
                   static_cast<T*>(dst), pixels * channels, channels, stream,
                   "batch_normalize_relu");
    } else {
      map_elements(ChannelAffine<false>{scratch, scratch + channels}, x, none, static_cast<T*>(dst),
                   pixels * channels, channels, stream, "batch_normalize");
    }
  });
}

void batch_normalization_gradient(DataType type, const void* diff_dst, const void* src,
                                  const float* mean, const float* variance, const float* gamma,
                                  float epsilon, void* diff_src, float* gamma_gradient,
                                  float* beta_gradient, std::size_t pixels, int channels,
                                  float* scratch, cudaStream_t stream, const void* mask,
                                  const float* beta, float relu_ceiling) {
  for_storage(type, "batch_normalization_gradient", [&](auto tag) {
    using T = decltype(tag);
    const auto* dy = static_cast<const T*>(diff_dst);
    const auto* x = static_cast<const T*>(src);
    auto* dx = static_cast<T*>(diff_src);
    const std::size_t count = pixels * channels;
    const StoreGradients finish{
        mean,           variance,      gamma,   epsilon, 1.0f / float(pixels),
        gamma_gradient, beta_gradient, scratch, channels};
    const char* fused = "relu_batch_normalization_gradient";
    if (mask && beta) {
      // The forward's scale and shift, by the forward's own kernel (bit for bit the same).
      float* scale = scratch + 3 * std::size_t(channels);
      normalization_coefficients(mean, variance, gamma, beta, epsilon, scale, channels, stream,
                                 fused);
      channel_reduce<T>(
          DerivedMaskGradientTerms<T>{dy, x, scale, scale + channels, channels, relu_ceiling},
          finish, dy, x, pixels, channels, scratch, stream, fused);
      map_elements(NormalizationGradient<Mask::derived, T>{scratch, channels, relu_ceiling}, dy, x,
                   dx, count, channels, stream, fused);
    } else if (mask) {
      const auto* m = static_cast<const T*>(mask);
      channel_reduce<T>(MaskedGradientTerms<T>{dy, x, m, channels, relu_ceiling}, finish, dy, x,
                        pixels, channels, scratch, stream, fused, m);
      map3_elements(NormalizationGradient<Mask::read, T>{scratch, channels, relu_ceiling}, dy, x, m,
                    dx, count, channels, stream, fused);
    } else {
      channel_reduce<T>(GradientTerms<T>{dy, x, channels}, finish, dy, x, pixels, channels, scratch,
                        stream, "batch_normalization_gradient");
      map_elements(NormalizationGradient<Mask::none, T>{scratch, channels}, dy, x, dx, count,
                   channels, stream, "batch_normalization_gradient");
    }
  });
}

void normalized_sum_relu(DataType type, const SummedSource& a, const SummedSource& b, void* dst,
                         std::size_t pixels, int channels, float* scratch, cudaStream_t stream) {
  for_storage(type, "batch_normalization_addition_relu", [&](auto tag) {
    using T = decltype(tag);
    // Each normalized source's scale and shift, by batch_normalize's own kernel.
    const auto coefficients = [&](const SummedSource& s, float* at) -> const float* {
      if (!s.mean) return nullptr;
      normalization_coefficients(s.mean, s.variance, s.gamma, s.beta, s.epsilon, at, channels,
                                 stream, "batch_normalization_addition_relu");
      return at;
    };
    const float* a_terms = coefficients(a, scratch);
    const float* b_terms = coefficients(b, scratch + 2 * std::size_t(channels));
    map_elements(NormalizedSumRelu<T>{a_terms, b_terms, channels}, static_cast<const T*>(a.src),
                 static_cast<const T*>(b.src), static_cast<T*>(dst), pixels * channels, channels,
                 stream, "batch_normalization_addition_relu");
  });
}

}  // namespace cnngraph::detail::cuda
