// The parameter store of a training graph: one entry per trained node, holding everything
// about its parameters that the graph keeps between runs, and the update step after a batch.
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "graph/structure.hpp"
#include "graph/weights.hpp"
#include "ops/op.hpp"

namespace cnngraph::detail {

struct ParameterStore {
  // A trained weighted node.
  struct Convolution {
    const WeightedNode* node = nullptr;
    // What its kernels read (the prepared copy, with its version) and where they leave the
    // gradients.
    std::unique_ptr<TrainedWeights> trained;
    // The data source's own (unfolded) weights, as of the last update.
    std::shared_ptr<WeightsAndBiasesState> source_state;
    ChannelAffine fold;  // the descriptor's batch norm, folded into `trained->prepared`
    // The device's optimizer step updates it; its values and optimizer state live there.
    bool stepped_on_device = false;
  };
  // A batch-normalization node in training mode.
  struct Normalization {
    const BatchNormalizationNode* node = nullptr;
    std::unique_ptr<TrainedNormalization> trained;
  };

  ParameterStore() = default;
  // Loads every node of structure.weight_updates and structure.normalization_updates and
  // records the prepared weights in `weights`. Throws InvalidArgument when one data source
  // or node is trained twice in the graph.
  ParameterStore(const GraphStructure& structure,
                 std::map<const FilterNode*, std::shared_ptr<const PreparedWeights>>& weights);

  bool empty() const { return convolutions.empty() && normalizations.empty(); }
  // The entry of `node`, or null when the graph does not train it.
  const Convolution* find(const FilterNode& node) const;
  TrainedWeights* weights_for(const FilterNode& node);
  TrainedNormalization* normalization_for(const BatchNormalizationNode& node);

  // After a batch's backward pass: every gradient checked to be finite, every cpu-style update
  // (a throw leaves the graph's weights as they were), the reloads they asked for, the
  // device-style updates, then the batch-normalization data sources. Entries stepped on the
  // device are left alone.
  void apply_updates(const Device& device, std::uint64_t batch, int batch_size);

  std::vector<Convolution> convolutions;
  std::vector<Normalization> normalizations;
};

// Whether every value is finite (no NaN or infinity).
bool all_finite(const std::vector<float>& values);

}  // namespace cnngraph::detail
