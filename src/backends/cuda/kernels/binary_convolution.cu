// Binary convolution on CUDA, our own kernels: the source is packed once per run into sign
// bits, 32 group channels a word, with each word's sum of |x'| (for beta); a thread then
// counts matching bits with popc over its window for eight output channels of one pixel
// (xnor: 2 * matches - valid; and: ones in x & w). binary_weights (float inputs, +/-1
// weights) sums floats directly. Index math is 32-bit where the sizes allow (a 64-bit
// division is many instructions).
// Trained weights change on the device between runs: the forward then packs their sign bits
// from the f32 shadow weights on the device before each run. The gradient (the
// straight-through estimator of the reference backend) runs in three passes: dL/dS per
// result element (with beta), the input gradient gathered per source element, and the
// weight gradient summed over fixed chunks of result pixels, then over the chunks in order.
#include "backends/cuda/cuda_kernels.hpp"
#include "backends/cuda/kernels/binary_convolution.hpp"
#include "backends/cuda/kernels/channel_reduction.hpp"
#include "backends/cuda/kernels/device_math.cuh"
#include "cnngraph/errors.hpp"
#include "env_knobs.hpp"

namespace cnngraph::detail::cuda {

namespace {

struct BinaryGeometry {
  int N, H, W, C, P, Q, K, R, S, groups, words;
  int stride_y, stride_x, pad_y, pad_x, dilation_y, dilation_x;
  int type;  // BinaryConvolutionType
  bool beta_scaling;
  float scale_value;
};

__device__ __forceinline__ float term(const float* terms, int i, float none) {
  return terms ? terms[i] : none;
}

// The source's signs (and, for beta, |x'|) of one channel: x' = (x + input_bias) *
// input_scale; `and` sets a bit where x' > 0, the others where x' >= 0.
template <typename T>
__device__ __forceinline__ float scaled_input(const BinaryGeometry& g, const BinaryWeights& w,
                                              const T* src, std::size_t pixel, int channel) {
  return (to_float(src[pixel * g.C + channel]) + term(w.input_bias, channel, 0.0f)) *
         term(w.input_scale, channel, 1.0f);
}
__device__ __forceinline__ bool sign_bit(const BinaryGeometry& g, float v) {
  return g.type == int(BinaryConvolutionType::and_) ? v > 0.0f : v >= 0.0f;
}

// Packing when a group's channels fill whole words (Cg % 32 == 0): one thread per channel,
// so the loads are coalesced; a warp is one word, made by a ballot. Its lane 0 writes the
// word and the word's sum of |x'| (for beta).
template <typename T, typename I>
__global__ void pack_ballot_kernel(BinaryGeometry g, BinaryWeights w, const T* src, unsigned* bits,
                                   float* magnitudes) {
  const I count = I(g.N) * g.H * g.W * g.C;  // a multiple of 32: one warp per word
  for (I e = blockIdx.x * I(blockDim.x) + threadIdx.x; e < count; e += I(gridDim.x) * blockDim.x) {
    const I pixel = e / g.C;
    const int channel = int(e - pixel * g.C);
    const float v = scaled_input(g, w, src, pixel, channel);
    const unsigned word = __ballot_sync(0xffffffffu, sign_bit(g, v));
    float magnitude = g.beta_scaling ? fabsf(v) : 0.0f;
    if (g.beta_scaling) {
      for (int offset = 16; offset > 0; offset /= 2)
        magnitude += __shfl_xor_sync(0xffffffffu, magnitude, offset);
    }
    if ((threadIdx.x & 31) == 0) {
      const I at = e / 32;  // channels are contiguous words across the groups of a pixel
      bits[at] = word;
      if (g.beta_scaling) magnitudes[at] = magnitude;
    }
  }
}

// Packing in general: one thread per (pixel, group, word), its 32 channels in a loop.
template <typename T, typename I>
__global__ void pack_kernel(BinaryGeometry g, BinaryWeights w, const T* src, unsigned* bits,
                            float* magnitudes) {
  const int Cg = g.C / g.groups;
  const I count = I(g.N) * g.H * g.W * g.groups * g.words;
  for (I e = blockIdx.x * I(blockDim.x) + threadIdx.x; e < count; e += I(gridDim.x) * blockDim.x) {
    const int word = int(e % g.words);
    const I pixel_group = e / g.words;
    const int group = int(pixel_group % g.groups);
    const I pixel = pixel_group / g.groups;
    unsigned value = 0;
    float magnitude = 0.0f;
    for (int b = 0; b < 32 && word * 32 + b < Cg; ++b) {
      const float v = scaled_input(g, w, src, pixel, group * Cg + word * 32 + b);
      value |= unsigned(sign_bit(g, v)) << b;
      magnitude += fabsf(v);
    }
    bits[e] = value;
    if (g.beta_scaling) magnitudes[e] = magnitude;
  }
}

// The tensor-core kernel's packing (no beta scaling, one group): one thread per 32-bit word
// of a pixel, [pixel][g.words], its 32 channels read in 16-byte vectors where the pixels'
// rows are whole vectors (kVector). Sizes fit 32-bit index math (binary_mma_takes).
template <typename T, bool kVector>
__global__ void pack_words_kernel(BinaryGeometry g, BinaryWeights w, const T* src, unsigned* bits) {
  constexpr int V = 16 / sizeof(T);
  const unsigned count = unsigned(g.N) * g.H * g.W * g.words;
  for (unsigned e = blockIdx.x * blockDim.x + threadIdx.x; e < count; e += gridDim.x * blockDim.x) {
    const unsigned pixel = e / g.words;
    const int first = int(e - pixel * g.words) * 32;
    unsigned value = 0;
    if (kVector && first + 32 <= g.C) {
      const auto* vectors =
          reinterpret_cast<const Pack<T, V>*>(src + std::size_t(pixel) * g.C + first);
#pragma unroll
      for (int k = 0; k < 32 / V; ++k) {
        const Pack<T, V> x = vectors[k];
#pragma unroll
        for (int i = 0; i < V; ++i) {
          const int c = first + k * V + i;
          const float v =
              (to_float(x.v[i]) + term(w.input_bias, c, 0.0f)) * term(w.input_scale, c, 1.0f);
          value |= unsigned(sign_bit(g, v)) << (k * V + i);
        }
      }
    } else {
      for (int b = 0; b < 32 && first + b < g.C; ++b)
        value |= unsigned(sign_bit(g, scaled_input(g, w, src, pixel, first + b))) << b;
    }
    bits[e] = value;
  }
}

// The weight bits of output channel o, tap t, word k: [t][k][o], so that a thread's run of
// output channels reads neighbouring words.
__device__ __forceinline__ unsigned weight_word(const BinaryGeometry& g, const BinaryWeights& w,
                                                int o, int tap, int word) {
  return w.bits[(std::size_t(tap) * g.words + word) * g.K + o];
}

// y = (scale * beta * sum + bias) * output_scale + output_bias.
template <typename T>
__device__ __forceinline__ void store_result(const BinaryGeometry& g, const BinaryWeights& w,
                                             float sum, float beta, int o, std::size_t at, T* dst) {
  const float y = (g.scale_value * beta * sum + w.bias[o]) * term(w.output_scale, o, 1.0f) +
                  term(w.output_bias, o, 0.0f);
  dst[at] = from_float<T>(y);
}

// xnor and `and`: a thread computes kOutputs neighbouring output channels of one pixel, so
// each packed source word it loads serves all of them.
constexpr int kOutputs = 8;

template <typename T, typename I>
__global__ void popcount_kernel(BinaryGeometry g, BinaryWeights w, const unsigned* bits,
                                const float* magnitudes, T* dst) {
  const int Cg = g.C / g.groups, Kg = g.K / g.groups;
  const int runs = (Kg + kOutputs - 1) / kOutputs;  // per group
  const bool xnor = g.type == int(BinaryConvolutionType::xnor);
  const I count = I(g.N) * g.P * g.Q * g.groups * runs;
  for (I i = blockIdx.x * I(blockDim.x) + threadIdx.x; i < count; i += I(gridDim.x) * blockDim.x) {
    const int run = int(i % runs);
    I rest = i / runs;
    const int group = int(rest % g.groups);
    rest /= g.groups;
    const int q = int(rest % g.Q);
    rest /= g.Q;
    const int p = int(rest % g.P);
    const int n = int(rest / g.P);
    const int o0 = group * Kg + run * kOutputs;
    const int outputs = min(kOutputs, (group + 1) * Kg - o0);
    int matches[kOutputs] = {};
    int taps = 0;
    float magnitude = 0.0f;
    for (int r = 0; r < g.R; ++r) {
      const int iy = p * g.stride_y - g.pad_y + r * g.dilation_y;
      if (iy < 0 || iy >= g.H) continue;
      for (int s = 0; s < g.S; ++s) {
        const int ix = q * g.stride_x - g.pad_x + s * g.dilation_x;
        if (ix < 0 || ix >= g.W) continue;
        ++taps;
        const int tap = r * g.S + s;
        const I packed = ((I(n) * g.H + iy) * g.W + ix) * g.groups + group;  // in words / g.words
        for (int word = 0; word < g.words; ++word) {
          const unsigned x = bits[packed * g.words + word];
          const int valid_bits = min(32, Cg - word * 32);
          const unsigned valid = valid_bits == 32 ? 0xffffffffu : (1u << valid_bits) - 1u;
#pragma unroll
          for (int k = 0; k < kOutputs; ++k) {
            if (k >= outputs) break;
            const unsigned wv = weight_word(g, w, o0 + k, tap, word);
            matches[k] += xnor ? __popc(~(x ^ wv) & valid) : __popc(x & wv & valid);
          }
          if (g.beta_scaling) magnitude += magnitudes[packed * g.words + word];
        }
      }
    }
    const float beta = !g.beta_scaling ? 1.0f : taps ? magnitude / float(taps * Cg) : 0.0f;
    const std::size_t first = ((std::size_t(n) * g.P + p) * g.Q + q) * g.K + o0;
#pragma unroll
    for (int k = 0; k < kOutputs; ++k) {
      if (k >= outputs) break;
      // xnor counts +1 per match and -1 per mismatch over the valid channels of each tap.
      const float sum = xnor ? float(2 * matches[k] - taps * Cg) : float(matches[k]);
      store_result(g, w, sum, beta, o0 + k, first + k, dst);
    }
  }
}

// binary_weights: float sources against +/-1 weights, summed directly; one thread per
// result element.
template <typename T>
__global__ void binary_weights_kernel(BinaryGeometry g, BinaryWeights w, const T* src,
                                      const float* magnitudes, T* dst) {
  const int Cg = g.C / g.groups, Kg = g.K / g.groups;
  const std::size_t count = std::size_t(g.N) * g.P * g.Q * g.K;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const Pixel at = unravel(i, g.P, g.Q, g.K);
    const int n = at.n, p = at.y, q = at.x, o = at.c;
    const int group = o / Kg;
    float sum = 0.0f, magnitude = 0.0f;
    int taps = 0;
    for (int r = 0; r < g.R; ++r) {
      const int iy = p * g.stride_y - g.pad_y + r * g.dilation_y;
      if (iy < 0 || iy >= g.H) continue;
      for (int s = 0; s < g.S; ++s) {
        const int ix = q * g.stride_x - g.pad_x + s * g.dilation_x;
        if (ix < 0 || ix >= g.W) continue;
        ++taps;
        const std::size_t pixel = (std::size_t(n) * g.H + iy) * g.W + ix;
        for (int c = 0; c < Cg; ++c) {
          const float v = scaled_input(g, w, src, pixel, group * Cg + c);
          const bool positive = (weight_word(g, w, o, r * g.S + s, c / 32) >> (c % 32)) & 1u;
          sum += positive ? v : -v;
        }
        if (g.beta_scaling) {
          for (int word = 0; word < g.words; ++word)
            magnitude += magnitudes[(pixel * g.groups + group) * g.words + word];
        }
      }
    }
    const float beta = !g.beta_scaling ? 1.0f : taps ? magnitude / float(taps * Cg) : 0.0f;
    store_result(g, w, sum, beta, o, i, dst);
  }
}

// The weight bits from f32 OHWI weights: one thread per (tap, word, output), bit c set where
// the weight of channel 32 word + c is >= 0.
__global__ void pack_weights_kernel(BinaryGeometry g, const float* weights, unsigned* bits) {
  const int Cg = g.C / g.groups, taps = g.R * g.S;
  const std::size_t count = std::size_t(taps) * g.words * g.K;
  for (std::size_t e = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; e < count;
       e += std::size_t(gridDim.x) * blockDim.x) {
    const int o = int(e % g.K);
    const std::size_t rest = e / g.K;
    const int word = int(rest % g.words);
    const int tap = int(rest / g.words);
    const float* w = weights + (std::size_t(o) * taps + tap) * Cg;
    unsigned value = 0;
    for (int b = 0; b < 32 && word * 32 + b < Cg; ++b)
      value |= unsigned(w[word * 32 + b] >= 0.0f) << b;
    bits[e] = value;
  }
}

// dL/dS of each result element: dy * scale_value * output_scale * beta (beta, the window's
// mean |x'|, held constant).
template <typename T>
__global__ void binary_ds_kernel(BinaryGeometry g, BinaryWeights w, const T* dy, const T* src,
                                 float* ds) {
  const int Cg = g.C / g.groups, Kg = g.K / g.groups;
  const std::size_t count = std::size_t(g.N) * g.P * g.Q * g.K;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const Pixel at = unravel(i, g.P, g.Q, g.K);
    float beta = 1.0f;
    if (g.beta_scaling) {
      const int group = at.c / Kg;
      float magnitude = 0.0f;
      int taps = 0;
      for (int r = 0; r < g.R; ++r) {
        const int iy = at.y * g.stride_y - g.pad_y + r * g.dilation_y;
        if (iy < 0 || iy >= g.H) continue;
        for (int s = 0; s < g.S; ++s) {
          const int ix = at.x * g.stride_x - g.pad_x + s * g.dilation_x;
          if (ix < 0 || ix >= g.W) continue;
          ++taps;
          const std::size_t pixel = (std::size_t(at.n) * g.H + iy) * g.W + ix;
          for (int c = 0; c < Cg; ++c)
            magnitude += fabsf(scaled_input(g, w, src, pixel, group * Cg + c));
        }
      }
      beta = taps ? magnitude / float(taps * Cg) : 0.0f;
    }
    ds[i] = to_float(dy[i]) * g.scale_value * term(w.output_scale, at.c, 1.0f) * beta;
  }
}

