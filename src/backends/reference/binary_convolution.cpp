// Reference binary convolution: BinaryConvolutionNode's formula in plain loops (double sums),
// the oracle of the bit-packed kernels; and its straight-through-estimator gradient.
#include <cmath>

#include "backends/candidates.hpp"
#include "backends/reference/reference_backend.hpp"

namespace cnngraph::detail {

namespace {

float term(const std::vector<float>& terms, int index, float none) {
  return terms.empty() ? none : terms[index];
}

double sign(double v) { return v >= 0.0 ? 1.0 : -1.0; }

// One term of the binary sum S: input value v (after the input terms), weight w.
double binary_product(BinaryConvolutionType type, double v, float w) {
  switch (type) {
    case BinaryConvolutionType::binary_weights:
      return sign(w) * v;
    case BinaryConvolutionType::xnor:
      return sign(w) * sign(v);
    case BinaryConvolutionType::and_:
      return (w >= 0.0f && v > 0.0) ? 1.0 : 0.0;
  }
  return 0.0;
}

// Calls visit(x_index, w_index, channel) for every in-image tap and group channel of output
// (n, p, q, o): padding taps are left out, as the formula says.
template <typename Visit>
void for_each_window_element(const BinaryConvolutionOp& op, int n, int p, int q, int o,
                             Visit visit) {
  const ImageShape& in = op.src_shapes[0];
  const int Cg = op.input_channels / op.groups;
  const int group = o / (op.output_channels / op.groups);
  for (int r = 0; r < op.kernel_height; ++r) {
    const int iy = p * op.y.stride - op.y.pad_before + r * op.dilation_y;
    if (iy < 0 || iy >= in.height) continue;
    for (int s = 0; s < op.kernel_width; ++s) {
      const int ix = q * op.x.stride - op.x.pad_before + s * op.dilation_x;
      if (ix < 0 || ix >= in.width) continue;
      const std::size_t x_at =
          ((static_cast<std::size_t>(n) * in.height + iy) * in.width + ix) * in.channels;
      const std::size_t w_at =
          ((static_cast<std::size_t>(o) * op.kernel_height + r) * op.kernel_width + s) * Cg;
      for (int c = 0; c < Cg; ++c) visit(x_at + group * Cg + c, w_at + c, group * Cg + c);
    }
  }
}

// Its straight-through derivatives: d/dv and d/dw, with each binarization's derivative taken
// as 1 where |value| <= 1 and 0 elsewhere (the hard-tanh estimator of BinaryConnect /
// XNOR-Net; for `and`, the 0/1 steps alike).
struct ProductDerivatives {
  double by_input, by_weight;
};
ProductDerivatives binary_product_derivatives(BinaryConvolutionType type, double v, float w) {
  const double pass_v = std::fabs(v) <= 1.0 ? 1.0 : 0.0, pass_w = std::fabs(w) <= 1.0f ? 1.0 : 0.0;
  switch (type) {
    case BinaryConvolutionType::binary_weights:
      return {sign(w), v * pass_w};
    case BinaryConvolutionType::xnor:
      return {sign(w) * pass_v, sign(v) * pass_w};
    case BinaryConvolutionType::and_:
      return {(w >= 0.0f ? 1.0 : 0.0) * pass_v, (v > 0.0 ? 1.0 : 0.0) * pass_w};
  }
  return {0.0, 0.0};
}

void binary_convolution(const BinaryConvolutionOp& op, const KernelArgs& args) {
  const ImageShape& out = op.dst_shape;
  // +1/-1 for inference; the float shadow weights in a training graph (binarized here).
  const float* w = op.weights->weights.data();
  const BinaryConvolutionTerms& t = op.terms;
  for (int n = 0; n < out.batch; ++n)
    for (int p = 0; p < out.height; ++p)
      for (int q = 0; q < out.width; ++q)
        for (int o = 0; o < out.channels; ++o) {
          double sum = 0.0, magnitude = 0.0;
          int count = 0;
          for_each_window_element(op, n, p, q, o, [&](std::size_t xi, std::size_t wi, int channel) {
            const double v = (double(args.srcs[0][xi]) + term(t.input_bias, channel, 0.0f)) *
                             term(t.input_scale, channel, 1.0f);
            magnitude += std::fabs(v);
            ++count;
            sum += binary_product(op.type, v, w[wi]);
          });
          const double beta = !op.beta_scaling ? 1.0 : count ? magnitude / count : 0.0;
          const double y =
              (op.scale_value * beta * sum + op.weights->bias[o]) * term(t.output_scale, o, 1.0f) +
              term(t.output_bias, o, 0.0f);
          args.dst[((static_cast<std::size_t>(n) * out.height + p) * out.width + q) * out.channels +
                   o] = static_cast<float>(y);
        }
}

// dL/dS = dy * scale_value * output_scale * beta (beta held constant); dx = dL/dx' * input_scale.
void binary_convolution_gradient(const BinaryConvolutionGradientOp& g, const KernelArgs& args) {
  const BinaryConvolutionOp& op = g.forward;
  const ImageShape& in = op.src_shapes[0];
  const ImageShape& out = op.dst_shape;
  const float* w = op.weights->weights.data();
  const BinaryConvolutionTerms& t = op.terms;
  const float* dy = args.srcs[0];
  const float* x = args.srcs[1];
  std::vector<double> dx(in.elements(), 0.0);
  std::vector<double> dw(g.parameters ? op.weights->weights.size() : 0, 0.0);
  std::vector<double> db(g.parameters ? op.output_channels : 0, 0.0);
  for (int n = 0; n < out.batch; ++n)
    for (int p = 0; p < out.height; ++p)
      for (int q = 0; q < out.width; ++q)
        for (int o = 0; o < out.channels; ++o) {
          const double grad =
              dy[((static_cast<std::size_t>(n) * out.height + p) * out.width + q) * out.channels +
                 o];
          if (g.parameters) db[o] += grad * term(t.output_scale, o, 1.0f);
          // beta: the window's mean |x'|, as in the forward.
          double magnitude = 0.0;
          int count = 0;
          // Pass 0 gathers beta's window statistics (beta scaling only); pass 1 differentiates.
          for (int pass = op.beta_scaling ? 0 : 1; pass < 2; ++pass) {
            const double beta = !op.beta_scaling ? 1.0 : count ? magnitude / count : 0.0;
            const double dS = grad * op.scale_value * term(t.output_scale, o, 1.0f) * beta;
            for_each_window_element(
                op, n, p, q, o, [&](std::size_t xi, std::size_t wi, int channel) {
                  const double scale = term(t.input_scale, channel, 1.0f);
                  const double v = (double(x[xi]) + term(t.input_bias, channel, 0.0f)) * scale;
                  if (pass == 0) {
                    magnitude += std::fabs(v);
                    ++count;
                    return;
                  }
                  const ProductDerivatives d = binary_product_derivatives(op.type, v, w[wi]);
                  dx[xi] += dS * d.by_input * scale;
                  if (g.parameters) dw[wi] += dS * d.by_weight;
                });
          }
        }
  for (std::size_t i = 0; i < dx.size(); ++i) args.dst[i] = static_cast<float>(dx[i]);
  if (g.parameters) store_weight_gradients(*g.parameters, dw, db);
}

}  // namespace

std::unique_ptr<Kernel> make_reference_binary_convolution_gradient(const Op& op,
                                                                   const GraphOptions&) {
  return function_kernel<BinaryConvolutionGradientOp>(op, "reference:binary_convolution_gradient",
                                                      binary_convolution_gradient);
}

std::unique_ptr<Kernel> make_reference_binary_convolution(const Op& op, const GraphOptions&) {
  const auto& binary = static_cast<const BinaryConvolutionOp&>(op);
  if (binary.packed_source || binary.packed_result) return decline("bit-packed images");
  return function_kernel<BinaryConvolutionOp>(op, "reference:binary_convolution",
                                              binary_convolution);
}

}  // namespace cnngraph::detail
