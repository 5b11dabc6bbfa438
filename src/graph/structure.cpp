// Graph analysis: depth-first walk from the results, source order, consumers, fusion plan.
#include "graph/structure.hpp"

#include <algorithm>
#include <cmath>
#include <functional>

#include "cnngraph/errors.hpp"
#include "cnngraph/image.hpp"

namespace cnngraph::detail {

std::vector<const FilterNode*> FusedChain::absorbed() const {
  std::vector<const FilterNode*> nodes;
  if (batch_norm) nodes.push_back(batch_norm);
  for (const Link& link : links) nodes.push_back(link.node);
  return nodes;
}

bool GraphStructure::is_result(const ImageNode* image) const {
  return std::any_of(results.begin(), results.end(),
                     [&](const auto& r) { return r.get() == image; });
}

GraphStructure analyze_graph(std::vector<std::shared_ptr<ImageNode>> results,
                             std::vector<bool> results_needed) {
  if (results.empty()) throw InvalidArgument("Graph: needs at least one result image node");
  if (results_needed.size() != results.size()) {
    throw InvalidArgument("Graph: " + std::to_string(results.size()) + " result images but " +
                          std::to_string(results_needed.size()) + " results_are_needed flags");
  }
  GraphStructure g;
  std::set<const FilterNode*> visited;
  std::set<const ImageNode*> seen_sources;
  // Post-order depth-first walk: a filter is listed after everything it reads.
  std::function<void(const std::shared_ptr<ImageNode>&)> visit_image;
  visit_image = [&](const std::shared_ptr<ImageNode>& image) {
    if (image->is_source()) {
      if (!image->is_labels() && seen_sources.insert(image.get()).second)
        g.sources.push_back(image);
      return;
    }
    const FilterNode* filter = image->producer();
    if (!visited.insert(filter).second) return;
    for (const auto& source : filter->source_images()) visit_image(source);
    if (const auto* loss = dynamic_cast<const LossNode*>(filter)) g.loss_nodes.push_back(loss);
    if (const FilterNode* forward = filter->gradient_of()) {
      g.has_gradients = true;
      if (const WeightedNode* trained = filter->trains()) g.weight_updates.push_back(trained);
      const auto* bn = dynamic_cast<const BatchNormalizationNode*>(forward);
      if (bn && std::find(g.normalization_updates.begin(), g.normalization_updates.end(), bn) ==
                    g.normalization_updates.end()) {
        g.normalization_updates.push_back(bn);
      }
    }
    g.position[filter] = g.order.size();
    g.order.push_back(std::const_pointer_cast<FilterNode>(filter->shared_from_this()));
    for (const auto& source : filter->source_images()) g.consumers[source.get()].push_back(filter);
  };
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (!results[i]) throw InvalidArgument("Graph: result image " + std::to_string(i) + " is null");
    if (results[i]->is_source()) {
      throw InvalidArgument("Graph: result image " + std::to_string(i) +
                            " is a graph source; no filter produces it");
    }
    visit_image(results[i]);
  }
  g.results = std::move(results);
  g.results_needed = std::move(results_needed);
  return g;
}

std::map<const FilterNode*, FusedChain> plan_fusion(
    const GraphStructure& g, const std::function<bool(const WeightedNode&)>& can_fuse_into,
    const std::function<bool(const WeightedNode&)>& has_own_neuron) {
  std::map<const FilterNode*, FusedChain> chains;
  std::set<const FilterNode*> claimed;  // a node fuses into one convolution at most
  // An image can disappear into a fused group only if nothing else needs to see it.
  const auto private_to_one_consumer = [&](const ImageNode* image) -> const FilterNode* {
    if (image->export_from_graph || g.is_result(image)) return nullptr;
    auto it = g.consumers.find(image);
    if (it == g.consumers.end() || it->second.size() != 1) return nullptr;
    return it->second.front();
  };
  for (const auto& filter : g.order) {
    const auto* binary = dynamic_cast<const BinaryConvolutionNode*>(filter.get());
    const WeightedNode* conv = dynamic_cast<const ConvolutionNode*>(filter.get());
    if (!conv) conv = binary;
    if (!conv || !can_fuse_into(*conv)) continue;
    FusedChain chain;
    const ImageNode* image = conv->result_image().get();
    bool has_neuron = has_own_neuron(*conv);
    bool has_sum = false;
    while (const FilterNode* next = private_to_one_consumer(image)) {
      if (claimed.count(next)) break;
      if (const auto* bn = dynamic_cast<const BatchNormalizationNode*>(next)) {
        // Folding is exact only straight after the convolution's own bias.
        if (chain.batch_norm || !chain.links.empty() || has_neuron) break;
        chain.batch_norm = bn;
      } else if (binary) {
        break;
      } else if (dynamic_cast<const NeuronNode*>(next)) {
        chain.links.push_back({next, nullptr});
        has_neuron = true;
      } else if (dynamic_cast<const AdditionNode*>(next) && !has_sum) {
        const auto& sources = next->source_images();
        const ImageNode* other = sources[0].get() == image ? sources[1].get() : sources[0].get();
        if (other == image) break;
        // The residual must already exist when the convolution runs.
        if (!other->is_source() && g.position.at(other->producer()) > g.position.at(conv)) break;
        chain.links.push_back({next, other});
        has_sum = true;
      } else {
        break;
      }
      claimed.insert(next);
      image = next->result_image().get();
    }
    if (chain.batch_norm || !chain.links.empty()) {
      chain.output = image;
      chains.emplace(conv, std::move(chain));
    }
  }
  return chains;
}

