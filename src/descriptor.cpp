// Defaults and validation of NeuronDescriptor and ConvolutionDescriptor.
#include "cnngraph/descriptor.hpp"

#include <cmath>
#include <cstdint>

#include "cnngraph/checked_math.hpp"
#include "cnngraph/errors.hpp"

namespace cnngraph {

std::string to_string(NeuronType type) {
  switch (type) {
    case NeuronType::none:
      return "none";
    case NeuronType::relu:
      return "relu";
    case NeuronType::linear:
      return "linear";
    case NeuronType::sigmoid:
      return "sigmoid";
    case NeuronType::hard_sigmoid:
      return "hard_sigmoid";
    case NeuronType::tanh:
      return "tanh";
    case NeuronType::absolute:
      return "absolute";
    case NeuronType::soft_plus:
      return "soft_plus";
    case NeuronType::soft_sign:
      return "soft_sign";
    case NeuronType::elu:
      return "elu";
    case NeuronType::prelu:
      return "prelu";
    case NeuronType::relu_n:
      return "relu_n";
    case NeuronType::power:
      return "power";
    case NeuronType::exponential:
      return "exponential";
    case NeuronType::logarithm:
      return "logarithm";
    case NeuronType::gelu:
      return "gelu";
    case NeuronType::silu:
      return "silu";
  }
  return "?";
}

std::string to_string(SubPixelOrder order) {
  switch (order) {
    case SubPixelOrder::depth_to_space:
      return "depth_to_space";
    case SubPixelOrder::pixel_shuffle:
      return "pixel_shuffle";
  }
  return "?";
}

NeuronDescriptor NeuronDescriptor::make(NeuronType type) {
  switch (type) {
    case NeuronType::linear:
      return make(type, 1.0f, 0.0f);
    case NeuronType::hard_sigmoid:
      return make(type, 0.2f, 0.5f);
    case NeuronType::tanh:
    case NeuronType::soft_plus:
      return make(type, 1.0f, 1.0f);
    case NeuronType::elu:
      return make(type, 1.0f);
    // ReLU6. (MPS's own default is a = 1, b = 6, which leaves negative inputs unchanged;
    // docs/porting-from-mps.md notes the difference.)
    case NeuronType::relu_n:
      return make(type, 0.0f, 6.0f);
    case NeuronType::power:
      return make(type, 1.0f, 0.0f, 1.0f);
    case NeuronType::exponential:
    case NeuronType::logarithm:
      return make(type, 1.0f, 0.0f, -1.0f);
    default:
      return make(type, 0.0f);
  }
}

NeuronDescriptor NeuronDescriptor::make(NeuronType type, float a, float b, float c) {
  NeuronDescriptor d;
  d.type = type;
  d.a = a;
  d.b = b;
  d.c = c;
  return d;
}

NeuronDescriptor NeuronDescriptor::make_prelu(std::vector<float> slopes) {
  NeuronDescriptor d;
  d.type = NeuronType::prelu;
  d.prelu_slopes = std::move(slopes);
  return d;
}

void NeuronDescriptor::validate(const std::string& context) const {
  if (!std::isfinite(a) || !std::isfinite(b) || !std::isfinite(c)) {
    throw InvalidArgument(context + ": neuron " + to_string(type) +
                          " parameters must be finite, got a=" + std::to_string(a) +
                          " b=" + std::to_string(b) + " c=" + std::to_string(c));
  }
  if (type == NeuronType::prelu && prelu_slopes.empty()) {
    throw InvalidArgument(context + ": neuron prelu needs prelu_slopes (one per channel)");
  }
  if (type != NeuronType::prelu && !prelu_slopes.empty()) {
    throw InvalidArgument(context + ": prelu_slopes given for neuron " + to_string(type));
  }
}

ConvolutionDescriptor ConvolutionDescriptor::depthwise(int kernel_width, int kernel_height,
                                                       int input_feature_channels,
                                                       int channel_multiplier) {
  const auto output =
      detail::fits_int(static_cast<std::int64_t>(input_feature_channels) * channel_multiplier);
  if (!output) {
    throw InvalidArgument("ConvolutionDescriptor::depthwise: input_feature_channels " +
                          std::to_string(input_feature_channels) + " * channel_multiplier " +
                          std::to_string(channel_multiplier) + " does not fit an int");
  }
  ConvolutionDescriptor d(kernel_width, kernel_height, input_feature_channels, *output);
  d.groups = input_feature_channels;
  return d;
}

bool ConvolutionDescriptor::is_depthwise() const {
  return groups > 1 && groups == input_feature_channels;
}

int ConvolutionDescriptor::channel_multiplier() const {
  return is_depthwise() ? output_feature_channels / input_feature_channels : 0;
}

void ConvolutionDescriptor::set_neuron(NeuronType type) { neuron = NeuronDescriptor::make(type); }

void ConvolutionDescriptor::set_neuron(NeuronType type, float a, float b, float c) {
  neuron = NeuronDescriptor::make(type, a, b, c);
}

void ConvolutionDescriptor::set_sub_pixel(int scale_factor, SubPixelOrder order) {
  sub_pixel_scale_factor = scale_factor;
  sub_pixel_order = order;
}

void ConvolutionDescriptor::set_batch_normalization(std::vector<float> mean,
                                                    std::vector<float> variance,
                                                    std::vector<float> gamma,
                                                    std::vector<float> beta, float epsilon) {
  batch_normalization = BatchNormalizationParameters{std::move(mean), std::move(variance),
                                                     std::move(gamma), std::move(beta), epsilon};
}

namespace {
void require_positive(const std::string& context, const char* field, int value) {
  if (value <= 0) {
    throw InvalidArgument(context + ": " + field + " must be positive, got " +
                          std::to_string(value));
  }
}
}  // namespace

std::size_t ConvolutionDescriptor::weight_count() const {
  const auto count =
      detail::checked_size_product({output_feature_channels, kernel_height, kernel_width,
                                    groups > 0 ? input_feature_channels / groups : -1});
  if (!count || groups <= 0) {
    throw InvalidArgument("ConvolutionDescriptor: weight_count output_feature_channels " +
                          std::to_string(output_feature_channels) + " * kernel_height " +
                          std::to_string(kernel_height) + " * kernel_width " +
                          std::to_string(kernel_width) + " * (input_feature_channels " +
                          std::to_string(input_feature_channels) + " / groups " +
                          std::to_string(groups) + ") overflows or is negative");
  }
  return *count;
}

namespace {
// The window a kernel of `kernel` taps `dilation` apart spans, when an int holds it.
void require_kernel_extent(const std::string& context, const char* kernel_field, int kernel,
                           const char* dilation_field, int dilation) {
  if (!detail::fits_int((static_cast<std::int64_t>(kernel) - 1) * dilation + 1)) {
    throw InvalidArgument(context + ": " + kernel_field + " " + std::to_string(kernel) + " with " +
                          dilation_field + " " + std::to_string(dilation) +
                          " spans (kernel - 1) * dilation + 1 = " +
                          std::to_string((static_cast<std::int64_t>(kernel) - 1) * dilation + 1) +
                          " pixels, more than an int holds");
  }
}
}  // namespace

void ConvolutionDescriptor::validate(const std::string& context) const {
  require_positive(context, "kernel_width", kernel_width);
  require_positive(context, "kernel_height", kernel_height);
  require_positive(context, "input_feature_channels", input_feature_channels);
  require_positive(context, "output_feature_channels", output_feature_channels);
  require_positive(context, "stride_x", stride_x);
  require_positive(context, "stride_y", stride_y);
  require_positive(context, "dilation_x", dilation_x);
  require_positive(context, "dilation_y", dilation_y);
  require_positive(context, "groups", groups);
  require_positive(context, "sub_pixel_scale_factor", sub_pixel_scale_factor);
  if (input_feature_channels % groups != 0 || output_feature_channels % groups != 0) {
    throw InvalidArgument(
        context + ": groups = " + std::to_string(groups) +
        " must divide input_feature_channels = " + std::to_string(input_feature_channels) +
        " and output_feature_channels = " + std::to_string(output_feature_channels));
  }
  require_kernel_extent(context, "kernel_width", kernel_width, "dilation_x", dilation_x);
  require_kernel_extent(context, "kernel_height", kernel_height, "dilation_y", dilation_y);
  const auto square =
      detail::fits_int(static_cast<std::int64_t>(sub_pixel_scale_factor) * sub_pixel_scale_factor);
  if (!square || *square > output_feature_channels) {
    throw InvalidArgument(context + ": sub_pixel_scale_factor " +
                          std::to_string(sub_pixel_scale_factor) + " squared exceeds " +
                          "output_feature_channels " + std::to_string(output_feature_channels));
  }
  const int s2 = *square;
  if (output_feature_channels % s2 != 0) {
    throw InvalidArgument(
        context + ": output_feature_channels = " + std::to_string(output_feature_channels) +
        " must be a multiple of sub_pixel_scale_factor^2 = " + std::to_string(s2));
  }
  try {
    (void)weight_count();
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(context + ": " + e.what());
  }
  neuron.validate(context);
  if (neuron.type == NeuronType::prelu &&
      static_cast<int>(neuron.prelu_slopes.size()) != output_feature_channels) {
    throw InvalidArgument(
        context + ": prelu_slopes has " + std::to_string(neuron.prelu_slopes.size()) +
        " entries, output_feature_channels is " + std::to_string(output_feature_channels));
  }
  if (batch_normalization) {
    const auto& bn = *batch_normalization;
    const auto count = static_cast<std::size_t>(output_feature_channels);
    if (bn.mean.size() != count || bn.variance.size() != count || bn.gamma.size() != count ||
        bn.beta.size() != count) {
      throw InvalidArgument(
          context + ": batch normalization arrays must have " + std::to_string(count) +
          " entries (mean " + std::to_string(bn.mean.size()) + ", variance " +
          std::to_string(bn.variance.size()) + ", gamma " + std::to_string(bn.gamma.size()) +
          ", beta " + std::to_string(bn.beta.size()) + ")");
    }
    if (!(bn.epsilon >= 0.0f)) {
      throw InvalidArgument(context + ": batch normalization epsilon must be >= 0, got " +
                            std::to_string(bn.epsilon));
    }
    for (float v : bn.variance) {
      if (!(v + bn.epsilon > 0.0f)) {
        throw InvalidArgument(
            context + ": batch normalization variance + epsilon must be > 0, got variance " +
            std::to_string(v));
      }
    }
  }
}

}  // namespace cnngraph
