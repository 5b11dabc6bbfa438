// Checkpoints of a graph's weights (docs/weights-format.md).
#pragma once

#include <filesystem>

#include "graph/parameters.hpp"
#include "graph/structure.hpp"

namespace cnngraph::detail {

// Saving takes trained nodes' live weights from `parameters` and loads the others' from
// their sources.
void save_checkpoint(const GraphStructure& structure, const ParameterStore& parameters,
                     const std::filesystem::path& path);
// Checks every tensor first, then assigns the TrainableDataSources and batch-normalization
// sources (all or nothing).
void load_checkpoint(const GraphStructure& structure, const std::filesystem::path& path);

}  // namespace cnngraph::detail
