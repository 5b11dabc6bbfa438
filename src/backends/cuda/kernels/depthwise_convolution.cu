// Depthwise convolution (one filter per channel): memory-bound, where cuDNN's engines for
// grouped NHWC problems are slow. Two designs, chosen per layer (depthwise_variants): the
// tiled kernel stages a source tile in shared memory and computes several result rows per
// thread; the untiled one has each thread read its taps straight from global memory (L1/L2
// serve the overlap) and takes every shape. Both accumulate in f32 and apply the epilogue
// before one vectorized store.
#include "backends/cuda/kernels/depthwise_convolution.hpp"

#include <algorithm>
#include <string>

#include "backends/cuda/kernels/device_math.cuh"
#include "backends/cuda/kernels/elementwise.hpp"
#include "ops/neuron_math.hpp"

namespace cnngraph::detail::cuda {

namespace {

// The epilogues of the depthwise layers of MobileNets and EfficientNets, applied without the
// general post-op chain (apply_epilogue): that one's switch over every neuron type, inlined
// at each of a thread's 16 to 32 results, makes the kernel many times larger.
enum EpilogueForm : int {
  kGeneralEpilogue,  // any chain of neurons and sums
  kLeakyClamp,       // bias, then x >= 0 ? x : slope * x, then min(x, upper) where clamped
  kSilu,             // bias, then x * sigmoid(x)
};

struct Geometry {
  int N, H, W, C, P, Q, R, S;
  int stride_y, stride_x, pad_y, pad_x, dilation_y, dilation_x;
  EpilogueForm form;
  float slope, upper;
  bool clamped;
};

// Called, not inlined: only layers with uncommon post-ops take it.
template <typename T>
__device__ __noinline__ float general_epilogue(const DeviceEpilogue& e, float v, int channel,
                                               std::size_t index) {
  return apply_epilogue<T>(e, v, channel, index);
}

// The same values as apply_epilogue, for the forms above.
template <typename T>
__device__ __forceinline__ float epilogue(const Geometry& g, const DeviceEpilogue& e, float v,
                                          int channel, std::size_t index) {
  if (g.form == kGeneralEpilogue) return general_epilogue<T>(e, v, channel, index);
  if (e.bias) v += to_float(static_cast<const T*>(e.bias)[channel]);
  if (g.form == kSilu) return v * stable_sigmoid(v);
  v = v >= 0.f ? v : g.slope * v;
  return g.clamped ? fminf(v, g.upper) : v;
}

// V sums of channels c0.. of one pixel (flat index `first`) through the epilogue, stored as
// one vector.
template <typename T, int V>
__device__ __forceinline__ void store(const Geometry& g, const DeviceEpilogue& e,
                                      const float (&sum)[V], int c0, std::size_t first, T* dst) {
  Pack<T, V> result;
#pragma unroll
  for (int j = 0; j < V; ++j)
    result.v[j] = from_float<T>(epilogue<T>(g, e, sum[j], c0 + j, first + j));
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
    store<T, V>(g, e, sum, c0, first, dst);
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
      store<T, V>(g, e, sum[t], c0, first, dst);
    }
  }
}

// The tiled kernel. A block covers `TP` result rows by `tq` result columns (blockIdx.x) of
// `cv` channel vectors (blockIdx.y) of one image (blockIdx.z). It first stages the source
// rows and columns those results read (the tile plus its halo, zero where the padding is)
// in shared memory with 16-byte asynchronous copies, channel vectors fastest so that each
// pixel's run of channels is one coalesced read, then each thread computes TP rows of one
// column for one channel vector, its K x K weight vectors in registers. Undilated, each
// staged source row is read once per column and serves every result row that uses it
// (4.5 shared-memory reads a result for 3x3, stride 1, TP 4); dilated, a read per tap.
// Each source byte thus comes from DRAM about once (halos of neighbouring blocks are
// served from L2), and each result is written once, vectorized.
struct Tile {
  int cv, tq;            // channel vectors and result columns a block
  int in_rows, in_cols;  // the staged source tile
  int col_tiles;         // result column tiles of an image
};

