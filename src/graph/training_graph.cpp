// FilterNode::training_graph: derives the backward graph from the forward nodes, in reverse
// order, one gradient node per forward node that leads to something trainable.
#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "cnngraph/errors.hpp"
#include "cnngraph/loss.hpp"
#include "cnngraph/nodes.hpp"

namespace cnngraph {

namespace {

// Forward filters reachable from `last`, sources before users, not crossing stop_gradient.
std::vector<const FilterNode*> forward_order(const FilterNode& last) {
  std::vector<const FilterNode*> order;
  std::set<const FilterNode*> visited;
  std::function<void(const FilterNode&)> visit = [&](const FilterNode& filter) {
    if (!visited.insert(&filter).second) return;
    for (const auto& source : filter.source_images()) {
      if (!source->is_source() && !source->stop_gradient) visit(*source->producer());
    }
    order.push_back(&filter);
  };
  visit(last);
  return order;
}

class GradientBuilder {
 public:
  explicit GradientBuilder(const GradientNodeHandler& handler) : handler_(handler) {}

  // Whether gradients must flow into `image`: something trainable lies behind it.
  bool needs_gradient(const ImageNode& image) {
    if (image.stop_gradient || image.is_source()) return false;
    auto it = needs_.find(&image);
    if (it != needs_.end()) return it->second;
    const FilterNode& producer = *image.producer();
    bool needs = producer.is_trainable();
    for (const auto& source : producer.source_images()) needs = needs || needs_gradient(*source);
    return needs_[&image] = needs;
  }

  void add_contribution(const ImageNode& image, std::shared_ptr<ImageNode> gradient) {
    contributions_[&image].push_back(std::move(gradient));
  }

  void differentiate(const FilterNode& filter) {
    auto found = contributions_.find(filter.result_image().get());
    if (found == contributions_.end()) return;
    const std::shared_ptr<ImageNode> gradient = sum(filter, found->second);
    for (std::size_t i = 0; i < filter.source_images().size(); ++i) {
      const ImageNode& source = *filter.source_images()[i];
      const bool input = needs_gradient(source);
      // A trainable node's parameter gradients come from its first source's gradient node.
      const bool weights = i == 0 && filter.is_trainable();
      if (!input && !weights) continue;
      std::shared_ptr<FilterNode> node = filter.gradient_filter_for(i, gradient);
      if (!node) continue;  // a shape-only source (a transposed convolution's size reference)
      if (auto* conv_gradient = dynamic_cast<ConvolutionGradientNode*>(node.get())) {
        conv_gradient->gradient_option = !weights ? GradientOption::input
                                         : input  ? GradientOption::all
                                                  : GradientOption::weights_and_bias;
      }
      made(node, filter, source, *gradient);
      if (input) add_contribution(source, node->result_image());
    }
  }

  std::vector<std::shared_ptr<ImageNode>> terminals() const {
    std::vector<std::shared_ptr<ImageNode>> result;
    for (const auto& node : made_) {
      if (!used_.count(node->result_image().get())) result.push_back(node->result_image());
    }
    return result;
  }

 private:
  // The sum of the gradients reaching one image (an addition node per extra reader).
  std::shared_ptr<ImageNode> sum(const FilterNode& filter,
                                 const std::vector<std::shared_ptr<ImageNode>>& parts) {
    std::shared_ptr<ImageNode> total = parts[0];
    for (std::size_t i = 1; i < parts.size(); ++i) {
      auto addition = std::make_shared<AdditionNode>(total, parts[i]);
      addition->label = "sum of gradients of " + filter.display_name();
      made(addition, *addition, *filter.result_image(), *total);
      used_.insert(total.get());
      used_.insert(parts[i].get());
      total = addition->result_image();
    }
    used_.insert(total.get());
    return total;
  }

  void made(const std::shared_ptr<FilterNode>& node, const FilterNode& forward,
            const ImageNode& forward_source, const ImageNode& gradient_source) {
    made_.push_back(node);
    if (handler_) handler_(*node, forward, forward_source, gradient_source);
  }

  const GradientNodeHandler& handler_;
  std::map<const ImageNode*, bool> needs_;
  std::map<const ImageNode*, std::vector<std::shared_ptr<ImageNode>>> contributions_;
  std::vector<std::shared_ptr<FilterNode>> made_;
  std::set<const ImageNode*> used_;
};

}  // namespace

std::vector<std::shared_ptr<ImageNode>> FilterNode::training_graph(
    std::shared_ptr<ImageNode> source_gradient, const GradientNodeHandler& node_handler) const {
  GradientBuilder builder(node_handler);
  std::vector<const FilterNode*> order = forward_order(*this);
  // A loss node's result already is the gradient of its source (the predictions).
  const bool starts_at_loss = !source_gradient && dynamic_cast<const LossNode*>(this);
  if (starts_at_loss) {
    order.pop_back();
    builder.add_contribution(*source_images()[0], result_image());
  } else {
    builder.add_contribution(*result_image(), source_gradient ? source_gradient : result_image());
  }
  for (auto it = order.rbegin(); it != order.rend(); ++it) builder.differentiate(**it);
  auto terminals = builder.terminals();
  if (terminals.empty()) {
    throw InvalidArgument(display_name() +
                          ": training_graph made no gradient node (nothing trainable is reachable "
                          "from it without crossing stop_gradient)");
  }
  return terminals;
}

}  // namespace cnngraph
