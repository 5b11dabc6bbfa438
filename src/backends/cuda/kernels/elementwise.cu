// Our element-wise CUDA kernels: type conversion, neurons (the shared formulas of
// neuron_math.hpp), the convolution epilogue, addition and the broadcasting arithmetic
// (arithmetic_math.hpp), per-channel affine, transposes,
// channel padding and the sub-pixel shuffle. Grid-stride loops, math in float.
#include "backends/cuda/kernels/device_math.cuh"
#include "backends/cuda/kernels/elementwise.hpp"
#include "cnngraph/errors.hpp"
#include "ops/arithmetic_math.hpp"
#include "ops/neuron_math.hpp"
#include "ops/sub_pixel.hpp"

namespace cnngraph::detail::cuda {

void check_launch(const char* kernel) {
  check(cudaGetLastError(), std::string("launching ") + kernel);
}

namespace {

constexpr unsigned kThreads = 256;

// The functors of map_elements.
template <typename Kind>
struct NeuronOf {
  DeviceNeuron n;
  __device__ float operator()(int c, float x, float) const { return neuron_of_kind<Kind>(n, x, c); }
};
struct Sum {
  __device__ float operator()(int, float x, float y) const { return x + y; }
};
// relu as neuron_math.hpp writes it (a not-a-number stays one, as unfused).
struct SumRelu {
  __device__ float operator()(int, float x, float y) const {
    const float v = x + y;
    return v >= 0.0f ? v : 0.0f * v;
  }
};
struct ArithmeticOf {
  ArithmeticOperation operation;
  __device__ float operator()(int, float x, float y) const {
    return apply_arithmetic<float>(operation, x, y);
  }
};
template <typename From, typename To>
__global__ void convert_kernel(const From* src, To* dst, std::size_t count) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x) {
    dst[i] = from_float<To>(to_float(src[i]));
  }
}

// One thread per result element, each source read where its broadcast index points.
template <typename T>
__global__ void broadcast_arithmetic_kernel(ArithmeticOperation operation, const T* a,
                                            BroadcastIndex ia, const T* b, BroadcastIndex ib,
                                            T* dst, std::size_t count) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x) {
    dst[i] = from_float<T>(apply_arithmetic<float>(operation, to_float(a[source_offset(ia, i)]),
                                                   to_float(b[source_offset(ib, i)])));
  }
}

// The broadcast of a squeeze-and-excitation block: `a` has the result's shape and `b` one
// value per image and channel ([N, 1, 1, C]), swapped where `b_first`. V channels a
// thread, 32-bit index math: the general kernel's 64-bit divisions per operand made it ten
// times slower than the memory allows.
template <typename T, int V>
__global__ void channel_broadcast_kernel(ArithmeticOperation operation, const T* a, const T* b,
                                         bool b_first, T* dst, unsigned vectors,
                                         unsigned image_vectors, unsigned channel_vectors,
                                         unsigned channels) {
  using P = Pack<T, V>;
  for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < vectors;
       i += gridDim.x * blockDim.x) {
    const P x = reinterpret_cast<const P*>(a)[i];
    const P y = reinterpret_cast<const P*>(b + (i / image_vectors) * channels)[i % channel_vectors];
    P result;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      const float u = to_float(x.v[j]), w = to_float(y.v[j]);
      result.v[j] = from_float<T>(b_first ? apply_arithmetic<float>(operation, w, u)
                                          : apply_arithmetic<float>(operation, u, w));
    }
    reinterpret_cast<P*>(dst)[i] = result;
  }
}

// Whether `small` is [dst.batch, 1, 1, dst.channels].
bool per_image_channels(const ImageShape& small, const ImageShape& dst) {
  return small.height == 1 && small.width == 1 && small.channels == dst.channels &&
         small.batch == dst.batch;
}

template <typename T, int V>
void launch_channel_broadcast(ArithmeticOperation operation, const T* a, const T* b, bool b_first,
                              T* dst, const ImageShape& shape, cudaStream_t stream) {
  const unsigned channel_vectors = unsigned(shape.channels / V);
  const unsigned image_vectors = unsigned(shape.height) * shape.width * channel_vectors;
  const unsigned vectors = unsigned(shape.batch) * image_vectors;
  channel_broadcast_kernel<T, V><<<blocks_for(vectors, kThreads), kThreads, 0, stream>>>(
      operation, a, b, b_first, dst, vectors, image_vectors, channel_vectors,
      unsigned(shape.channels));
}

