// torchvision's EfficientNet-B0: a 3x3 stem, sixteen MBConv blocks in seven stages (1x1
// expansion, k x k depthwise, squeeze-and-excitation, 1x1 linear projection; a residual sum
// where the shape allows), a 1x1 convolution to 1280 features, global average pooling and
// the classifier. Every activation is SiLU. Squeeze-and-excitation pools each channel
// globally, runs a 1x1 convolution down to a quarter of the block's input channels (SiLU)
// and one back up (sigmoid), and multiplies the block's features by that per-channel scale
// (a multiplication broadcast over height and width). Stochastic depth and dropout are the
// identity at inference and are left out; torchvision's B0 batch norms use epsilon 1e-5.
#include <algorithm>

#include "layers.hpp"

namespace cnngraph::models {

namespace {

const NeuronDescriptor kSilu = NeuronDescriptor::make(NeuronType::silu);
const NeuronDescriptor kNone{};

// A 1x1 convolution with bias and a fused neuron (squeeze-and-excitation's fc1 and fc2).
std::shared_ptr<ImageNode> conv1x1_bias(const Parameters& t, std::shared_ptr<ImageNode> src,
                                        const std::string& name, int in, int out,
                                        NeuronDescriptor neuron) {
  ConvolutionDescriptor d(1, 1, in, out);
  d.neuron = neuron;
  std::vector<float> weights = t.tensors(name + ".weight", {out, 1, 1, in}).to_floats();
  std::vector<float> bias = t.tensors(name + ".bias", {out}).to_floats();
  std::shared_ptr<ConvolutionDataSource> source;
  if (t.optimizer) {
    source = std::make_shared<TrainableDataSource>(name, d, std::move(weights), std::move(bias),
                                                   t.optimizer);
  } else {
    source = std::make_shared<ArrayDataSource>(name, d, std::move(weights), std::move(bias));
  }
  auto node = std::make_shared<ConvolutionNode>(std::move(src), source);
  node->training_style = t.style;
  return node->result_image();
}

std::shared_ptr<ImageNode> squeeze_excitation(const Parameters& t, std::shared_ptr<ImageNode> x,
                                              const std::string& name, int size, int channels,
                                              int squeezed) {
  auto pool = std::make_shared<PoolingNode>(x, PoolingType::average, size, size, 1, 1);
  pool->padding_policy = PaddingPolicy::valid();
  auto s = conv1x1_bias(t, pool->result_image(), name + ".fc1", channels, squeezed, kSilu);
  s = conv1x1_bias(t, s, name + ".fc2", squeezed, channels,
                   NeuronDescriptor::make(NeuronType::sigmoid));
  return std::make_shared<MultiplicationNode>(std::move(x), s)->result_image();
}

// torchvision's MBConv; `size` is the block's input size and becomes its result size.
std::shared_ptr<ImageNode> mbconv(const Parameters& t, std::shared_ptr<ImageNode> x,
                                  const std::string& name, int in, int out, int kernel, int stride,
                                  int expansion, int& size) {
  const int hidden = in * expansion;
  auto y = x;
  int layer = 0;
  const auto prefix = [&](int i) { return name + ".block." + std::to_string(i); };
  if (expansion != 1) {
    y = detail::conv_bn(t, y, prefix(layer) + ".0", prefix(layer) + ".1", {in, hidden, 1, 1, 1},
                        kSilu);
    ++layer;
  }
  y = detail::conv_bn(t, y, prefix(layer) + ".0", prefix(layer) + ".1",
                      {hidden, hidden, kernel, stride, hidden}, kSilu);
  ++layer;
  if (stride == 2) size = (size - 1) / 2 + 1;  // odd kernel, padding kernel / 2
  y = squeeze_excitation(t, y, prefix(layer), size, hidden, std::max(1, in / 4));
  ++layer;
  y = detail::conv_bn(t, y, prefix(layer) + ".0", prefix(layer) + ".1", {hidden, out, 1, 1, 1},
                      kNone);
  if (stride == 1 && in == out) y = std::make_shared<AdditionNode>(y, x)->result_image();
  return y;
}

}  // namespace

Network efficientnet_b0(const TensorProvider& t, int image_size, int classes) {
  return efficientnet_b0(Parameters{t, nullptr}, image_size, classes);
}

Network efficientnet_b0(const Parameters& t, int image_size, int classes) {
  Network net;
  net.input = std::make_shared<ImageNode>("image");
  auto x = detail::conv_bn(t, net.input, "features.0.0", "features.0.1", {3, 32, 3, 2, 1}, kSilu);
  int size = (image_size - 1) / 2 + 1;
  // (expansion, kernel, first stride, channels, repeats), torchvision's table for B0.
  const int settings[7][5] = {{1, 3, 1, 16, 1}, {6, 3, 2, 24, 2},  {6, 5, 2, 40, 2},
                              {6, 3, 2, 80, 3}, {6, 5, 1, 112, 3}, {6, 5, 2, 192, 4},
                              {6, 3, 1, 320, 1}};
  int in = 32;
  for (int stage = 0; stage < 7; ++stage) {
    const auto& s = settings[stage];
    for (int i = 0; i < s[4]; ++i) {
      const std::string name = "features." + std::to_string(stage + 1) + "." + std::to_string(i);
      x = mbconv(t, x, name, in, s[3], s[1], i == 0 ? s[2] : 1, s[0], size);
      in = s[3];
    }
  }
  x = detail::conv_bn(t, x, "features.8.0", "features.8.1", {in, 1280, 1, 1, 1}, kSilu);
  net.logits = detail::classifier(t, x, size, 1280, classes, "classifier.1");
  return net;
}

}  // namespace cnngraph::models