// The straight-through derivatives of one product (reference backend): by the input v and
// by the weight w, each binarization's derivative 1 where |value| <= 1, else 0.
__device__ __forceinline__ float weight_factor(int type, float w) {  // d product / d v, unmasked
  if (type == int(BinaryConvolutionType::and_)) return w >= 0.0f ? 1.0f : 0.0f;
  return w >= 0.0f ? 1.0f : -1.0f;
}
__device__ __forceinline__ float input_factor(int type, float v) {  // d product / d w, unmasked
  if (type == int(BinaryConvolutionType::binary_weights)) return v;
  if (type == int(BinaryConvolutionType::and_)) return v > 0.0f ? 1.0f : 0.0f;
  return v >= 0.0f ? 1.0f : -1.0f;
}

// dx: one thread per source element gathers dS * d product / d v over every result element
// whose window holds it, times the input scale.
template <typename T>
__global__ void binary_dx_kernel(BinaryGeometry g, BinaryWeights w, const float* weights,
                                 const float* ds, const T* src, T* dx) {
  const int Cg = g.C / g.groups, Kg = g.K / g.groups;
  const std::size_t count = std::size_t(g.N) * g.H * g.W * g.C;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const Pixel at = unravel(i, g.H, g.W, g.C);
    const int group = at.c / Cg, channel = at.c % Cg;
    const float v = scaled_input(g, w, src, i / g.C, at.c);
    const bool pass = g.type == int(BinaryConvolutionType::binary_weights) || fabsf(v) <= 1.0f;
    float sum = 0.0f;
    if (pass) {
      for (int r = 0; r < g.R; ++r) {
        const int oy = at.y + g.pad_y - r * g.dilation_y;
        if (oy < 0 || oy % g.stride_y) continue;
        const int p = oy / g.stride_y;
        if (p >= g.P) continue;
        for (int s = 0; s < g.S; ++s) {
          const int ox = at.x + g.pad_x - s * g.dilation_x;
          if (ox < 0 || ox % g.stride_x) continue;
          const int q = ox / g.stride_x;
          if (q >= g.Q) continue;
          const float* d = ds + ((std::size_t(at.n) * g.P + p) * g.Q + q) * g.K;
          const int tap = r * g.S + s;
          for (int o = group * Kg; o < (group + 1) * Kg; ++o) {
            const float wv = weights[(std::size_t(o) * g.R * g.S + tap) * Cg + channel];
            sum += d[o] * weight_factor(g.type, wv);
          }
        }
      }
    }
    dx[i] = from_float<T>(sum * term(w.input_scale, at.c, 1.0f));
  }
}

