// Depthwise convolution (one filter per channel): memory-bound, where cuDNN's engines for
// grouped NHWC problems are slow. A thread computes one result pixel for a run of
// channels loaded as one 16-byte vector; neighbouring threads read neighbouring channels,
// so every load is coalesced, and the taps' overlap is served from L1/L2. f32 accumulation,
// then the epilogue.
#include "backends/cuda/device_math.cuh"
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

template <typename T, int V>
__global__ void depthwise_kernel(Geometry g, const T* src, const T* weights, DeviceEpilogue e,
                                 T* dst) {
  using P = Pack<T, V>;
  const int vectors = g.C / V;
  const std::size_t count = std::size_t(g.N) * g.P * g.Q * vectors;
  const T* bias = static_cast<const T*>(e.bias);
  const T* residual = static_cast<const T*>(e.residual);
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const Pixel at = unravel(i, g.P, g.Q, vectors);
    const int c0 = at.c * V;
    float sum[V] = {};
    for (int r = 0; r < g.R; ++r) {
      const int iy = at.y * g.stride_y - g.pad_y + r * g.dilation_y;
      if (iy < 0 || iy >= g.H) continue;
      for (int s = 0; s < g.S; ++s) {
        const int ix = at.x * g.stride_x - g.pad_x + s * g.dilation_x;
        if (ix < 0 || ix >= g.W) continue;
        const P x = *reinterpret_cast<const P*>(
            src + ((std::size_t(at.n) * g.H + iy) * g.W + ix) * g.C + c0);
        const P w = *reinterpret_cast<const P*>(weights + (std::size_t(r) * g.S + s) * g.C + c0);
#pragma unroll
        for (int j = 0; j < V; ++j) sum[j] += to_float(x.v[j]) * to_float(w.v[j]);
      }
    }
    const std::size_t first = i * V;  // the flat index of channel c0 of this pixel
    P result;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      float v = sum[j];
      if (bias) v += to_float(bias[c0 + j]);
      for (int k = 0; k < e.count; ++k) {
        v = e.is_sum[k] ? v + to_float(residual[first + j])
                        : apply_neuron<float>(e.neuron[k], v, c0 + j);
      }
      result.v[j] = from_float<T>(v);
    }
    *reinterpret_cast<P*>(dst + first) = result;
  }
}

template <typename T, int V>
void launch(const Geometry& g, const void* src, const void* weights, const DeviceEpilogue& e,
            void* dst, cudaStream_t stream) {
  const std::size_t count = std::size_t(g.N) * g.P * g.Q * (g.C / V);
  depthwise_kernel<T, V><<<blocks_for(count, 256), 256, 0, stream>>>(
      g, static_cast<const T*>(src), static_cast<const T*>(weights), e, static_cast<T*>(dst));
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