__device__ __forceinline__ void copy16_async(void* shared, const void* global, bool inside) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned address = static_cast<unsigned>(__cvta_generic_to_shared(shared));
  // A source size of 0 fills the 16 bytes with zeros: the padding.
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(address), "l"(global),
               "r"(inside ? 16 : 0));
#else
  *static_cast<uint4*>(shared) = inside ? *static_cast<const uint4*>(global) : uint4{0, 0, 0, 0};
#endif
}

__device__ __forceinline__ void wait_async_copies() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\ncp.async.wait_group 0;\n" ::);
#endif
}

template <typename T, int V, int K, int SY, int TP>
__global__ void depthwise_tiled_kernel(Geometry g, Tile tile, const T* src, const T* weights,
                                       const __grid_constant__ DeviceEpilogue e, T* dst) {
  static_assert(sizeof(T) * V == 16, "the tiled kernel moves 16-byte vectors");
  using P = Pack<T, V>;
  extern __shared__ uint4 staged_raw[];
  P* staged = reinterpret_cast<P*>(staged_raw);
  const int vectors = g.C / V;
  const int n = blockIdx.z;
  const int v0 = blockIdx.y * tile.cv;
  const int p0 = (blockIdx.x / tile.col_tiles) * TP;
  const int q0 = (blockIdx.x % tile.col_tiles) * tile.tq;
  const int y0 = p0 * SY - g.pad_y, x0 = q0 * SY - g.pad_x;
  const T* image = src + unsigned(n) * g.H * g.W * g.C;
  const int staged_count = tile.in_rows * tile.in_cols * tile.cv;
  for (int i = threadIdx.x; i < staged_count; i += blockDim.x) {
    const int v = i % tile.cv;
    const int pixel = i / tile.cv;
    const int iy = y0 + pixel / tile.in_cols, ix = x0 + pixel % tile.in_cols;
    const bool inside = iy >= 0 && iy < g.H && ix >= 0 && ix < g.W && v0 + v < vectors;
    const T* from = inside ? image + (unsigned(iy) * g.W + ix) * g.C + (v0 + v) * V : image;
    copy16_async(staged + i, from, inside);
  }
  wait_async_copies();
  __syncthreads();

  const int v = threadIdx.x % tile.cv;
  const int tq = threadIdx.x / tile.cv;
  const int q = q0 + tq;
  if (tq >= tile.tq || q >= g.Q || v0 + v >= vectors) return;
  const int c0 = (v0 + v) * V;
  P w[K * K];
#pragma unroll
  for (int t = 0; t < K * K; ++t)
    w[t] = *reinterpret_cast<const P*>(weights + unsigned(t) * g.C + c0);
  float sum[TP][V] = {};
  // staged[(row * in_cols + col) * cv + v]
  const P* column = staged + tq * SY * tile.cv + v;
  const int row_step = tile.in_cols * tile.cv;
  if (g.dilation_y == 1 && g.dilation_x == 1) {
#pragma unroll
    for (int j = 0; j < (TP - 1) * SY + K; ++j) {  // staged rows: result row t reads t*SY + r
#pragma unroll
      for (int s = 0; s < K; ++s) {
        const P x = column[j * row_step + s * tile.cv];
#pragma unroll
        for (int t = 0; t < TP; ++t) {
          const int r = j - t * SY;
          if (r < 0 || r >= K) continue;
#pragma unroll
          for (int k = 0; k < V; ++k) sum[t][k] += to_float(x.v[k]) * to_float(w[r * K + s].v[k]);
        }
      }
    }
  } else {
#pragma unroll
    for (int t = 0; t < TP; ++t) {
#pragma unroll
      for (int r = 0; r < K; ++r) {
        const P* row = column + (t * SY + r * g.dilation_y) * row_step;
#pragma unroll
        for (int s = 0; s < K; ++s) {
          const P x = row[s * g.dilation_x * tile.cv];
#pragma unroll
          for (int k = 0; k < V; ++k) sum[t][k] += to_float(x.v[k]) * to_float(w[r * K + s].v[k]);
        }
      }
    }
  }
#pragma unroll
  for (int t = 0; t < TP; ++t) {
    const int p = p0 + t;
    if (p >= g.P) break;
    const std::size_t first = ((std::size_t(n) * g.P + p) * g.Q + q) * g.C + c0;
    store<T, V>(g, e, sum[t], c0, first, dst);
  }
}

