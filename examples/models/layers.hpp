// Building blocks of the networks in models.hpp: a convolution (float or binary) with its
// batch norm (folded into the convolution when an inference graph is compiled) and
// activation, the ResNets' stem and shortcut, and the pooled classifier.
#pragma once

#include "models.hpp"

namespace cnngraph::models::detail {

struct ConvSpec {
  int in = 0, out = 0, kernel = 1, stride = 1, groups = 1;
};

// conv `<name>` (no bias) -> batch norm `<bn>` -> optional neuron, torchvision's placement.
std::shared_ptr<ImageNode> conv_bn(const Parameters& parameters, std::shared_ptr<ImageNode> src,
                                   const std::string& conv, const std::string& bn, ConvSpec spec,
                                   NeuronDescriptor neuron);

// XNOR binary conv `<name>` (BinaryConvolutionNode, scale 1, no bias, torch padding of
// kernel / 2) -> batch norm `<bn>`; its float weights train as shadow weights (the
// straight-through estimator) when `parameters` has an optimizer.
std::shared_ptr<ImageNode> binary_conv_bn(const Parameters& parameters,
                                          std::shared_ptr<ImageNode> src, const std::string& conv,
                                          const std::string& bn, ConvSpec spec);

// The ResNets' stem: conv 7x7 stride 2 `conv1` to `channels`, batch norm `bn1`, `neuron`,
// max-pool 3x3 stride 2; `size` becomes the map's size after it.
std::shared_ptr<ImageNode> resnet_stem(const Parameters& parameters,
                                       const std::shared_ptr<ImageNode>& input, int image_size,
                                       int& size, NeuronDescriptor neuron, int channels = 64);

// A residual block's shortcut: x itself, or torchvision's "downsample" (`<name>.downsample.0`
// conv 1x1 + batch norm `.1`, full precision) where the block changes the size or the
// channels.
std::shared_ptr<ImageNode> resnet_shortcut(const Parameters& parameters,
                                           const std::shared_ptr<ImageNode>& x,
                                           const std::string& name, int in, int out, int stride);

// Global average pooling over a size x size map, then the fully connected classifier
// `<name>.weight` / `<name>.bias`.
std::shared_ptr<ImageNode> classifier(const Parameters& parameters, std::shared_ptr<ImageNode> src,
                                      int size, int features, int classes, const std::string& name);

}  // namespace cnngraph::models::detail
