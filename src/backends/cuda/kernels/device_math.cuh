// Element types in device code: loads and stores through float, and a dispatch from
// DataType to the C++ type.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "backends/cuda/cuda_common.hpp"
#include "ops/neuron_math.hpp"
#include "ops/pooling_math.hpp"

namespace cnngraph::detail::cuda {

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_float(unsigned char v) { return v * (1.0f / 255.0f); }

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __half from_float<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}
template <>
__device__ __forceinline__ unsigned char from_float<unsigned char>(float v) {
  const float scaled = fminf(fmaxf(v, 0.0f), 1.0f) * 255.0f;
  return static_cast<unsigned char>(__float2int_rn(scaled));
}

// For apply_neuron (ops/neuron_math.hpp) on a DeviceNeuron.
__host__ __device__ inline float prelu_slope(const DeviceNeuron& n, int channel) {
  return n.slopes[channel];
}

// The epilogue of one result element of type T: the bias of `channel`, then the post-ops
// in order (a sum adds the residual element at `index`). One formula for our epilogue,
// direct and depthwise kernels.
template <typename T>
__device__ __forceinline__ float apply_epilogue(const DeviceEpilogue& e, float v, int channel,
                                                std::size_t index) {
  if (e.bias) v += to_float(static_cast<const T*>(e.bias)[channel]);
  for (int k = 0; k < e.count; ++k) {
    v = e.is_sum[k] ? v + to_float(static_cast<const T*>(e.residual)[index])
                    : apply_neuron<float>(e.neuron[k], v, channel);
  }
  return v;
}

// Calls f(T{}) with T the C++ type of `type`.
template <typename F>
void dispatch(DataType type, F&& f) {
  switch (type) {
    case DataType::f32:
      return f(float{});
    case DataType::f16:
      return f(__half{});
    case DataType::bf16:
      return f(__nv_bfloat16{});
    case DataType::u8:
      return f(static_cast<unsigned char>(0));
  }
}

// A pooling window's geometry for device code: the source is H x W, the result P x Q.
// An average window's divisor follows `divisor` (pooling_math.hpp).
struct PoolingGeometry {
  int N, H, W, C, P, Q;
  int kernel_y, kernel_x, stride_y, stride_x, pad_y, pad_x;
  bool max;
  AverageDivisor divisor;
};
inline PoolingGeometry pooling_geometry(const ImageShape& source, const ImageShape& result,
                                        const AxisGeometry& x, const AxisGeometry& y,
                                        PoolingType type, const AverageDivisor& divisor) {
  return {source.batch,
          source.height,
          source.width,
          source.channels,
          result.height,
          result.width,
          y.kernel_size,
          x.kernel_size,
          y.stride,
          x.stride,
          y.pad_before,
          x.pad_before,
          type == PoolingType::max,
          divisor};
}

// The divisor of result (p, q)'s average window: its pixels inside the image, or inside the
// padded image when g.divisor counts padding.
__device__ __forceinline__ int average_divisor(const PoolingGeometry& g, int p, int q) {
  const AverageDivisor& d = g.divisor;
  return divisor_extent(p * g.stride_y - g.pad_y, g.kernel_y, g.H, g.pad_y, d.counts_padding,
                        d.padded_after_y) *
         divisor_extent(q * g.stride_x - g.pad_x, g.kernel_x, g.W, g.pad_x, d.counts_padding,
                        d.padded_after_x);
}

// The position of flat NHWC index i in an image of height x width x channels.
struct Pixel {
  int n, y, x, c;
};
__device__ __forceinline__ Pixel unravel(std::size_t i, int height, int width, int channels) {
  Pixel p;
  p.c = int(i % channels);
  std::size_t rest = i / channels;
  p.x = int(rest % width);
  rest /= width;
  p.y = int(rest % height);
  p.n = int(rest / height);
  return p;
}

inline unsigned blocks_for(std::size_t count, unsigned threads) {
  const std::size_t blocks = (count + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 65535u * 32u ? blocks : 65535u * 32u);
}

// Launch errors surface at once, naming the kernel.
void check_launch(const char* kernel);

// V consecutive elements, loaded or stored in one access.
template <typename T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

