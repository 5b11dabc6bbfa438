// Fast binary convolution on the CPU (our own kernel: no library has one).
//   xnor / and: inputs and weights bit-packed 64 channels a word; each output pixel's window
//   is gathered into one bit vector, and 4 pixels at a time are counted against every output
//   channel of the group with popcount (AVX-512 VPOPCNTDQ with 8 output channels per
//   register, POPCNT, or portable; see kernels/popcount_dot.hpp).
//   Padding taps are zero words; for xnor the weights' own set bits there are subtracted
//   again, so that padding contributes nothing, as in the reference.
//   binary_weights: a float convolution with +1/-1 weights, which oneDNN does best; the scale
//   and output terms are folded into the weights and bias (not with input terms or beta
//   scaling: those run on the reference kernel).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "backends/candidates.hpp"
#include "backends/cpu/onednn_common.hpp"
#include "backends/reference/reference_backend.hpp"
#include "kernels/popcount_dot.hpp"

namespace cnngraph::detail::onednn {

std::unique_ptr<Kernel> make_convolution(const Op&, const GraphOptions&);
std::unique_ptr<Kernel> make_convolution_gradient(const Op&, const GraphOptions&);

namespace {

float term(const std::vector<float>& terms, int index, float none) {
  return terms.empty() ? none : terms[index];
}

// Sets bit c of `words` where (x[c] + bias[c]) * scale[c] is >= 0 (> 0 when `strict`), for
// c < count; returns the sum of the values' magnitudes when `magnitude` (else 0). Null bias
// and scale: the value is x[c] itself (no terms: (x + 0) * 1 sets the same bits and sums the
// same magnitudes).
float pack_bits_portable(const float* x, const float* bias, const float* scale, int count,
                         bool strict, bool magnitude, std::uint64_t* words) {
  float sum = 0.0f;
  for (int c = 0; c < count; ++c) {
    const float value = bias ? (x[c] + bias[c]) * scale[c] : x[c];
    if (magnitude) sum += std::fabs(value);
    if (strict ? value > 0.0f : value >= 0.0f) words[c / 64] |= std::uint64_t{1} << (c % 64);
  }
  return sum;
}

#if defined(__x86_64__)
// 16 channels per compare: the comparison mask is the 16 bits.
template <bool Terms, bool Magnitude>
__attribute__((target("avx512f"))) float pack_bits_avx512(const float* x, const float* bias,
                                                          const float* scale, int count,
                                                          bool strict, std::uint64_t* words) {
  __m512 magnitude = _mm512_setzero_ps();
  for (int c = 0; c < count; c += 16) {
    const __mmask16 lanes =
        count - c >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (count - c)) - 1);
    __m512 value = _mm512_maskz_loadu_ps(lanes, x + c);
    if constexpr (Terms) {
      value = _mm512_mul_ps(_mm512_add_ps(value, _mm512_maskz_loadu_ps(lanes, bias + c)),
                            _mm512_maskz_loadu_ps(lanes, scale + c));
    }
    if constexpr (Magnitude) magnitude = _mm512_add_ps(magnitude, _mm512_abs_ps(value));
    const __mmask16 bits =
        strict ? _mm512_mask_cmp_ps_mask(lanes, value, _mm512_setzero_ps(), _CMP_GT_OQ)
               : _mm512_mask_cmp_ps_mask(lanes, value, _mm512_setzero_ps(), _CMP_GE_OQ);
    words[c / 64] |= static_cast<std::uint64_t>(bits) << (c % 64);
  }
  if constexpr (!Magnitude) return 0.0f;
  // Halves added in turn, as _mm512_reduce_add_ps does (which GCC 12 at -O3 warns of: its
  // undefined pass-through operands).
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, magnitude);
  for (int half = 8; half > 0; half /= 2)
    for (int i = 0; i < half; ++i) lanes[i] += lanes[i + half];
  return lanes[0];
}

bool cpu_has_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f");
}
#endif

