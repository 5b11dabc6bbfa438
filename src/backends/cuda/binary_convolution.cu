// Binary convolution on CUDA, our own kernel: the source is packed once per run into sign
// bits, 32 group channels a word, with each pixel's sum of |x'| per group (for beta); each
// result then counts matching bits with popc over its window (xnor: 2 * matches - valid;
// and: ones in x & w). binary_weights (float inputs, +/-1 weights) sums floats directly.
#include "backends/cuda/cuda_kernels.hpp"
#include "backends/cuda/device_math.cuh"
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

// One thread per (pixel, group, word): the bits and, for word 0, the group's |x'| sum.
template <typename T>
__global__ void pack_kernel(BinaryGeometry g, BinaryWeights w, const T* src, unsigned* bits,
                            float* magnitudes) {
  const int Cg = g.C / g.groups;
  const std::size_t count = std::size_t(g.N) * g.H * g.W * g.groups * g.words;
  for (std::size_t e = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; e < count;
       e += std::size_t(gridDim.x) * blockDim.x) {
    const int word = int(e % g.words);
    const std::size_t pixel_group = e / g.words;
    const int group = int(pixel_group % g.groups);
    const std::size_t pixel = pixel_group / g.groups;
    unsigned value = 0;
    for (int b = 0; b < 32; ++b) {
      const int c = word * 32 + b;
      if (c >= Cg) break;
      const int channel = group * Cg + c;
      const float v = (to_float(src[pixel * g.C + channel]) + term(w.input_bias, channel, 0.0f)) *
                      term(w.input_scale, channel, 1.0f);
      const bool set = g.type == int(BinaryConvolutionType::and_) ? v > 0.0f : v >= 0.0f;
      value |= unsigned(set) << b;
    }
    bits[e] = value;
    if (word == 0 && g.beta_scaling) {
      float sum = 0.0f;
      for (int c = 0; c < Cg; ++c) {
        const int channel = group * Cg + c;
        sum += fabsf((to_float(src[pixel * g.C + channel]) + term(w.input_bias, channel, 0.0f)) *
                     term(w.input_scale, channel, 1.0f));
      }
      magnitudes[pixel_group] = sum;
    }
  }
}

template <typename T>
__global__ void binary_kernel(BinaryGeometry g, BinaryWeights w, const T* src, const unsigned* bits,
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
        const unsigned* wb = w.bits + (std::size_t(o) * g.R * g.S + r * g.S + s) * g.words;
        if (g.type == int(BinaryConvolutionType::binary_weights)) {
          for (int c = 0; c < Cg; ++c) {
            const int channel = group * Cg + c;
            const float v =
                (to_float(src[pixel * g.C + channel]) + term(w.input_bias, channel, 0.0f)) *
                term(w.input_scale, channel, 1.0f);
            const bool positive = (wb[c / 32] >> (c % 32)) & 1u;
            sum += positive ? v : -v;
          }
        } else {
          const unsigned* xb = bits + (pixel * g.groups + group) * g.words;
          int matches = 0;
          for (int word = 0; word < g.words; ++word) {
            const int valid_bits = min(32, Cg - word * 32);
            const unsigned valid = valid_bits == 32 ? 0xffffffffu : (1u << valid_bits) - 1u;
            matches += g.type == int(BinaryConvolutionType::xnor)
                           ? __popc(~(xb[word] ^ wb[word]) & valid)
                           : __popc(xb[word] & wb[word] & valid);
          }
          sum +=
              g.type == int(BinaryConvolutionType::xnor) ? float(2 * matches - Cg) : float(matches);
        }
        if (g.beta_scaling) magnitude += magnitudes[pixel * g.groups + group];
      }
    }
    const float beta = !g.beta_scaling ? 1.0f : taps ? magnitude / float(taps * Cg) : 0.0f;
    const float y = (g.scale_value * beta * sum + w.bias[o]) * term(w.output_scale, o, 1.0f) +
                    term(w.output_bias, o, 0.0f);
    dst[i] = from_float<T>(y);
  }
}

class CudaBinaryConvolution : public Kernel {
 public:
  CudaBinaryConvolution(const BinaryConvolutionOp& op, Context& context)
      : op_(op), context_(context) {
    const int Cg = op.input_channels / op.groups;
    const int words = (Cg + 31) / 32;
    const int taps = op.kernel_height * op.kernel_width;
    std::vector<unsigned> bits(static_cast<std::size_t>(op.output_channels) * taps * words, 0u);
    const std::vector<float>& weights = op.weights->weights;
    for (int o = 0; o < op.output_channels; ++o)
      for (int t = 0; t < taps; ++t)
        for (int c = 0; c < Cg; ++c) {
          if (weights[(static_cast<std::size_t>(o) * taps + t) * Cg + c] >= 0.0f)
            bits[(static_cast<std::size_t>(o) * taps + t) * words + c / 32] |= 1u << (c % 32);
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
    magnitudes_ = context.memory->allocate(pixel_groups * sizeof(float), op.name + " magnitudes");
    const ImageShape& out = op.dst_shape;
    geometry_ = {in.batch,      in.height,     in.width,         in.channels,     out.height,
                 out.width,     out.channels,  op.kernel_height, op.kernel_width, op.groups,
                 words,         op.y.stride,   op.x.stride,      op.y.pad_before, op.x.pad_before,
                 op.dilation_y, op.dilation_x, int(op.type),     op.beta_scaling, op.scale_value};
  }

  void run(const KernelArgs& args) override {
    const ImageShape& in = op_.src_shapes[0];
    const std::size_t pack_count =
        in.elements() / in.channels * op_.groups * static_cast<std::size_t>(geometry_.words);
    auto* bits = reinterpret_cast<unsigned*>(packed_.get());
    auto* magnitudes = reinterpret_cast<float*>(magnitudes_.get());
    dispatch(context_.storage, [&](auto tag) {
      using T = decltype(tag);
      const T* src = reinterpret_cast<const T*>(args.srcs[0]);
      if (op_.type != BinaryConvolutionType::binary_weights || op_.beta_scaling) {
        pack_kernel<<<blocks_for(pack_count, 256), 256, 0, context_.stream>>>(
            geometry_, weights_, src, bits, magnitudes);
      }
      binary_kernel<<<blocks_for(op_.dst_shape.elements(), 128), 128, 0, context_.stream>>>(
          geometry_, weights_, src, bits, magnitudes, reinterpret_cast<T*>(args.dst));
    });
    check_launch("binary_convolution");
  }
  std::string implementation() const override { return "cuda:binary_convolution_popc"; }

 private:
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