// dst[i] = f(channel of i, a[i], b[i]) (b may be null: 0 is passed), V elements a thread
// with V-wide loads and stores; the channel is found once per group.
template <int V, typename T, typename F>
__global__ void map_kernel(F f, const T* a, const T* b, T* dst, std::size_t groups, int channels) {
  for (std::size_t g = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; g < groups;
       g += std::size_t(gridDim.x) * blockDim.x) {
    const Pack<T, V> x = reinterpret_cast<const Pack<T, V>*>(a)[g];
    Pack<T, V> y{};
    if (b) y = reinterpret_cast<const Pack<T, V>*>(b)[g];
    Pack<T, V> out;
    int c = int((g * V) % std::size_t(channels));
#pragma unroll
    for (int k = 0; k < V; ++k) {
      out.v[k] = from_float<T>(f(c, to_float(x.v[k]), b ? to_float(y.v[k]) : 0.0f));
      if (++c == channels) c = 0;
    }
    reinterpret_cast<Pack<T, V>*>(dst)[g] = out;
  }
}

// Calls launch(std::integral_constant<int, V>{}) with the widest vector V of T, at most 16
// bytes, that divides `channels`; with `narrower` 8, 4 and 2 bytes are tried before one
// element. Images start 256-byte aligned (the memory planner), so every pixel's run of
// channels is then aligned to the vector. Each width is one more instantiation of the
// kernel, so kernels whose layers have channels in multiples of 16 bytes skip `narrower`.
template <typename T, bool narrower, typename Launch>
void with_widest_vector(int channels, Launch&& launch) {
  constexpr int widest = int(16 / sizeof(T));
  if constexpr (widest > 1) {
    if (channels % widest == 0) return launch(std::integral_constant<int, widest>{});
  }
  if constexpr (narrower && widest > 4) {
    if (channels % 4 == 0) return launch(std::integral_constant<int, 4>{});
  }
  if constexpr (narrower && widest > 2) {
    if (channels % 2 == 0) return launch(std::integral_constant<int, 2>{});
  }
  launch(std::integral_constant<int, 1>{});
}

// Launches map_kernel 16 bytes a thread where the count and the pointers allow (the
// memory planner aligns images to 256 bytes), else one element a thread.
template <typename T, typename F>
void map_elements(F f, const T* a, const T* b, T* dst, std::size_t count, int channels,
                  cudaStream_t stream, const char* name) {
  constexpr int V = 16 / sizeof(T);
  const auto aligned = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; };
  if (count % V == 0 && aligned(a) && aligned(b) && aligned(dst)) {
    map_kernel<V>
        <<<blocks_for(count / V, 256), 256, 0, stream>>>(f, a, b, dst, count / V, channels);
  } else {
    map_kernel<1><<<blocks_for(count, 256), 256, 0, stream>>>(f, a, b, dst, count, channels);
  }
  check_launch(name);
}

// dst[i] = f(channel of i, a[i], b[i], c[i]): map_kernel with three sources (training
// fusion's passes that read a gradient, another image and a relu's mask at once).
template <int V, typename T, typename F>
__global__ void map3_kernel(F f, const T* a, const T* b, const T* c3, T* dst, std::size_t groups,
                            int channels) {
  for (std::size_t g = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; g < groups;
       g += std::size_t(gridDim.x) * blockDim.x) {
    const Pack<T, V> x = reinterpret_cast<const Pack<T, V>*>(a)[g];
    const Pack<T, V> y = reinterpret_cast<const Pack<T, V>*>(b)[g];
    const Pack<T, V> z = reinterpret_cast<const Pack<T, V>*>(c3)[g];
    Pack<T, V> out;
    int c = int((g * V) % std::size_t(channels));
#pragma unroll
    for (int k = 0; k < V; ++k) {
      out.v[k] = from_float<T>(f(c, to_float(x.v[k]), to_float(y.v[k]), to_float(z.v[k])));
      if (++c == channels) c = 0;
    }
    reinterpret_cast<Pack<T, V>*>(dst)[g] = out;
  }
}

template <typename T, typename F>
void map3_elements(F f, const T* a, const T* b, const T* c, T* dst, std::size_t count, int channels,
                   cudaStream_t stream, const char* name) {
  constexpr int V = 16 / sizeof(T);
  const auto aligned = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; };
  if (count % V == 0 && aligned(a) && aligned(b) && aligned(c) && aligned(dst)) {
    map3_kernel<V>
        <<<blocks_for(count / V, 256), 256, 0, stream>>>(f, a, b, c, dst, count / V, channels);
  } else {
    map3_kernel<1><<<blocks_for(count, 256), 256, 0, stream>>>(f, a, b, c, dst, count, channels);
  }
  check_launch(name);
}

}  // namespace cnngraph::detail::cuda
