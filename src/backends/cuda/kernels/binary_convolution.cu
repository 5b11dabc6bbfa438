// Binary convolution on CUDA, our own kernels: the source is packed once per run into sign
// bits, 32 group channels a word, with each word's sum of |x'| (for beta); a thread then
// counts matching bits with popc over its window for eight output channels of one pixel
// (xnor: 2 * matches - valid; and: ones in x & w). binary_weights (float inputs, +/-1
// weights) sums floats directly. Index math is 32-bit where the sizes allow (a 64-bit
// division is many instructions).
#include "backends/cuda/cuda_kernels.hpp"
#include "backends/cuda/kernels/binary_convolution.hpp"
#include "backends/cuda/kernels/device_math.cuh"
#include "cnngraph/errors.hpp"

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

class CudaBinaryConvolution : public Kernel {
 public:
  CudaBinaryConvolution(const BinaryConvolutionOp& op, Context& context)
      : op_(op), context_(context) {
    const int Cg = op.input_channels / op.groups;
    const int words = (Cg + 31) / 32;
    const int taps = op.kernel_height * op.kernel_width;
    const std::size_t K = static_cast<std::size_t>(op.output_channels);
    std::vector<unsigned> bits(K * taps * words, 0u);  // [tap][word][output], see weight_word
    const std::vector<float>& weights = op.weights->weights;
    for (std::size_t o = 0; o < K; ++o)
      for (int t = 0; t < taps; ++t)
        for (int c = 0; c < Cg; ++c) {
          if (weights[(o * taps + t) * Cg + c] >= 0.0f)
            bits[(static_cast<std::size_t>(t) * words + c / 32) * K + o] |= 1u << (c % 32);
        }
    weights_.words = words;
    keep_.push_back(context.upload(bits.data(), bits.size() * sizeof(unsigned), op.name));
    weights_.bits = reinterpret_cast<const unsigned*>(keep_.back().get());
    weights_.bias = upload_floats(op.weights->bias);
    weights_.input_bias = upload_floats(op.terms.input_bias);
    weights_.input_scale = upload_floats(op.terms.input_scale);
    weights_.output_bias = upload_floats(op.terms.output_bias);
    weights_.output_scale = upload_floats(op.terms.output_scale);
    const ImageShape& in = op.src_shapes[0];
    const std::size_t pixel_groups = in.elements() / in.channels * op.groups;
    packed_ = context.memory->allocate(pixel_groups * words * sizeof(unsigned), op.name + " bits");
    magnitudes_ =
        context.memory->allocate(pixel_groups * words * sizeof(float), op.name + " magnitudes");
    const ImageShape& out = op.dst_shape;
    geometry_ = {in.batch,      in.height,     in.width,         in.channels,     out.height,
                 out.width,     out.channels,  op.kernel_height, op.kernel_width, op.groups,
                 words,         op.y.stride,   op.x.stride,      op.y.pad_before, op.x.pad_before,
                 op.dilation_y, op.dilation_x, int(op.type),     op.beta_scaling, op.scale_value};
  }

  void run(const KernelArgs& args) override {
    const ImageShape& in = op_.src_shapes[0];
    const ImageShape& out = op_.dst_shape;
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

  const float* upload_floats(const std::vector<float>& values) {
    if (values.empty()) return nullptr;
    keep_.push_back(context_.upload(values.data(), values.size() * sizeof(float), op_.name));
    return reinterpret_cast<const float*>(keep_.back().get());
  }

  const BinaryConvolutionOp& op_;
  Context& context_;
  BinaryWeights weights_;
  BinaryGeometry geometry_{};
  std::vector<std::shared_ptr<std::byte[]>> keep_;
  std::shared_ptr<std::byte[]> packed_, magnitudes_;
};

}  // namespace

std::unique_ptr<Kernel> make_binary_convolution(const Op& op, const GraphOptions&,
                                                Context& context) {
  return std::make_unique<CudaBinaryConvolution>(static_cast<const BinaryConvolutionOp&>(op),
                                                 context);
}

}  // namespace cnngraph::detail::cuda
