// Batch-normalization helpers shared by the node and by convolution weight folding.
#pragma once

#include <string>
#include <vector>

#include "cnngraph/descriptor.hpp"

namespace cnngraph::detail {

// scale = gamma / sqrt(variance + epsilon), shift = beta - scale * mean (in double).
void fold_batch_normalization(const BatchNormalizationParameters& p, std::vector<float>& scale,
                              std::vector<float>& shift);
void validate_batch_normalization(const BatchNormalizationParameters& p,
                                  const std::string& context);

}  // namespace cnngraph::detail