float pack_bits(const float* x, const float* bias, const float* scale, int count, bool strict,
                bool magnitude, std::uint64_t* words) {
#if defined(__x86_64__)
  static const bool avx512 = cpu_has_avx512();
  if (avx512) {
    if (bias) {
      return magnitude ? pack_bits_avx512<true, true>(x, bias, scale, count, strict, words)
                       : pack_bits_avx512<true, false>(x, bias, scale, count, strict, words);
    }
    return magnitude ? pack_bits_avx512<false, true>(x, bias, scale, count, strict, words)
                     : pack_bits_avx512<false, false>(x, bias, scale, count, strict, words);
  }
#endif
  return pack_bits_portable(x, bias, scale, count, strict, magnitude, words);
}

// One pixel's results from its counts: y[o] = slope[o] * beta * (bits - 2 c[o]) + offset[o]
// for xnor (c counts the mismatches), slope[o] * beta * c[o] + offset[o] for and; products
// and sums rounded in this order.
void scale_counts_portable(const std::int32_t* c, const float* slope, const float* offset,
                           float beta, std::int32_t bits, bool xnor, int count, float* y) {
  for (int o = 0; o < count; ++o) {
    const std::int32_t v = xnor ? bits - 2 * c[o] : c[o];
    y[o] = slope[o] * beta * static_cast<float>(v) + offset[o];
  }
}

#if defined(__x86_64__)
// 16 outputs a step. Without contraction into fused multiply-adds, so that the results are
// the portable loop's to the bit (the library's baseline build has no FMA).
__attribute__((target("avx512f"), optimize("fp-contract=off"))) void scale_counts_avx512(
    const std::int32_t* c, const float* slope, const float* offset, float beta, std::int32_t bits,
    bool xnor, int count, float* y) {
  const __m512 b = _mm512_set1_ps(beta);
  const __m512i total = _mm512_set1_epi32(bits);
  for (int o = 0; o < count; o += 16) {
    const __mmask16 lanes =
        count - o >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (count - o)) - 1);
    __m512i v = _mm512_maskz_loadu_epi32(lanes, c + o);
    if (xnor) v = _mm512_sub_epi32(total, _mm512_add_epi32(v, v));
    // (No shift and a zero-masked conversion: GCC 12 warns of the plain intrinsics'
    // undefined pass-through operands.)
    const __m512 scaled = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, slope + o), b),
                                        _mm512_maskz_cvtepi32_ps(0xFFFF, v));
    _mm512_mask_storeu_ps(y + o, lanes,
                          _mm512_add_ps(scaled, _mm512_maskz_loadu_ps(lanes, offset + o)));
  }
}
#endif

using ScaleCounts = void (*)(const std::int32_t*, const float*, const float*, float, std::int32_t,
                             bool, int, float*);

// The epilogue that goes with the popcount variant: the AVX-512 one with VPOPCNTDQ (the
// library's baseline build vectorizes the portable loop 4 floats wide, and a fifth of a
// 64-channel layer's time went there), else the portable one, so that the tests of every
// CNNGRAPH_POPCOUNT variant cover both.
ScaleCounts scale_counts_for(const PopcountKernel& popcount) {
#if defined(__x86_64__)
  if (popcount.name == "avx512_vpopcntdq") return scale_counts_avx512;
#endif
  (void)popcount;
  return scale_counts_portable;
}

// One pixel's channels `v` as BitPacking's bits, and the magnitudes where `magnitudes` is
// not null, at the pixel's places: image n, flat pixel index `pixel` of `pixels`. Null bias
// and scale: no terms (pack_bits).
void pack_pixel(const float* v, const float* bias, const float* scale, int groups,
                int group_channels, int words, bool strict, std::size_t n, std::size_t pixel,
                std::size_t pixels, std::uint64_t* bits, float* magnitudes) {
  for (int g = 0; g < groups; ++g) {
    const std::size_t slot = (n * groups + g) * pixels + pixel;
    std::uint64_t* word = bits + slot * words;
    std::fill(word, word + words, 0);
    const int first = g * group_channels;
    const float magnitude =
        pack_bits(v + first, bias ? bias + first : nullptr, scale ? scale + first : nullptr,
                  group_channels, strict, magnitudes != nullptr, word);
    if (magnitudes) magnitudes[slot] = magnitude;
  }
}

// Per-channel terms with the default filled in where there are none.
std::vector<float> filled_terms(const std::vector<float>& terms, int count, float none) {
  return terms.empty() ? std::vector<float>(count, none) : terms;
}

