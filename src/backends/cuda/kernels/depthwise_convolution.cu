// Depthwise convolution (one filter per channel): memory-bound, where cuDNN's engines for
// grouped NHWC problems are slow. A thread computes results for a run of channels loaded
// as one 16-byte vector; neighbouring threads read neighbouring channels, so every load is
// coalesced, and the taps' overlap is served from registers (3x3, stride 1: several rows
// per thread) or from L1/L2. f32 accumulation, then the epilogue.
#include "backends/cuda/kernels/depthwise_convolution.hpp"
#include "backends/cuda/kernels/device_math.cuh"
#include "backends/cuda/kernels/elementwise.hpp"
#include "ops/neuron_math.hpp"

namespace cnngraph::detail::cuda {

namespace {

struct Geometry {
  int N, H, W, C, P, Q, R, S;
  int stride_y, stride_x, pad_y, pad_x, dilation_y, dilation_x;
};

template <typename T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

// V sums of channels c0.. of one pixel (flat index `first`) through the epilogue, stored as
// one vector.
template <typename T, int V>
__device__ __forceinline__ void store(const DeviceEpilogue& e, const float (&sum)[V], int c0,
                                      std::size_t first, T* dst) {
  Pack<T, V> result;
#pragma unroll
  for (int j = 0; j < V; ++j)
    result.v[j] = from_float<T>(apply_epilogue<T>(e, sum[j], c0 + j, first + j));
  *reinterpret_cast<Pack<T, V>*>(dst + first) = result;
}

// R and S are the kernel size when known at compile time (0: read from g), so that the
// common 3x3 case unrolls into independent loads in flight together. Index math is 32-bit
// (the launcher checks the sizes).
template <typename T, int V, int R, int S>
__global__ void depthwise_kernel(Geometry g, const T* src, const T* weights,
                                 const __grid_constant__ DeviceEpilogue e, T* dst) {
  using P = Pack<T, V>;
  const int taps_y = R ? R : g.R, taps_x = S ? S : g.S;
  const int vectors = g.C / V;
  const unsigned count = unsigned(g.N) * g.P * g.Q * vectors;
  for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x) {
    const int c0 = int(i % vectors) * V;
    unsigned rest = i / vectors;
    const int q = int(rest % g.Q);
    rest /= g.Q;
    const int p = int(rest % g.P);
    const int n = int(rest / g.P);
    const T* image = src + unsigned(n) * g.H * g.W * g.C + c0;
    float sum[V] = {};
#pragma unroll
    for (int r = 0; r < taps_y; ++r) {
      const int iy = p * g.stride_y - g.pad_y + r * g.dilation_y;
      const bool row_inside = iy >= 0 && iy < g.H;
#pragma unroll
      for (int s = 0; s < taps_x; ++s) {
        const int ix = q * g.stride_x - g.pad_x + s * g.dilation_x;
        if (!row_inside || ix < 0 || ix >= g.W) continue;
        const P x = *reinterpret_cast<const P*>(image + (unsigned(iy) * g.W + ix) * g.C);
        const P w = *reinterpret_cast<const P*>(weights + unsigned(r * taps_x + s) * g.C + c0);
#pragma unroll
        for (int j = 0; j < V; ++j) sum[j] += to_float(x.v[j]) * to_float(w.v[j]);
      }
    }
    const std::size_t first = std::size_t(i) * V;  // the flat index of channel c0 of this pixel
    store<T, V>(e, sum, c0, first, dst);
  }
}

// The common 3x3, stride 1, undilated case: a thread computes kRows consecutive result
// rows of one column, so that each source pixel it loads serves up to three of them (4.5
// loads per result instead of 9) and the nine weight vectors stay in registers.
constexpr int kRows = 4;

template <typename T, int V>
__global__ void depthwise_3x3_rows_kernel(Geometry g, const T* src, const T* weights,
                                          const __grid_constant__ DeviceEpilogue e, T* dst) {
  using P = Pack<T, V>;
  const int vectors = g.C / V;
  const int row_blocks = (g.P + kRows - 1) / kRows;
  const unsigned count = unsigned(g.N) * row_blocks * g.Q * vectors;
  for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x) {
    const int c0 = int(i % vectors) * V;
    unsigned rest = i / vectors;
    const int q = int(rest % g.Q);
    rest /= g.Q;
    const int p0 = int(rest % row_blocks) * kRows;
    const int n = int(rest / row_blocks);
    P w[9];
#pragma unroll
    for (int t = 0; t < 9; ++t)
      w[t] = *reinterpret_cast<const P*>(weights + unsigned(t) * g.C + c0);
    float sum[kRows][V] = {};
    const T* image = src + unsigned(n) * g.H * g.W * g.C + c0;
#pragma unroll
    for (int j = 0; j < kRows + 2; ++j) {  // source rows p0 - pad .. p0 - pad + kRows + 1
      const int iy = p0 - g.pad_y + j;
      if (iy < 0 || iy >= g.H) continue;
#pragma unroll
      for (int s = 0; s < 3; ++s) {
        const int ix = q - g.pad_x + s;
        if (ix < 0 || ix >= g.W) continue;
        const P x = *reinterpret_cast<const P*>(image + (unsigned(iy) * g.W + ix) * g.C);
#pragma unroll
        for (int t = 0; t < kRows; ++t) {
          const int r = j - t;  // this source row is tap row r of result row p0 + t
          if (r < 0 || r > 2) continue;
#pragma unroll
          for (int k = 0; k < V; ++k) sum[t][k] += to_float(x.v[k]) * to_float(w[r * 3 + s].v[k]);
        }
      }
    }
#pragma unroll
    for (int t = 0; t < kRows; ++t) {
      const int p = p0 + t;
      if (p >= g.P) break;
      const std::size_t first = ((std::size_t(n) * g.P + p) * g.Q + q) * g.C + c0;
      store<T, V>(e, sum[t], c0, first, dst);
    }
  }
}

