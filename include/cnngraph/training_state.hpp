// The states that carry training data between a graph and a data source:
// ConvolutionGradientState (MPSCNNConvolutionGradientState): the weight and bias gradients of
// one batch; WeightsAndBiasesState (MPSCNNConvolutionWeightsAndBiasesState): the weights a
// graph computes with; UpdateContext: what a device-side update runs with.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cnngraph/descriptor.hpp"
#include "cnngraph/device.hpp"

namespace cnngraph {

// The gradients of one trainable node after a batch's backward pass, f32 on the host.
// Weights are OHWI like the data source's weights(); the batch's contributions are summed
// (the loss's weight and reduction already scale them, e.g. 1/batch).
struct ConvolutionGradientState {
  ConvolutionDescriptor descriptor;
  std::string node_label;  // the node's display name, for messages
  int batch_size = 0;
  std::vector<float> weights_gradient;  // OHWI
  std::vector<float> bias_gradient;     // output_feature_channels entries
};

// Weights (OHWI) and biases as a graph computes with them. On CPU devices the memory is host
// memory that the graph's kernels read directly; an update may change it in place.
class WeightsAndBiasesState {
 public:
  WeightsAndBiasesState(std::vector<float> weights, std::vector<float> biases)
      : weights_(std::move(weights)), biases_(std::move(biases)) {}

  std::vector<float>& weights() { return weights_; }
  const std::vector<float>& weights() const { return weights_; }
  // Empty when the node has no bias.
  std::vector<float>& biases() { return biases_; }
  const std::vector<float>& biases() const { return biases_; }

 private:
  std::vector<float> weights_, biases_;
};

// Handed to ConvolutionDataSource::update_on_device (MPS passes a command buffer).
struct UpdateContext {
  Device device;
  std::uint64_t batch = 0;  // how many batches this graph has run before this one
};

}  // namespace cnngraph
