// The shape-independent analysis of a graph: which nodes, in which order, what feeds what,
// and which nodes fuse into a convolution.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "cnngraph/loss.hpp"
#include "cnngraph/nodes.hpp"

namespace cnngraph::detail {

// Nodes folded into a convolution, in order after it.
struct FusedChain {
  const BatchNormalizationNode* batch_norm = nullptr;  // folded into the weights
  struct Link {
    const FilterNode* node = nullptr;     // a NeuronNode or an AdditionNode
    const ImageNode* residual = nullptr;  // for an addition: its other source
  };
  std::vector<Link> links;
  const ImageNode* output = nullptr;  // the image the fused group produces
  std::vector<const FilterNode*> absorbed() const;
};

struct GraphStructure {
  std::vector<std::shared_ptr<FilterNode>> order;  // every filter, sources before users
  std::vector<std::shared_ptr<ImageNode>> sources;
  // Loss nodes in order; each one's labels and label weights enter through run()'s labels.
  std::vector<const LossNode*> loss_nodes;
  // The forward nodes whose weights this graph updates: those a gradient node of the graph
  // trains(). A node listed twice has two weight-gradient nodes (an error when the graph
  // prepares).
  std::vector<const WeightedNode*> weight_updates;
  // Batch-normalization nodes whose gradient node is in the graph: they run in training mode.
  std::vector<const BatchNormalizationNode*> normalization_updates;
  // Whether any gradient node is present (fusion is then off: backward needs the images).
  bool has_gradients = false;
  std::vector<std::shared_ptr<ImageNode>> results;
  std::vector<bool> results_needed;
  std::map<const ImageNode*, std::vector<const FilterNode*>> consumers;
  std::map<const FilterNode*, std::size_t> position;  // index in order

  bool is_result(const ImageNode* image) const;
};

// Walks back from the results. Throws InvalidArgument for null or source results.
GraphStructure analyze_graph(std::vector<std::shared_ptr<ImageNode>> results,
                             std::vector<bool> results_needed);

// Which convolutions absorb which following nodes. `can_fuse_into(conv)` says whether a
// convolution (a ConvolutionNode, or a BinaryConvolutionNode, which absorbs a batch norm
// only: into its output scale and bias) accepts post-ops at all (it needs the loaded
// descriptor).
std::map<const FilterNode*, FusedChain> plan_fusion(
    const GraphStructure& structure, const std::function<bool(const WeightedNode&)>& can_fuse_into,
    const std::function<bool(const WeightedNode&)>& has_own_neuron);

// Training fusion: two memory-bound neighbours of a training graph merged into one step
// (one pass over memory fewer), planned where the graph's backend runs fused steps
// (Backend::fuses_training_steps) unless GraphOptions::training_fusion is off. The group's
// step sits at the tail's place and writes the tail's result; the head's result, which
// only the tail read, is never stored.
struct TrainingFusion {
  enum class Kind {
    batch_norm_relu,            // head: trained BatchNormalizationNode, tail: relu
    addition_relu,              // head: AdditionNode, tail: relu
    max_pooling_relu_gradient,  // head: a max pooling's gradient, tail: the relu's gradient
    relu_batch_norm_gradient,   // head: a relu's gradient, tail: a batch norm's gradient
    addition_relu_gradient,     // head: AdditionNode (a sum of gradients), tail: relu grad
  };
  Kind kind;
  const FilterNode* head = nullptr;
  const FilterNode* tail = nullptr;
  // relu_batch_norm_gradient whose relu reads the batch norm's own result: the relu's mask
  // is then a function of the batch norm's source and statistics
  // (BatchNormalizationGradientOp::mask_from_statistics).
  bool mask_from_statistics = false;
  // addition_relu: the trained batch norms whose results are the sum's sources (by index)
  // and which nothing else reads; each is normalized within the sum's pass
  // (OpKind::fused_batch_normalization_addition_relu).
  std::array<const FilterNode*, 2> normalized{};
};

struct TrainingFusionPlan {
  std::vector<TrainingFusion> groups;
  std::map<const FilterNode*, std::size_t> head_of, tail_of;  // node -> group index
  std::map<const FilterNode*, std::size_t> normalized_into;   // batch norm -> group index
  // A fused relu's source is never stored: its gradient nodes read the relu's result as
  // their mask instead (the same for a plain relu: y > 0 exactly where x > 0; and for a
  // fused relu_n: 0 < y < b exactly where 0 < x < b).
  std::map<const FilterNode*, const ImageNode*> mask_source;
};

// The training-fusion groups of `structure`, leaving out every node of `chains`. A relu is
// a NeuronNode of type relu with a == +0; batch_norm_relu and relu_batch_norm_gradient also
// take a relu_n with a == +0 (ReLU6) whose ceiling f16 and bf16 hold exactly.
TrainingFusionPlan plan_training_fusion(const GraphStructure& structure,
                                        const std::map<const FilterNode*, FusedChain>& chains);

// The ceiling of a fused relu (a NeuronNode the plan took): a relu_n's b, +infinity for a
// plain relu.
float fused_relu_ceiling(const FilterNode* relu);

}  // namespace cnngraph::detail