// Whether input terms leave every value as it is (bias 0, scale 1): packing then skips them.
bool identity_terms(const std::vector<float>& bias, const std::vector<float>& scale) {
  return std::all_of(bias.begin(), bias.end(), [](float b) { return b == 0.0f; }) &&
         std::all_of(scale.begin(), scale.end(), [](float s) { return s == 1.0f; });
}

class BitPackedBinaryConvolution : public Kernel {
 public:
  explicit BitPackedBinaryConvolution(const BinaryConvolutionOp& op)
      : op_(op),
        popcount_(select_popcount_kernel()),
        scale_counts_(scale_counts_for(popcount_)),
        groups_(op.groups),
        group_channels_(op.input_channels / op.groups),
        group_outputs_(op.output_channels / op.groups),
        taps_(op.kernel_height * op.kernel_width),
        words_((group_channels_ + 63) / 64),
        row_words_(static_cast<std::size_t>(taps_) * words_),
        padded_outputs_((group_outputs_ + 7) / 8 * 8),
        bit_op_(op.type == BinaryConvolutionType::xnor ? BitOp::exclusive_or : BitOp::conjunction) {
    input_bias_ = filled_terms(op.terms.input_bias, op.input_channels, 0.0f);
    input_scale_ = filled_terms(op.terms.input_scale, op.input_channels, 1.0f);
    input_terms_ = !identity_terms(input_bias_, input_scale_);
    // Where each word of a window lies in the packed image, from the window's first pixel
    // (where that does not fit 32 bits, every window is gathered).
    const std::size_t width = op.src_shapes[0].width;
    for (int r = 0; r < op.kernel_height; ++r)
      for (int s = 0; s < op.kernel_width; ++s)
        for (int k = 0; k < words_; ++k) {
          const std::size_t at = (static_cast<std::size_t>(r) * op.dilation_y * width +
                                  static_cast<std::size_t>(s) * op.dilation_x) *
                                     words_ +
                                 k;
          image_offsets_.push_back(static_cast<std::uint32_t>(at));
          offsets_fit_ = offsets_fit_ && at <= UINT32_MAX;
        }
    pack_weights();
    if (op.packed_result) {
      const BitPacking& packing = op.result_packing;
      result_bias_ = filled_terms(packing.input_bias, packing.channels, 0.0f);
      result_scale_ = filled_terms(packing.input_scale, packing.channels, 1.0f);
      result_terms_ = !identity_terms(result_bias_, result_scale_);
    }
  }

  // Weights per group, word-major: [group][word of the window][output (padded to 8)]; a set
  // bit is +1 (w >= 0: the weights are +1/-1, or a training graph's float shadow weights).
  // Also y = output_scale * (scale_value * beta * sum + bias) + output_bias = A beta sum + B.
  // Redone when training has changed the weights.
  void pack_weights() {
    const BinaryConvolutionOp& op = op_;
    slope_.resize(op.output_channels);
    offset_.resize(op.output_channels);
    for (int o = 0; o < op.output_channels; ++o) {
      const float output_scale = term(op.terms.output_scale, o, 1.0f);
      slope_[o] = op.scale_value * output_scale;
      offset_[o] = op.weights->bias[o] * output_scale + term(op.terms.output_bias, o, 0.0f);
    }
    const std::vector<float>& w = op.weights->weights;
    weights_.assign(static_cast<std::size_t>(groups_) * row_words_ * padded_outputs_, 0);
    tap_bits_.assign(static_cast<std::size_t>(op.output_channels) * taps_, 0);
    for (int o = 0; o < op.output_channels; ++o) {
      const int g = o / group_outputs_, local = o % group_outputs_;
      for (int t = 0; t < taps_; ++t)
        for (int c = 0; c < group_channels_; ++c) {
          if (w[(static_cast<std::size_t>(o) * taps_ + t) * group_channels_ + c] >= 0.0f) {
            const std::size_t word = static_cast<std::size_t>(t) * words_ + c / 64;
            weights_[(g * row_words_ + word) * padded_outputs_ + local] |= std::uint64_t{1}
                                                                           << (c % 64);
            ++tap_bits_[static_cast<std::size_t>(o) * taps_ + t];
          }
        }
    }
    packed_version_ = op.weights->version;
  }

