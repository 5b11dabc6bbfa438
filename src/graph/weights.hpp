// Reading a convolution's weights out of its data source into the library's own form.
#pragma once

#include <memory>

#include "cnngraph/nodes.hpp"
#include "ops/op.hpp"

namespace cnngraph::detail {

// A per-output-channel y = x * scale + shift (the descriptor's batch normalization).
struct ChannelAffine {
  std::vector<float> scale, shift;
};

// What a node needs of its weights: floats (convolutions), +1/-1 signs (binary convolution
// inference: float weights by sign, or unpacked bits), or a binary convolution's float
// shadow weights (training: bit-packed weights cannot be trained).
enum class WeightsForm { floats, binary_signs, binary_shadow };
// The weights of any data source in `form`, for the node named `node_name`: calls load(),
// copies (dequantizing, converting, folding the descriptor's batch norm unless `fold` takes
// it), then purge(), holding the source's library mutex throughout. Throws DataSourceError
// naming the node and the source's label when load fails or the weights are unusable
// (non-finite values are rejected: they would silently poison every result).
std::shared_ptr<PreparedWeights> prepare_source_weights(ConvolutionDataSource& source,
                                                        const std::string& node_name,
                                                        ChannelAffine* fold, WeightsForm form);
// A weighted node's weights in the form its weights_kind() and training call for: floats, or
// for a binary node +1/-1 signs (inference) or float shadow weights (`trained`). With `fold`
// non-null the descriptor's batch normalization is not folded in but returned there
// (training keeps the data source's own weights and folds after every update).
std::shared_ptr<PreparedWeights> prepare_node_weights(const WeightedNode& node, ChannelAffine* fold,
                                                      bool trained);

// Rewrites `prepared` from a training state (folding `fold` when set) and bumps its version.
void refresh_prepared_weights(PreparedWeights& prepared, const WeightsAndBiasesState& state,
                              const ChannelAffine& fold);

// A copy of `weights` with a following batch-normalization node folded in.
std::shared_ptr<PreparedWeights> fold_batch_normalization_node(const PreparedWeights& weights,
                                                               const BatchNormalizationNode& bn);

}  // namespace cnngraph::detail