// dw, first pass: the sum over result pixels [chunk * per_chunk, (chunk + 1) * per_chunk) of
// dS * d product / d w for each weight (x: weights, y: chunks) into partial[chunk][weight].
template <typename T>
__global__ void binary_dw_partial_kernel(BinaryGeometry g, BinaryWeights w, const float* ds,
                                         const T* src, std::size_t per_chunk, float* partial) {
  const int Cg = g.C / g.groups, Kg = g.K / g.groups;
  const std::size_t weights = std::size_t(g.K) * g.R * g.S * Cg;
  const std::size_t e = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x;
  if (e >= weights) return;
  const int channel = int(e % Cg);
  std::size_t rest = e / Cg;
  const int s = int(rest % g.S);
  rest /= g.S;
  const int r = int(rest % g.R);
  const int o = int(rest / g.R);
  const int c = (o / Kg) * Cg + channel;
  const std::size_t pixels = std::size_t(g.N) * g.P * g.Q;
  const std::size_t first = blockIdx.y * per_chunk;
  const std::size_t last = first + per_chunk < pixels ? first + per_chunk : pixels;
  float sum = 0.0f;
  for (std::size_t at = first; at < last; ++at) {
    const int q = int(at % g.Q);
    const std::size_t np = at / g.Q;
    const int p = int(np % g.P);
    const int n = int(np / g.P);
    const int iy = p * g.stride_y - g.pad_y + r * g.dilation_y;
    const int ix = q * g.stride_x - g.pad_x + s * g.dilation_x;
    if (iy < 0 || iy >= g.H || ix < 0 || ix >= g.W) continue;
    const float v = scaled_input(g, w, src, (std::size_t(n) * g.H + iy) * g.W + ix, c);
    sum += ds[at * g.K + o] * input_factor(g.type, v);
  }
  partial[blockIdx.y * weights + e] = sum;
}