  std::string implementation() const override { return "onednn:bitpacked_" + popcount_.name; }

  void run(const KernelArgs& args) override {
    if (op_.weights->version != packed_version_) pack_weights();
    const ImageShape& in = op_.src_shapes[0];
    const std::size_t places = static_cast<std::size_t>(in.batch) * groups_ * in.height * in.width;
    if (op_.packed_source) {
      // The producer wrote the bits (and magnitudes) in the layout pack_input makes.
      bits_ = reinterpret_cast<const std::uint64_t*>(args.srcs[0]);
      magnitude_ = reinterpret_cast<const float*>(bits_ + places * words_);
    } else {
      pack_input(args.srcs[0]);
      bits_ = own_bits_.data();
      magnitude_ = own_magnitude_.data();
    }
    const ImageShape& out = op_.dst_shape;
    const auto rows = static_cast<std::ptrdiff_t>(out.batch) * out.height;
    const std::size_t row_floats = static_cast<std::size_t>(out.width) * out.channels;
#pragma omp parallel
    {
      std::vector<std::uint64_t> windows(4 * row_words_);
      std::vector<std::int32_t> counts(4 * padded_outputs_);
      std::vector<float> row_values(op_.packed_result ? row_floats : 0);
      std::vector<int> missing_taps(4 * static_cast<std::size_t>(taps_));
#pragma omp for schedule(static)
      for (std::ptrdiff_t row = 0; row < rows; ++row) {
        const int n = static_cast<int>(row / out.height), p = static_cast<int>(row % out.height);
        float* y = op_.packed_result ? row_values.data() : args.dst + row * row_floats;
        for (int q = 0; q < out.width; q += 4)
          compute_block(n, p, q, windows, counts, missing_taps, y);
        if (op_.packed_result) pack_result_row(n, p, y, args.dst);
      }
    }
  }

