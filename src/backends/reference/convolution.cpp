// Reference convolution: direct loops, double accumulation (or a faithful fp16 running sum
// when the node permits half accumulation), then bias, post-ops and the sub-pixel shuffle.
// Its gradient: the same loops transposed, in double, for every descriptor variant.
#include <algorithm>
#include <cstring>

#include "backends/reference/reference_backend.hpp"
#include "ops/neuron_math.hpp"
#include "ops/sub_pixel.hpp"

namespace cnngraph::detail {

namespace {

// Rounds to the nearest fp16 value (kept in a float).
float round_to_half(float v) { return half_to_float(float_to_half(v)); }

class ReferenceConvolution : public Kernel {
 public:
  explicit ReferenceConvolution(const ConvolutionOp& op) : op_(op) {}
  std::string implementation() const override { return "reference:direct"; }

  void run(const KernelArgs& args) override {
    const ImageShape conv = op_.convolution_shape();
    std::vector<float> shuffled;
    float* out = args.dst;
    if (op_.sub_pixel > 1) {
      shuffled.resize(conv.elements());
      out = shuffled.data();
    }
    // N batch, P x Q result, K output channels, C input channels per group, R x S kernel.
    const ImageShape& in = op_.src_shapes[0];
    const int K = op_.output_channels, C = op_.input_channels / op_.groups;
    const int K_per_group = K / op_.groups;
    const int R = op_.kernel_height, S = op_.kernel_width;
    const float* w = op_.weights->weights.data();
    const float* b = op_.weights->bias.data();
    const bool half = op_.accumulator == AccumulatorPrecision::half;
    for (int n = 0; n < conv.batch; ++n)
      for (int p = 0; p < conv.height; ++p)
        for (int q = 0; q < conv.width; ++q)
          for (int k = 0; k < K; ++k) {
            const int group = k / K_per_group;
            double sum = 0.0;
            float half_sum = 0.0f;
            for (int r = 0; r < R; ++r) {
              const int iy = p * op_.y.stride - op_.y.pad_before + r * op_.dilation_y;
              if (iy < 0 || iy >= in.height) continue;
              for (int s = 0; s < S; ++s) {
                const int ix = q * op_.x.stride - op_.x.pad_before + s * op_.dilation_x;
                if (ix < 0 || ix >= in.width) continue;
                const float* x =
                    args.srcs[0] +
                    ((static_cast<std::size_t>(n) * in.height + iy) * in.width + ix) * in.channels +
                    group * C;
                const float* wk = w + ((static_cast<std::size_t>(k) * R + r) * S + s) * C;
                for (int c = 0; c < C; ++c) {
                  if (half) {
                    half_sum = round_to_half(half_sum + wk[c] * x[c]);
                  } else {
                    sum += static_cast<double>(wk[c]) * x[c];
                  }
                }
              }
            }
            double value = half ? static_cast<double>(round_to_half(half_sum + b[k])) : sum + b[k];
            const std::size_t index =
                ((static_cast<std::size_t>(n) * conv.height + p) * conv.width + q) * K + k;
            for (const PostOp& post : op_.post_ops) {
              value = post.kind == PostOp::Kind::sum ? value + args.srcs[1][index]
                                                     : apply_neuron(post.neuron, value, k);
            }
            out[index] = static_cast<float>(value);
          }
    if (op_.sub_pixel > 1)
      sub_pixel_shuffle(out, conv, op_.sub_pixel, op_.sub_pixel_order, args.dst);
  }

 private:
  const ConvolutionOp& op_;
};

// diff_src, diff_weights and diff_bias of a convolution. A fused neuron's derivative needs the
// pre-activation, which is recomputed with the forward loops (training graphs rarely carry
// descriptor neurons: MPS asks for separate neuron nodes there).
class ReferenceConvolutionGradient : public Kernel {
 public:
  explicit ReferenceConvolutionGradient(const ConvolutionGradientOp& op) : op_(op) {
    pre_activation_op_ = op.forward;
    pre_activation_op_.post_ops.clear();
    pre_activation_op_.sub_pixel = 1;
    pre_activation_op_.dst_shape = op.forward.convolution_shape();
  }
  std::string implementation() const override { return "reference:direct_gradient"; }