namespace {

const NeuronNode* plain_relu(const FilterNode* node) {
  const auto* neuron = dynamic_cast<const NeuronNode*>(node);
  // A slope of -0 is no plain relu: its negative side is +0 (-0 * x), the fused kernels'
  // -0 (0 * x).
  if (!neuron || neuron->neuron().type != NeuronType::relu || neuron->neuron().a != 0.0f ||
      std::signbit(neuron->neuron().a))
    return nullptr;
  return neuron;
}

// A relu the batch-norm fusions take: a plain relu, or a relu_n of slope 0 (ReLU6) whose
// ceiling f16 and bf16 hold exactly (f32 holds every float), so that its mask computed from its
// result (0 < y < b) is 1 exactly where the one from its source is.
const NeuronNode* batch_norm_relu(const FilterNode* node) {
  if (const NeuronNode* relu = plain_relu(node)) return relu;
  const auto* neuron = dynamic_cast<const NeuronNode*>(node);
  if (!neuron) return nullptr;
  const NeuronDescriptor& d = neuron->neuron();
  const float b = d.b;
  const bool exact =
      half_to_float(float_to_half(b)) == b && bfloat16_to_float(float_to_bfloat16(b)) == b;
  if (d.type != NeuronType::relu_n || d.a != 0.0f || std::signbit(d.a) || !(b > 0.0f) ||
      !std::isfinite(b) || !exact)
    return nullptr;
  return neuron;
}

// The relu whose gradient `node` is, reading `dy` as its gradient (source 0) only.
const NeuronNode* relu_gradient_reading(const FilterNode* node, const ImageNode* dy) {
  const NeuronNode* relu = node->gradient_of() ? plain_relu(node->gradient_of()) : nullptr;
  if (!relu || node->source_images().size() != 2) return nullptr;
  if (node->source_images()[0].get() != dy || node->source_images()[1].get() == dy) return nullptr;
  return relu;
}

}  // namespace

float fused_relu_ceiling(const FilterNode* relu) {
  const auto& d = static_cast<const NeuronNode&>(*relu).neuron();
  return d.type == NeuronType::relu_n ? d.b : INFINITY;
}

