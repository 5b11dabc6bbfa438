// Local response normalization (cross-channel and spatial): one thread per element sums
// the squares of its window; y = x * (delta + alpha / N * sum)^-beta.
#include "backends/cuda/device_math.cuh"
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

template <typename T>
__global__ void lrn_kernel(Window g, const T* src, T* dst) {
  const std::size_t count = std::size_t(g.N) * g.H * g.W * g.C;
  for (std::size_t e = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; e < count;
       e += std::size_t(gridDim.x) * blockDim.x) {
    const Pixel at = unravel(e, g.H, g.W, g.C);
    const int n = at.n, y = at.y, x = at.x, c = at.c;
    float sum = 0.0f;
    int first, last;
    if (!g.spatial) {
      window(c, g.size, g.C, first, last);
      const T* pixel = src + e - c;
      for (int q = first; q <= last; ++q) {
        const float v = to_float(pixel[q]);
        sum += v * v;
      }
    } else {
      int x0, x1;
      window(y, g.kernel_y, g.H, first, last);
      window(x, g.kernel_x, g.W, x0, x1);
      for (int yy = first; yy <= last; ++yy)
        for (int xx = x0; xx <= x1; ++xx) {
          const float v = to_float(src[((std::size_t(n) * g.H + yy) * g.W + xx) * g.C + c]);
          sum += v * v;
        }
    }
    const float d = g.delta + g.alpha_over_n * sum;
    dst[e] = from_float<T>(to_float(src[e]) * powf(d, -g.beta));
  }
}

}  // namespace

void local_response_normalization(DataType type, const CrossChannelNormalizationOp& op,
                                  const void* src, void* dst, cudaStream_t stream) {
  const ImageShape& s = op.dst_shape;
  const Window g{s.batch,         s.height,         s.width,
                 s.channels,      op.spatial,       op.kernel_size,
                 op.kernel_width, op.kernel_height, op.alpha / float(op.window_size()),
                 op.beta,         op.delta};
  dispatch(type, [&](auto tag) {
    using T = decltype(tag);
    lrn_kernel<<<blocks_for(s.elements(), 256), 256, 0, stream>>>(g, static_cast<const T*>(src),
                                                                  static_cast<T*>(dst));
  });
  check_launch("local_response_normalization");
}

}  // namespace cnngraph::detail::cuda
