// A transposed convolution on a backend without a kernel of its own for it, as a composite
// of that backend's convolution kernels (the adjoint convolution, then the bias).
#include <memory>
#include <vector>

#include "backends/reference/reference_backend.hpp"

namespace cnngraph::detail {

namespace {

// A transposed convolution on any backend: the backend's own convolution-gradient kernel for
// the adjoint convolution (input gradient only), then the transpose's bias.
class ConvolutionTransposeKernel : public Kernel {
 public:
  ConvolutionTransposeKernel(const ConvolutionTransposeOp& op, std::unique_ptr<Kernel> inner)
      : op_(op), inner_(std::move(inner)) {}
  void run(const KernelArgs& args) override {
    op_.weights->refresh();
    inner_->run(args);
    const PreparedWeights& w = *op_.weights->source;
    if (!w.has_bias) return;
    const std::size_t C = w.bias.size();
    const std::size_t pixels = op_.dst_shape.elements() / C;
    for (std::size_t p = 0; p < pixels; ++p)
      for (std::size_t c = 0; c < C; ++c) args.dst[p * C + c] += w.bias[c];
  }
  std::string implementation() const override { return inner_->implementation() + "+bias"; }

 private:
  const ConvolutionTransposeOp& op_;
  std::unique_ptr<Kernel> inner_;
};

// Its gradient: the backend's convolution kernel for the input gradient and, when trained,
// its convolution-gradient kernel for the adjoint's weight gradient, transposed back.
class ConvolutionTransposeGradientKernel : public Kernel {
 public:
  ConvolutionTransposeGradientKernel(const ConvolutionTransposeGradientOp& op,
                                     std::unique_ptr<Kernel> input, std::unique_ptr<Kernel> weights)
      : op_(op), input_(std::move(input)), weights_(std::move(weights)) {}
  void run(const KernelArgs& args) override {
    op_.weights->refresh();
    input_->run({{args.srcs[0]}, args.dst, args.batch});
    if (!weights_) return;
    // The adjoint convolution reads dz (its src) and produced y (its diff_dst).
    weights_->run({{args.srcs[1], args.srcs[0]}, nullptr, args.batch});
    const PreparedWeights& w = *op_.weights->source;
    const ConvolutionDescriptor& d = w.descriptor;
    const int G = d.groups, O = d.output_feature_channels, I = d.input_feature_channels;
    const int Og = O / G, Ig = I / G, taps = d.kernel_height * d.kernel_width;
    const std::vector<float>& adjoint = op_.adjoint_parameters->gradient.weights_gradient;
    ConvolutionGradientState& g = op_.parameters->gradient;
    for (int group = 0; group < G; ++group)
      for (int o = 0; o < Og; ++o)
        for (int t = 0; t < taps; ++t)
          for (int i = 0; i < Ig; ++i) {
            g.weights_gradient[((static_cast<std::size_t>(group * Og + o)) * taps + t) * Ig + i] =
                adjoint[((static_cast<std::size_t>(group * Ig + i)) * taps + t) * Og + o];
          }
    // The bias adds to every result pixel: its gradient sums dz over them. Without a bias
    // there is nothing to sum (the gradient stays zero, as on the other backends).
    if (!op_.weights->source->has_bias) return;
    std::vector<double> bias(O, 0.0);
    const std::size_t pixels = op_.input_gradient.src_shapes[0].elements() / O;
    for (std::size_t p = 0; p < pixels; ++p)
      for (int c = 0; c < O; ++c) bias[c] += args.srcs[0][p * O + c];
    for (std::size_t c = 0; c < g.bias_gradient.size(); ++c)
      g.bias_gradient[c] = static_cast<float>(bias[c]);
  }
  std::string implementation() const override {
    return input_->implementation() + (weights_ ? " + " + weights_->implementation() : "");
  }

 private:
  const ConvolutionTransposeGradientOp& op_;
  std::unique_ptr<Kernel> input_, weights_;
};

}  // namespace

std::unique_ptr<Kernel> make_composite_convolution_transpose(const Op& op,
                                                             const GraphOptions& options,
                                                             CompileFunction compile) {
  const auto& transpose = static_cast<const ConvolutionTransposeOp&>(op);
  return std::make_unique<ConvolutionTransposeKernel>(transpose, compile(transpose.inner, options));
}

std::unique_ptr<Kernel> make_composite_convolution_transpose_gradient(const Op& op,
                                                                      const GraphOptions& options,
                                                                      CompileFunction compile) {
  const auto& gradient = static_cast<const ConvolutionTransposeGradientOp&>(op);
  return std::make_unique<ConvolutionTransposeGradientKernel>(
      gradient, compile(gradient.input_gradient, options),
      gradient.parameters ? compile(gradient.weights_gradient, options) : nullptr);
}

}  // namespace cnngraph::detail
