// Element types in device code: loads and stores through float, and a dispatch from
// DataType to the C++ type.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
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

// The neuron types that element-wise passes take with their type fixed at compile time, so
// that apply_neuron's and neuron_derivative's switch folds to one case: map_channels_kernel
// inlines its functor at every element of four vectors a turn, and the switch over every
// type made each neuron pass about 28,000 PTX instructions long and 3-4x slower than the
// memory allows (MobileNetV2's relu6 passes). Other types go through a called function.
struct AnyNeuronType {};
template <NeuronType K>
using NeuronTypeIs = std::integral_constant<NeuronType, K>;

// Calls f(kind): NeuronTypeIs<type> for the common types, else AnyNeuronType.
template <typename F>
void dispatch_neuron_type(NeuronType type, F&& f) {
  switch (type) {
    case NeuronType::relu:
      return f(NeuronTypeIs<NeuronType::relu>{});
    case NeuronType::relu_n:
      return f(NeuronTypeIs<NeuronType::relu_n>{});
    case NeuronType::sigmoid:
      return f(NeuronTypeIs<NeuronType::sigmoid>{});
    case NeuronType::tanh:
      return f(NeuronTypeIs<NeuronType::tanh>{});
    case NeuronType::silu:
      return f(NeuronTypeIs<NeuronType::silu>{});
    default:
      return f(AnyNeuronType{});
  }
}

__device__ __noinline__ inline float called_neuron(const DeviceNeuron& n, float x, int channel) {
  return apply_neuron<float>(n, x, channel);
}
__device__ __noinline__ inline float called_derivative(const DeviceNeuron& n, float x,
                                                       int channel) {
  return neuron_derivative<float>(n, x, channel);
}

// n(x), or n'(x) with `Derivative`, for a neuron of the given kind (its type where the kind
// fixes one).
template <typename Kind, bool Derivative = false>
__device__ __forceinline__ float neuron_of_kind(const DeviceNeuron& n, float x, int channel) {
  if constexpr (std::is_same_v<Kind, AnyNeuronType>) {
    return Derivative ? called_derivative(n, x, channel) : called_neuron(n, x, channel);
  } else {
    DeviceNeuron fixed = n;
    fixed.type = Kind::value;
    if constexpr (Derivative) {
      return neuron_derivative<float>(fixed, x, channel);
    } else {
      return apply_neuron<float>(fixed, x, channel);
    }
  }
}

// The channel count a neuron pass gives map_sources: only a prelu (a run-time type) reads
// its element's channel; 1 lets the others skip finding it.
template <typename Kind>
int neuron_pass_channels(int channels) {
  return std::is_same_v<Kind, AnyNeuronType> ? channels : 1;
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

// The sources of an element-wise pass: N images of T, read V elements at a time.
template <typename T, int N>
struct Sources {
  const T* p[N];
};

// g(element k of each source), g a functor with its channel bound: one source gets 0 as
// the second operand (map_elements with no b).
template <int V, typename T, int N, typename G>
__device__ __forceinline__ float apply_at(const G& g, const Pack<T, V> (&in)[N], int k) {
  if constexpr (N == 1) {
    return g(to_float(in[0].v[k]), 0.0f);
  } else if constexpr (N == 2) {
    return g(to_float(in[0].v[k]), to_float(in[1].v[k]));
  } else {
    return g(to_float(in[0].v[k]), to_float(in[1].v[k]), to_float(in[2].v[k]));
  }
}

// A functor with its channel bound: f.at(c) where the functor has one (it then loads its
// per-channel constants once a thread, not once an element), else f called with c.
template <typename F>
struct AtChannel {
  F f;
  int c;
  template <typename... A>
  __device__ __forceinline__ float operator()(A... a) const {
    return f(c, a...);
  }
};
template <typename F>
__device__ __forceinline__ auto at_channel(const F& f, int c) {
  if constexpr (requires { f.at(c); }) {
    return f.at(c);
  } else {
    return AtChannel<F>{f, c};
  }
}

// A batch norm's value of x with its channel's scale and shift: one formula for the forward
// pass and for the kernels that recompute the forward's result (a relu's mask, a sum of
// normalized sources), which must round it alike.
__device__ __forceinline__ float normalized_value(float x, float scale, float shift) {
  return x * scale + shift;
}

// 1 where a fused relu passes its mask (fused_relu_passes, neuron_math.hpp), else 0.
__device__ __forceinline__ float relu_mask(float mask, float ceiling) {
  return fused_relu_passes(mask, ceiling) ? 1.0f : 0.0f;
}

// x * scale[c] + shift[c], then a fused relu (fused_relu: a plain relu, or a relu_n's
// ceiling too) where asked: the affine pass of batch normalization and of an
// inference-time scale and shift.
template <bool Relu>
struct ChannelAffine {
  const float* scale;
  const float* shift;
  float ceiling = INFINITY;
  struct Bound {
    float scale, shift, ceiling;
    __device__ float operator()(float x, float) const {
      const float v = normalized_value(x, scale, shift);
      if constexpr (Relu) return fused_relu(v, ceiling);
      return v;
    }
  };
  __device__ Bound at(int c) const { return {scale[c], shift[c], ceiling}; }
  __device__ float operator()(int c, float x, float y) const { return at(c)(x, y); }
};

// dst[i] = f(channel of i, sources at i), V elements a thread. Each thread keeps one vector
// of a pixel's channels for its whole loop (the grid's step is a whole number of pixels), so
// the channels are bound once; finding them once an element (a 64-bit division) made these
// passes instruction-bound at about half the memory bandwidth. Four vectors a turn keep
// four loads of each source in flight. `channel_step` is 0 where every element counts as
// channel 0 (the passes that ignore channels), else 1.
template <int V, int N, typename T, typename F>
__global__ void map_channels_kernel(F f, Sources<T, N> src, T* dst, std::size_t vectors,
                                    unsigned lanes, int channel_step) {
  const std::size_t first = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x;
  const std::size_t step = std::size_t(gridDim.x) * blockDim.x;
  const int c0 = int(first % lanes) * V * channel_step;
  decltype(at_channel(f, 0)) g[V];
#pragma unroll
  for (int k = 0; k < V; ++k) g[k] = at_channel(f, c0 + k * channel_step);
  const auto load = [&](std::size_t i, Pack<T, V>(&in)[N]) {
#pragma unroll
    for (int s = 0; s < N; ++s) in[s] = reinterpret_cast<const Pack<T, V>*>(src.p[s])[i];
  };
  const auto store = [&](std::size_t i, const Pack<T, V>(&in)[N]) {
    Pack<T, V> out;
#pragma unroll
    for (int k = 0; k < V; ++k) out.v[k] = from_float<T>(apply_at<V, T, N>(g[k], in, k));
    reinterpret_cast<Pack<T, V>*>(dst)[i] = out;
  };
  constexpr int kUnroll = 4;
  std::size_t i = first;
  for (; i + (kUnroll - 1) * step < vectors; i += kUnroll * step) {
    Pack<T, V> in[kUnroll][N];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) load(i + u * step, in[u]);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) store(i + u * step, in[u]);
  }
  for (; i < vectors; i += step) {
    Pack<T, V> in[N];
    load(i, in);
    store(i, in);
  }
}

