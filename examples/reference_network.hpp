// The reference network (Apple's MPS MNIST sample), built from cnngraph nodes:
// conv 5x5 1->32 -> ReLU -> max-pool 2 -> conv 5x5 32->64 -> ReLU -> max-pool 2 ->
// fully connected 7x7x64->1024 -> ReLU -> fully connected 1024->10 -> soft-max.
#pragma once

#include <cnngraph/cnngraph.hpp>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

namespace examples {

struct ReferenceNetwork {
  std::shared_ptr<cnngraph::ImageNode> input;
  std::shared_ptr<cnngraph::ImageNode> probabilities;
};

// Writes the initial weights (uniform in [-0.2, 0.2], biases 0.1) for every layer
// to one safetensors file, tensors "<layer>.weight" (OHWI) and "<layer>.bias".
void write_initial_weights(const std::filesystem::path& path, unsigned seed);

// The network with every layer's weights read from `weights_file` by a FileDataSource.
ReferenceNetwork build_reference_network(const std::filesystem::path& weights_file);

// The four layers' data sources (conv1, conv2, fc1, fc2), in that order.
using LayerSources = std::vector<std::shared_ptr<cnngraph::ConvolutionDataSource>>;

// Trainable sources with those initial weights and one shared optimizer.
LayerSources make_trainable_sources(unsigned seed,
                                    std::shared_ptr<const cnngraph::Optimizer> optimizer);

// The binary variant's batch norms (trainable with `optimizer`): "bn_conv2" (32 channels)
// before conv2 and "bn_fc1" (64 channels) before fc1. Shared by the training and inference
// graphs like the layer sources.
struct BinaryNorms {
  std::shared_ptr<cnngraph::BatchNormalizationDataSource> before_conv2, before_fc1;
};
BinaryNorms make_binary_norms(std::shared_ptr<const cnngraph::Optimizer> optimizer);

// The network on the given sources. With a dropout keep probability below 1 the dropout
// node sits after fc1's ReLU (training only). `logits` is fc2's result; `probabilities`
// the soft-max of it. With `binary`, conv2 is an XNOR BinaryConvolutionNode and fc1 an XNOR
// BinaryFullyConnectedNode (scale 1, their sources' float weights trained as shadow weights
// by the straight-through estimator), each after its batch norm: the ReLU and max pooling
// before them leave no negative input, so without the norm every input bit would be +1.
// conv1 and fc2 stay full precision.
struct NetworkNodes {
  std::shared_ptr<cnngraph::ImageNode> input, logits, probabilities;
  std::vector<std::shared_ptr<cnngraph::WeightedNode>> layers;
};
NetworkNodes build_reference_network(const LayerSources& sources, float dropout_keep = 1.0f,
                                     std::uint64_t dropout_seed = 1,
                                     const BinaryNorms* binary = nullptr);

}  // namespace examples