 private:
  // Bits [n][group][h][w][words_] (xnor: value >= 0; and: value > 0) and, with beta
  // scaling, |value| summed over each pixel's group channels: BitPacking's layout.
  void pack_input(const float* x) {
    const ImageShape& in = op_.src_shapes[0];
    const std::size_t pixels = static_cast<std::size_t>(in.height) * in.width;
    own_bits_.resize(static_cast<std::size_t>(in.batch) * groups_ * pixels * words_);
    if (op_.beta_scaling)
      own_magnitude_.resize(static_cast<std::size_t>(in.batch) * groups_ * pixels);
    const bool strict = op_.type != BinaryConvolutionType::xnor;  // and: value > 0
    const auto images = static_cast<std::ptrdiff_t>(in.batch) * in.height;
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t image_row = 0; image_row < images; ++image_row) {
      const std::size_t n = image_row / in.height;
      for (std::size_t pixel = (image_row % in.height) * in.width, end = pixel + in.width;
           pixel < end; ++pixel) {
        pack_pixel(
            x + (n * pixels + pixel) * in.channels, input_terms_ ? input_bias_.data() : nullptr,
            input_terms_ ? input_scale_.data() : nullptr, groups_, group_channels_, words_, strict,
            n, pixel, pixels, own_bits_.data(), op_.beta_scaling ? own_magnitude_.data() : nullptr);
      }
    }
  }

  // Row p of image n of the result, `y` (width x channels floats), as the consumers'
  // BitPacking: the same arithmetic as their own pack_input on the stored floats.
  void pack_result_row(int n, int p, const float* y, float* dst) const {
    const BitPacking& packing = op_.result_packing;
    const ImageShape& out = op_.dst_shape;
    const std::size_t pixels = static_cast<std::size_t>(out.height) * out.width;
    const std::size_t places = static_cast<std::size_t>(out.batch) * packing.groups * pixels;
    auto* bits = reinterpret_cast<std::uint64_t*>(dst);
    auto* magnitudes = reinterpret_cast<float*>(bits + places * packing.words_per_group());
    for (int q = 0; q < out.width; ++q) {
      pack_pixel(y + static_cast<std::size_t>(q) * out.channels,
                 result_terms_ ? result_bias_.data() : nullptr,
                 result_terms_ ? result_scale_.data() : nullptr, packing.groups,
                 packing.channels / packing.groups, packing.words_per_group(), packing.strict, n,
                 static_cast<std::size_t>(p) * out.width + q, pixels, bits,
                 packing.magnitudes ? magnitudes : nullptr);
    }
  }

  // Output pixels (n, p, q .. q + 3) of every output channel, into `row`, the result's row
  // (n, p) (width x channels floats).
  void compute_block(int n, int p, int q0, std::vector<std::uint64_t>& windows,
                     std::vector<std::int32_t>& counts, std::vector<int>& missing_taps,
                     float* row) const {
    const ImageShape& in = op_.src_shapes[0];
    const ImageShape& out = op_.dst_shape;
    const int count = std::min(4, out.width - q0);
    const std::size_t pixels = static_cast<std::size_t>(in.height) * in.width;
    // Four windows without padding taps are read in the packed image itself, not gathered.
    const int top = p * op_.y.stride - op_.y.pad_before;
    const int left = q0 * op_.x.stride - op_.x.pad_before;
    const bool inside =
        offsets_fit_ && count == 4 && top >= 0 &&
        top + (op_.kernel_height - 1) * op_.dilation_y < in.height && left >= 0 &&
        left + 3 * op_.x.stride + (op_.kernel_width - 1) * op_.dilation_x < in.width;
    for (int g = 0; g < groups_; ++g) {
      const std::uint64_t* a[4];
      // Padding taps per pixel: missing_count[i] of them at missing[i * taps_].
      int* const missing = missing_taps.data();
      int missing_count[4] = {0, 0, 0, 0};
      double beta[4] = {1.0, 1.0, 1.0, 1.0};
      int valid[4] = {0, 0, 0, 0};
      for (int i = 0; i < 4 && inside; ++i) {
        const std::size_t origin = (static_cast<std::size_t>(n) * groups_ + g) * pixels +
                                   static_cast<std::size_t>(top) * in.width + left +
                                   static_cast<std::size_t>(i) * op_.x.stride;
        a[i] = bits_ + origin * words_;
        valid[i] = taps_;
        if (!op_.beta_scaling) continue;
        double magnitude = 0.0;
        for (int r = 0; r < op_.kernel_height; ++r)
          for (int s = 0; s < op_.kernel_width; ++s)
            magnitude +=
                magnitude_[origin + static_cast<std::size_t>(r) * op_.dilation_y * in.width +
                           static_cast<std::size_t>(s) * op_.dilation_x];
        beta[i] = magnitude / (static_cast<double>(taps_) * group_channels_);
      }
      for (int i = 0; i < 4 && !inside; ++i) {
        std::uint64_t* window = windows.data() + i * row_words_;
        a[i] = window;
        if (i >= count) continue;  // a copy of pixel 0's window is counted and dropped
        const int q = q0 + i;
        double magnitude = 0.0;
        for (int r = 0; r < op_.kernel_height; ++r)
          for (int s = 0; s < op_.kernel_width; ++s) {
            const int t = r * op_.kernel_width + s;
            const int iy = p * op_.y.stride - op_.y.pad_before + r * op_.dilation_y;
            const int ix = q * op_.x.stride - op_.x.pad_before + s * op_.dilation_x;
            std::uint64_t* tap = window + static_cast<std::size_t>(t) * words_;
            if (iy < 0 || iy >= in.height || ix < 0 || ix >= in.width) {
              missing[i * taps_ + missing_count[i]++] = t;
              for (int k = 0; k < words_; ++k) tap[k] = 0;
              continue;
            }
            const std::size_t slot = (static_cast<std::size_t>(n) * groups_ + g) * pixels +
                                     static_cast<std::size_t>(iy) * in.width + ix;
            // A plain loop: windows are a word or a few per tap, where a copy call costs
            // more than the copy.
            const std::uint64_t* source_words = bits_ + slot * words_;
            for (int k = 0; k < words_; ++k) tap[k] = source_words[k];
            if (op_.beta_scaling) magnitude += magnitude_[slot];
            ++valid[i];
          }
        if (op_.beta_scaling)
          beta[i] = valid[i] ? magnitude / (static_cast<double>(valid[i]) * group_channels_) : 0.0;
      }
      for (int i = count; i < 4; ++i) a[i] = a[0];
      popcount_.block(a, inside ? image_offsets_.data() : nullptr,
                      weights_.data() + g * row_words_ * padded_outputs_, row_words_,
                      padded_outputs_, bit_op_, counts.data());
      for (int i = 0; i < count; ++i) {
        float* y = row + static_cast<std::size_t>(q0 + i) * out.channels + g * group_outputs_;
        std::int32_t* c = counts.data() + i * padded_outputs_;
        const float* slope = slope_.data() + g * group_outputs_;
        const float* offset = offset_.data() + g * group_outputs_;
        const float beta_i = static_cast<float>(beta[i]);
        if (bit_op_ == BitOp::exclusive_or) {
          // Padding taps were zero words: their XOR counted the weights' own set bits.
          for (int m = 0; m < missing_count[i]; ++m)
            for (int local = 0; local < group_outputs_; ++local)
              c[local] -= tap_bits_[static_cast<std::size_t>(g * group_outputs_ + local) * taps_ +
                                    missing[i * taps_ + m]];
          scale_counts_(c, slope, offset, beta_i, valid[i] * group_channels_, true, group_outputs_,
                        y);
        } else {
          scale_counts_(c, slope, offset, beta_i, 0, false, group_outputs_, y);
        }
      }
    }
  }

  const BinaryConvolutionOp& op_;
  PopcountKernel popcount_;
  ScaleCounts scale_counts_;
  int groups_, group_channels_, group_outputs_, taps_, words_;
  std::size_t row_words_, padded_outputs_;
  BitOp bit_op_;
  std::vector<std::uint64_t> weights_;
  std::vector<std::uint32_t> image_offsets_;  // popcount_dot.hpp's offsets
  bool offsets_fit_ = true;
  std::vector<std::int32_t> tap_bits_;  // set weight bits per output channel and tap
  std::vector<float> input_bias_, input_scale_, slope_, offset_;
  std::uint64_t packed_version_ = 0;
  // The source's bits and magnitudes in this run: the producer's, or our own packing.
  const std::uint64_t* bits_ = nullptr;
  const float* magnitude_ = nullptr;
  std::vector<std::uint64_t> own_bits_;
  std::vector<float> own_magnitude_;
  std::vector<float> result_bias_, result_scale_;  // the consumers' input terms, filled in
  bool input_terms_ = true, result_terms_ = true;  // false: the terms change nothing
};

