// Building blocks of the networks in models.hpp: a convolution with its batch norm (folded
// into the convolution when an inference graph is compiled) and activation.
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

// Global average pooling over a size x size map, then the fully connected classifier
// `<name>.weight` / `<name>.bias`.
std::shared_ptr<ImageNode> classifier(const Parameters& parameters, std::shared_ptr<ImageNode> src,
                                      int size, int features, int classes, const std::string& name);

}  // namespace cnngraph::models::detail