// The register-tiled kernel. A thread computes TP x TQ results (rows by columns) of one
// V-channel vector with its K x K weights converted once into f32 registers; each source
// pixel it loads is converted once and serves every one of its results that reads it, so
// a result costs ((TP - 1) SD + K) ((TQ - 1) SD + K) / (TP TQ) loads rather than K * K
// (2.25 for 3x3 at stride 1 with 4 x 4 results, against 9 in the untiled kernel, and no
// conversions of weights in the loop). V is 2 (4 bytes a load in fp16 and bf16): a
// thread's registers then hold 25 weight pairs and 16 result pairs for 5x5. The threads of
// a block take `cv` consecutive channel vectors (coalesced reads of each pixel's channels)
// of `tiles_per_block` consecutive tiles along the rows, so neighbouring tiles' halos are
// served from L1 rather than DRAM.
struct RegisterTiles {
  int cv, tiles_per_block;  // threads a block: cv * tiles_per_block
  int p_tiles, q_tiles;     // tiles of an image's result rows and columns
  int tiles;                // N * p_tiles * q_tiles
};

constexpr int kRegisterVector = 2;

template <typename T, int V, int K, int SD, int TP, int TQ>
__global__ void __launch_bounds__(256)
    depthwise_register_kernel(Geometry g, RegisterTiles t, const T* src, const T* weights,
                              const __grid_constant__ DeviceEpilogue e, T* dst) {
  using P = Pack<T, V>;
  const int lane = int(threadIdx.x) % t.cv;
  const int tile = int(blockIdx.x) * t.tiles_per_block + int(threadIdx.x) / t.cv;
  const int vector = int(blockIdx.y) * t.cv + lane;
  if (tile >= t.tiles || vector >= g.C / V) return;
  const int q0 = (tile % t.q_tiles) * TQ;
  const int rest = tile / t.q_tiles;
  const int p0 = (rest % t.p_tiles) * TP;
  const int n = rest / t.p_tiles;
  const int c0 = vector * V;
  float w[K * K][V];
#pragma unroll
  for (int tap = 0; tap < K * K; ++tap) {
    const P pair = *reinterpret_cast<const P*>(weights + unsigned(tap) * g.C + c0);
#pragma unroll
    for (int k = 0; k < V; ++k) w[tap][k] = to_float(pair.v[k]);
  }
  float sum[TP][TQ][V] = {};
  const T* image = src + unsigned(n) * g.H * g.W * g.C + c0;
  const int y0 = p0 * SD - g.pad_y, x0 = q0 * SD - g.pad_x;
  constexpr int kRowsIn = (TP - 1) * SD + K, kColsIn = (TQ - 1) * SD + K;
#pragma unroll
  for (int i = 0; i < kRowsIn; ++i) {
    const int iy = y0 + i;
    if (iy < 0 || iy >= g.H) continue;
    const T* row = image + unsigned(iy) * g.W * g.C;
#pragma unroll
    for (int j = 0; j < kColsIn; ++j) {
      const int ix = x0 + j;
      if (ix < 0 || ix >= g.W) continue;
      const P raw = *reinterpret_cast<const P*>(row + unsigned(ix) * g.C);
      float x[V];
#pragma unroll
      for (int k = 0; k < V; ++k) x[k] = to_float(raw.v[k]);
#pragma unroll
      for (int a = 0; a < TP; ++a) {
        const int r = i - a * SD;  // tap row of result row p0 + a
        if (r < 0 || r >= K) continue;
#pragma unroll
        for (int b = 0; b < TQ; ++b) {
          const int s = j - b * SD;
          if (s < 0 || s >= K) continue;
#pragma unroll
          for (int k = 0; k < V; ++k) sum[a][b][k] += x[k] * w[r * K + s][k];
        }
      }
    }
  }
#pragma unroll
  for (int a = 0; a < TP; ++a) {
    const int p = p0 + a;
    if (p >= g.P) break;
#pragma unroll
    for (int b = 0; b < TQ; ++b) {
      const int q = q0 + b;
      if (q >= g.Q) break;
      const std::size_t first = ((std::size_t(n) * g.P + p) * g.Q + q) * g.C + c0;
      store<T, V>(g, e, sum[a][b], c0, first, dst);
    }
  }
}

