// torchvision's ResNet-50 (and ResNet-18): a 7x7 stem, max pooling, four stages of
// bottleneck blocks (3, 4, 6, 3; basic blocks 2, 2, 2, 2), global average pooling and the
// classifier. The residual sum and its relu fuse into the block's last convolution when the
// graph is compiled. Also the binary ResNet-18: ResNet-18 with XNOR 3x3 convolutions in the
// blocks (see binary_basic_block).
#include "layers.hpp"

namespace cnngraph::models {

using detail::ConvSpec;

namespace {

const NeuronDescriptor kRelu = NeuronDescriptor::make(NeuronType::relu);
const NeuronDescriptor kNone{};

// A block's end: relu(y + the shortcut).
std::shared_ptr<ImageNode> join_residual(const Parameters& t, const std::shared_ptr<ImageNode>& x,
                                         const std::shared_ptr<ImageNode>& y,
                                         const std::string& name, int in, int out, int stride) {
  auto sum =
      std::make_shared<AdditionNode>(y, detail::resnet_shortcut(t, x, name, in, out, stride));
  return std::make_shared<NeuronNode>(sum->result_image(), kRelu)->result_image();
}

std::shared_ptr<ImageNode> bottleneck(const Parameters& t, std::shared_ptr<ImageNode> x,
                                      const std::string& name, int in, int width, int stride) {
  const int out = width * 4;
  auto y = detail::conv_bn(t, x, name + ".conv1", name + ".bn1", {in, width, 1, 1, 1}, kRelu);
  y = detail::conv_bn(t, y, name + ".conv2", name + ".bn2", {width, width, 3, stride, 1}, kRelu);
  y = detail::conv_bn(t, y, name + ".conv3", name + ".bn3", {width, out, 1, 1, 1}, kNone);
  return join_residual(t, x, y, name, in, out, stride);
}

// torchvision's BasicBlock (ResNet-18 and -34).
std::shared_ptr<ImageNode> basic_block(const Parameters& t, std::shared_ptr<ImageNode> x,
                                       const std::string& name, int in, int out, int stride) {
  auto y = detail::conv_bn(t, x, name + ".conv1", name + ".bn1", {in, out, 3, stride, 1}, kRelu);
  y = detail::conv_bn(t, y, name + ".conv2", name + ".bn2", {out, out, 3, 1, 1}, kNone);
  return join_residual(t, x, y, name, in, out, stride);
}

// The binary ResNet-18's block (XNOR-Net / Bi-Real style):
//   x -> binconv1 (3x3, stride) -> bn1 -> binconv2 (3x3) -> bn2 -> + shortcut(x) -> out.
// Both 3x3 convolutions are XNOR (input and weights by sign). No relu after bn1: binconv2
// reads only the sign of bn1's output, so bn1 (a per-channel threshold) is all it needs, and
// with binconv2 its only consumer the CPU graph can hand it the image packed to bits. No relu
// after the sum either: the next block takes its sign, and a relu would make every input
// +1. The shortcut stays real-valued (identity, or the float 1x1 downsample).
std::shared_ptr<ImageNode> binary_basic_block(const Parameters& t, std::shared_ptr<ImageNode> x,
                                              const std::string& name, int in, int out,
                                              int stride) {
  auto y = detail::binary_conv_bn(t, x, name + ".conv1", name + ".bn1", {in, out, 3, stride, 1});
  y = detail::binary_conv_bn(t, y, name + ".conv2", name + ".bn2", {out, out, 3, 1, 1});
  auto sum =
      std::make_shared<AdditionNode>(y, detail::resnet_shortcut(t, x, name, in, out, stride));
  return sum->result_image();
}

using BasicBlock = std::shared_ptr<ImageNode> (*)(const Parameters&, std::shared_ptr<ImageNode>,
                                                  const std::string&, int, int, int);

// ResNet-18's layout: the stem (with `stem_neuron`) to `width` channels, four stages of two
// `block`s (width, 2, 4 and 8 times width channels; the first block of stages 2-4 strides
// 2), the pooled classifier.
Network basic_resnet(const Parameters& t, int image_size, int classes, NeuronDescriptor stem_neuron,
                     BasicBlock block, int width = 64) {
  Network net;
  net.input = std::make_shared<ImageNode>("image");
  int size = 0;
  auto x = detail::resnet_stem(t, net.input, image_size, size, stem_neuron, width);
  int in = width;
  for (int stage = 0; stage < 4; ++stage) {
    const int out = width << stage;
    for (int b = 0; b < 2; ++b) {
      const int stride = stage > 0 && b == 0 ? 2 : 1;
      x = block(t, x, "layer" + std::to_string(stage + 1) + "." + std::to_string(b), in, out,
                stride);
      in = out;
      if (stride == 2) size = (size + 2 - 3) / 2 + 1;
    }
  }
  net.logits = detail::classifier(t, x, size, in, classes, "fc");
  return net;
}

}  // namespace

Network resnet50(const TensorProvider& t, int image_size, int classes) {
  return resnet50(Parameters{t, nullptr}, image_size, classes);
}

Network resnet18(const Parameters& t, int image_size, int classes) {
  return basic_resnet(t, image_size, classes, kRelu, basic_block);
}

Network binary_resnet18(const TensorProvider& t, int image_size, int classes, int width) {
  return binary_resnet18(Parameters{t, nullptr}, image_size, classes, width);
}

Network binary_resnet18(const Parameters& t, int image_size, int classes, int width) {
  if (width <= 0) {
    throw InvalidArgument("binary_resnet18: width must be positive, got " + std::to_string(width));
  }
  return basic_resnet(t, image_size, classes, kNone, binary_basic_block, width);
}

Network resnet50(const Parameters& t, int image_size, int classes) {
  Network net;
  net.input = std::make_shared<ImageNode>("image");
  int size = 0;
  auto x = detail::resnet_stem(t, net.input, image_size, size, kRelu);
  int in = 64;
  const int blocks[4] = {3, 4, 6, 3};
  for (int stage = 0; stage < 4; ++stage) {
    const int width = 64 << stage;
    for (int b = 0; b < blocks[stage]; ++b) {
      const int stride = stage > 0 && b == 0 ? 2 : 1;
      const std::string name = "layer" + std::to_string(stage + 1) + "." + std::to_string(b);
      x = bottleneck(t, x, name, in, width, stride);
      in = width * 4;
      if (stride == 2) size = (size + 2 - 3) / 2 + 1;
    }
  }
  net.logits = detail::classifier(t, x, size, in, classes, "fc");
  return net;
}

}  // namespace cnngraph::models
