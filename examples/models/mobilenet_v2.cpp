// torchvision's MobileNetV2: a 3x3 stem, seventeen inverted residual blocks (1x1 expand,
// 3x3 depthwise, 1x1 linear projection; a residual sum where the shape allows), a 1x1
// convolution to 1280 features, global average pooling and the classifier. ReLU6 is
// relu_n with n = 6.
#include "layers.hpp"

namespace cnngraph::models {

using detail::ConvSpec;

namespace {

const NeuronDescriptor kRelu6 = NeuronDescriptor::make(NeuronType::relu_n, 0.0f, 6.0f);
const NeuronDescriptor kNone{};

std::shared_ptr<ImageNode> inverted_residual(const Parameters& t, std::shared_ptr<ImageNode> x,
                                             const std::string& name, int in, int out, int stride,
                                             int expansion) {
  const int hidden = in * expansion;
  auto y = x;
  int layer = 0;
  const auto prefix = [&](int i) { return name + ".conv." + std::to_string(i); };
  if (expansion != 1) {
    y = detail::conv_bn(t, y, prefix(layer) + ".0", prefix(layer) + ".1", {in, hidden, 1, 1, 1},
                        kRelu6);
    ++layer;
  }
  y = detail::conv_bn(t, y, prefix(layer) + ".0", prefix(layer) + ".1",
                      {hidden, hidden, 3, stride, hidden}, kRelu6);
  ++layer;
  y = detail::conv_bn(t, y, prefix(layer), prefix(layer + 1), {hidden, out, 1, 1, 1}, kNone);
  if (stride == 1 && in == out) y = std::make_shared<AdditionNode>(y, x)->result_image();
  return y;
}

}  // namespace

Network mobilenet_v2(const TensorProvider& t, int image_size, int classes) {
  return mobilenet_v2(Parameters{t, nullptr}, image_size, classes);
}

Network mobilenet_v2(const Parameters& t, int image_size, int classes) {
  Network net;
  net.input = std::make_shared<ImageNode>("image");
  auto x = detail::conv_bn(t, net.input, "features.0.0", "features.0.1", {3, 32, 3, 2, 1}, kRelu6);
  int size = (image_size + 2 - 3) / 2 + 1;
  // (expansion, channels, repeats, first stride), torchvision's table.
  const int settings[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                              {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  int in = 32, index = 1;
  for (const auto& s : settings) {
    for (int i = 0; i < s[2]; ++i) {
      const int stride = i == 0 ? s[3] : 1;
      x = inverted_residual(t, x, "features." + std::to_string(index++), in, s[1], stride, s[0]);
      in = s[1];
      if (stride == 2) size = (size + 2 - 3) / 2 + 1;
    }
  }
  const std::string last = "features." + std::to_string(index);
  x = detail::conv_bn(t, x, last + ".0", last + ".1", {in, 1280, 1, 1, 1}, kRelu6);
  net.logits = detail::classifier(t, x, size, 1280, classes, "classifier.1");
  return net;
}

}  // namespace cnngraph::models