// dw, second pass: the chunks' sums in order, masked where |w| > 1.
__global__ void binary_dw_sum_kernel(const float* partial, int chunks, std::size_t count,
                                     const float* weights, float* dw) {
  for (std::size_t e = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; e < count;
       e += std::size_t(gridDim.x) * blockDim.x) {
    float sum = 0.0f;
    for (int k = 0; k < chunks; ++k) sum += partial[k * count + e];
    dw[e] = fabsf(weights[e]) <= 1.0f ? sum : 0.0f;
  }
}

__global__ void scale_channels_kernel(float* values, const float* scale, int count) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < count) values[i] *= scale[i];
}

// The geometry of a binary convolution for device code.
BinaryGeometry geometry_of(const BinaryConvolutionOp& op) {
  const ImageShape& in = op.src_shapes[0];
  const ImageShape& out = op.dst_shape;
  const int words = (op.input_channels / op.groups + 31) / 32;
  return {in.batch,      in.height,     in.width,         in.channels,     out.height,
          out.width,     out.channels,  op.kernel_height, op.kernel_width, op.groups,
          words,         op.y.stride,   op.x.stride,      op.y.pad_before, op.x.pad_before,
          op.dilation_y, op.dilation_x, int(op.type),     op.beta_scaling, op.scale_value};
}