template <typename T>
__global__ void epilogue_kernel(const __grid_constant__ DeviceEpilogue e, T* dst, std::size_t count,
                                int channels) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const int c = int(i % channels);
    dst[i] = from_float<T>(apply_epilogue<T>(e, to_float(dst[i]), c, i));
  }
}

// 32x32 tiles through shared memory (one column of padding against bank conflicts), so
// that both the reads and the writes are coalesced.
template <typename T>
__global__ void transpose_kernel(const T* src, T* dst, int rows, int cols,
                                 const __grid_constant__ DeviceEpilogue e, bool with_epilogue) {
  __shared__ T tile[32][33];
  const std::size_t matrix = std::size_t(blockIdx.z) * rows * cols;
  const int col = blockIdx.x * 32 + threadIdx.x;
  for (int k = threadIdx.y; k < 32; k += blockDim.y) {
    const int row = blockIdx.y * 32 + k;
    if (row < rows && col < cols)
      tile[k][threadIdx.x] = src[matrix + std::size_t(row) * cols + col];
  }
  __syncthreads();
  const int out_col = blockIdx.y * 32 + threadIdx.x;  // a source row
  for (int k = threadIdx.y; k < 32; k += blockDim.y) {
    const int out_row = blockIdx.x * 32 + k;  // a source column
    if (out_row < cols && out_col < rows) {
      const std::size_t at = matrix + std::size_t(out_row) * rows + out_col;
      const T v = tile[threadIdx.x][k];
      dst[at] = with_epilogue ? from_float<T>(apply_epilogue<T>(e, to_float(v), out_col, at)) : v;
    }
  }
}

// Few source columns (NHWC -> NCHW of 3 colours): one thread per result element, reading
// the source directly; a 32-wide tile would leave most of its threads idle.
template <typename T>
__global__ void narrow_transpose_kernel(const T* src, T* dst, int batch, int rows, int cols) {
  const std::size_t count = std::size_t(batch) * rows * cols;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const std::size_t matrix = i / (std::size_t(rows) * cols);
    const std::size_t within = i - matrix * rows * cols;
    const int j = int(within / rows), r = int(within % rows);  // dst is cols x rows
    dst[i] = src[(matrix * rows + r) * cols + j];
  }
}

template <typename T>
__global__ void pad_channels_kernel(const T* src, int from, T* dst, int to, std::size_t count) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const std::size_t pixel = i / to;
    const int c = int(i % to);
    dst[i] = c < from ? src[pixel * from + c] : from_float<T>(0.0f);
  }
}

// One thread a pixel, its `To` channels written as one vector: pad_channels_kernel's
// two-byte stores at 8-channel strides made the padding of a stem's fp16 source a tenth of
// the stem's time.
template <typename T, int To>
__global__ void pad_pixels_kernel(const T* src, int from, T* dst, std::size_t pixels) {
  for (std::size_t p = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; p < pixels;
       p += std::size_t(gridDim.x) * blockDim.x) {
    Pack<T, To> out;
#pragma unroll
    for (int c = 0; c < To; ++c) out.v[c] = c < from ? src[p * from + c] : from_float<T>(0.0f);
    reinterpret_cast<Pack<T, To>*>(dst)[p] = out;
  }
}

// One thread per result element: channel c of the result pixel (y*s+i, x*s+j) is channel
// sub_pixel_source_channel(order, c, i, j, s, C) of convolution pixel (y, x). The shuffle
// gathers into the result; its inverse (`unshuffle`, for the gradient) scatters back, through
// the same bijection.
template <typename T>
__global__ void sub_pixel_kernel(const T* from, int N, int H, int W, int C, int s,
                                 SubPixelOrder order, bool unshuffle, T* to) {
  const std::size_t count = std::size_t(N) * H * s * W * s * C;
  for (std::size_t e = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; e < count;
       e += std::size_t(gridDim.x) * blockDim.x) {
    const Pixel at = unravel(e, H * s, W * s, C);
    const int n = at.n, Y = at.y, X = at.x, c = at.c;
    const int y = Y / s, i = Y % s, x = X / s, j = X % s;
    const std::size_t conv = ((std::size_t(n) * H + y) * W + x) * (std::size_t(C) * s * s) +
                             sub_pixel_source_channel(order, c, i, j, s, C);
    if (unshuffle)
      to[conv] = from[e];
    else
      to[e] = from[conv];
  }
}