// The kernels and strides that the tiled and register-tiled kernels are instantiated for:
// square 3x3 or 5x5, equal strides of 1 or 2.
bool instantiated_shape(const Geometry& g) {
  return g.R == g.S && (g.R == 3 || g.R == 5) && g.stride_y == g.stride_x &&
         (g.stride_y == 1 || g.stride_y == 2);
}

// Whether a register-tiled variant takes the layer.
bool register_tiled_takes(const Geometry& g) {
  return instantiated_shape(g) && g.dilation_y == 1 && g.dilation_x == 1 &&
         g.C % kRegisterVector == 0 && (g.C / kRegisterVector + 31) / 32 <= 65535;
}

// Channel slices of at most 32 vectors, as even as the count allows (72 vectors: three of
// 24, not 32, 32 and 8), and about 256 threads a block.
RegisterTiles register_tiles_for(const Geometry& g, const DepthwiseVariant& variant) {
  const int vectors = g.C / kRegisterVector;
  const int slices = (vectors + 31) / 32;
  RegisterTiles t{};
  t.cv = (vectors + slices - 1) / slices;
  t.tiles_per_block = std::max(1, 256 / t.cv);
  t.p_tiles = (g.P + variant.rows - 1) / variant.rows;
  t.q_tiles = (g.Q + variant.cols - 1) / variant.cols;
  t.tiles = g.N * t.p_tiles * t.q_tiles;
  return t;
}

template <typename T, int K, int SD, int TP, int TQ>
void launch_register_tiled(const Geometry& g, const RegisterTiles& t, const void* src,
                           const void* weights, const DeviceEpilogue& e, void* dst,
                           cudaStream_t stream) {
  constexpr int V = kRegisterVector;
  const int vectors = g.C / V;
  const dim3 blocks(unsigned((t.tiles + t.tiles_per_block - 1) / t.tiles_per_block),
                    unsigned((vectors + t.cv - 1) / t.cv));
  depthwise_register_kernel<T, V, K, SD, TP, TQ><<<blocks, t.cv * t.tiles_per_block, 0, stream>>>(
      g, t, static_cast<const T*>(src), static_cast<const T*>(weights), e, static_cast<T*>(dst));
}

template <typename T, int TP, int TQ>
void launch_register_tiled(const Geometry& g, const RegisterTiles& t, const void* src,
                           const void* weights, const DeviceEpilogue& e, void* dst,
                           cudaStream_t stream) {
  if (g.R == 3 && g.stride_y == 1)
    return launch_register_tiled<T, 3, 1, TP, TQ>(g, t, src, weights, e, dst, stream);
  if (g.R == 3) return launch_register_tiled<T, 3, 2, TP, TQ>(g, t, src, weights, e, dst, stream);
  if (g.stride_y == 1)
    return launch_register_tiled<T, 5, 1, TP, TQ>(g, t, src, weights, e, dst, stream);
  launch_register_tiled<T, 5, 2, TP, TQ>(g, t, src, weights, e, dst, stream);
}