// Host floats in device memory (null for none), kept alive by `keep`.
const float* upload_floats(Context& context, const std::vector<float>& values,
                           const std::string& what,
                           std::vector<std::shared_ptr<std::byte[]>>& keep) {
  if (values.empty()) return nullptr;
  keep.push_back(context.upload(values.data(), values.size() * sizeof(float), what));
  return reinterpret_cast<const float*>(keep.back().get());
}

// The per-channel terms of `op` on the device.
void upload_terms(Context& context, const BinaryConvolutionOp& op, BinaryWeights& w,
                  std::vector<std::shared_ptr<std::byte[]>>& keep) {
  w.input_bias = upload_floats(context, op.terms.input_bias, op.name, keep);
  w.input_scale = upload_floats(context, op.terms.input_scale, op.name, keep);
  w.output_bias = upload_floats(context, op.terms.output_bias, op.name, keep);
  w.output_scale = upload_floats(context, op.terms.output_scale, op.name, keep);
}

class CudaBinaryConvolution : public Kernel {
 public:
  CudaBinaryConvolution(const BinaryConvolutionOp& op, Context& context)
      : op_(op), context_(context), geometry_(geometry_of(op)) {
    const int Cg = op.input_channels / op.groups;
    const int words = geometry_.words;
    const int taps = op.kernel_height * op.kernel_width;
    const std::size_t K = static_cast<std::size_t>(op.output_channels);
    weights_.words = words;
    if (op.weights->trained) {
      // Packed on the device before each run, from the shadow weights the optimizer updates.
      trained_ = device_training_buffers(*op.weights, context);
      keep_.push_back(
          context.memory->allocate(K * taps * words * sizeof(unsigned), op.name + " weight bits"));
      weights_.bias = reinterpret_cast<const float*>(trained_->master_bias.get());
    } else {
      std::vector<unsigned> bits(K * taps * words, 0u);  // [tap][word][output], see weight_word
      const std::vector<float>& weights = op.weights->weights;
      for (std::size_t o = 0; o < K; ++o)
        for (int t = 0; t < taps; ++t)
          for (int c = 0; c < Cg; ++c) {
            if (weights[(o * taps + t) * Cg + c] >= 0.0f)
              bits[(static_cast<std::size_t>(t) * words + c / 32) * K + o] |= 1u << (c % 32);
          }
      keep_.push_back(context.upload(bits.data(), bits.size() * sizeof(unsigned), op.name));
      weights_.bias = upload_floats(context, op.weights->bias, op.name, keep_);
    }
    weights_.bits = reinterpret_cast<const unsigned*>(keep_.front().get());
    upload_terms(context, op, weights_, keep_);
    const ImageShape& in = op.src_shapes[0];
    const std::size_t pixel_groups = in.elements() / in.channels * op.groups;
    packed_ = context.memory->allocate(pixel_groups * words * sizeof(unsigned), op.name + " bits");
    magnitudes_ =
        context.memory->allocate(pixel_groups * words * sizeof(float), op.name + " magnitudes");
  }

  void run(const KernelArgs& args) override {
    const ImageShape& in = op_.src_shapes[0];
    const ImageShape& out = op_.dst_shape;
    if (trained_) {
      const std::size_t words =
          std::size_t(op_.kernel_height) * op_.kernel_width * geometry_.words * op_.output_channels;
      pack_weights_kernel<<<blocks_for(words, 256), 256, 0, context_.stream>>>(
          geometry_, reinterpret_cast<const float*>(trained_->master_weights.get()),
          const_cast<unsigned*>(weights_.bits));
    }
    // Every count and index of the kernels stays below the elements of source and result.
    if (in.elements() + out.elements() < (std::size_t(1) << 31)) {
      launch<unsigned>(args);
    } else {
      launch<std::size_t>(args);
    }
    check_launch("binary_convolution");
  }
  std::string implementation() const override { return "cuda:binary_convolution_popc"; }