// binary_weights as a float convolution: w' = sign(w) * scale * output_scale,
// b' = bias * output_scale + output_bias; refolded when training has changed the weights.
class FoldedBinaryWeights : public Kernel {
 public:
  FoldedBinaryWeights(const BinaryConvolutionOp& op, const GraphOptions& options)
      : op_(op), folded_weights_(std::make_shared<PreparedWeights>()) {
    folded_weights_->descriptor = op.weights->descriptor;
    folded_weights_->source_label = op.weights->source_label;
    folded_weights_->has_bias = true;
    fold();
    folded_op_ = std::make_unique<ConvolutionOp>(static_cast<const ConvolutionOp&>(op));
    folded_op_->kind = OpKind::convolution;
    folded_op_->weights = folded_weights_;
    kernel_ = make_convolution(*folded_op_, options);
  }
  void run(const KernelArgs& args) override {
    if (op_.weights->version != folded_weights_->version) fold();
    kernel_->run(args);
  }
  std::string implementation() const override {
    return kernel_ ? kernel_->implementation() + "(+-1 weights)" : "?";
  }
  bool valid() const { return kernel_ != nullptr; }

 private:
  void fold() {
    const PreparedWeights& w = *op_.weights;
    std::lock_guard lock(folded_weights_->cache_mutex);
    folded_weights_->weights.resize(w.weights.size());
    folded_weights_->bias.resize(w.bias.size());
    const std::size_t per_output = w.weights.size() / op_.output_channels;
    for (int o = 0; o < op_.output_channels; ++o) {
      const float output_scale = term(op_.terms.output_scale, o, 1.0f);
      const float scale = op_.scale_value * output_scale;
      for (std::size_t i = o * per_output; i < (o + 1) * per_output; ++i)
        folded_weights_->weights[i] = w.weights[i] >= 0.0f ? scale : -scale;
      folded_weights_->bias[o] = w.bias[o] * output_scale + term(op_.terms.output_bias, o, 0.0f);
    }
    folded_weights_->version = w.version;  // the oneDNN kernel re-reorders its copy
  }