template <typename T, int V>
void launch_untiled(const Geometry& g, const void* src, const void* weights,
                    const DeviceEpilogue& e, void* dst, cudaStream_t stream) {
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

// Shared memory a block may take without opting in to more.
constexpr std::size_t kSharedBytes = 48 * 1024;

Geometry geometry(const ConvolutionOp& op) {
  const ImageShape& in = op.src_shapes[0];
  const ImageShape out = op.convolution_shape();
  return {in.batch,      in.height,     in.width,         in.channels,
          out.height,    out.width,     op.kernel_height, op.kernel_width,
          op.y.stride,   op.x.stride,   op.y.pad_before,  op.x.pad_before,
          op.dilation_y, op.dilation_x, kGeneralEpilogue, 1.0f,
          0.0f,          false};
}

// The epilogue's form (above): no post-op, or one relu, relu_n or silu.
void set_epilogue_form(Geometry& g, const DeviceEpilogue& e) {
  g.form = kGeneralEpilogue;
  if (e.count > 1 || (e.count == 1 && e.is_sum[0])) return;
  const DeviceNeuron neuron = e.count == 1 ? e.neuron[0] : DeviceNeuron{};
  switch (neuron.type) {
    case NeuronType::none:
      g.form = kLeakyClamp;
      g.slope = 1.0f;
      g.clamped = false;
      return;
    case NeuronType::relu:
    case NeuronType::relu_n:
      g.form = kLeakyClamp;
      g.slope = neuron.a;
      g.clamped = neuron.type == NeuronType::relu_n;
      g.upper = neuron.b;
      return;
    case NeuronType::silu:
      g.form = kSilu;
      return;
    default:
      return;
  }
}

// The tile of a tiled variant, or tq = 0 where the variant cannot take the layer.
Tile tile_for(const Geometry& g, std::size_t element_size, const DepthwiseVariant& variant) {
  Tile tile{};
  if (!instantiated_shape(g) || (g.C * element_size) % 16 != 0 || g.N > 65535) return tile;
  const int vectors = int(g.C * element_size / 16);
  // Channel vectors a block: the largest divisor of the vectors up to 8 (128 bytes of each
  // pixel, no idle threads), or 8 with the last slice partly idle where no divisor from 4 up
  // exists.
  int cv = std::min(vectors, 8);
  while (vectors % cv != 0) --cv;
  if (cv < 4 && vectors > 8) cv = 8;
  const int slices = (vectors + cv - 1) / cv;
  if (slices > 65535) return tile;
  int tq = std::max(1, std::min(variant.threads / cv, g.Q));
  const auto bytes = [&](int columns) {
    const int rows = (variant.rows - 1) * g.stride_y + (g.R - 1) * g.dilation_y + 1;
    const int cols = (columns - 1) * g.stride_x + (g.S - 1) * g.dilation_x + 1;
    return std::size_t(rows) * cols * cv * 16;
  };
  while (tq > 1 && bytes(tq) > kSharedBytes) tq = (tq + 1) / 2;
  if (bytes(tq) > kSharedBytes) return tile;
  tile.cv = cv;
  tile.tq = tq;
  tile.in_rows = (variant.rows - 1) * g.stride_y + (g.R - 1) * g.dilation_y + 1;
  tile.in_cols = (tq - 1) * g.stride_x + (g.S - 1) * g.dilation_x + 1;
  tile.col_tiles = (g.Q + tq - 1) / tq;
  return tile;
}

template <typename T, int K, int SY, int TP>
void launch_tiled(const Geometry& g, const Tile& tile, const void* src, const void* weights,
                  const DeviceEpilogue& e, void* dst, cudaStream_t stream) {
  constexpr int V = int(16 / sizeof(T));
  const int vectors = g.C / V;
  const dim3 blocks(unsigned((g.P + TP - 1) / TP * tile.col_tiles),
                    unsigned((vectors + tile.cv - 1) / tile.cv), unsigned(g.N));
  const std::size_t shared = std::size_t(tile.in_rows) * tile.in_cols * tile.cv * 16;
  depthwise_tiled_kernel<T, V, K, SY, TP><<<blocks, tile.cv * tile.tq, shared, stream>>>(
      g, tile, static_cast<const T*>(src), static_cast<const T*>(weights), e, static_cast<T*>(dst));
}

template <typename T, int K, int SY>
void launch_tiled(const Geometry& g, const Tile& tile, int rows, const void* src,
                  const void* weights, const DeviceEpilogue& e, void* dst, cudaStream_t stream) {
  if (rows == 2) return launch_tiled<T, K, SY, 2>(g, tile, src, weights, e, dst, stream);
  launch_tiled<T, K, SY, 4>(g, tile, src, weights, e, dst, stream);
}

template <typename T>
void launch_tiled(const Geometry& g, const Tile& tile, int rows, const void* src,
                  const void* weights, const DeviceEpilogue& e, void* dst, cudaStream_t stream) {
  if (g.R == 3 && g.stride_y == 1)
    return launch_tiled<T, 3, 1>(g, tile, rows, src, weights, e, dst, stream);
  if (g.R == 3) return launch_tiled<T, 3, 2>(g, tile, rows, src, weights, e, dst, stream);
  if (g.stride_y == 1) return launch_tiled<T, 5, 1>(g, tile, rows, src, weights, e, dst, stream);
  launch_tiled<T, 5, 2>(g, tile, rows, src, weights, e, dst, stream);
}

// The tiled and register-tiled variants in the order tried; the first is the default.
constexpr DepthwiseVariant kTiled[] = {{4, 256}, {2, 256}, {4, 128}, {2, 128}};
constexpr DepthwiseVariant kRegisterTiled[] = {{2, 0, 4}, {4, 0, 4}};

}  // namespace

