// Gradient kernels of ours for the ops no library covers as one call: neurons (the shared
// derivative formulas of neuron_math.hpp), pooling, soft-max and arithmetic (the terms of
// arithmetic_math.hpp); and dropout, forward and gradient alike. Math in float; the rules
// are the reference backend's (src/backends/reference/training_ops.cpp).
#include <cfloat>
#include <cstdint>
#include <type_traits>

#include "backends/cuda/kernels/device_math.cuh"
#include "backends/cuda/kernels/elementwise.hpp"
#include "backends/cuda/kernels/pooling_softmax.hpp"
#include "backends/cuda/kernels/training_ops.hpp"
#include "kernels/dropout_mask.hpp"
#include "ops/arithmetic_math.hpp"
#include "ops/neuron_math.hpp"

namespace cnngraph::detail::cuda {

namespace {

constexpr unsigned kThreads = 256;

// diff_src = diff_dst * neuron'(src), for map_elements.
template <typename Kind>
struct NeuronDerivative {
  DeviceNeuron n;
  __device__ float operator()(int c, float dy, float x) const {
    return dy * neuron_of_kind<Kind, true>(n, x, c);
  }
};

// The tap type of the argmax buffer: one byte for windows of fewer than 255 taps, four
// bytes for larger ones (global max pooling: a window the size of the image), so the
// gradient never rescans a window per source pixel. The largest value means "no tap".
template <typename A>
constexpr A kNoTap = A(~A(0));

// Where an arithmetic gradient's element sits: the result's sizes, the differentiated
// source's, and both sources' broadcast indices into the result.
struct ArithmeticGradientGeometry {
  int N, H, W, C;       // the result
  int n, h, w, c;       // the differentiated source
  BroadcastIndex a, b;  // primary and secondary
};

template <typename T>
__global__ void arithmetic_gradient_kernel(ArithmeticOperation operation, int index,
                                           const __grid_constant__ ArithmeticGradientGeometry g,
                                           const T* diff_dst, const T* primary, const T* secondary,
                                           T* diff_src, std::size_t count) {
  for (std::size_t e = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; e < count;
       e += std::size_t(gridDim.x) * blockDim.x) {
    const Pixel p = unravel(e, g.h, g.w, g.c);
    // The result elements reading e: every position along the dimensions it is broadcast on.
    const int n0 = g.n == 1 ? 0 : p.n, n1 = g.n == 1 ? g.N : p.n + 1;
    const int y0 = g.h == 1 ? 0 : p.y, y1 = g.h == 1 ? g.H : p.y + 1;
    const int x0 = g.w == 1 ? 0 : p.x, x1 = g.w == 1 ? g.W : p.x + 1;
    const int c0 = g.c == 1 ? 0 : p.c, c1 = g.c == 1 ? g.C : p.c + 1;
    float sum = 0.0f;
    for (int n = n0; n < n1; ++n)
      for (int y = y0; y < y1; ++y)
        for (int x = x0; x < x1; ++x)
          for (int c = c0; c < c1; ++c) {
            const std::size_t i = ((std::size_t(n) * g.H + y) * g.W + x) * g.C + c;
            const float a = primary ? to_float(primary[source_offset(g.a, i)]) : 0.0f;
            const float b = secondary ? to_float(secondary[source_offset(g.b, i)]) : 0.0f;
            sum += arithmetic_gradient_term<float>(operation, index, to_float(diff_dst[i]), a, b);
          }
    diff_src[e] = from_float<T>(sum);
  }
}

// Max pooling, first pass: per result element, the tap of its window's first maximum
// (row-major in the window; kNoTap where the window holds no image pixel). Each thread
// takes V neighbouring channels of one result pixel (16-byte loads where the channels allow).
template <int V, typename T, typename I, typename A>
__global__ void pooling_argmax_kernel(PoolingGeometry g, const T* src, A* argmax) {
  const int groups = g.C / V;
  const I count = I(g.N) * g.P * g.Q * groups;
  for (I e = blockIdx.x * I(blockDim.x) + threadIdx.x; e < count; e += I(gridDim.x) * blockDim.x) {
    const int c = int(e % groups) * V;
    I rest = e / groups;
    const int q = int(rest % g.Q);
    rest /= g.Q;
    const int p = int(rest % g.P);
    const int n = int(rest / g.P);
    A best[V];
    float best_value[V];
#pragma unroll
    for (int k = 0; k < V; ++k) best[k] = kNoTap<A>, best_value[k] = 0.0f;
    for (int r = 0; r < g.kernel_y; ++r) {
      const int iy = p * g.stride_y - g.pad_y + r;
      if (iy < 0 || iy >= g.H) continue;
      for (int s = 0; s < g.kernel_x; ++s) {
        const int ix = q * g.stride_x - g.pad_x + s;
        if (ix < 0 || ix >= g.W) continue;
        const Pack<T, V> x =
            *reinterpret_cast<const Pack<T, V>*>(src + ((I(n) * g.H + iy) * g.W + ix) * g.C + c);
#pragma unroll
        for (int k = 0; k < V; ++k) {
          const float v = to_float(x.v[k]);
          if (best[k] == kNoTap<A> || v > best_value[k])
            best[k] = A(r * g.kernel_x + s), best_value[k] = v;
        }
      }
    }
    Pack<A, V> out;
#pragma unroll
    for (int k = 0; k < V; ++k) out.v[k] = best[k];
    *reinterpret_cast<Pack<A, V>*>(argmax + e * V) = out;
  }
}

// One thread per V neighbouring channels of a source pixel: it gathers the gradients of
// every result whose window covers it (max: only where it is that window's first maximum,
// as `argmax` records it), so no atomics are needed and the sum runs in
// a fixed order. I: the index type (32 bits where the images allow: 64-bit division is
// slow, and this kernel was bound by its index math).
template <int V, typename T, typename I, typename A>
__global__ void pooling_gradient_kernel(PoolingGeometry g, const T* diff_dst, const A* argmax,
                                        const T* relu_result, T* diff_src) {
  const int groups = g.C / V;
  const I count = I(g.N) * g.H * g.W * groups;
  for (I e = blockIdx.x * I(blockDim.x) + threadIdx.x; e < count; e += I(gridDim.x) * blockDim.x) {
    const int c = int(e % groups) * V;
    I rest = e / groups;
    const int ix = int(rest % g.W);
    rest /= g.W;
    const int iy = int(rest % g.H);
    const int n = int(rest / g.H);
    const I at = ((I(n) * g.H + iy) * g.W + ix) * g.C + c;
    // Results p with p * stride - pad <= iy < p * stride - pad + kernel.
    const int p0 = max(0, (iy + g.pad_y - g.kernel_y + g.stride_y) / g.stride_y);
    const int p1 = min(g.P - 1, (iy + g.pad_y) / g.stride_y);
    const int q0 = max(0, (ix + g.pad_x - g.kernel_x + g.stride_x) / g.stride_x);
    const int q1 = min(g.Q - 1, (ix + g.pad_x) / g.stride_x);
    float sum[V];
#pragma unroll
    for (int k = 0; k < V; ++k) sum[k] = 0.0f;
    for (int p = p0; p <= p1; ++p) {
      const int top = p * g.stride_y - g.pad_y;
      if (iy < top || iy >= top + g.kernel_y) continue;  // (negative padding)
      for (int q = q0; q <= q1; ++q) {
        const int left = q * g.stride_x - g.pad_x;
        if (ix < left || ix >= left + g.kernel_x) continue;
        const I out = ((I(n) * g.P + p) * g.Q + q) * g.C + c;
        const Pack<T, V> dy = *reinterpret_cast<const Pack<T, V>*>(diff_dst + out);
        const int tap = (iy - top) * g.kernel_x + (ix - left);
        Pack<A, V> taps{};
        if (argmax) taps = *reinterpret_cast<const Pack<A, V>*>(argmax + out);
        const float divisor = g.max ? 1.0f : float(average_divisor(g, p, q));
#pragma unroll
        for (int k = 0; k < V; ++k) {
          const float d = to_float(dy.v[k]);
          if (g.max) {
            if (taps.v[k] == A(tap)) sum[k] += d;
          } else {
            sum[k] += d / divisor;
          }
        }
      }
    }
    // Fused with the gradient of the relu whose result the pooling read: relu'(src).
    if (relu_result) {
      const Pack<T, V> y = *reinterpret_cast<const Pack<T, V>*>(relu_result + at);
#pragma unroll
      for (int k = 0; k < V; ++k) sum[k] *= to_float(y.v[k]) > 0.0f ? 1.0f : 0.0f;
    }
    Pack<T, V> result;
#pragma unroll
    for (int k = 0; k < V; ++k) result.v[k] = from_float<T>(sum[k]);
    *reinterpret_cast<Pack<T, V>*>(diff_src + at) = result;
  }
}

// (a + b) relu'(mask), rounded once as the unfused sum is.
struct SumReluGradient {
  __device__ float operator()(int, float a, float b, float mask) const {
    return (a + b) * (mask > 0.0f ? 1.0f : 0.0f);
  }
};

template <typename T>
__global__ void dropout_kernel(float keep, std::uint64_t seed, const std::uint64_t* batch,
                               const T* src, T* dst, std::size_t count) {
  const std::uint64_t b = *batch;
  const float scale = 1.0f / keep;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x) {
    dst[i] = from_float<T>(dropout_keeps(seed, b, i, keep) ? to_float(src[i]) * scale : 0.0f);
  }
}

// One warp per pixel: the sum over channels, then each channel's gradient.
template <typename T>
__global__ void softmax_gradient_kernel(const T* diff_dst, const T* dst, T* diff_src,
                                        std::size_t pixels, int C, bool logarithmic) {
  const std::size_t warp = (blockIdx.x * std::size_t(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (warp >= pixels) return;
  const T* dy = diff_dst + warp * C;
  const T* y = dst + warp * C;
  T* dx = diff_src + warp * C;
  float sum = 0.0f;
  for (int c = lane; c < C; c += 32)
    sum += logarithmic ? to_float(dy[c]) : to_float(dy[c]) * to_float(y[c]);
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  for (int c = lane; c < C; c += 32) {
    const float g = to_float(dy[c]), v = to_float(y[c]);
    dx[c] = from_float<T>(logarithmic ? g - expf(v) * sum : v * (g - sum));
  }
}

}  // namespace

void neuron_gradient(DataType type, const DeviceNeuron& n, const void* diff_dst, const void* src,
                     void* diff_src, std::size_t count, int channels, cudaStream_t stream) {
  dispatch(type, [&](auto tag) {
    using T = decltype(tag);
    dispatch_neuron_type(n.type, [&](auto kind) {
      using Kind = decltype(kind);
      map_sources<2>(NeuronDerivative<Kind>{n},
                     Sources<T, 2>{{static_cast<const T*>(diff_dst), static_cast<const T*>(src)}},
                     static_cast<T*>(diff_src), count, neuron_pass_channels<Kind>(channels), stream,
                     "neuron_gradient");
    });
  });
}

namespace {
bool wide_taps(const PoolingGradientOp& op) {
  return std::int64_t(op.x.kernel_size) * op.y.kernel_size >= 255;
}
}  // namespace

void arithmetic_gradient(DataType type, const ArithmeticGradientOp& op, const void* diff_dst,
                         const void* primary, const void* secondary, void* diff_src,
                         cudaStream_t stream) {
  const ImageShape& r = op.src_shapes[0];
  const ImageShape& s = op.dst_shape;
  const std::size_t count = s.elements();
  if (count == 0) return;
  const ArithmeticGradientGeometry g{r.batch,
                                     r.height,
                                     r.width,
                                     r.channels,
                                     s.batch,
                                     s.height,
                                     s.width,
                                     s.channels,
                                     broadcast_index(op.primary, r),
                                     broadcast_index(op.secondary, r)};
  dispatch(type, [&](auto tag) {
    using T = decltype(tag);
    arithmetic_gradient_kernel<<<blocks_for(count, kThreads), kThreads, 0, stream>>>(
        op.operation, op.source_index, g, static_cast<const T*>(diff_dst),
        static_cast<const T*>(primary), static_cast<const T*>(secondary), static_cast<T*>(diff_src),
        count);
  });
  check_launch("arithmetic_gradient");
}

std::size_t pooling_argmax_bytes(const PoolingGradientOp& op) {
  if (op.type != PoolingType::max) return 0;
  return op.src_shapes[0].elements() * (wide_taps(op) ? sizeof(std::uint32_t) : 1);
}

void pooling_gradient(DataType type, const PoolingGradientOp& op, const void* diff_dst,
                      const void* src, void* diff_src, void* argmax, cudaStream_t stream) {
  const ImageShape& in = op.dst_shape;  // the forward's source
  const PoolingGeometry g = pooling_geometry(in, op.src_shapes[0], op.x, op.y, op.type, op.divisor);
  const bool small = in.elements() < (1u << 31) && op.src_shapes[0].elements() < (1u << 31);
  dispatch(type, [&](auto tag) {
    using T = decltype(tag);
    const auto with_taps = [&](auto* taps) {
      using A = std::remove_pointer_t<decltype(taps)>;
      const auto run = [&](auto index) {
        using I = decltype(index);
        // Vectors of channels where the channel count and pointers allow (every 16-byte
        // load then stays within one pixel).
        constexpr int kWide = 16 / sizeof(T) < 8 ? 16 / sizeof(T) : 8;
        const auto aligned = [](const void* p, std::size_t bytes) {
          return reinterpret_cast<std::uintptr_t>(p) % bytes == 0;
        };
        const bool wide = in.channels % kWide == 0 && aligned(diff_dst, 16) && aligned(src, 16) &&
                          aligned(diff_src, 16) && (!taps || aligned(taps, sizeof(A) * kWide));
        const auto launch = [&](auto width) {
          constexpr int V = decltype(width)::value;
          if (taps) {
            pooling_argmax_kernel<V, T, I, A>
                <<<blocks_for(op.src_shapes[0].elements() / V, kThreads), kThreads, 0, stream>>>(
                    g, static_cast<const T*>(src), taps);
          }
          pooling_gradient_kernel<V, T, I, A>
              <<<blocks_for(in.elements() / V, kThreads), kThreads, 0, stream>>>(
                  g, static_cast<const T*>(diff_dst), taps,
                  op.kind == OpKind::fused_max_pooling_relu_gradient ? static_cast<const T*>(src)
                                                                     : nullptr,
                  static_cast<T*>(diff_src));
        };
        if (wide) {
          launch(std::integral_constant<int, kWide>{});
        } else {
          launch(std::integral_constant<int, 1>{});
        }
      };
      if (small) {
        run(0u);
      } else {
        run(std::size_t{0});
      }
    };
    if (wide_taps(op)) {
      with_taps(static_cast<std::uint32_t*>(argmax));
    } else {
      with_taps(static_cast<unsigned char*>(argmax));
    }
  });
  check_launch("pooling_gradient");
}

void addition_relu_gradient(DataType type, const void* a, const void* b, const void* mask,
                            void* dst, std::size_t count, cudaStream_t stream) {
  dispatch(type, [&](auto tag) {
    using T = decltype(tag);
    map3_elements(SumReluGradient{}, static_cast<const T*>(a), static_cast<const T*>(b),
                  static_cast<const T*>(mask), static_cast<T*>(dst), count, 1, stream,
                  "addition_relu_gradient");
  });
}

void dropout(DataType type, float keep_probability, std::uint64_t seed, const std::uint64_t* batch,
             const void* src, void* dst, std::size_t count, cudaStream_t stream) {
  dispatch(type, [&](auto tag) {
    using T = decltype(tag);
    dropout_kernel<<<blocks_for(count, kThreads), kThreads, 0, stream>>>(
        keep_probability, seed, batch, static_cast<const T*>(src), static_cast<T*>(dst), count);
  });
  check_launch("dropout");
}

void softmax_gradient(DataType type, bool logarithmic, const void* diff_dst, const void* dst,
                      void* diff_src, std::size_t pixels, int channels, cudaStream_t stream) {
  const unsigned blocks = static_cast<unsigned>((pixels * 32 + kThreads - 1) / kThreads);
  dispatch(type, [&](auto tag) {
    using T = decltype(tag);
    softmax_gradient_kernel<<<blocks, kThreads, 0, stream>>>(
        static_cast<const T*>(diff_dst), static_cast<const T*>(dst), static_cast<T*>(diff_src),
        pixels, channels, logarithmic);
  });
  check_launch("softmax_gradient");
}

}  // namespace cnngraph::detail::cuda
