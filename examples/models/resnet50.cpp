// torchvision's ResNet-50 (and ResNet-18): a 7x7 stem, max pooling, four stages of
// bottleneck blocks (3, 4, 6, 3; basic blocks 2, 2, 2, 2), global average pooling and the
// classifier. The residual sum and its relu
// fuse into the block's last convolution when the graph is compiled.
#include "layers.hpp"

namespace cnngraph::models {

using detail::ConvSpec;

namespace {

const NeuronDescriptor kRelu = NeuronDescriptor::make(NeuronType::relu);
const NeuronDescriptor kNone{};

// A block's end: relu(y + the shortcut), the shortcut being x, or torchvision's
// "downsample" (conv 1x1 + batch norm) where the block changes the size or the channels.
std::shared_ptr<ImageNode> join_residual(const Parameters& t, const std::shared_ptr<ImageNode>& x,
                                         const std::shared_ptr<ImageNode>& y,
                                         const std::string& name, int in, int out, int stride) {
  auto shortcut = x;
  if (stride != 1 || in != out) {
    shortcut = detail::conv_bn(t, x, name + ".downsample.0", name + ".downsample.1",
                               {in, out, 1, stride, 1}, kNone);
  }
  auto sum = std::make_shared<AdditionNode>(y, shortcut);
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

// The stem shared by the ResNets: conv 7x7 stride 2, batch norm, relu, max-pool 3x3 stride
// 2; `size` becomes the map's size after it.
std::shared_ptr<ImageNode> stem(const Parameters& t, const std::shared_ptr<ImageNode>& input,
                                int image_size, int& size) {
  auto x = detail::conv_bn(t, input, "conv1", "bn1", {3, 64, 7, 2, 1}, kRelu);
  auto pool = std::make_shared<PoolingNode>(x, PoolingType::max, 3, 3, 2, 2);
  pool->padding_policy = torch_padding(1);
  size = ((image_size + 6 - 7) / 2 + 1 + 2 - 3) / 2 + 1;
  return pool->result_image();
}

}  // namespace

Network resnet50(const TensorProvider& t, int image_size, int classes) {
  return resnet50(Parameters{t, nullptr}, image_size, classes);
}

Network resnet18(const Parameters& t, int image_size, int classes) {
  Network net;
  net.input = std::make_shared<ImageNode>("image");
  int size = 0;
  auto x = stem(t, net.input, image_size, size);
  int in = 64;
  for (int stage = 0; stage < 4; ++stage) {
    const int width = 64 << stage;
    for (int b = 0; b < 2; ++b) {
      const int stride = stage > 0 && b == 0 ? 2 : 1;
      x = basic_block(t, x, "layer" + std::to_string(stage + 1) + "." + std::to_string(b), in,
                      width, stride);
      in = width;
      if (stride == 2) size = (size + 2 - 3) / 2 + 1;
    }
  }
  net.logits = detail::classifier(t, x, size, in, classes, "fc");
  return net;
}

Network resnet50(const Parameters& t, int image_size, int classes) {
  Network net;
  net.input = std::make_shared<ImageNode>("image");
  int size = 0;
  auto x = stem(t, net.input, image_size, size);
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
