// The popcount block variants, compiled for their instruction sets and chosen at run time.
#include "kernels/popcount_dot.hpp"

#include <bit>
#include <cstdlib>

#include "cnngraph/errors.hpp"
#include "env_knobs.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace cnngraph::detail {

namespace {

template <BitOp Op>
void portable_block(const std::uint64_t* const a[4], const std::uint32_t* offsets,
                    const std::uint64_t* b, std::size_t words, std::size_t outputs,
                    std::int32_t* counts) {
  for (int i = 0; i < 4; ++i)
    for (std::size_t o = 0; o < outputs; ++o) {
      std::int32_t total = 0;
      for (std::size_t k = 0; k < words; ++k) {
        const std::uint64_t w = b[k * outputs + o], x = a[i][offsets ? offsets[k] : k];
        total += std::popcount(Op == BitOp::exclusive_or ? x ^ w : x & w);
      }
      counts[i * outputs + o] = total;
    }
}

void portable(const std::uint64_t* const a[4], const std::uint32_t* offsets, const std::uint64_t* b,
              std::size_t words, std::size_t outputs, BitOp op, std::int32_t* counts) {
  if (op == BitOp::exclusive_or)
    portable_block<BitOp::exclusive_or>(a, offsets, b, words, outputs, counts);
  else
    portable_block<BitOp::conjunction>(a, offsets, b, words, outputs, counts);
}

#if defined(__x86_64__)
__attribute__((target("popcnt"))) void scalar_popcnt(const std::uint64_t* const a[4],
                                                     const std::uint32_t* offsets,
                                                     const std::uint64_t* b, std::size_t words,
                                                     std::size_t outputs, BitOp op,
                                                     std::int32_t* counts) {
  const bool xor_op = op == BitOp::exclusive_or;
  for (int i = 0; i < 4; ++i)
    for (std::size_t o = 0; o < outputs; ++o) {
      long long total = 0;
      for (std::size_t k = 0; k < words; ++k) {
        const std::uint64_t w = b[k * outputs + o], x = a[i][offsets ? offsets[k] : k];
        total += _mm_popcnt_u64(xor_op ? x ^ w : x & w);
      }
      counts[i * outputs + o] = static_cast<std::int32_t>(total);
    }
}

// Blocks of 4 windows x 32 output channels: 16 accumulators of 8 lanes (one lane per output
// channel). Per word: 4 broadcasts, 4 weight loads, 16 xor/and + popcount + add.
template <int Vectors, bool Indexed>
__attribute__((target("avx512f,avx512vpopcntdq"), always_inline)) inline void avx512_columns(
    const std::uint64_t* const a[4], const std::uint32_t* offsets, const std::uint64_t* b,
    std::size_t words, std::size_t outputs, std::size_t o0, bool xor_op, std::int32_t* counts) {
  __m512i acc[4][Vectors];
  for (auto& row : acc)
    for (auto& v : row) v = _mm512_setzero_si512();
  for (std::size_t k = 0; k < words; ++k) {
    __m512i w[Vectors];
    for (int j = 0; j < Vectors; ++j) w[j] = _mm512_loadu_si512(b + k * outputs + o0 + 8 * j);
    for (int i = 0; i < 4; ++i) {
      const __m512i x = _mm512_set1_epi64(static_cast<long long>(a[i][Indexed ? offsets[k] : k]));
      for (int j = 0; j < Vectors; ++j) {
        const __m512i v = xor_op ? _mm512_xor_si512(x, w[j]) : _mm512_and_si512(x, w[j]);
        acc[i][j] = _mm512_add_epi64(acc[i][j], _mm512_popcnt_epi64(v));
      }
    }
  }
  // The zero-masked narrowing: GCC 12 at -O3 warns that the plain one's undefined
  // pass-through operand may be used uninitialized.
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < Vectors; ++j)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(counts + i * outputs + o0 + 8 * j),
                          _mm512_maskz_cvtepi64_epi32(0xFF, acc[i][j]));
}

// Every output channel: 32 at a time, then 8.
template <bool Indexed>
__attribute__((target("avx512f,avx512vpopcntdq"))) void avx512_all_columns(
    const std::uint64_t* const a[4], const std::uint32_t* offsets, const std::uint64_t* b,
    std::size_t words, std::size_t outputs, bool xor_op, std::int32_t* counts) {
  std::size_t o = 0;
  for (; o + 32 <= outputs; o += 32)
    avx512_columns<4, Indexed>(a, offsets, b, words, outputs, o, xor_op, counts);
  for (; o < outputs; o += 8)
    avx512_columns<1, Indexed>(a, offsets, b, words, outputs, o, xor_op, counts);
}

__attribute__((target("avx512f,avx512vpopcntdq"))) void avx512(
    const std::uint64_t* const a[4], const std::uint32_t* offsets, const std::uint64_t* b,
    std::size_t words, std::size_t outputs, BitOp op, std::int32_t* counts) {
  const bool xor_op = op == BitOp::exclusive_or;
  // A gathered window (no offsets) has its words in order: no table to read.
  if (offsets) {
    avx512_all_columns<true>(a, offsets, b, words, outputs, xor_op, counts);
  } else {
    avx512_all_columns<false>(a, offsets, b, words, outputs, xor_op, counts);
  }
}
#endif

bool has(const char* feature) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (std::string(feature) == "avx512")
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vpopcntdq");
  if (std::string(feature) == "popcnt") return __builtin_cpu_supports("popcnt");
#endif
  return std::string(feature) == "portable";
}

}  // namespace

PopcountKernel select_popcount_kernel() {
  std::string wanted;
  if (const char* env = knobs::read(knobs::popcount)) wanted = env;
  if (!wanted.empty() && wanted != "avx512" && wanted != "popcnt" && wanted != "portable") {
    throw InvalidArgument("CNNGRAPH_POPCOUNT must be avx512, popcnt or portable, got '" + wanted +
                          "'");
  }
  if (!wanted.empty() && !has(wanted.c_str())) {
    throw InvalidArgument("CNNGRAPH_POPCOUNT=" + wanted + ": this CPU does not have it");
  }
#if defined(__x86_64__)
  if (wanted == "avx512" || (wanted.empty() && has("avx512"))) return {avx512, "avx512_vpopcntdq"};
  if (wanted == "popcnt" || (wanted.empty() && has("popcnt"))) return {scalar_popcnt, "popcnt"};
#endif
  return {portable, "portable"};
}

}  // namespace cnngraph::detail