  const BinaryConvolutionOp& op_;
  std::shared_ptr<PreparedWeights> folded_weights_;
  std::unique_ptr<ConvolutionOp> folded_op_;
  std::unique_ptr<Kernel> kernel_;
};

// The straight-through gradient through oneDNN's convolution gradients (no beta scaling):
//   dS = dy * scale_value * output_scale                       (per output channel)
//   dx = backward_data(dS, weight bits) * pass(x') * input_scale
//   dw = backward_weights(input bits, dS) * pass(w),  dbias = sum(dy) * output_scale
// with the bits +1/-1 (0/1 for `and`) and x' itself for binary_weights' input, and pass(v)
// = [|v| <= 1] (1 for binary_weights' input), as the reference kernel defines them.
class BinaryConvolutionGradient : public Kernel {
 public:
  static std::unique_ptr<Kernel> make(const BinaryConvolutionGradientOp& op,
                                      const GraphOptions& options) {
    if (op.forward.beta_scaling) return decline("beta scaling");
    auto kernel = std::unique_ptr<BinaryConvolutionGradient>(new BinaryConvolutionGradient(op));
    kernel->input_kernel_ = make_convolution_gradient(kernel->input_op_, options);
    if (!kernel->input_kernel_) return decline_part("its input gradient's convolution gradient");
    if (op.parameters) {
      kernel->weights_kernel_ = make_convolution_gradient(kernel->weights_op_, options);
      if (!kernel->weights_kernel_)
        return decline_part("its weight gradient's convolution gradient");
    }
    return kernel;
  }

  std::string implementation() const override {
    return "onednn:binary_ste(" + input_kernel_->implementation() + ")";
  }

  void run(const KernelArgs& args) override {
    if (signs_->version != op_.forward.weights->version) binarize_weights();
    const BinaryConvolutionOp& f = op_.forward;
    const ImageShape& in = f.src_shapes[0];
    const int C = in.channels, O = f.output_channels;
    const float* dy = args.srcs[0];
    const float* x = args.srcs[1];
    const auto in_count = static_cast<std::ptrdiff_t>(in.elements());
    const auto out_count = static_cast<std::ptrdiff_t>(f.dst_shape.elements());
    input_.resize(in_count);
    bits_.resize(in_count);
    diff_.resize(out_count);
    const bool xnor = f.type == BinaryConvolutionType::xnor;
    const bool and_ = f.type == BinaryConvolutionType::and_;
#pragma omp parallel for simd schedule(static)
    for (std::ptrdiff_t i = 0; i < in_count; ++i) {
      const int c = static_cast<int>(i % C);
      const float v = (x[i] + input_bias_[c]) * input_scale_[c];
      input_[i] = v;
      bits_[i] = xnor ? (v >= 0.0f ? 1.0f : -1.0f) : and_ ? (v > 0.0f ? 1.0f : 0.0f) : v;
    }
#pragma omp parallel for simd schedule(static)
    for (std::ptrdiff_t i = 0; i < out_count; ++i) diff_[i] = dy[i] * slope_[i % O];
    input_kernel_->run({{diff_.data(), bits_.data()}, args.dst, args.batch});
    const bool pass_input = f.type != BinaryConvolutionType::binary_weights;
#pragma omp parallel for simd schedule(static)
    for (std::ptrdiff_t i = 0; i < in_count; ++i) {
      const float pass = !pass_input || std::fabs(input_[i]) <= 1.0f ? 1.0f : 0.0f;
      args.dst[i] *= pass * input_scale_[i % C];
    }
    if (!weights_kernel_) return;
    weights_kernel_->run({{diff_.data(), bits_.data()}, nullptr, args.batch});
    const std::vector<float>& w = f.weights->weights;
    const std::vector<float>& g = scratch_->gradient.weights_gradient;
    ConvolutionGradientState& out = op_.parameters->gradient;
    for (std::size_t i = 0; i < w.size(); ++i)
      out.weights_gradient[i] = std::fabs(w[i]) <= 1.0f ? g[i] : 0.0f;
    std::vector<double> bias(O, 0.0);
    for (std::ptrdiff_t i = 0; i < out_count; ++i) bias[i % O] += dy[i];
    for (int o = 0; o < O; ++o)
      out.bias_gradient[o] = static_cast<float>(bias[o] * term(f.terms.output_scale, o, 1.0f));
  }