// dst[g][a][t][b] = src[g][b][t][a]: the two channel axes of grouped OHWI weights swapped.
template <typename S, typename D>
__global__ void swap_weight_channels_kernel(const S* src, D* dst, int groups, int A, int B,
                                            int taps) {
  const std::size_t count = std::size_t(groups) * A * B * taps;
  for (std::size_t e = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; e < count;
       e += std::size_t(gridDim.x) * blockDim.x) {
    const int b = int(e % B);
    std::size_t rest = e / B;
    const int t = int(rest % taps);
    rest /= taps;
    const int a = int(rest % A);
    const int g = int(rest / A);
    dst[e] = from_float<D>(to_float(src[((std::size_t(g) * B + b) * taps + t) * A + a]));
  }
}

}  // namespace

void convert(const void* src, DataType from, void* dst, DataType to, std::size_t count,
             cudaStream_t stream) {
  if (count == 0) return;
  dispatch(from, [&](auto from_tag) {
    using From = decltype(from_tag);
    dispatch(to, [&](auto to_tag) {
      using To = decltype(to_tag);
      convert_kernel<<<blocks_for(count, kThreads), kThreads, 0, stream>>>(
          static_cast<const From*>(src), static_cast<To*>(dst), count);
    });
  });
  check_launch("convert");
}

void neuron(DataType type, const DeviceNeuron& n, const void* src, void* dst, std::size_t count,
            int channels, cudaStream_t stream) {
  dispatch(type, [&](auto tag) {
    using T = decltype(tag);
    dispatch_neuron_type(n.type, [&](auto kind) {
      using Kind = decltype(kind);
      map_sources<1>(NeuronOf<Kind>{n}, Sources<T, 1>{{static_cast<const T*>(src)}},
                     static_cast<T*>(dst), count, neuron_pass_channels<Kind>(channels), stream,
                     "neuron");
    });
  });
}

void epilogue(DataType type, const DeviceEpilogue& e, void* dst, std::size_t count, int channels,
              cudaStream_t stream) {
  dispatch(type, [&](auto tag) {
    using T = decltype(tag);
    epilogue_kernel<<<blocks_for(count, kThreads), kThreads, 0, stream>>>(e, static_cast<T*>(dst),
                                                                          count, channels);
  });
  check_launch("epilogue");
}

void add(DataType type, const void* a, const void* b, void* dst, std::size_t count,
         cudaStream_t stream, bool relu) {
  dispatch(type, [&](auto tag) {
    using T = decltype(tag);
    const auto* x = static_cast<const T*>(a);
    const auto* y = static_cast<const T*>(b);
    if (relu) {
      map_elements(SumRelu{}, x, y, static_cast<T*>(dst), count, 1, stream, "add_relu");
    } else {
      map_elements(Sum{}, x, y, static_cast<T*>(dst), count, 1, stream, "add");
    }
  });
}

void arithmetic(DataType type, ArithmeticOperation operation, const void* a,
                const ImageShape& a_shape, const void* b, const ImageShape& b_shape, void* dst,
                const ImageShape& dst_shape, cudaStream_t stream) {
  const std::size_t count = dst_shape.elements();
  if (count == 0) return;
  dispatch(type, [&](auto tag) {
    using T = decltype(tag);
    if (a_shape == dst_shape && b_shape == dst_shape) {
      map_elements(ArithmeticOf{operation}, static_cast<const T*>(a), static_cast<const T*>(b),
                   static_cast<T*>(dst), count, 1, stream, "arithmetic");
      return;
    }
    const bool a_full = a_shape == dst_shape && per_image_channels(b_shape, dst_shape);
    const bool b_full = b_shape == dst_shape && per_image_channels(a_shape, dst_shape);
    if ((a_full || b_full) && count < (1u << 31)) {
      const auto* full = static_cast<const T*>(a_full ? a : b);
      const auto* small = static_cast<const T*>(a_full ? b : a);
      with_widest_vector<T, false>(dst_shape.channels, [&](auto vector) {
        launch_channel_broadcast<T, decltype(vector)::value>(
            operation, full, small, !a_full, static_cast<T*>(dst), dst_shape, stream);
      });
      check_launch("arithmetic");
      return;
    }
    broadcast_arithmetic_kernel<<<blocks_for(count, kThreads), kThreads, 0, stream>>>(
        operation, static_cast<const T*>(a), broadcast_index(a_shape, dst_shape),
        static_cast<const T*>(b), broadcast_index(b_shape, dst_shape), static_cast<T*>(dst), count);
    check_launch("arithmetic");
  });
}

