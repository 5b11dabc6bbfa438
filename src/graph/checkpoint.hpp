// Checkpoints of a graph's weights (docs/weights-format.md).
#pragma once

#include <filesystem>

#include "cnngraph/weights_file.hpp"
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

// The two halves, for files that hold a checkpoint and more (saved graphs): the tensors and
// metadata a checkpoint holds, and their checked assignment (`path` names the file in
// messages).
void collect_checkpoint(const GraphStructure& structure, const ParameterStore& parameters,
                        std::map<std::string, Tensor>& tensors,
                        std::map<std::string, std::string>& metadata);
void assign_checkpoint(const GraphStructure& structure, const WeightsFileContents& contents,
                       const std::filesystem::path& path);

}  // namespace cnngraph::detail
