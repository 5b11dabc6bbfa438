// Binary convolution on the 1-bit tensor cores: an implicit matrix product of the packed
// source windows (rows: result pixels, columns: the bits of every tap's channel words) with
// the packed weights, by `mma.sync.m16n8k256.b1` with xor.popc (xnor) or and.popc (and).
// A block computes 64 result pixels x 64 output channels with four warps of 32 x 32; the
// source and weight words of two 256-bit steps at a time go through shared memory, the next
// two loaded into registers while the tensor cores work on the current ones.
// A padded tap reads zero words. For and that adds nothing; for xnor the xor with zero
// counts the weight's own ones, which the epilogue takes back per tap (`tap_ones`), so
// padding contributes nothing, as on every backend. The epilogue writes the result as images
// or, for a consumer that binarizes it, as sign bits (BitPacking in ops/op.hpp) straight
// from the accumulators.
#include "backends/cuda/kernels/binary_convolution.hpp"
#include "backends/cuda/kernels/device_math.cuh"

namespace cnngraph::detail::cuda {

namespace {

constexpr int kBlockPixels = 64, kBlockOutputs = 64, kThreads = 128;
constexpr int kStepWords = 8;                // one mma's 256 bits
constexpr int kStageWords = 2 * kStepWords;  // two steps per shared-memory stage
// A row's stride in shared memory: 20 words puts the eight rows a fragment load reads on
// distinct banks.
constexpr int kRowStride = kStageWords + 4;

__device__ __forceinline__ void mma_b1(int (&c)[4], const unsigned (&a)[4], const unsigned (&b)[2],
                                       bool xnor) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  if (xnor) {
    asm volatile(
        "mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.xor.popc {%0,%1,%2,%3}, "
        "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.and.popc {%0,%1,%2,%3}, "
        "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
#else
  __trap();  // binary_mma_takes refuses devices before compute capability 8.0
#endif
}

// The source window of one result pixel, for loading its words.
struct Window {
  int image = 0, y0 = 0, x0 = 0;
  bool valid = false;
};

__device__ __forceinline__ Window window_of(const BinaryMmaProblem& p, int m) {
  Window w;
  if (m >= p.N * p.P * p.Q) return w;
  const int q = m % p.Q, np = m / p.Q;
  w.image = np / p.P;
  w.y0 = (np % p.P) * p.stride_y - p.pad_y;
  w.x0 = q * p.stride_x - p.pad_x;
  w.valid = true;
  return w;
}

// Word `kw` of a pixel's row of the product: tap kw / words, that tap's word kw % words;
// zero past the last tap or where the tap falls in the padding.
__device__ __forceinline__ unsigned source_word(const BinaryMmaProblem& p, const Window& w,
                                                int kw) {
  if (!w.valid) return 0u;
  const int tap = kw / p.words;
  if (tap >= p.R * p.S) return 0u;
  const int iy = w.y0 + (tap / p.S) * p.dilation_y;
  const int ix = w.x0 + (tap % p.S) * p.dilation_x;
  if (iy < 0 || iy >= p.H || ix < 0 || ix >= p.W) return 0u;
  return p.src[((w.image * p.H + iy) * p.W + ix) * p.words + (kw - tap * p.words)];
}

// The taps of pixel m's window that fall in the padding, as bits, and how many are inside.
__device__ __forceinline__ unsigned long long padded_taps(const BinaryMmaProblem& p, int m,
                                                          int& inside) {
  const Window w = window_of(p, m);
  unsigned long long padded = 0;
  inside = 0;
  for (int r = 0; r < p.R; ++r) {
    const int iy = w.y0 + r * p.dilation_y;
    for (int s = 0; s < p.S; ++s) {
      const int ix = w.x0 + s * p.dilation_x;
      if (iy < 0 || iy >= p.H || ix < 0 || ix >= p.W) {
        padded |= 1ull << (r * p.S + s);
      } else {
        ++inside;
      }
    }
  }
  return padded;
}

template <typename T, bool kPackedResult>
__global__ void __launch_bounds__(kThreads) binary_mma_kernel(BinaryMmaProblem p) {
  __shared__ unsigned source_tile[2][kBlockPixels * kRowStride];
  __shared__ unsigned weight_tile[2][kBlockOutputs * kRowStride];
  const int m0 = blockIdx.x * kBlockPixels, o0 = blockIdx.y * kBlockOutputs;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int group = lane / 4, member = lane % 4;  // the fragment layouts' groupID, threadID
  const int warp_m = (warp / 2) * 32, warp_o = (warp % 2) * 32;

  // Each thread loads half of one row of each tile per stage: row threadIdx / 2, words
  // (threadIdx % 2) * 8 .. + 8.
  const int load_row = threadIdx.x / 2, load_word = (threadIdx.x % 2) * kStepWords;
  const Window window = window_of(p, m0 + load_row);
  const int load_output = o0 + load_row;
  const unsigned* weight_row =
      load_output < p.K ? p.weights + static_cast<std::size_t>(load_output) * p.k_words : nullptr;
  unsigned source_next[kStepWords], weight_next[kStepWords];
  const auto load_stage = [&](int stage) {
    const int first = stage * kStageWords + load_word;
#pragma unroll
    for (int k = 0; k < kStepWords; ++k) {
      const int kw = first + k;
      source_next[k] = kw < p.k_words ? source_word(p, window, kw) : 0u;
      weight_next[k] = weight_row && kw < p.k_words ? weight_row[kw] : 0u;
    }
  };
  const auto store_stage = [&](int buffer) {
#pragma unroll
    for (int k = 0; k < kStepWords; ++k) {
      source_tile[buffer][load_row * kRowStride + load_word + k] = source_next[k];
      weight_tile[buffer][load_row * kRowStride + load_word + k] = weight_next[k];
    }
  };

  int acc[2][4][4] = {};
  const int steps = p.k_words / kStepWords;
  const int stages = (steps + 1) / 2;
  load_stage(0);
  store_stage(0);
  __syncthreads();
  for (int stage = 0; stage < stages; ++stage) {
    const int buffer = stage % 2;
    if (stage + 1 < stages) load_stage(stage + 1);
    for (int step = 0; step < 2 && stage * 2 + step < steps; ++step) {
      const int word = step * kStepWords + member;
      unsigned a[2][4], b[4][2];
#pragma unroll
      for (int mt = 0; mt < 2; ++mt) {
        const unsigned* row = &source_tile[buffer][(warp_m + mt * 16 + group) * kRowStride];
        a[mt][0] = row[word];
        a[mt][1] = row[8 * kRowStride + word];
        a[mt][2] = row[word + 4];
        a[mt][3] = row[8 * kRowStride + word + 4];
      }
#pragma unroll
      for (int nt = 0; nt < 4; ++nt) {
        const unsigned* column = &weight_tile[buffer][(warp_o + nt * 8 + group) * kRowStride];
        b[nt][0] = column[word];
        b[nt][1] = column[word + 4];
      }
#pragma unroll
      for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) mma_b1(acc[mt][nt], a[mt], b[nt], p.xnor);
    }
    if (stage + 1 < stages) {
      store_stage(1 - buffer);  // last read before the previous barrier
      __syncthreads();
    }
  }

  // Epilogue: rows warp_m + mt * 16 + group (+ 8 for the accumulators' second half),
  // output channels warp_o + nt * 8 + 2 member (+ 1).
  const int M = p.N * p.P * p.Q;
#pragma unroll
  for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int m = m0 + warp_m + mt * 16 + group + half * 8;
      int inside = 0;
      const unsigned long long padded = m < M ? padded_taps(p, m, inside) : 0ull;
      unsigned bits = 0;
#pragma unroll
      for (int nt = 0; nt < 4; ++nt) {
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          const int o = o0 + warp_o + nt * 8 + 2 * member + j;
          if (m >= M || o >= p.K) continue;
          int count = acc[mt][nt][half * 2 + j];
          float sum;
          if (p.xnor) {
            for (unsigned long long rest = padded; rest; rest &= rest - 1)
              count -= p.tap_ones[o * p.R * p.S + __ffsll(static_cast<long long>(rest)) - 1];
            sum = float(inside * p.C - 2 * count);  // +1 per match, -1 per mismatch
          } else {
            sum = float(count);
          }
          float y =
              (p.scale_value * sum + p.bias[o]) * (p.output_scale ? p.output_scale[o] : 1.0f) +
              (p.output_bias ? p.output_bias[o] : 0.0f);
          if constexpr (kPackedResult) {
            // The value the consumer would have read from an image of T.
            y = to_float(from_float<T>(y));
            const float v = (y + (p.next_input_bias ? p.next_input_bias[o] : 0.0f)) *
                            (p.next_input_scale ? p.next_input_scale[o] : 1.0f);
            if (p.next_strict ? v > 0.0f : v >= 0.0f) bits |= 1u << (nt * 8 + 2 * member + j);
          } else {
            static_cast<T*>(p.dst)[static_cast<std::size_t>(m) * p.K + o] = from_float<T>(y);
          }
        }
      }
      if constexpr (kPackedResult) {
        // The word of 32 output channels is spread over the four threads of the group.
        bits |= __shfl_xor_sync(0xffffffffu, bits, 1);
        bits |= __shfl_xor_sync(0xffffffffu, bits, 2);
        if (member == 0 && m < M)
          static_cast<unsigned*>(
              p.dst)[static_cast<std::size_t>(m) * p.result_words + (o0 + warp_o) / 32] = bits;
      }
    }
  }
}

}  // namespace

void binary_convolution_mma(DataType storage, const BinaryMmaProblem& problem,
                            cudaStream_t stream) {
  const int M = problem.N * problem.P * problem.Q;
  const dim3 grid(static_cast<unsigned>((M + kBlockPixels - 1) / kBlockPixels),
                  static_cast<unsigned>((problem.K + kBlockOutputs - 1) / kBlockOutputs));
  dispatch(storage, [&](auto tag) {
    using T = decltype(tag);
    if (problem.packed_result) {
      binary_mma_kernel<T, true><<<grid, kThreads, 0, stream>>>(problem);
    } else {
      binary_mma_kernel<T, false><<<grid, kThreads, 0, stream>>>(problem);
    }
  });
}

}  // namespace cnngraph::detail::cuda
