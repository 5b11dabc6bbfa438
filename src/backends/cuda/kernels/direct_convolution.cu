// The direct convolution: what no cuDNN engine takes (negative trailing padding, unusual
// custom padding). One thread per result element, f32 accumulation, then the epilogue.
#include "backends/cuda/kernels/device_math.cuh"
#include "backends/cuda/kernels/direct_convolution.hpp"
#include "backends/cuda/kernels/elementwise.hpp"
#include "ops/neuron_math.hpp"

namespace cnngraph::detail::cuda {

namespace {

struct Geometry {
  int N, H, W, C, P, Q, K, R, S, groups;
  int stride_y, stride_x, pad_y, pad_x, dilation_y, dilation_x;
};

template <typename T>
__global__ void direct_kernel(Geometry g, const T* src, const T* weights,
                              const __grid_constant__ DeviceEpilogue e, T* dst) {
  const std::size_t count = std::size_t(g.N) * g.P * g.Q * g.K;
  const int Cg = g.C / g.groups, Kg = g.K / g.groups;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const Pixel at = unravel(i, g.P, g.Q, g.K);
    const int n = at.n, p = at.y, q = at.x, k = at.c;
    const int group = k / Kg;
    float sum = 0.0f;
    for (int r = 0; r < g.R; ++r) {
      const int iy = p * g.stride_y - g.pad_y + r * g.dilation_y;
      if (iy < 0 || iy >= g.H) continue;
      for (int s = 0; s < g.S; ++s) {
        const int ix = q * g.stride_x - g.pad_x + s * g.dilation_x;
        if (ix < 0 || ix >= g.W) continue;
        const T* x = src + ((std::size_t(n) * g.H + iy) * g.W + ix) * g.C + group * Cg;
        const T* w = weights + ((std::size_t(k) * g.R + r) * g.S + s) * Cg;
        for (int c = 0; c < Cg; ++c) sum += to_float(x[c]) * to_float(w[c]);
      }
    }
    dst[i] = from_float<T>(apply_epilogue<T>(e, sum, k, i));
  }
}

}  // namespace

void direct_convolution(DataType type, const ConvolutionOp& op, const void* src,
                        const void* weights, const DeviceEpilogue& e, void* dst,
                        cudaStream_t stream) {
  const ImageShape& in = op.src_shapes[0];
  const ImageShape out = op.convolution_shape();
  const Geometry g{in.batch,        in.height,       in.width,      in.channels,
                   out.height,      out.width,       out.channels,  op.kernel_height,
                   op.kernel_width, op.groups,       op.y.stride,   op.x.stride,
                   op.y.pad_before, op.x.pad_before, op.dilation_y, op.dilation_x};
  dispatch(type, [&](auto tag) {
    using T = decltype(tag);
    direct_kernel<<<blocks_for(out.elements(), 128), 128, 0, stream>>>(
        g, static_cast<const T*>(src), static_cast<const T*>(weights), e, static_cast<T*>(dst));
  });
  check_launch("direct_convolution");
}

}  // namespace cnngraph::detail::cuda