 private:
  explicit BinaryConvolutionGradient(const BinaryConvolutionGradientOp& op)
      : op_(op), signs_(std::make_shared<PreparedWeights>()) {
    const BinaryConvolutionOp& f = op.forward;
    signs_->descriptor = f.weights->descriptor;
    signs_->source_label = f.weights->source_label;
    signs_->bias.assign(f.output_channels, 0.0f);
    binarize_weights();
    for (int c = 0; c < f.input_channels; ++c) {
      input_bias_.push_back(term(f.terms.input_bias, c, 0.0f));
      input_scale_.push_back(term(f.terms.input_scale, c, 1.0f));
    }
    for (int o = 0; o < f.output_channels; ++o)
      slope_.push_back(f.scale_value * term(f.terms.output_scale, o, 1.0f));
    // The convolution the binary one is, on the bits: its input gradient and weight gradient.
    ConvolutionOp conv(static_cast<const ConvolutionOp&>(f));
    conv.kind = OpKind::convolution;
    conv.weights = signs_;
    input_op_.name = weights_op_.name = op.name;
    input_op_.forward = weights_op_.forward = conv;
    input_op_.src_shapes = weights_op_.src_shapes = {f.dst_shape, f.src_shapes[0]};
    input_op_.dst_shape = weights_op_.dst_shape = f.src_shapes[0];
    input_op_.input_gradient = true;
    weights_op_.input_gradient = false;
    if (op.parameters) {
      scratch_ = std::make_unique<TrainedWeights>();
      scratch_->prepared = signs_;
      scratch_->gradient.weights_gradient.assign(f.weights->weights.size(), 0.0f);
      scratch_->gradient.bias_gradient.assign(f.output_channels, 0.0f);
      weights_op_.parameters = scratch_.get();
    }
  }

  // The weight bits as floats: +1/-1, or 1/0 for `and` (a weight >= 0 is a set bit).
  void binarize_weights() {
    const PreparedWeights& w = *op_.forward.weights;
    const bool and_ = op_.forward.type == BinaryConvolutionType::and_;
    std::lock_guard lock(signs_->cache_mutex);
    signs_->weights.resize(w.weights.size());
    for (std::size_t i = 0; i < w.weights.size(); ++i)
      signs_->weights[i] = w.weights[i] >= 0.0f ? 1.0f : (and_ ? 0.0f : -1.0f);
    signs_->version = w.version;  // the convolution kernels re-reorder their copies
  }

  const BinaryConvolutionGradientOp& op_;
  std::shared_ptr<PreparedWeights> signs_;
  std::unique_ptr<TrainedWeights> scratch_;
  ConvolutionGradientOp input_op_, weights_op_;
  std::unique_ptr<Kernel> input_kernel_, weights_kernel_;
  std::vector<float> input_bias_, input_scale_, slope_;
  std::vector<float> input_, bits_, diff_;
};

}  // namespace

std::unique_ptr<Kernel> make_binary_convolution_gradient(const Op& op,
                                                         const GraphOptions& options) {
  return BinaryConvolutionGradient::make(static_cast<const BinaryConvolutionGradientOp&>(op),
                                         options);
}

std::unique_ptr<Kernel> make_binary_convolution(const Op& op, const GraphOptions& options) {
  const auto& binary = static_cast<const BinaryConvolutionOp&>(op);
  if (binary.type != BinaryConvolutionType::binary_weights)
    return std::make_unique<BitPackedBinaryConvolution>(binary);
  if (binary.beta_scaling) return decline("beta scaling");
  if (!binary.terms.input_bias.empty() || !binary.terms.input_scale.empty())
    return decline("an input bias or input scale");
  auto folded = std::make_unique<FoldedBinaryWeights>(binary, options);
  if (!folded->valid()) return decline_part("its folded convolution");
  return folded;
}

}  // namespace cnngraph::detail::onednn
