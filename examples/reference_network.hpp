// The reference network of the spec (Apple's MPS MNIST sample), built from cnngraph nodes:
// conv 5x5 1->32 -> ReLU -> max-pool 2 -> conv 5x5 32->64 -> ReLU -> max-pool 2 ->
// fully connected 7x7x64->1024 -> ReLU -> fully connected 1024->10 -> soft-max.
#pragma once

#include <cnngraph/cnngraph.hpp>
#include <filesystem>
#include <memory>

namespace examples {

struct ReferenceNetwork {
  std::shared_ptr<cnngraph::ImageNode> input;
  std::shared_ptr<cnngraph::ImageNode> probabilities;
};

// Writes the spec's initial weights (uniform in [-0.2, 0.2], biases 0.1) for every layer
// to one safetensors file, tensors "<layer>.weight" (OHWI) and "<layer>.bias".
void write_initial_weights(const std::filesystem::path& path, unsigned seed);

// The network with every layer's weights read from `weights_file` by a FileDataSource.
ReferenceNetwork build_reference_network(const std::filesystem::path& weights_file);

}  // namespace examples
