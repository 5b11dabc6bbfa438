// The weights a training graph updates: per trained convolution its parameters (what the
// kernels read and where the gradients land), its training state, and the update step.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <vector>

#include "graph/structure.hpp"
#include "graph/weights.hpp"
#include "ops/op.hpp"

namespace cnngraph::detail {

struct Trainable {
  const WeightedNode* node = nullptr;
  std::unique_ptr<TrainableParameters> parameters;
  std::shared_ptr<WeightsAndBiasesState> state;  // the data source's own (unfolded) weights
  ChannelAffine fold;
};

// A batch-normalization node in training mode: what its kernels read and write.
struct NormalizationTrainable {
  const BatchNormalizationNode* node = nullptr;
  std::unique_ptr<TrainableNormalization> state;
};

// One per node of structure.normalization_updates, with the data source's current
// parameters (throws InvalidArgument when one data source is trained by two nodes).
std::vector<NormalizationTrainable> prepare_normalizations(const GraphStructure& structure);

// Loads each node of structure.weight_updates (throws InvalidArgument when one data source
// or node is trained twice in the graph) and records its prepared weights in `weights`.
std::vector<Trainable> prepare_trainables(
    const GraphStructure& structure,
    std::map<const FilterNode*, std::shared_ptr<const PreparedWeights>>& weights);

// Whether every value is finite (no NaN or infinity).
bool all_finite(const std::vector<float>& values);

// After a batch's backward pass: every gradient checked to be finite, every cpu-style update
// (a throw leaves the graph's weights as they were), the reloads they asked for, the
// device-style updates, then the batch-normalization data sources. Trainables marked in
// `updated_elsewhere` (a device graph's own optimizer step) are left alone.
void apply_updates(std::vector<Trainable>& trainables,
                   std::vector<NormalizationTrainable>& normalizations, const Device& device,
                   std::uint64_t batch, int batch_size,
                   const std::vector<bool>& updated_elsewhere = {});

// Checkpoints (docs/weights-format.md). Saving takes trained nodes' live weights and loads
// the others' from their sources; loading assigns TrainableDataSources.
void save_checkpoint(const GraphStructure& structure, const std::vector<Trainable>& trainables,
                     const std::filesystem::path& path);
void load_checkpoint(const GraphStructure& structure, const std::filesystem::path& path);

}  // namespace cnngraph::detail