  void run(const KernelArgs& args) override {
    const ConvolutionOp& f = op_.forward;
    const ImageShape conv = f.convolution_shape();
    // Only read for weight gradients and fused neurons (a transposed convolution has neither).
    const float* src = args.srcs.size() > 1 ? args.srcs[1] : nullptr;
    // The gradient at the convolution's own output: unshuffled, through the neuron.
    std::vector<float> diff(conv.elements());
    if (f.sub_pixel > 1) {
      sub_pixel_unshuffle(args.srcs[0], conv, f.sub_pixel, f.sub_pixel_order, diff.data());
    } else {
      std::copy(args.srcs[0], args.srcs[0] + diff.size(), diff.begin());
    }
    if (!f.post_ops.empty()) {
      std::vector<float> pre(conv.elements());
      ReferenceConvolution(pre_activation_op_).run({{src}, pre.data(), args.batch});
      const int K = conv.channels;
      for (std::size_t i = 0; i < diff.size(); ++i) {
        double d = 1.0, v = pre[i];
        for (const PostOp& post : f.post_ops) {
          d *= neuron_derivative<double>(post.neuron, v, static_cast<int>(i % K));
          v = apply_neuron<double>(post.neuron, v, static_cast<int>(i % K));
        }
        diff[i] = static_cast<float>(diff[i] * d);
      }
    }
    // N batch, P x Q result, K output channels, C input channels per group, R x S kernel.
    const ImageShape& in = f.src_shapes[0];
    const int K = f.output_channels, C = f.input_channels / f.groups;
    const int K_per_group = K / f.groups;
    const int R = f.kernel_height, S = f.kernel_width;
    const float* w = f.weights->weights.data();
    std::vector<double> diff_src(op_.input_gradient ? in.elements() : 0);
    std::vector<double> diff_w(op_.parameters ? f.weights->weights.size() : 0);
    std::vector<double> diff_b(op_.parameters ? K : 0);
    for (int n = 0; n < conv.batch; ++n)
      for (int p = 0; p < conv.height; ++p)
        for (int q = 0; q < conv.width; ++q)
          for (int k = 0; k < K; ++k) {
            const double g =
                diff[((static_cast<std::size_t>(n) * conv.height + p) * conv.width + q) * K + k];
            if (op_.parameters) diff_b[k] += g;
            const int group = k / K_per_group;
            for (int r = 0; r < R; ++r) {
              const int iy = p * f.y.stride - f.y.pad_before + r * f.dilation_y;
              if (iy < 0 || iy >= in.height) continue;
              for (int s = 0; s < S; ++s) {
                const int ix = q * f.x.stride - f.x.pad_before + s * f.dilation_x;
                if (ix < 0 || ix >= in.width) continue;
                const std::size_t x_at =
                    ((static_cast<std::size_t>(n) * in.height + iy) * in.width + ix) * in.channels +
                    group * C;
                const std::size_t w_at = ((static_cast<std::size_t>(k) * R + r) * S + s) * C;
                for (int c = 0; c < C; ++c) {
                  if (op_.input_gradient) diff_src[x_at + c] += g * w[w_at + c];
                  if (op_.parameters) diff_w[w_at + c] += g * src[x_at + c];
                }
              }
            }
          }
    if (op_.input_gradient) std::copy(diff_src.begin(), diff_src.end(), args.dst);
    if (op_.parameters) store_weight_gradients(*op_.parameters, diff_w, diff_b);
  }

 private:
  const ConvolutionGradientOp& op_;
  ConvolutionOp pre_activation_op_;
};

}  // namespace

void store_weight_gradients(TrainedWeights& parameters,
                            const std::vector<double>& diff_weights,
                            const std::vector<double>& diff_bias) {
  ConvolutionGradientState& g = parameters.gradient;
  const std::size_t per_output = diff_weights.size() / diff_bias.size();
  for (std::size_t i = 0; i < diff_weights.size(); ++i) {
    const double scale =
        parameters.fold_scale.empty() ? 1.0 : parameters.fold_scale[i / per_output];
    g.weights_gradient[i] = static_cast<float>(diff_weights[i] * scale);
  }
  for (std::size_t k = 0; k < diff_bias.size(); ++k) {
    const double scale = parameters.fold_scale.empty() ? 1.0 : parameters.fold_scale[k];
    g.bias_gradient[k] = static_cast<float>(diff_bias[k] * scale);
  }
}

void sub_pixel_unshuffle(const float* dst, const ImageShape& conv_shape, int s, SubPixelOrder order,
                         float* conv) {
  const int C = conv_shape.channels / (s * s);
  const int H = conv_shape.height, W = conv_shape.width;
  for (int n = 0; n < conv_shape.batch; ++n)
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x)
        for (int c = 0; c < C; ++c)
          for (int i = 0; i < s; ++i)
            for (int j = 0; j < s; ++j) {
              const std::size_t to =
                  ((static_cast<std::size_t>(n) * H + y) * W + x) * conv_shape.channels +
                  sub_pixel_source_channel(order, c, i, j, s, C);
              const std::size_t from =
                  ((static_cast<std::size_t>(n) * H * s + y * s + i) * W * s + x * s + j) * C + c;
              conv[to] = dst[from];
            }
}

void sub_pixel_shuffle(const float* conv, const ImageShape& conv_shape, int s, SubPixelOrder order,
                       float* dst) {
  const int C = conv_shape.channels / (s * s);
  const int H = conv_shape.height, W = conv_shape.width;
  for (int n = 0; n < conv_shape.batch; ++n)
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x)
        for (int c = 0; c < C; ++c)
          for (int i = 0; i < s; ++i)
            for (int j = 0; j < s; ++j) {
              const std::size_t from =
                  ((static_cast<std::size_t>(n) * H + y) * W + x) * conv_shape.channels +
                  sub_pixel_source_channel(order, c, i, j, s, C);
              const std::size_t to =
                  ((static_cast<std::size_t>(n) * H * s + y * s + i) * W * s + x * s + j) * C + c;
              dst[to] = conv[from];
            }
}

std::unique_ptr<Kernel> make_reference_convolution(const Op& op, const GraphOptions&) {
  return std::make_unique<ReferenceConvolution>(static_cast<const ConvolutionOp&>(op));
}

std::unique_ptr<Kernel> make_reference_convolution_gradient(const Op& op, const GraphOptions&) {
  return std::make_unique<ReferenceConvolutionGradient>(
      static_cast<const ConvolutionGradientOp&>(op));
}

}  // namespace cnngraph::detail
