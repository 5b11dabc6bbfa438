// Binary convolution on the 1-bit tensor cores: an implicit matrix product of the packed
// source windows (rows: result pixels, columns: the bits of every tap's channel words) with
// the packed weights, by `mma.sync.m16n8k256.b1` with and.popc. A block computes 64 result
// pixels x 64 output channels with four warps of 32 x 32; the source and weight words of
// two 256-bit steps at a time go through shared memory, the next two loaded into registers
// while the tensor cores work on the current ones.
// and counts popc(x & w) directly. xnor counts mismatches as popc(x) + popc(w) -
// 2 popc(x & w): the source's ones per window are summed while loading, the weights' ones
// per tap are known. A padded tap reads zero words, and its weight ones are left out, so
// padding contributes nothing, as on every backend. The epilogue writes the result as
// images or, for a consumer that binarizes it, as sign bits (BitPacking in ops/op.hpp)
// straight from the accumulators.
#include "backends/cuda/kernels/binary_convolution.hpp"
#include "backends/cuda/kernels/device_math.cuh"

#include <algorithm>
#include <type_traits>

namespace cnngraph::detail::cuda {

namespace {

constexpr int kBlockPixels = 64, kBlockOutputs = 64, kThreads = 128;
constexpr int kStepWords = 8;                // one mma's 256 bits
constexpr int kStageWords = 2 * kStepWords;  // two steps per shared-memory stage
// A row's stride in shared memory: 20 words puts the eight rows a fragment load reads on
// distinct banks.
constexpr int kRowStride = kStageWords + 4;
constexpr int kMaxTaps = 32;  // binary_mma_takes: at most 32 taps

// c += popc(a & b) over 256 bits, for a 16 x 8 tile. Only the and form: Hopper's SASS has
// no xor form of BMMA, and ptxas lowers `.xor.popc` to a called routine of two and-products
// and a dozen more instructions, which made the whole kernel issue-bound.
__device__ __forceinline__ void mma_and_popc(int (&c)[4], const unsigned (&a)[4],
                                             const unsigned (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.and.popc {%0,%1,%2,%3}, "
      "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  __trap();  // binary_mma_takes refuses devices before compute capability 8.0
#endif
}

// Two neighbouring results in one store.
template <typename T>
__device__ __forceinline__ void store_pair(T* at, float a, float b) {
  struct alignas(2 * sizeof(T)) Pair {
    T v[2];
  };
  *reinterpret_cast<Pair*>(at) = Pair{{from_float<T>(a), from_float<T>(b)}};
}

// The result pixel (n, p, q) of a row of the product.
struct Pixel {
  int n = 0, p = 0, q = 0;

  __device__ __forceinline__ Pixel(const BinaryMmaProblem& g, int row) {
    q = row % g.Q;
    const int np = row / g.Q;
    p = np % g.P;
    n = np / g.P;
  }
  __device__ __forceinline__ bool valid(const BinaryMmaProblem& g) const { return n < g.N; }
  __device__ __forceinline__ int y0(const BinaryMmaProblem& g) const {
    return p * g.stride_y - g.pad_y;
  }
  __device__ __forceinline__ int x0(const BinaryMmaProblem& g) const {
    return q * g.stride_x - g.pad_x;
  }
};

// The taps of a pixel's window that fall inside the image, as bits.
__device__ __forceinline__ unsigned inside_taps(const BinaryMmaProblem& g, const Pixel& at) {
  const int y0 = at.y0(g), x0 = at.x0(g);
  unsigned columns = 0;  // bit s: column s of the window is inside
  for (int s = 0; s < g.S; ++s) {
    const int ix = x0 + s * g.dilation_x;
    if (ix >= 0 && ix < g.W) columns |= 1u << s;
  }
  unsigned inside = 0;
  for (int r = 0; r < g.R; ++r) {
    const int iy = y0 + r * g.dilation_y;
    if (iy >= 0 && iy < g.H) inside |= columns << (r * g.S);
  }
  return inside;
}

// The source row of one result pixel as the loads walk it: word pairs `pair` of tap `tap`
// (pixels have an even number of words, so a pair never straddles two taps), at the tap's
// offset from the window's first pixel (`tap_offset`, in shared memory). Taps outside the
// image (`inside`) and past the last read zero words.
struct SourceRow {
  const unsigned* image = nullptr;  // null past the last pixel
  int window = 0;                   // the window's first pixel's first word; may be negative
  unsigned inside = 0;
  int tap = 0, pair = 0;

  __device__ __forceinline__ uint2 load(const BinaryMmaProblem& g, const int* tap_offset) const {
    if (!image || tap >= g.R * g.S || !((inside >> tap) & 1u)) return uint2{0u, 0u};
    return *reinterpret_cast<const uint2*>(image + (window + tap_offset[tap] + 2 * pair));
  }
  __device__ __forceinline__ void next(int pairs_per_tap) {
    if (++pair < pairs_per_tap) return;
    pair = 0;
    ++tap;
  }
};

// A block computes 64 x 64 tiles of the product, one after another for the tiles
// `blockIdx.x`, + `gridDim.x`, ... (the launch makes about one resident wave of blocks), so
// that what depends only on the output channels (the weights' ones, the epilogue's channel
// terms, the taps' offsets) is set up once a block and not once a tile: with a tile a block,
// the set-up and the tile's dependent loads took most of a 64-channel layer's time.
template <typename T, bool kXnor, bool kPackedResult>
__global__ void __launch_bounds__(kThreads, 4) binary_mma_kernel(BinaryMmaProblem g) {
  __shared__ uint4 source_tile[2][kBlockPixels * kRowStride / 4];
  __shared__ uint4 weight_tile[2][kBlockOutputs * kRowStride / 4];
  // xnor: the block's outputs' weight ones per tap, and its pixels' source ones per window.
  __shared__ int tap_ones[kXnor ? kBlockOutputs * kMaxTaps : 1];
  __shared__ int row_ones[kXnor ? kBlockPixels : 1];
  __shared__ unsigned row_inside[kXnor ? kBlockPixels : 1];  // the loads' inside_taps
  __shared__ int tap_offset[kMaxTaps];  // words from the window's first pixel's
  // A packed result: the consumer's input bias and scale of the block's outputs.
  __shared__ float next_terms[kPackedResult ? 2 : 1][kPackedResult ? kBlockOutputs : 1];
  const int o0 = blockIdx.y * kBlockOutputs;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int group = lane / 4, member = lane % 4;  // the fragment layouts' groupID, threadID
  const int warp_m = (warp / 2) * 32, warp_o = (warp % 2) * 32;
  const int taps = g.R * g.S, pairs_per_tap = g.words / 2;
  const int M = g.N * g.P * g.Q, tiles = (M + kBlockPixels - 1) / kBlockPixels;
  if constexpr (kXnor) {
    for (int i = threadIdx.x; i < kBlockOutputs * taps; i += kThreads) {
      const int o = o0 + i / taps;
      tap_ones[i] = o < g.K ? g.tap_ones[o0 * taps + i] : 0;
    }
  }
  if constexpr (kPackedResult) {
    if (threadIdx.x < kBlockOutputs) {
      const int o = min(o0 + int(threadIdx.x), g.K - 1);
      next_terms[0][threadIdx.x] = g.next_input_bias ? g.next_input_bias[o] : 0.0f;
      next_terms[1][threadIdx.x] = g.next_input_scale ? g.next_input_scale[o] : 1.0f;
    }
  }
  if (threadIdx.x < taps) {
    const int r = threadIdx.x / g.S, s = threadIdx.x % g.S;
    tap_offset[threadIdx.x] = (r * g.dilation_y * g.W + s * g.dilation_x) * g.words;
  }

  // This thread's eight output channels in the epilogue: warp_o + nt * 8 + 2 member (+ 1).
  // For xnor the sum over a window is 4 popc(x & w) + (inside taps) C - 2 popc(x) -
  // 2 popc(w), the last from `channel_term`, less the padded taps' weight ones.
  float bias[4][2], scale[4][2], shift[4][2];
  int channel_term[4][2];
#pragma unroll
  for (int nt = 0; nt < 4; ++nt)
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int o = min(o0 + warp_o + nt * 8 + 2 * member + j, g.K - 1);
      bias[nt][j] = g.bias[o];
      scale[nt][j] = g.output_scale ? g.output_scale[o] : 1.0f;
      shift[nt][j] = g.output_bias ? g.output_bias[o] : 0.0f;
      channel_term[nt][j] = kXnor ? -2 * g.weight_ones[o] : 0;
    }

  // Each thread loads half of one row of each tile per stage: row threadIdx / 2, words
  // (threadIdx % 2) * 8 .. + 8 of the stage's 16.
  const int load_row = threadIdx.x / 2, load_word = (threadIdx.x % 2) * kStepWords;
  const int load_output = o0 + load_row;
  const uint4* weight_row = load_output < g.K
                                ? reinterpret_cast<const uint4*>(
                                      g.weights + static_cast<std::size_t>(load_output) * g.k_words)
                                : nullptr;
  const int steps = g.k_words / kStepWords;
  const int stages = (steps + 1) / 2;

  for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const int m0 = tile * kBlockPixels;
    int source_ones = 0;  // of the words this thread loads (xnor)
    SourceRow row;
    {
      const Pixel at(g, m0 + load_row);
      if (at.valid(g)) {
        row.image = g.src + static_cast<std::size_t>(at.n) * g.H * g.W * g.words;
        row.window = (at.y0(g) * g.W + at.x0(g)) * g.words;
        row.inside = inside_taps(g, at);
      }
    }
    uint2 source_next[kStepWords / 2];
    uint4 weight_next[2];
    const auto load_stage = [&](int stage) {
      const int first = stage * kStageWords + load_word;  // a multiple of 8
      row.tap = (first / 2) / pairs_per_tap;
      row.pair = first / 2 - row.tap * pairs_per_tap;
#pragma unroll
      for (int k = 0; k < kStepWords / 2; ++k) {
        source_next[k] = row.load(g, tap_offset);
        if constexpr (kXnor) source_ones += __popc(source_next[k].x) + __popc(source_next[k].y);
        row.next(pairs_per_tap);
      }
      const bool inside = weight_row && first < g.k_words;
      weight_next[0] = inside ? weight_row[first / 4] : uint4{0u, 0u, 0u, 0u};
      weight_next[1] = inside ? weight_row[first / 4 + 1] : uint4{0u, 0u, 0u, 0u};
    };
    const auto store_stage = [&](int buffer) {
      uint4* source = &source_tile[buffer][(load_row * kRowStride + load_word) / 4];
      source[0] = uint4{source_next[0].x, source_next[0].y, source_next[1].x, source_next[1].y};
      source[1] = uint4{source_next[2].x, source_next[2].y, source_next[3].x, source_next[3].y};
      uint4* weight = &weight_tile[buffer][(load_row * kRowStride + load_word) / 4];
      weight[0] = weight_next[0];
      weight[1] = weight_next[1];
    };

    int acc[2][4][4] = {};
    __syncthreads();  // tap_offset written; the previous tile's last reads of shared done
    if constexpr (kXnor) {
      if (threadIdx.x < kBlockPixels) row_ones[threadIdx.x] = 0;  // added to below
      if (load_word == 0) row_inside[load_row] = row.inside;
    }
    load_stage(0);
    store_stage(0);
    __syncthreads();
    for (int stage = 0; stage < stages; ++stage) {
      const int buffer = stage % 2;
      if (stage + 1 < stages) load_stage(stage + 1);
      const unsigned* sources = reinterpret_cast<const unsigned*>(source_tile[buffer]);
      const unsigned* weights = reinterpret_cast<const unsigned*>(weight_tile[buffer]);
      for (int step = 0; step < 2 && stage * 2 + step < steps; ++step) {
        const int word = step * kStepWords + member;
        unsigned a[2][4], b[4][2];
#pragma unroll
        for (int mt = 0; mt < 2; ++mt) {
          const unsigned* source_row = &sources[(warp_m + mt * 16 + group) * kRowStride];
          a[mt][0] = source_row[word];
          a[mt][1] = source_row[8 * kRowStride + word];
          a[mt][2] = source_row[word + 4];
          a[mt][3] = source_row[8 * kRowStride + word + 4];
        }
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) {
          const unsigned* column = &weights[(warp_o + nt * 8 + group) * kRowStride];
          b[nt][0] = column[word];
          b[nt][1] = column[word + 4];
        }
#pragma unroll
        for (int mt = 0; mt < 2; ++mt)
#pragma unroll
          for (int nt = 0; nt < 4; ++nt) mma_and_popc(acc[mt][nt], a[mt], b[nt]);
      }
      if (stage + 1 < stages) {
        store_stage(1 - buffer);  // last read before the previous barrier
        __syncthreads();
      }
    }
    if constexpr (kXnor) {
      atomicAdd(&row_ones[load_row], source_ones);
      __syncthreads();
    }