// The same, one element a thread, each finding its channel: channels that are not a whole
// number of vectors, unaligned images, or pixels too wide for one block.
template <int N, typename T, typename F>
__global__ void map_elements_kernel(F f, Sources<T, N> src, T* dst, std::size_t count,
                                    int channels) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x) {
    Pack<T, 1> in[N];
#pragma unroll
    for (int s = 0; s < N; ++s) in[s].v[0] = src.p[s][i];
    dst[i] = from_float<T>(apply_at<1, T, N>(at_channel(f, int(i % channels)), in, 0));
  }
}

// Launches map_channels_kernel where the channels are a whole number of 16-byte vectors (or
// every element is channel 0) and the images are aligned to them (the memory planner
// aligns images to 256 bytes), else map_elements_kernel.
template <int N, typename T, typename F>
void map_sources(F f, Sources<T, N> src, T* dst, std::size_t count, int channels,
                 cudaStream_t stream, const char* name) {
  constexpr int V = 16 / sizeof(T);
  constexpr unsigned kMaxBlocks = 2048;  // about four waves of 256 threads on an H100
  const auto aligned = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; };
  bool vectors = count % V == 0 && aligned(dst) && (channels == 1 || channels % V == 0);
  for (int s = 0; s < N; ++s) vectors = vectors && aligned(src.p[s]);
  const unsigned lanes = channels == 1 ? 1u : unsigned(channels / V);
  if (vectors && lanes <= 1024) {
    // A whole number of pixels a block, so that the grid's step is one too.
    const unsigned threads = lanes <= 256 ? 256 / lanes * lanes : lanes;
    const std::size_t groups = count / V;
    const auto blocks =
        unsigned(std::min<std::size_t>((groups + threads - 1) / threads, kMaxBlocks));
    map_channels_kernel<V, N>
        <<<blocks, threads, 0, stream>>>(f, src, dst, groups, lanes, channels == 1 ? 0 : 1);
  } else {
    map_elements_kernel<N>
        <<<blocks_for(count, 256), 256, 0, stream>>>(f, src, dst, count, channels);
  }
  check_launch(name);
}

// dst[i] = f(channel of i, a[i], b[i]); without b, f(channel of i, a[i], 0).
template <typename T, typename F>
void map_elements(F f, const T* a, const T* b, T* dst, std::size_t count, int channels,
                  cudaStream_t stream, const char* name) {
  if (b) {
    map_sources<2>(f, Sources<T, 2>{{a, b}}, dst, count, channels, stream, name);
  } else {
    map_sources<1>(f, Sources<T, 1>{{a}}, dst, count, channels, stream, name);
  }
}

// dst[i] = f(channel of i, a[i], b[i], c[i]): training fusion's passes that read a
// gradient, another image and a relu's mask at once.
template <typename T, typename F>
void map3_elements(F f, const T* a, const T* b, const T* c, T* dst, std::size_t count, int channels,
                   cudaStream_t stream, const char* name) {
  map_sources<3>(f, Sources<T, 3>{{a, b, c}}, dst, count, channels, stream, name);
}

}  // namespace cnngraph::detail::cuda