 private:
  template <typename I>
  void launch(const KernelArgs& args) {
    const ImageShape& in = op_.src_shapes[0];
    const BinaryGeometry& g = geometry_;
    auto* bits = reinterpret_cast<unsigned*>(packed_.get());
    auto* magnitudes = reinterpret_cast<float*>(magnitudes_.get());
    dispatch(context_.storage, [&](auto tag) {
      using T = decltype(tag);
      const T* src = reinterpret_cast<const T*>(args.srcs[0]);
      T* dst = reinterpret_cast<T*>(args.dst);
      const bool binary_weights = op_.type == BinaryConvolutionType::binary_weights;
      if (!binary_weights || op_.beta_scaling) {
        if ((g.C / g.groups) % 32 == 0) {
          pack_ballot_kernel<T, I><<<blocks_for(in.elements(), 256), 256, 0, context_.stream>>>(
              g, weights_, src, bits, magnitudes);
        } else {
          const std::size_t words = in.elements() / g.C * g.groups * g.words;
          pack_kernel<T, I><<<blocks_for(words, 256), 256, 0, context_.stream>>>(g, weights_, src,
                                                                                 bits, magnitudes);
        }
      }
      if (binary_weights) {
        binary_weights_kernel<<<blocks_for(op_.dst_shape.elements(), 128), 128, 0,
                                context_.stream>>>(g, weights_, src, magnitudes, dst);
        return;
      }
      const int runs = (g.K / g.groups + kOutputs - 1) / kOutputs;
      const std::size_t threads = std::size_t(g.N) * g.P * g.Q * g.groups * runs;
      popcount_kernel<T, I><<<blocks_for(threads, 128), 128, 0, context_.stream>>>(
          g, weights_, bits, magnitudes, dst);
    });
  }

  const BinaryConvolutionOp& op_;
  Context& context_;
  BinaryWeights weights_;
  BinaryGeometry geometry_{};
  std::shared_ptr<DeviceTrainingBuffers> trained_;
  std::vector<std::shared_ptr<std::byte[]>> keep_;  // the weight bits first
  std::shared_ptr<std::byte[]> packed_, magnitudes_;
};

// The tensor-core kernel's 32-bit words a source pixel: BitPacking's, two per 64 channels.
int mma_words(int channels) { return 2 * ((channels + 63) / 64); }

// Binary convolution on the 1-bit tensor cores (binary_convolution_mma.cu), reading the
// source as bits (packed here first unless a producer wrote them) and writing images or, for
// binarizing consumers, bits.
class CudaBinaryConvolutionMma : public Kernel {
 public:
  CudaBinaryConvolutionMma(const BinaryConvolutionOp& op, Context& context)
      : op_(op), context_(context), geometry_(geometry_of(op)) {
    const ImageShape& in = op.src_shapes[0];
    const ImageShape& out = op.dst_shape;
    BinaryMmaProblem& p = problem_;
    p.N = in.batch, p.H = in.height, p.W = in.width, p.C = in.channels;
    p.P = out.height, p.Q = out.width, p.K = out.channels;
    p.R = op.kernel_height, p.S = op.kernel_width;
    p.stride_y = op.y.stride, p.stride_x = op.x.stride;
    p.pad_y = op.y.pad_before, p.pad_x = op.x.pad_before;
    p.dilation_y = op.dilation_y, p.dilation_x = op.dilation_x;
    p.words = mma_words(p.C);
    const int taps = p.R * p.S;
    p.k_words = (taps * p.words + 7) / 8 * 8;
    p.xnor = op.type == BinaryConvolutionType::xnor;
    p.scale_value = op.scale_value;
    geometry_.words = p.words;  // the packing kernels write the tensor-core kernel's rows

    const std::size_t K = static_cast<std::size_t>(p.K);
    std::vector<unsigned> bits(K * p.k_words, 0u);
    std::vector<int> ones(K * taps, 0);
    const std::vector<float>& weights = op.weights->weights;
    for (std::size_t o = 0; o < K; ++o)
      for (int t = 0; t < taps; ++t)
        for (int c = 0; c < p.C; ++c) {
          if (weights[(o * taps + t) * p.C + c] < 0.0f) continue;
          bits[o * p.k_words + static_cast<std::size_t>(t) * p.words + c / 32] |= 1u << (c % 32);
          ++ones[o * taps + t];
        }
    keep_.push_back(context.upload(bits.data(), bits.size() * sizeof(unsigned), op.name));
    p.weights = reinterpret_cast<const unsigned*>(keep_.back().get());
    keep_.push_back(context.upload(ones.data(), ones.size() * sizeof(int), op.name));
    p.tap_ones = reinterpret_cast<const int*>(keep_.back().get());
    std::vector<int> channel_ones(K, 0);
    for (std::size_t o = 0; o < K; ++o)
      for (int t = 0; t < taps; ++t) channel_ones[o] += ones[o * taps + t];
    keep_.push_back(context.upload(channel_ones.data(), K * sizeof(int), op.name));
    p.weight_ones = reinterpret_cast<const int*>(keep_.back().get());
    check(
        cudaDeviceGetAttribute(&p.multiprocessors, cudaDevAttrMultiProcessorCount, context.device),
        "cudaDeviceGetAttribute");
    p.bias = upload_floats(context, op.weights->bias, op.name, keep_);
    upload_terms(context, op, terms_, keep_);
    p.output_scale = terms_.output_scale;
    p.output_bias = terms_.output_bias;
    if (op.packed_result) {
      const BitPacking& next = op.result_packing;
      p.packed_result = true;
      p.next_strict = next.strict;
      p.next_input_bias = upload_floats(context, next.input_bias, op.name, keep_);
      p.next_input_scale = upload_floats(context, next.input_scale, op.name, keep_);
      p.result_words = 2 * next.words_per_group();
    }
    if (!op.packed_source) {
      const std::size_t pixels = in.elements() / in.channels;
      packed_ = context.memory->allocate(pixels * p.words * sizeof(unsigned), op.name + " bits");
    }
  }