std::string DepthwiseVariant::name() const {
  if (rows == 0) return "untiled";
  if (cols > 0) return "regs-r" + std::to_string(rows) + "-c" + std::to_string(cols);
  return "tiled-r" + std::to_string(rows) + "-t" + std::to_string(threads);
}

std::vector<DepthwiseVariant> depthwise_variants(DataType type, const ConvolutionOp& op) {
  const Geometry g = geometry(op);
  std::vector<DepthwiseVariant> variants;
  if (type != DataType::u8) {
    for (const DepthwiseVariant& v : kTiled) {
      if (tile_for(g, size_of(type), v).tq > 0) variants.push_back(v);
    }
    if (register_tiled_takes(g)) {
      for (const DepthwiseVariant& v : kRegisterTiled) variants.push_back(v);
    }
  }
  variants.push_back(DepthwiseVariant{});
  return variants;
}

void depthwise_convolution(DataType type, const ConvolutionOp& op, const DepthwiseVariant& variant,
                           const void* src, const void* weights_hwc, const DeviceEpilogue& e,
                           void* dst, cudaStream_t stream) {
  Geometry g = geometry(op);
  set_epilogue_form(g, e);
  dispatch(type, [&](auto tag) {
    using T = decltype(tag);
    if (variant.cols > 0) {
      if constexpr (sizeof(T) > 1) {
        if (register_tiled_takes(g)) {
          const RegisterTiles tiles = register_tiles_for(g, variant);
          if (variant.rows == 4)
            return launch_register_tiled<T, 4, 4>(g, tiles, src, weights_hwc, e, dst, stream);
          return launch_register_tiled<T, 2, 4>(g, tiles, src, weights_hwc, e, dst, stream);
        }
      }
    } else if (variant.rows > 0) {
      if constexpr (16 % sizeof(T) == 0 && sizeof(T) > 1) {
        const Tile tile = tile_for(g, sizeof(T), variant);
        if (tile.tq > 0)
          return launch_tiled<T>(g, tile, variant.rows, src, weights_hwc, e, dst, stream);
      }
    }
    with_widest_vector<T, true>(g.C, [&](auto vector) {
      launch_untiled<T, decltype(vector)::value>(g, src, weights_hwc, e, dst, stream);
    });
  });
  check_launch("depthwise_convolution");
}

}  // namespace cnngraph::detail::cuda
