// Reference binary convolution: BinaryConvolutionNode's formula in plain loops (double sums),
// the oracle of the bit-packed kernels.
#include <cmath>

#include "backends/reference/reference_backend.hpp"

namespace cnngraph::detail {

namespace {

float term(const std::vector<float>& terms, int index, float none) {
  return terms.empty() ? none : terms[index];
}

void binary_convolution(const BinaryConvolutionOp& op, const KernelArgs& args) {
  const ImageShape& in = op.src_shapes[0];
  const ImageShape& out = op.dst_shape;
  const int G = op.groups, Cg = op.input_channels / G, Og = op.output_channels / G;
  const float* w = op.weights->weights.data();  // +1/-1, OHWI
  const BinaryConvolutionTerms& t = op.terms;
  for (int n = 0; n < out.batch; ++n)
    for (int p = 0; p < out.height; ++p)
      for (int q = 0; q < out.width; ++q)
        for (int o = 0; o < out.channels; ++o) {
          const int g = o / Og;
          double sum = 0.0, magnitude = 0.0;
          int count = 0;
          for (int r = 0; r < op.kernel_height; ++r) {
            const int iy = p * op.y.stride - op.y.pad_before + r * op.dilation_y;
            if (iy < 0 || iy >= in.height) continue;
            for (int s = 0; s < op.kernel_width; ++s) {
              const int ix = q * op.x.stride - op.x.pad_before + s * op.dilation_x;
              if (ix < 0 || ix >= in.width) continue;
              const float* x =
                  args.srcs[0] +
                  ((static_cast<std::size_t>(n) * in.height + iy) * in.width + ix) * in.channels;
              const float* wt =
                  w +
                  ((static_cast<std::size_t>(o) * op.kernel_height + r) * op.kernel_width + s) * Cg;
              for (int c = 0; c < Cg; ++c) {
                const int channel = g * Cg + c;
                const double v = (double(x[channel]) + term(t.input_bias, channel, 0.0f)) *
                                 term(t.input_scale, channel, 1.0f);
                magnitude += std::fabs(v);
                ++count;
                switch (op.type) {
                  case BinaryConvolutionType::binary_weights:
                    sum += wt[c] * v;
                    break;
                  case BinaryConvolutionType::xnor:
                    sum += wt[c] * (v >= 0.0 ? 1.0 : -1.0);
                    break;
                  case BinaryConvolutionType::and_:
                    sum += (wt[c] > 0.0f && v > 0.0) ? 1.0 : 0.0;
                    break;
                }
              }
            }
          }
          const double beta = !op.beta_scaling ? 1.0 : count ? magnitude / count : 0.0;
          const double y =
              (op.scale_value * beta * sum + op.weights->bias[o]) * term(t.output_scale, o, 1.0f) +
              term(t.output_bias, o, 0.0f);
          args.dst[((static_cast<std::size_t>(n) * out.height + p) * out.width + q) * out.channels +
                   o] = static_cast<float>(y);
        }
}

}  // namespace

std::unique_ptr<Kernel> make_reference_binary_convolution(const Op& op, const GraphOptions&) {
  return function_kernel<BinaryConvolutionOp>(op, "reference:binary_convolution",
                                              binary_convolution);
}

}  // namespace cnngraph::detail
