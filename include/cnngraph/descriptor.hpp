// ConvolutionDescriptor (MPSCNNConvolutionDescriptor and its depthwise and sub-pixel
// variants) and NeuronDescriptor (MPSNNNeuronDescriptor).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace cnngraph {

// Activation functions; x is the input, a, b, c the descriptor's parameters.
enum class NeuronType {
  none,          // x
  relu,          // x >= 0 ? x : a*x        (a = leaky slope)
  linear,        // a*x + b
  sigmoid,       // 1 / (1 + exp(-x))
  hard_sigmoid,  // clamp(a*x + b, 0, 1)
  tanh,          // a * tanh(b*x)
  absolute,      // |x|
  soft_plus,     // a * log(1 + exp(b*x))
  soft_sign,     // x / (1 + |x|)
  elu,           // x >= 0 ? x : a*(exp(x) - 1)
  prelu,         // x >= 0 ? x : slopes[channel]*x
  relu_n,        // min(x >= 0 ? x : a*x, b)
  power,         // (a*x + b)^c
  exponential,   // c^(a*x + b); c <= 0 means base e
  logarithm,     // log_c(a*x + b); c <= 0 means natural log
  gelu,          // x * Phi(x), Phi the standard normal CDF (exact erf form)
  silu,          // x * sigmoid(x) (SiLU, swish; ONNX writes it as Mul(x, Sigmoid(x)))
};

std::string to_string(NeuronType type);

struct NeuronDescriptor {
  NeuronType type = NeuronType::none;
  float a = 0.0f;
  float b = 0.0f;
  float c = 0.0f;
  std::vector<float> prelu_slopes;  // one per channel, for prelu only

  // A descriptor with MPS's documented defaults for `type` (e.g. relu_n: a=1, b=6;
  // hard_sigmoid: a=0.2, b=0.5; tanh, soft_plus, linear, power: a=1, b=1 or 0, c=1).
  static NeuronDescriptor make(NeuronType type);
  static NeuronDescriptor make(NeuronType type, float a, float b = 0.0f, float c = 0.0f);
  static NeuronDescriptor make_prelu(std::vector<float> slopes);

  // Throws InvalidArgument (prefixed with `context`) for invalid parameters.
  void validate(const std::string& context) const;
};

// Per-output-channel inference batch normalization folded into a convolution:
// y = gamma * (x - mean) / sqrt(variance + epsilon) + beta.
struct BatchNormalizationParameters {
  std::vector<float> mean, variance, gamma, beta;
  float epsilon = 1e-5f;
};

// Which convolution channel feeds which pixel of a sub-pixel convolution's s-times larger
// result. Result channel c (of C = output_feature_channels / s^2) at offset (i, j) of its
// s x s block (i the row, j the column) reads convolution channel:
enum class SubPixelOrder {
  // (i * s + j) * C + c: MPS's order, TensorFlow's depth_to_space, ONNX DepthToSpace "DCR".
  depth_to_space,
  // (c * s + i) * s + j: PyTorch's pixel_shuffle, ONNX DepthToSpace "CRD".
  pixel_shuffle,
};

std::string to_string(SubPixelOrder order);

// Apple: MPSCNNConvolutionDescriptor (plus MPSCNNDepthWiseConvolutionDescriptor and
// MPSCNNSubPixelConvolutionDescriptor).
struct ConvolutionDescriptor {
  int kernel_width = 1;
  int kernel_height = 1;
  int input_feature_channels = 1;
  int output_feature_channels = 1;
  int stride_x = 1;
  int stride_y = 1;
  int dilation_x = 1;
  int dilation_y = 1;
  int groups = 1;
  // Sub-pixel convolution: the convolution computes output_feature_channels channels, which
  // are rearranged into output_feature_channels / (s*s) channels and an image s times
  // larger, in sub_pixel_order (MPS's by default). 1 means off.
  int sub_pixel_scale_factor = 1;
  SubPixelOrder sub_pixel_order = SubPixelOrder::depth_to_space;
  // The fused neuron, applied after bias and batch normalization.
  NeuronDescriptor neuron;
  std::optional<BatchNormalizationParameters> batch_normalization;

  ConvolutionDescriptor() = default;
  ConvolutionDescriptor(int kernel_width, int kernel_height, int input_feature_channels,
                        int output_feature_channels)
      : kernel_width(kernel_width),
        kernel_height(kernel_height),
        input_feature_channels(input_feature_channels),
        output_feature_channels(output_feature_channels) {}

  // Depthwise: groups = input channels, output = input * channel_multiplier.
  static ConvolutionDescriptor depthwise(int kernel_width, int kernel_height,
                                         int input_feature_channels, int channel_multiplier = 1);

  // output / input for a depthwise descriptor, 0 otherwise.
  int channel_multiplier() const;
  bool is_depthwise() const;

  // The fused neuron with NeuronDescriptor::make(type)'s defaults (tanh: a = b = 1...).
  void set_neuron(NeuronType type);
  // The fused neuron with explicit parameters, as NeuronDescriptor::make(type, a, b, c).
  void set_neuron(NeuronType type, float a, float b = 0.0f, float c = 0.0f);
  // MPSCNNSubPixelConvolutionDescriptor's subPixelScaleFactor, with the channel order
  // (pixel_shuffle for weights made for PyTorch's nn.PixelShuffle).
  void set_sub_pixel(int scale_factor, SubPixelOrder order = SubPixelOrder::depth_to_space);
  void set_batch_normalization(std::vector<float> mean, std::vector<float> variance,
                               std::vector<float> gamma, std::vector<float> beta, float epsilon);

  // How many weights the data source supplies: output * kernel_height * kernel_width *
  // (input / groups). Throws InvalidArgument when a size is not positive or the count
  // overflows.
  std::size_t weight_count() const;
  // Every size and stride positive, channels divisible by groups, batch-norm arrays of
  // output_feature_channels entries, the weight count, the dilated kernel extent
  // (kernel - 1) * dilation + 1 and sub_pixel_scale_factor^2 representable... Throws
  // InvalidArgument naming `context`, the field and the value.
  void validate(const std::string& context) const;
};

}  // namespace cnngraph
