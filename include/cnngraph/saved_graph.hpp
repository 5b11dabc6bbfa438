// Saved graphs (docs/saved-graphs.md): one safetensors file with a forward graph's
// definition (JSON in its metadata) and its weights, batch-normalization parameters and
// optimizer states, so that a loaded graph infers the same and trains on exactly.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cnngraph/batch_normalization_source.hpp"
#include "cnngraph/nodes.hpp"
#include "cnngraph/trainable_data_source.hpp"

namespace cnngraph {

// The saved-graph format version this library writes and reads.
inline constexpr int kSavedGraphVersion = 1;

// Writes every node that `results` depend on. Refuses (InvalidArgument naming the node) a
// gradient node (save the forward graph; training_graph rebuilds the gradients), a custom
// padding callback, two data sources of one label; the file is replaced atomically.
void save_graph(const std::filesystem::path& path,
                const std::vector<std::shared_ptr<ImageNode>>& results);

struct SavedGraph {
  // In the order given to save_graph.
  std::vector<std::shared_ptr<ImageNode>> results;
  // The graph's source images, with their handles, in the order first used.
  std::vector<std::shared_ptr<ImageNode>> sources;
  // Every node, sources before users.
  std::vector<std::shared_ptr<FilterNode>> nodes;
  // The data sources by label: every weighted node's weights become a TrainableDataSource
  // (with the saved optimizer and its state), every batch normalization's a
  // BatchNormalizationDataSource.
  std::map<std::string, std::shared_ptr<TrainableDataSource>> weights;
  std::map<std::string, std::shared_ptr<BatchNormalizationDataSource>> normalizations;
};

// Reads a file save_graph wrote. The file is untrusted: anything malformed, out of range or
// inconsistent is a DataSourceError naming the file and what is wrong.
SavedGraph load_graph(const std::filesystem::path& path);

}  // namespace cnngraph
