// Pooling (out-of-image pixels left out, as in the reference, or counted in average's
// divisor), constant padding and soft-max over channels.
#include <algorithm>
#include <cfloat>

#include "backends/cuda/kernels/device_math.cuh"
#include "backends/cuda/kernels/pooling_softmax.hpp"

namespace cnngraph::detail::cuda {

namespace {

// One thread a result vector of V channels, its window's pixels read V channels (16 bytes
// where the channels allow) at a time, with 32-bit index math where the images allow
// (`Index`). One channel a thread and 64-bit divisions put the max pooling after a ResNet
// stem at about ten times its memory time.
template <typename T, int V, typename Index>
__global__ void pooling_kernel(PoolingGeometry g, const T* src, T* dst) {
  using P = Pack<T, V>;
  const int vectors = g.C / V;
  const Index count = Index(g.N) * g.P * g.Q * vectors;
  const P* source = reinterpret_cast<const P*>(src);
  for (Index e = blockIdx.x * Index(blockDim.x) + threadIdx.x; e < count;
       e += Index(gridDim.x) * blockDim.x) {
    const Index pixel = e / vectors;
    const int v = int(e - pixel * vectors);
    const int q = int(pixel % g.Q);
    const Index np = pixel / g.Q;
    const int p = int(np % g.P), n = int(np / g.P);
    const P* image = source + Index(n) * g.H * g.W * vectors + v;
    float max[V], sum[V];
#pragma unroll
    for (int j = 0; j < V; ++j) max[j] = -FLT_MAX, sum[j] = 0.0f;
    int taken = 0;
    for (int r = 0; r < g.kernel_y; ++r) {
      const int iy = p * g.stride_y - g.pad_y + r;
      if (iy < 0 || iy >= g.H) continue;
      for (int s = 0; s < g.kernel_x; ++s) {
        const int ix = q * g.stride_x - g.pad_x + s;
        if (ix < 0 || ix >= g.W) continue;
        const P x = image[Index(iy * g.W + ix) * vectors];
#pragma unroll
        for (int j = 0; j < V; ++j) {
          const float value = to_float(x.v[j]);
          max[j] = fmaxf(max[j], value);
          sum[j] += value;
        }
        ++taken;
      }
    }
    const int divisor = g.divisor.counts_padding ? average_divisor(g, p, q) : taken;
    const float d = float(divisor > 0 ? divisor : 1);
    P result;
#pragma unroll
    for (int j = 0; j < V; ++j) result.v[j] = from_float<T>(g.max ? max[j] : sum[j] / d);
    reinterpret_cast<P*>(dst)[e] = result;
  }
}

template <typename T, int V>
void launch_pooling(const PoolingGeometry& g, std::size_t results, const void* src, void* dst,
                    cudaStream_t stream) {
  const std::size_t sources = std::size_t(g.N) * g.H * g.W * g.C;
  const unsigned blocks = blocks_for(results / V, 256);
  if (std::max(sources, results) < (std::size_t(1) << 31)) {
    pooling_kernel<T, V, unsigned>
        <<<blocks, 256, 0, stream>>>(g, static_cast<const T*>(src), static_cast<T*>(dst));
  } else {
    pooling_kernel<T, V, std::size_t>
        <<<blocks, 256, 0, stream>>>(g, static_cast<const T*>(src), static_cast<T*>(dst));
  }
}

// A window over the whole image (global pooling: one result pixel): a block reduces the
// pixels of one image for up to 32 channel vectors of V channels (`lanes`), its threads
// striding over the pixels, then sums (or takes the max of) their partial results in a
// fixed order. With one thread a result, as pooling_kernel has it, each thread walked the
// 112 x 112 pixels of an EfficientNet image alone: 37 times the memory roofline. Where the
// images and channel blocks are too few to fill the GPU (small batches), the pixels are
// split over `gridDim.z` blocks too, each writing its f32 sums and maxima to a scratch
// buffer that global_pooling_finish_kernel reduces in split order (the same result on
// every run); one block over a 56x56x144 image at batch 1 moved 15 GB/s.
constexpr int kGlobalThreads = 256;

template <typename T, int V>
__global__ void global_pooling_kernel(PoolingGeometry g, int lanes, const T* src, T* dst,
                                      float* partials) {
  using P = Pack<T, V>;
  const int vectors = g.C / V;
  const int strides = kGlobalThreads / lanes;  // threads past strides * lanes stay idle
  const int lane = threadIdx.x % lanes, stride = threadIdx.x / lanes;
  const int v = blockIdx.x * lanes + lane;
  const int n = blockIdx.y;
  const int split = blockIdx.z, splits = gridDim.z;
  __shared__ float partial[2][kGlobalThreads * V];  // sums and maxima
  float sum[V], max[V];
#pragma unroll
  for (int j = 0; j < V; ++j) sum[j] = 0.0f, max[j] = -FLT_MAX;
  if (v < vectors && stride < strides) {
    const P* image = reinterpret_cast<const P*>(src + std::size_t(n) * g.H * g.W * g.C) + v;
    const int pixels = g.H * g.W;
    for (int pixel = split * strides + stride; pixel < pixels; pixel += strides * splits) {
      const P x = image[std::size_t(pixel) * vectors];
#pragma unroll
      for (int j = 0; j < V; ++j) {
        const float value = to_float(x.v[j]);
        sum[j] += value;
        max[j] = fmaxf(max[j], value);
      }
    }
  }
#pragma unroll
  for (int j = 0; j < V; ++j) {
    partial[0][threadIdx.x * V + j] = sum[j];
    partial[1][threadIdx.x * V + j] = max[j];
  }
  __syncthreads();
  if (stride != 0 || v >= vectors) return;
  const int divisor = g.divisor.counts_padding ? average_divisor(g, 0, 0) : g.H * g.W;
  P result;
#pragma unroll
  for (int j = 0; j < V; ++j) {
    float total = 0.0f, largest = -FLT_MAX;
    for (int k = 0; k < strides; ++k) {
      total += partial[0][(k * lanes + lane) * V + j];
      largest = fmaxf(largest, partial[1][(k * lanes + lane) * V + j]);
    }
    if (splits > 1) {
      // [sums, maxima][split][n][c]
      const std::size_t at = (std::size_t(split) * g.N + n) * g.C + std::size_t(v) * V + j;
      partials[at] = total;
      partials[std::size_t(splits) * g.N * g.C + at] = largest;
      continue;
    }
    result.v[j] = from_float<T>(g.max ? largest : total / float(divisor > 0 ? divisor : 1));
  }
  if (splits == 1) reinterpret_cast<P*>(dst + std::size_t(n) * g.C)[v] = result;
}

// One thread a result: the splits' partial sums or maxima in split order.
template <typename T>
__global__ void global_pooling_finish_kernel(PoolingGeometry g, int splits, const float* partials,
                                             T* dst) {
  const std::size_t count = std::size_t(g.N) * g.C;
  const std::size_t e = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x;
  if (e >= count) return;
  const int divisor = g.divisor.counts_padding ? average_divisor(g, 0, 0) : g.H * g.W;
  const float* maxima = partials + std::size_t(splits) * count;
  float total = 0.0f, largest = -FLT_MAX;
  for (int split = 0; split < splits; ++split) {
    total += partials[split * count + e];
    largest = fmaxf(largest, maxima[split * count + e]);
  }
  dst[e] = from_float<T>(g.max ? largest : total / float(divisor > 0 ? divisor : 1));
}

// Whether every source pixel is inside the window of the one result pixel.
bool global_window(const PoolingGeometry& g) {
  return g.P == 1 && g.Q == 1 && g.pad_y <= 0 && g.pad_x <= 0 && g.kernel_y - g.pad_y >= g.H &&
         g.kernel_x - g.pad_x >= g.W && g.N <= 65535;
}

// Channel vectors a block: all of them up to 32, so that a pixel's channels are read
// together; the rest of the block's threads stride over the pixels.
int global_lanes(int vectors) { return vectors < 32 ? vectors : 32; }

// Blocks over each image's pixels: enough for about two blocks an SM (the H200 has 132),
// each block keeping at least 8 pixels a thread; 1 where the batch fills the GPU alone.
int global_splits(const PoolingGeometry& g, int vectors) {
  const int lanes = global_lanes(vectors);
  const long long blocks = (vectors + lanes - 1) / lanes * (long long)g.N;
  const int per_block = (kGlobalThreads / lanes) * 8;
  const long long wanted = (264 + blocks - 1) / blocks;
  const long long most = std::max<long long>(1, (long long)g.H * g.W / per_block);
  return int(std::min<long long>({wanted, most, 64}));
}

template <typename T, int V>
void launch_global_pooling(const PoolingGeometry& g, const void* src, void* dst, float* scratch,
                           cudaStream_t stream) {
  const int vectors = g.C / V;
  const int lanes = global_lanes(vectors);
  const int splits = scratch ? global_splits(g, vectors) : 1;
  const dim3 blocks(unsigned((vectors + lanes - 1) / lanes), unsigned(g.N), unsigned(splits));
  global_pooling_kernel<T, V><<<blocks, kGlobalThreads, 0, stream>>>(
      g, lanes, static_cast<const T*>(src), static_cast<T*>(dst), scratch);
  if (splits > 1) {
    const std::size_t count = std::size_t(g.N) * g.C;
    global_pooling_finish_kernel<T>
        <<<blocks_for(count, 256), 256, 0, stream>>>(g, splits, scratch, static_cast<T*>(dst));
  }
}

// The vector width launch_global_pooling takes for T.
template <typename T>
int global_vector(int channels) {
  int width = 1;
  with_widest_vector<T, false>(channels, [&](auto vector) { width = decltype(vector)::value; });
  return width;
}

// One warp per pixel: max, then the sum of exponentials, then the results.
template <typename T>
__global__ void softmax_kernel(const T* src, T* dst, std::size_t pixels, int C, bool logarithmic) {
  const std::size_t warp = (blockIdx.x * std::size_t(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (warp >= pixels) return;
  const T* x = src + warp * C;
  T* y = dst + warp * C;
  float max = -FLT_MAX;
  for (int c = lane; c < C; c += 32) max = fmaxf(max, to_float(x[c]));
  for (int o = 16; o > 0; o /= 2) max = fmaxf(max, __shfl_xor_sync(0xffffffffu, max, o));
  float sum = 0.0f;
  for (int c = lane; c < C; c += 32) sum += expf(to_float(x[c]) - max);
  for (int o = 16; o > 0; o /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  const float log_sum = logf(sum);
  for (int c = lane; c < C; c += 32) {
    const float v = to_float(x[c]) - max;
    y[c] = from_float<T>(logarithmic ? v - log_sum : expf(v) / sum);
  }
}

// dst[n, y, x, c] = src[n, y - top, x - left, c] inside src, else `value` (PaddingOp).
template <typename T>
__global__ void padding_kernel(int N, int H, int W, int C, int P, int Q, int K, int top, int left,
                               float value, const T* src, T* dst) {
  const std::size_t count = std::size_t(N) * P * Q * K;
  for (std::size_t e = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; e < count;
       e += std::size_t(gridDim.x) * blockDim.x) {
    const Pixel at = unravel(e, P, Q, K);
    const int y = at.y - top, x = at.x - left;
    const bool inside = y >= 0 && y < H && x >= 0 && x < W && at.c < C;
    dst[e] = inside ? src[((std::size_t(at.n) * H + y) * W + x) * C + at.c] : from_float<T>(value);
  }
}

}  // namespace

void padding(DataType type, const PaddingOp& op, const void* src, void* dst, cudaStream_t stream) {
  const ImageShape& in = op.src_shapes[0];
  const ImageShape& out = op.dst_shape;
  dispatch(type, [&](auto tag) {
    using T = decltype(tag);
    padding_kernel<<<blocks_for(out.elements(), 256), 256, 0, stream>>>(
        in.batch, in.height, in.width, in.channels, out.height, out.width, out.channels, op.top,
        op.left, op.value, static_cast<const T*>(src), static_cast<T*>(dst));
  });
  check_launch("padding");
}

std::size_t pooling_scratch_bytes(DataType type, const PoolingOp& op) {
  const PoolingGeometry g =
      pooling_geometry(op.src_shapes[0], op.dst_shape, op.x, op.y, op.type, op.divisor);
  if (!global_window(g) || g.H * g.W <= 1) return 0;
  std::size_t bytes = 0;
  dispatch(type, [&](auto tag) {
    using T = decltype(tag);
    const int splits = global_splits(g, g.C / global_vector<T>(g.C));
    if (splits > 1) bytes = 2 * std::size_t(splits) * g.N * g.C * sizeof(float);
  });
  return bytes;
}

void pooling(DataType type, const PoolingOp& op, const void* src, void* dst, void* scratch,
             cudaStream_t stream) {
  const ImageShape& in = op.src_shapes[0];
  const PoolingGeometry g = pooling_geometry(in, op.dst_shape, op.x, op.y, op.type, op.divisor);
  dispatch(type, [&](auto tag) {
    using T = decltype(tag);
    if (global_window(g) && g.H * g.W > 1) {
      return with_widest_vector<T, false>(g.C, [&](auto vector) {
        launch_global_pooling<T, decltype(vector)::value>(g, src, dst, static_cast<float*>(scratch),
                                                          stream);
      });
    }
    with_widest_vector<T, true>(g.C, [&](auto vector) {
      launch_pooling<T, decltype(vector)::value>(g, op.dst_shape.elements(), src, dst, stream);
    });
  });
  check_launch("pooling");
}

void softmax(DataType type, bool logarithmic, const void* src, void* dst, std::size_t pixels,
             int channels, cudaStream_t stream) {
  const unsigned threads = 256;
  const unsigned blocks = static_cast<unsigned>((pixels * 32 + threads - 1) / threads);
  dispatch(type, [&](auto tag) {
    using T = decltype(tag);
    softmax_kernel<<<blocks, threads, 0, stream>>>(static_cast<const T*>(src), static_cast<T*>(dst),
                                                   pixels, channels, logarithmic);
  });
  check_launch("softmax");
}

}  // namespace cnngraph::detail::cuda
