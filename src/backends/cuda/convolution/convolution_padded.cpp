// A network's stem on CUDA: a convolution over 3 colours runs faster with its source padded
// to 4 channels (zeros in the 4th), where cuDNN has a dedicated first-layer kernel, than
// over 3 (fp16 ResNet-50 stem at batch 64 on the H100: 0.26 ms padding pass included,
// against 0.38 ms).
#include <cstdio>
#include <cstdlib>
#include <string>

#include "backends/cuda/cuda_kernels.hpp"
#include "backends/cuda/kernels/elementwise.hpp"
#include "cnngraph/errors.hpp"
#include "env_knobs.hpp"

namespace cnngraph::detail::cuda {

namespace {

// Owns the padded op (a copy of the convolution with more input channels), its weights
// with zeros for the added channels, and the padded copy of the source.
class ChannelPaddedConvolution : public Kernel {
 public:
  ChannelPaddedConvolution(const ConvolutionOp& op, std::unique_ptr<ConvolutionOp> padded,
                           Context& context)
      : op_(op), padded_(std::move(padded)), context_(context) {
    scratch_ = context.memory->allocate(
        padded_->src_shapes[0].elements() * size_of(context.storage), op.name + " padded source");
  }
  // Plans the padded op; false when cuDNN takes none.
  bool plan(const GraphOptions& options) {
    inner_ = nhwc_convolution(*padded_, options, context_);
    return inner_ != nullptr;
  }
  void run(const KernelArgs& args) override {
    const ImageShape& in = op_.src_shapes[0];
    pad_channels(context_.storage, args.srcs[0], in.channels, scratch_.get(),
                 padded_->input_channels, in.elements() / in.channels, context_.stream);
    KernelArgs padded = args;
    padded.srcs[0] = reinterpret_cast<const float*>(scratch_.get());
    inner_->run(padded);
  }
  std::string implementation() const override {
    return "channels " + std::to_string(op_.input_channels) + "->" +
           std::to_string(padded_->input_channels) + " + " + inner_->implementation();
  }

 private:
  const ConvolutionOp& op_;
  std::unique_ptr<ConvolutionOp> padded_;
  Context& context_;
  std::shared_ptr<std::byte[]> scratch_;
  std::unique_ptr<Kernel> inner_;
};

// The convolution over `channels` input channels, the added ones with zero weights.
std::unique_ptr<ConvolutionOp> padded_op(const ConvolutionOp& op, int channels) {
  auto weights = std::make_shared<PreparedWeights>();
  const PreparedWeights& own = *op.weights;
  weights->descriptor = own.descriptor;
  weights->descriptor.input_feature_channels = channels;
  weights->source_label = own.source_label + " (channels padded)";
  weights->bias = own.bias;
  weights->has_bias = own.has_bias;
  const std::size_t taps = std::size_t(op.kernel_height) * op.kernel_width;
  weights->weights.assign(std::size_t(op.output_channels) * taps * channels, 0.0f);
  for (std::size_t k = 0; k < std::size_t(op.output_channels); ++k)
    for (std::size_t t = 0; t < taps; ++t)
      for (int c = 0; c < op.input_channels; ++c)
        weights->weights[(k * taps + t) * channels + c] =
            own.weights[(k * taps + t) * op.input_channels + c];
  auto padded = std::make_unique<ConvolutionOp>(op);
  padded->input_channels = channels;
  padded->src_shapes[0].channels = channels;
  padded->weights = std::move(weights);
  return padded;
}

}  // namespace

std::unique_ptr<Kernel> few_channels_padded(const ConvolutionOp& op, const GraphOptions& options,
                                            Context& context, std::unique_ptr<Kernel> as_is) {
  // CNNGRAPH_CUDA_STEM_PADDING=always or never forces the choice, for tests and experiments.
  const char* forced = knobs::read(knobs::cuda_stem_padding);
  const std::string force = forced ? forced : "";
  // Only fp16 has the first-layer kernel that pays for the padding pass: bf16, TF32 and
  // fp32 measured slower padded (H100, cuDNN 9.14), and each try costs cold-start time.
  const bool tried = options.autotune && context.storage == DataType::f16;
  const bool candidate = (tried || force == "always") && force != "never" && op.groups == 1 &&
                         op.input_channels < 4 && !op.fully_connected && op.sub_pixel == 1;
  if (!candidate) return as_is;
  auto padded = std::make_unique<ChannelPaddedConvolution>(op, padded_op(op, 4), context);
  if (!padded->plan(options)) return as_is;
  if (force == "always") return padded;
  const double padded_ms = time_kernel(*padded, op, context);
  const double as_is_ms = as_is ? time_kernel(*as_is, op, context) : -1;
  if (options.verbose) {
    std::fprintf(stderr, "cnngraph: cuda: %s: padded to 4 channels %.4f ms, as is %.4f ms\n",
                 op.name.c_str(), padded_ms, as_is_ms);
  }
  if (padded_ms > 0 && (as_is_ms <= 0 || padded_ms < as_is_ms)) return padded;
  return as_is;
}

}  // namespace cnngraph::detail::cuda
