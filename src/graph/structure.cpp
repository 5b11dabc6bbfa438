// Graph analysis: depth-first walk from the results, source order, consumers, fusion plan.
#include "graph/structure.hpp"

#include <algorithm>
#include <functional>

#include "cnngraph/errors.hpp"

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
    const GraphStructure& g, const std::function<bool(const ConvolutionNode&)>& can_fuse_into,
    const std::function<bool(const ConvolutionNode&)>& has_own_neuron) {
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
    const auto* conv = dynamic_cast<const ConvolutionNode*>(filter.get());
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

}  // namespace cnngraph::detail