void affine(DataType type, const void* src, const float* scale, const float* shift, void* dst,
            std::size_t count, int channels, cudaStream_t stream) {
  dispatch(type, [&](auto tag) {
    using T = decltype(tag);
    map_elements(ChannelAffine<false>{scale, shift}, static_cast<const T*>(src),
                 static_cast<const T*>(nullptr), static_cast<T*>(dst), count, channels, stream,
                 "affine");
  });
}

void transpose_batched(DataType type, const void* src, void* dst, int batch, int rows, int cols,
                       cudaStream_t stream, const DeviceEpilogue* epilogue) {
  dispatch(type, [&](auto tag) {
    using T = decltype(tag);
    if (cols < 8 && !epilogue) {
      const std::size_t count = std::size_t(batch) * rows * cols;
      narrow_transpose_kernel<<<blocks_for(count, kThreads), kThreads, 0, stream>>>(
          static_cast<const T*>(src), static_cast<T*>(dst), batch, rows, cols);
      return;
    }
    const dim3 blocks((cols + 31) / 32, (rows + 31) / 32, batch);
    const dim3 threads(32, 8);
    transpose_kernel<<<blocks, threads, 0, stream>>>(
        static_cast<const T*>(src), static_cast<T*>(dst), rows, cols,
        epilogue ? *epilogue : DeviceEpilogue{}, epilogue != nullptr);
  });
  check_launch("transpose");
}

void pad_channels(DataType type, const void* src, int from_channels, void* dst, int to_channels,
                  std::size_t pixels, cudaStream_t stream) {
  const std::size_t count = pixels * to_channels;
  dispatch(type, [&](auto tag) {
    using T = decltype(tag);
    const auto* from = static_cast<const T*>(src);
    auto* to = static_cast<T*>(dst);
    const unsigned blocks = blocks_for(pixels, kThreads);
    if (to_channels == 4) {
      pad_pixels_kernel<T, 4><<<blocks, kThreads, 0, stream>>>(from, from_channels, to, pixels);
    } else if (to_channels == 8) {
      pad_pixels_kernel<T, 8><<<blocks, kThreads, 0, stream>>>(from, from_channels, to, pixels);
    } else {
      pad_channels_kernel<<<blocks_for(count, kThreads), kThreads, 0, stream>>>(
          from, from_channels, to, to_channels, count);
    }
  });
  check_launch("pad_channels");
}

void swap_weight_channels(DataType src_type, const void* src, DataType dst_type, void* dst,
                          int groups, int a, int b, int taps, cudaStream_t stream) {
  const std::size_t count = std::size_t(groups) * a * b * taps;
  dispatch(src_type, [&](auto src_tag) {
    dispatch(dst_type, [&](auto dst_tag) {
      using S = decltype(src_tag);
      using D = decltype(dst_tag);
      swap_weight_channels_kernel<<<blocks_for(count, kThreads), kThreads, 0, stream>>>(
          static_cast<const S*>(src), static_cast<D*>(dst), groups, a, b, taps);
    });
  });
  check_launch("swap_weight_channels");
}

namespace {

void launch_sub_pixel(DataType type, const void* from, const ImageShape& conv_shape, int factor,
                      SubPixelOrder order, bool unshuffle, void* to, cudaStream_t stream) {
  const int C = conv_shape.channels / (factor * factor);
  dispatch(type, [&](auto tag) {
    using T = decltype(tag);
    sub_pixel_kernel<<<blocks_for(conv_shape.elements(), kThreads), kThreads, 0, stream>>>(
        static_cast<const T*>(from), conv_shape.batch, conv_shape.height, conv_shape.width, C,
        factor, order, unshuffle, static_cast<T*>(to));
  });
  check_launch(unshuffle ? "sub_pixel_unshuffle" : "sub_pixel_shuffle");
}

}  // namespace

void sub_pixel_shuffle(DataType type, const void* conv, const ImageShape& conv_shape, int factor,
                       SubPixelOrder order, void* dst, cudaStream_t stream) {
  launch_sub_pixel(type, conv, conv_shape, factor, order, false, dst, stream);
}

void sub_pixel_unshuffle(DataType type, const void* shuffled, const ImageShape& conv_shape,
                         int factor, SubPixelOrder order, void* conv, cudaStream_t stream) {
  launch_sub_pixel(type, shuffled, conv_shape, factor, order, true, conv, stream);
}

}  // namespace cnngraph::detail::cuda