  void run(const KernelArgs& args) override {
    BinaryMmaProblem p = problem_;
    if (op_.packed_source) {
      p.src = reinterpret_cast<const unsigned*>(args.srcs[0]);
    } else {
      auto* bits = reinterpret_cast<unsigned*>(packed_.get());
      const ImageShape& in = op_.src_shapes[0];
      const std::size_t words = in.elements() / p.C * p.words;
      dispatch(context_.storage, [&](auto tag) {
        using T = decltype(tag);
        const T* src = reinterpret_cast<const T*>(args.srcs[0]);
        const bool vectors =
            (p.C * sizeof(T)) % 16 == 0 && reinterpret_cast<std::uintptr_t>(src) % 16 == 0;
        if (vectors) {
          pack_words_kernel<T, true>
              <<<blocks_for(words, 256), 256, 0, context_.stream>>>(geometry_, terms_, src, bits);
        } else {
          pack_words_kernel<T, false>
              <<<blocks_for(words, 256), 256, 0, context_.stream>>>(geometry_, terms_, src, bits);
        }
      });
      p.src = bits;
    }
    p.dst = args.dst;
    binary_convolution_mma(context_.storage, p, context_.stream);
    check_launch("binary_convolution_mma");
  }
  std::string implementation() const override { return "cuda:binary_convolution_mma"; }

 private:
  const BinaryConvolutionOp& op_;
  Context& context_;
  BinaryGeometry geometry_{};
  BinaryMmaProblem problem_;
  BinaryWeights terms_;  // the input and output terms only
  std::vector<std::shared_ptr<std::byte[]>> keep_;
  std::shared_ptr<std::byte[]> packed_;
};

// The straight-through-estimator gradient: dS, dx and (trained) dw from the f32 shadow
// weights, and the bias gradient as dy's per-channel sums times the output scale.
class CudaBinaryConvolutionGradient : public Kernel {
 public:
  CudaBinaryConvolutionGradient(const BinaryConvolutionGradientOp& op, Context& context)
      : op_(op), context_(context), geometry_(geometry_of(op.forward)) {
    const BinaryConvolutionOp& f = op.forward;
    upload_terms(context, f, weights_, keep_);
    if (f.weights->trained || op.parameters) {
      trained_ = device_training_buffers(*f.weights, context);
      shadow_ = reinterpret_cast<const float*>(trained_->master_weights.get());
    } else {
      shadow_ = upload_floats(context, f.weights->weights, f.name + " weights", keep_);
    }
    const std::size_t pixels = f.dst_shape.elements() / f.output_channels;
    ds_ = context.memory->allocate(f.dst_shape.elements() * sizeof(float), op.name + " dS");
    if (!op.parameters) return;
    // Chunks of at least 32 pixels, at most 256 of them, and at most 64 MB of partial sums.
    const std::size_t weights = f.weights->weights.size();
    const std::size_t by_memory = std::max<std::size_t>(1, (std::size_t(1) << 24) / weights);
    chunks_ = static_cast<int>(std::min({std::size_t(256), (pixels + 31) / 32, by_memory}));
    per_chunk_ = (pixels + chunks_ - 1) / chunks_;
    partial_ = context.memory->allocate(std::size_t(chunks_) * weights * sizeof(float),
                                        op.name + " weight gradient");
    reduction_scratch_ = context.memory->allocate(
        channel_reduction_scratch_bytes(pixels, f.output_channels), op.name + " bias gradient");
  }

