// Graph (MPSNNGraph): built from result image nodes, compiled once for a device, run on
// batches many times.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cnngraph/device.hpp"
#include "cnngraph/graph_options.hpp"
#include "cnngraph/image.hpp"
#include "cnngraph/loss.hpp"
#include "cnngraph/nodes.hpp"

namespace cnngraph {

// What a run returns.
struct Results {
  // One per result node, in the order given to the Graph; empty where not needed.
  std::vector<Image> images;
  // The intermediates marked export_from_graph.
  std::vector<std::pair<std::shared_ptr<ImageNode>, Image>> exported;

  // The value of each loss node of the graph for this batch (reduced per its descriptor).
  std::vector<std::pair<std::string, float>> losses;

  // Throws InvalidArgument when i is not below images.size().
  const Image& operator[](std::size_t i) const;
  // Throws InvalidArgument when `node` was not exported.
  const Image& exported_image(const ImageNode& node) const;
  // The sum of `losses`; throws InvalidArgument when the graph has no loss node.
  float loss() const;
};

class Graph {
 public:
  Graph(Device device, std::shared_ptr<ImageNode> result_image, bool result_image_is_needed = true,
        GraphOptions options = {});
  Graph(Device device, std::vector<std::shared_ptr<ImageNode>> result_images,
        std::vector<bool> results_are_needed, GraphOptions options = {});
  ~Graph();
  // A moved-from Graph throws InvalidArgument from every member but assignment and
  // destruction.
  Graph(Graph&&) noexcept;
  Graph& operator=(Graph&&) noexcept;

  const Device& device() const;
  const GraphOptions& options() const;
  // The graph's inputs, in the order run() takes their images: depth-first from the first
  // result, sources in the order their filters list them.
  const std::vector<std::shared_ptr<ImageNode>>& source_image_handles() const;

  // Checks and plans the graph for these source sizes (batch included) now instead of at
  // the first run with them. Throws ShapeError naming the node on mismatches.
  void compile(const std::vector<ImageShape>& source_shapes);

  // Runs a batch. Sources in source_image_handles() order, any batch size (equal across
  // sources). Thread-safe: concurrent runs on one graph are serialized.
  Results run(const std::vector<Image>& sources);
  std::future<Results> run_async(std::vector<Image> sources);
  // A run of a graph with loss nodes: one LossLabels per label_handles() entry. In a training
  // graph this is one training step: forward, loss, backward, then every trainable node's
  // update per its training_style. A non-finite loss throws NumericalError before any
  // update; an update that throws fails the run and leaves the graph's weights unchanged.
  Results run(const std::vector<Image>& sources, const std::vector<LossLabels>& labels);
  std::future<Results> run_async(std::vector<Image> sources, std::vector<LossLabels> labels);

  // The labels nodes of the graph's loss nodes, in the order run() takes LossLabels
  // (Apple: sourceStateHandles).
  std::vector<std::shared_ptr<ImageNode>> label_handles() const;
  // How many batches have run (the dropout masks and UpdateContext::batch count them).
  std::uint64_t batch_count() const;
  // The sets of source sizes that have a compiled program now, the most recently run
  // first (at most GraphOptions::max_compiled_sizes).
  std::vector<std::vector<ImageShape>> compiled_sizes() const;
  // Dynamic loss scaling's state (inactive until the first training run of an f16 CUDA
  // graph).
  LossScaleStatus loss_scale() const;

  // Checkpoints: every trainable node's current weights and biases in one safetensors file
  // (docs/weights-format.md: tensors "<label>.weight" OHWI and "<label>.bias", label = the
  // data source's label, which must be unique in the graph). Loading sets the graph's
  // weights and, for TrainableDataSource, the source's own copy, bit-exactly.
  void save_checkpoint(const std::filesystem::path& path) const;
  void load_checkpoint(const std::filesystem::path& path);
  // The graph as a saved graph (docs/saved-graphs.md): save_graph with this graph's result
  // nodes, after a device graph's training state is synchronized. A training graph's results
  // are gradient nodes, which save_graph refuses: save the forward graph (its loss or its
  // inference results) instead.
  void save(const std::filesystem::path& path) const;

  // Re-reads every data source (load, copy, purge) before the next run.
  void reload_from_data_sources();

  // The compiled graph (nodes, shapes, fused groups, memory) for the last compiled sizes,
  // or the node list alone before any compilation.
  std::string describe() const;
  // Graphviz.
  std::string to_dot() const;

 private:
  struct Impl;
  Impl& impl() const;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cnngraph