    // Epilogue: rows warp_m + mt * 16 + group (+ 8 for the accumulators' second half).
#pragma unroll
    for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int tile_row = warp_m + mt * 16 + half * 8 + group, m = m0 + tile_row;
        const bool row_valid = m < M;
        unsigned padded = 0;
        int row_term = 0;  // xnor: (inside taps) C - 2 popc(x)
        if constexpr (kXnor) {
          if (row_valid) {
            const unsigned inside = row_inside[tile_row];
            padded = ~inside & (taps == 32 ? 0xffffffffu : (1u << taps) - 1u);
            row_term = __popc(inside) * g.C - 2 * row_ones[tile_row];
          }
        }
        unsigned bits = 0;
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) {
          float ys[2] = {};
#pragma unroll
          for (int j = 0; j < 2; ++j) {
            const int o = o0 + warp_o + nt * 8 + 2 * member + j;
            const int count = acc[mt][nt][half * 2 + j];
            float sum;
            if constexpr (kXnor) {
              // +1 per match, -1 per mismatch: matches + mismatches = (inside taps) C,
              // mismatches = popc(x) + popc(w) - 2 popc(x & w) over the inside taps.
              int matches_less_mismatches = 4 * count + row_term + channel_term[nt][j];
              if (padded) {
                const int* ones = &tap_ones[(o - o0) * taps];
                for (unsigned rest = padded; rest; rest &= rest - 1)
                  matches_less_mismatches += 2 * ones[__ffs(rest) - 1];
              }
              sum = float(matches_less_mismatches);
            } else {
              sum = float(count);
            }
            ys[j] = (g.scale_value * sum + bias[nt][j]) * scale[nt][j] + shift[nt][j];
            if constexpr (kPackedResult) {
              // The value the consumer would have read from an image of T, binarized.
              const float y = to_float(from_float<T>(ys[j]));
              const float v = (y + next_terms[0][o - o0]) * next_terms[1][o - o0];
              bits |= unsigned((v > 0.0f) | (!g.next_strict & (v == 0.0f))) << (nt * 8 + j);
            }
          }
          if constexpr (!kPackedResult) {
            const int o = o0 + warp_o + nt * 8 + 2 * member;
            T* out = static_cast<T*>(g.dst) + static_cast<std::size_t>(m) * g.K + o;
            if (row_valid && o + 1 < g.K && g.K % 2 == 0) {
              store_pair(out, ys[0], ys[1]);  // aligned: m * K + o is even
            } else if (row_valid) {
              for (int j = 0; j < 2 && o + j < g.K; ++j) out[j] = from_float<T>(ys[j]);
            }
          }
        }
        if constexpr (kPackedResult) {
          // The word of 32 output channels is spread over the four threads of the group.
          // Bit nt * 8 + j is output o0 + warp_o + nt * 8 + 2 member + j; spare channels'
          // bits stay 0.
          if (o0 + kBlockOutputs > g.K) {
#pragma unroll
            for (int nt = 0; nt < 4; ++nt)
#pragma unroll
              for (int j = 0; j < 2; ++j)
                if (o0 + warp_o + nt * 8 + 2 * member + j >= g.K) bits &= ~(1u << (nt * 8 + j));
          }
          bits <<= 2 * member;
          bits |= __shfl_xor_sync(0xffffffffu, bits, 1);
          bits |= __shfl_xor_sync(0xffffffffu, bits, 2);
          if (member == 0 && row_valid)
            static_cast<unsigned*>(
                g.dst)[static_cast<std::size_t>(m) * g.result_words + (o0 + warp_o) / 32] = bits;
        }
      }
    }
  }
}

}  // namespace