  void run(const KernelArgs& args) override {
    const BinaryConvolutionOp& f = op_.forward;
    const BinaryGeometry& g = geometry_;
    auto* ds = reinterpret_cast<float*>(ds_.get());
    const std::size_t weights = f.weights->weights.size();
    dispatch(context_.storage, [&](auto tag) {
      using T = decltype(tag);
      const T* dy = reinterpret_cast<const T*>(args.srcs[0]);
      const T* x = reinterpret_cast<const T*>(args.srcs[1]);
      binary_ds_kernel<<<blocks_for(f.dst_shape.elements(), 256), 256, 0, context_.stream>>>(
          g, weights_, dy, x, ds);
      binary_dx_kernel<<<blocks_for(op_.dst_shape.elements(), 128), 128, 0, context_.stream>>>(
          g, weights_, shadow_, ds, x, reinterpret_cast<T*>(args.dst));
      if (!op_.parameters) return;
      const dim3 grid(static_cast<unsigned>((weights + 127) / 128), static_cast<unsigned>(chunks_));
      binary_dw_partial_kernel<<<grid, 128, 0, context_.stream>>>(
          g, weights_, ds, x, per_chunk_, reinterpret_cast<float*>(partial_.get()));
      binary_dw_sum_kernel<<<blocks_for(weights, 256), 256, 0, context_.stream>>>(
          reinterpret_cast<const float*>(partial_.get()), chunks_, weights, shadow_,
          trained_->weights_gradient_f32());
    });
    check_launch("binary_convolution_gradient");
    if (!op_.parameters) return;
    const int K = f.output_channels;
    channel_sums(context_.storage, args.srcs[0], f.dst_shape.elements() / K, K, 1.0f,
                 trained_->bias_gradient_f32(), reinterpret_cast<float*>(reduction_scratch_.get()),
                 context_.stream);
    if (weights_.output_scale) {
      scale_channels_kernel<<<(K + 127) / 128, 128, 0, context_.stream>>>(
          trained_->bias_gradient_f32(), weights_.output_scale, K);
      check_launch("binary_convolution_gradient");
    }
  }
  std::string implementation() const override { return "cuda:binary_convolution_gradient"; }

 private:
  const BinaryConvolutionGradientOp& op_;
  Context& context_;
  BinaryWeights weights_;  // the terms only (the gradient reads the f32 shadow weights)
  BinaryGeometry geometry_{};
  std::shared_ptr<DeviceTrainingBuffers> trained_;
  const float* shadow_ = nullptr;
  std::vector<std::shared_ptr<std::byte[]>> keep_;
  std::shared_ptr<std::byte[]> ds_, partial_, reduction_scratch_;
  int chunks_ = 1;
  std::size_t per_chunk_ = 0;
};

}  // namespace

bool binary_mma_takes(const BinaryConvolutionOp& op, int device, std::string* why) {
  const auto refuse = [&](const char* reason) {
    if (why) *why = reason;
    return false;
  };
  if (const char* forced = knobs::read(knobs::cuda_binary); forced && std::string(forced) == "popc")
    return refuse("CNNGRAPH_CUDA_BINARY=popc");
  if (op.type == BinaryConvolutionType::binary_weights) return refuse("binary_weights");
  if (op.beta_scaling) return refuse("beta scaling");
  if (op.groups != 1) return refuse("groups");
  if (op.weights->trained) return refuse("trained weights (packed from the shadow weights)");
  if (op.kernel_height * op.kernel_width > 32) return refuse("more than 32 taps");
  const ImageShape& in = op.src_shapes[0];
  const std::size_t words = in.elements() / in.channels * mma_words(in.channels);
  const std::size_t limit = std::size_t(1) << 31;
  if (in.elements() >= limit || op.dst_shape.elements() >= limit || words >= limit)
    return refuse("2^31 elements or more (32-bit index math)");
  int major = 0;
  check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device),
        "cudaDeviceGetAttribute");
  if (major < 8) return refuse("1-bit tensor cores need compute capability 8.0");
  return true;
}

// The tensor-core kernel where it takes the layer, and always for bit-packed images (only it
// reads and writes them); with autotuning, whichever of it and the popcount kernel times
// faster on an unpacked layer. CNNGRAPH_CUDA_BINARY=popc or =mma forces one.
std::unique_ptr<Kernel> make_binary_convolution(const Op& base, const GraphOptions& options,
                                                Context& context) {
  const auto& op = static_cast<const BinaryConvolutionOp&>(base);
  auto popcount = [&] { return std::make_unique<CudaBinaryConvolution>(op, context); };
  std::string why;
  if (!binary_mma_takes(op, context.device, &why)) {
    if (options.verbose) {
      std::fprintf(stderr, "cnngraph: cuda: %s: binary popc (the tensor cores do not take %s)\n",
                   op.name.c_str(), why.c_str());
    }
    return popcount();
  }
  auto mma = std::make_unique<CudaBinaryConvolutionMma>(op, context);
  const char* forced = knobs::read(knobs::cuda_binary);
  if (op.packed_source || op.packed_result || forced || !options.autotune) return mma;
  auto other = popcount();
  const double mma_ms = time_kernel(*mma, op, context);
  const double popcount_ms = time_kernel(*other, op, context);
  if (options.verbose) {
    std::fprintf(stderr, "cnngraph: cuda: %s: binary mma %.4f ms, popc %.4f ms\n", op.name.c_str(),
                 mma_ms, popcount_ms);
  }
  if (popcount_ms > 0 && (mma_ms <= 0 || popcount_ms < mma_ms)) return other;
  return mma;
}

std::unique_ptr<Kernel> make_binary_convolution_gradient(const Op& op, const GraphOptions&,
                                                         Context& context) {
  return std::make_unique<CudaBinaryConvolutionGradient>(
      static_cast<const BinaryConvolutionGradientOp&>(op), context);
}

}  // namespace cnngraph::detail::cuda
