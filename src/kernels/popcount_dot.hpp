// Bit-serial dot products for binary convolution: 4 bit vectors (input windows of `words`
// words) against every output channel's weights, counting set bits of (a XOR b) or
// (a AND b). The weights are stored transposed, word-major: b[k * outputs + o], so that one
// 512-bit register holds word k of 8 output channels and no horizontal sums are needed.
// `outputs` is a multiple of 8 (pad with zero weights). Three variants:
// AVX-512 VPOPCNTDQ, scalar POPCNT, and portable C++; the fastest the CPU has is chosen
// when a kernel is made (CNNGRAPH_POPCOUNT=avx512|popcnt|portable forces one, for tests).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace cnngraph::detail {

enum class BitOp { exclusive_or, conjunction };

// counts[i * outputs + o] = sum over k < words of
// popcount(op(a[i][offsets[k]], b[k * outputs + o])): word k of window i lies at offsets[k]
// from a[i] (a convolution's taps in the packed image itself, for windows without padding),
// or at k without offsets (null: a window gathered into a row of its own).
using PopcountBlock = void (*)(const std::uint64_t* const a[4], const std::uint32_t* offsets,
                               const std::uint64_t* b, std::size_t words, std::size_t outputs,
                               BitOp op, std::int32_t* counts);

struct PopcountKernel {
  PopcountBlock block;
  std::string name;  // "avx512_vpopcntdq", "popcnt" or "portable"
};

// The variant to use: the environment's choice (InvalidArgument when the CPU lacks it), else
// the fastest available.
PopcountKernel select_popcount_kernel();

}  // namespace cnngraph::detail