TrainingFusionPlan plan_training_fusion(const GraphStructure& g,
                                        const std::map<const FilterNode*, FusedChain>& chains) {
  TrainingFusionPlan plan;
  std::set<const FilterNode*> claimed;
  for (const auto& [conv, chain] : chains) {
    claimed.insert(conv);
    for (const FilterNode* node : chain.absorbed()) claimed.insert(node);
  }
  const auto consumers_of = [&](const ImageNode* image) -> const std::vector<const FilterNode*>* {
    if (image->export_from_graph || g.is_result(image)) return nullptr;
    auto it = g.consumers.find(image);
    return it == g.consumers.end() ? nullptr : &it->second;
  };
  const auto add = [&](TrainingFusion::Kind kind, const FilterNode* head, const FilterNode* tail) {
    plan.head_of[head] = plan.groups.size();
    plan.tail_of[tail] = plan.groups.size();
    plan.groups.push_back({kind, head, tail});
    claimed.insert(head);
    claimed.insert(tail);
  };
  const auto trained_bn = [&](const FilterNode* node) {
    const auto* bn = dynamic_cast<const BatchNormalizationNode*>(node);
    return bn && std::find(g.normalization_updates.begin(), g.normalization_updates.end(), bn) !=
                     g.normalization_updates.end();
  };

  // Forward: a node whose result only one relu reads, apart from that relu's gradient
  // nodes (which then read the relu's result); they run after the relu.
  for (const auto& filter : g.order) {
    const FilterNode* head = filter.get();
    const bool is_bn = trained_bn(head);
    if (claimed.count(head) || (!is_bn && !dynamic_cast<const AdditionNode*>(head))) continue;
    const ImageNode* out = head->result_image().get();
    const auto* readers = consumers_of(out);
    if (!readers) continue;
    const NeuronNode* relu = nullptr;
    for (const FilterNode* reader : *readers) {
      if (const NeuronNode* r = is_bn ? batch_norm_relu(reader) : plain_relu(reader))
        relu = relu ? nullptr : r;
    }
    if (!relu || claimed.count(relu)) continue;
    bool private_to_relu = true;
    for (const FilterNode* reader : *readers) {
      if (reader == relu) continue;
      private_to_relu = private_to_relu && reader->gradient_of() == relu &&
                        reader->source_images()[1].get() == out &&
                        reader->source_images()[0].get() != out &&
                        g.position.at(reader) > g.position.at(relu);
    }
    if (!private_to_relu) continue;
    for (const FilterNode* reader : *readers) {
      if (reader != relu) plan.mask_source[reader] = relu->result_image().get();
    }
    add(is_bn ? TrainingFusion::Kind::batch_norm_relu : TrainingFusion::Kind::addition_relu, head,
        relu);
  }

  // A fused sum's sources that only it reads (its gradient nodes list them too, but an
  // equal-size sum's gradient reads only the incoming gradient) and that trained batch norms
  // produce: the batch norms are normalized in the sum's pass (their results are never
  // stored).
  for (std::size_t k = 0; k < plan.groups.size(); ++k) {
    TrainingFusion& group = plan.groups[k];
    const auto& sources = group.head->source_images();
    if (group.kind != TrainingFusion::Kind::addition_relu || sources.size() != 2 ||
        sources[0] == sources[1])
      continue;
    for (std::size_t s = 0; s < 2; ++s) {
      const FilterNode* bn = sources[s]->producer();
      const auto* readers = consumers_of(sources[s].get());
      if (!bn || !readers) continue;
      const bool only_the_sum = std::all_of(readers->begin(), readers->end(), [&](const auto* r) {
        return r == group.head || r->gradient_of() == group.head;
      });
      if (!only_the_sum || !trained_bn(bn) || claimed.count(bn)) continue;
      group.normalized[s] = bn;
      plan.normalized_into[bn] = k;
      claimed.insert(bn);
    }
  }

  // Backward, in this order of preference: a max pooling's gradient read only by the
  // gradient of the relu before the pooling; a relu's gradient read only by a batch norm's
  // gradient; a sum read only by a relu's gradient.
  const auto only_reader = [&](const FilterNode* head) -> const FilterNode* {
    const auto* readers = consumers_of(head->result_image().get());
    if (!readers || readers->size() != 1 || claimed.count(readers->front())) return nullptr;
    return readers->front();
  };
  for (const auto& filter : g.order) {
    const FilterNode* head = filter.get();
    const auto* pooling = dynamic_cast<const PoolingNode*>(head->gradient_of());
    if (claimed.count(head) || !pooling) continue;
    const FilterNode* tail = only_reader(head);
    if (!tail) continue;
    const NeuronNode* relu = relu_gradient_reading(tail, head->result_image().get());
    if (relu && pooling->source_images()[0] == relu->result_image() &&
        head->source_images().size() == 2 &&
        head->source_images()[1] == pooling->source_images()[0]) {
      add(TrainingFusion::Kind::max_pooling_relu_gradient, head, tail);
    }
  }
  for (const auto& filter : g.order) {
    const FilterNode* head = filter.get();
    if (claimed.count(head) || !head->gradient_of() || !batch_norm_relu(head->gradient_of()))
      continue;
    if (head->source_images().size() != 2) continue;
    const FilterNode* tail = only_reader(head);
    if (!tail || !dynamic_cast<const BatchNormalizationNode*>(tail->gradient_of())) continue;
    const ImageNode* out = head->result_image().get();
    if (tail->source_images().size() == 2 && tail->source_images()[0].get() == out &&
        tail->source_images()[1].get() != out) {
      add(TrainingFusion::Kind::relu_batch_norm_gradient, head, tail);
      plan.groups.back().mask_from_statistics =
          head->gradient_of()->source_images()[0] == tail->gradient_of()->result_image();
    }
  }
  for (const auto& filter : g.order) {
    const FilterNode* head = filter.get();
    if (claimed.count(head) || !dynamic_cast<const AdditionNode*>(head)) continue;
    const FilterNode* tail = only_reader(head);
    if (tail && relu_gradient_reading(tail, head->result_image().get()))
      add(TrainingFusion::Kind::addition_relu_gradient, head, tail);
  }
  return plan;
}

}  // namespace cnngraph::detail
