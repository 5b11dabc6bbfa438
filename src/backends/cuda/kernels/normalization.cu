// Local response normalization (cross-channel and spatial): one thread per element sums
// the squares of its window; y = x * (delta + alpha / N * sum)^-beta. The gradient (the
// reference's formula) takes two passes: each element's d and dy x d^(-beta - 1), then
// each element gathers the second over the elements whose windows hold it.
#include "backends/cuda/kernels/device_math.cuh"
#include "backends/cuda/kernels/normalization.hpp"
#include "ops/cross_channel_normalization.hpp"

namespace cnngraph::detail::cuda {

namespace {

struct Window {
  int N, H, W, C;
  bool spatial;
  int size, kernel_x, kernel_y;
  float alpha_over_n, beta, delta;
};

__device__ __forceinline__ void window(int k, int size, int extent, int& first, int& last) {
  first = max(0, k - size / 2);
  last = min(extent - 1, k + (size - 1) / 2);
}

// d = delta + alpha / N * (the window's sum of squares) of element e.
template <typename T>
__device__ float lrn_denominator(const Window& g, const T* src, std::size_t e, const Pixel& at) {
  float sum = 0.0f;
  int first, last;
  if (!g.spatial) {
    window(at.c, g.size, g.C, first, last);
    const T* pixel = src + e - at.c;
    for (int q = first; q <= last; ++q) {
      const float v = to_float(pixel[q]);
      sum += v * v;
    }
  } else {
    int x0, x1;
    window(at.y, g.kernel_y, g.H, first, last);
    window(at.x, g.kernel_x, g.W, x0, x1);
    for (int yy = first; yy <= last; ++yy)
      for (int xx = x0; xx <= x1; ++xx) {
        const float v = to_float(src[((std::size_t(at.n) * g.H + yy) * g.W + xx) * g.C + at.c]);
        sum += v * v;
      }
  }
  return g.delta + g.alpha_over_n * sum;
}

template <typename T>
__global__ void lrn_kernel(Window g, const T* src, T* dst) {
  const std::size_t count = std::size_t(g.N) * g.H * g.W * g.C;
  for (std::size_t e = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; e < count;
       e += std::size_t(gridDim.x) * blockDim.x) {
    const float d = lrn_denominator(g, src, e, unravel(e, g.H, g.W, g.C));
    dst[e] = from_float<T>(to_float(src[e]) * powf(d, -g.beta));
  }
}

// First pass: d[e] and t[e] = dy[e] x[e] d[e]^(-beta - 1), in f32.
template <typename T>
__global__ void lrn_terms_kernel(Window g, const T* diff_dst, const T* src, float* d, float* t) {
  const std::size_t count = std::size_t(g.N) * g.H * g.W * g.C;
  for (std::size_t e = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; e < count;
       e += std::size_t(gridDim.x) * blockDim.x) {
    const Pixel at = unravel(e, g.H, g.W, g.C);
    const float denominator = lrn_denominator(g, src, e, at);
    d[e] = denominator;
    t[e] = to_float(diff_dst[e]) * to_float(src[e]) * powf(denominator, -g.beta - 1.0f);
  }
}

// The elements whose windows hold position k: the mirror image of window().
__device__ __forceinline__ void readers(int k, int size, int extent, int& first, int& last) {
  first = max(0, k - (size - 1) / 2);
  last = min(extent - 1, k + size / 2);
}

// Second pass: dx[j] = dy[j] d[j]^-beta - 2 beta alpha / N x[j] (sum of t over j's readers).
template <typename T>
__global__ void lrn_gradient_kernel(Window g, const T* diff_dst, const T* src, const float* d,
                                    const float* t, T* diff_src) {
  const std::size_t count = std::size_t(g.N) * g.H * g.W * g.C;
  for (std::size_t j = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; j < count;
       j += std::size_t(gridDim.x) * blockDim.x) {
    const Pixel at = unravel(j, g.H, g.W, g.C);
    float through = 0.0f;
    int first, last;
    if (!g.spatial) {
      readers(at.c, g.size, g.C, first, last);
      const float* pixel = t + j - at.c;
      for (int q = first; q <= last; ++q) through += pixel[q];
    } else {
      int x0, x1;
      readers(at.y, g.kernel_y, g.H, first, last);
      readers(at.x, g.kernel_x, g.W, x0, x1);
      for (int yy = first; yy <= last; ++yy)
        for (int xx = x0; xx <= x1; ++xx)
          through += t[((std::size_t(at.n) * g.H + yy) * g.W + xx) * g.C + at.c];
    }
    diff_src[j] = from_float<T>(to_float(diff_dst[j]) * powf(d[j], -g.beta) -
                                2.0f * g.beta * g.alpha_over_n * to_float(src[j]) * through);
  }
}

Window window_of(const CrossChannelNormalizationOp& op) {
  const ImageShape& s = op.dst_shape;
  return {s.batch,         s.height,         s.width,
          s.channels,      op.spatial,       op.kernel_size,
          op.kernel_width, op.kernel_height, op.alpha / float(op.window_size()),
          op.beta,         op.delta};
}

}  // namespace

void local_response_normalization_gradient(DataType type, const CrossChannelNormalizationOp& op,
                                           const void* diff_dst, const void* src, void* diff_src,
                                           float* scratch, cudaStream_t stream) {
  const Window g = window_of(op);
  const std::size_t count = op.dst_shape.elements();
  dispatch(type, [&](auto tag) {
    using T = decltype(tag);
    const auto* dy = static_cast<const T*>(diff_dst);
    const auto* x = static_cast<const T*>(src);
    lrn_terms_kernel<<<blocks_for(count, 256), 256, 0, stream>>>(g, dy, x, scratch,
                                                                 scratch + count);
    lrn_gradient_kernel<<<blocks_for(count, 256), 256, 0, stream>>>(
        g, dy, x, scratch, scratch + count, static_cast<T*>(diff_src));
  });
  check_launch("local_response_normalization_gradient");
}

void local_response_normalization(DataType type, const CrossChannelNormalizationOp& op,
                                  const void* src, void* dst, cudaStream_t stream) {
  const ImageShape& s = op.dst_shape;
  const Window g = window_of(op);
  dispatch(type, [&](auto tag) {
    using T = decltype(tag);
    lrn_kernel<<<blocks_for(s.elements(), 256), 256, 0, stream>>>(g, static_cast<const T*>(src),
                                                                  static_cast<T*>(dst));
  });
  check_launch("local_response_normalization");
}

}  // namespace cnngraph::detail::cuda