void binary_convolution_mma(DataType storage, const BinaryMmaProblem& problem,
                            cudaStream_t stream) {
  const int M = problem.N * problem.P * problem.Q;
  const int tiles = (M + kBlockPixels - 1) / kBlockPixels;
  const int column_blocks = (problem.K + kBlockOutputs - 1) / kBlockOutputs;
  // About one wave of resident blocks (4 an SM, __launch_bounds__), each looping over tiles.
  const int wave = std::max(1, problem.multiprocessors * 4 / column_blocks);
  const dim3 grid(static_cast<unsigned>(std::min(tiles, wave)),
                  static_cast<unsigned>(column_blocks));
  dispatch(storage, [&](auto tag) {
    using T = decltype(tag);
    const auto launch = [&](auto xnor, auto packed) {
      binary_mma_kernel<T, decltype(xnor)::value, decltype(packed)::value>
          <<<grid, kThreads, 0, stream>>>(problem);
    };
    using Yes = std::true_type;
    using No = std::false_type;
    if (problem.xnor) {
      problem.packed_result ? launch(Yes{}, Yes{}) : launch(Yes{}, No{});
    } else {
      problem.packed_result ? launch(No{}, Yes{}) : launch(No{}, No{});
    }
  });
}

}  // namespace cnngraph::detail::cuda