template <typename T, int V>
void launch(const Geometry& g, const void* src, const void* weights, const DeviceEpilogue& e,
            void* dst, cudaStream_t stream) {
  const std::size_t count = std::size_t(g.N) * g.P * g.Q * (g.C / V);
  const unsigned blocks = blocks_for(count, 256);
  const auto* x = static_cast<const T*>(src);
  const auto* w = static_cast<const T*>(weights);
  auto* y = static_cast<T*>(dst);
  if (g.R == 3 && g.S == 3 && g.stride_y == 1 && g.stride_x == 1 && g.dilation_y == 1 &&
      g.dilation_x == 1) {
    const std::size_t columns = std::size_t(g.N) * ((g.P + kRows - 1) / kRows) * g.Q * (g.C / V);
    depthwise_3x3_rows_kernel<T, V><<<blocks_for(columns, 128), 128, 0, stream>>>(g, x, w, e, y);
  } else if (g.R == 3 && g.S == 3) {
    depthwise_kernel<T, V, 3, 3><<<blocks, 256, 0, stream>>>(g, x, w, e, y);
  } else {
    depthwise_kernel<T, V, 0, 0><<<blocks, 256, 0, stream>>>(g, x, w, e, y);
  }
}

}  // namespace

void depthwise_convolution(DataType type, const ConvolutionOp& op, const void* src,
                           const void* weights_hwc, const DeviceEpilogue& e, void* dst,
                           cudaStream_t stream) {
  const ImageShape& in = op.src_shapes[0];
  const ImageShape out = op.convolution_shape();
  const Geometry g{in.batch,        in.height,        in.width,        in.channels,  out.height,
                   out.width,       op.kernel_height, op.kernel_width, op.y.stride,  op.x.stride,
                   op.y.pad_before, op.x.pad_before,  op.dilation_y,   op.dilation_x};
  dispatch(type, [&](auto tag) {
    using T = decltype(tag);
    // The widest vector of at most 16 bytes that divides the channels (the images start
    // 256-byte aligned, so every pixel's channel run is then aligned too).
    constexpr int widest = int(16 / sizeof(T));
    if (in.channels % widest == 0) return launch<T, widest>(g, src, weights_hwc, e, dst, stream);
    if (in.channels % 4 == 0 && widest >= 4)
      return launch<T, 4>(g, src, weights_hwc, e, dst, stream);
    if (in.channels % 2 == 0) return launch<T, 2>(g, src, weights_hwc, e, dst, stream);
    launch<T, 1>(g, src, weights_hwc, e, dst, stream);
  });
  check_launch("depthwise_convolution");
}

}  // namespace cnngraph::detail::cuda
