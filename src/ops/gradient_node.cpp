// GradientNode and FilterNode's gradient entry points; the helpers every gradient recipe uses.
#include "cnngraph/errors.hpp"
#include "ops/lower_node.hpp"
#include "ops/op.hpp"

namespace cnngraph {

std::shared_ptr<FilterNode> FilterNode::gradient_filter_for(std::size_t,
                                                            std::shared_ptr<ImageNode>) const {
  throw Unsupported(display_name() + ": has no gradient");
}

std::shared_ptr<FilterNode> FilterNode::gradient_filter(
    std::shared_ptr<ImageNode> source_gradient) const {
  return gradient_filter_for(0, std::move(source_gradient));
}

std::vector<std::shared_ptr<FilterNode>> FilterNode::gradient_filters(
    std::shared_ptr<ImageNode> source_gradient) const {
  std::vector<std::shared_ptr<FilterNode>> nodes;
  for (std::size_t i = 0; i < source_images().size(); ++i)
    nodes.push_back(gradient_filter_for(i, source_gradient));
  return nodes;
}

std::unique_ptr<detail::Op> FilterNode::lower_gradient(detail::LoweringContext&,
                                                       const GradientNode&) const {
  throw Unsupported(display_name() + ": has no gradient");
}

GradientNode::GradientNode(std::shared_ptr<const FilterNode> forward, std::size_t source_index,
                           std::vector<std::shared_ptr<ImageNode>> sources)
    : FilterNode(std::move(sources), PaddingPolicy::same()),
      forward_(std::move(forward)),
      source_index_(source_index) {
  if (!forward_) throw InvalidArgument("GradientNode: the forward node is null");
  if (source_index_ >= forward_->source_images().size()) {
    throw InvalidArgument(forward_->display_name() + ": has no source " +
                          std::to_string(source_index_) + " to take the gradient of");
  }
}

const WeightedNode* GradientNode::trains() const {
  const WeightedNode* weighted = forward_->weighted();
  return weighted && weighted->is_trainable() ? weighted : nullptr;
}

std::string GradientNode::display_name() const {
  if (!label.empty()) return kind() + " '" + label + "'";
  return "gradient of " + forward_->display_name() +
         (forward_->source_images().size() > 1 ? " (source " + std::to_string(source_index_) + ")"
                                               : "");
}

std::unique_ptr<detail::Op> GradientNode::lower(detail::LoweringContext& context) const {
  return forward_->lower_gradient(context, *this);
}

namespace detail {

std::shared_ptr<FilterNode> make_gradient_node(const FilterNode& forward, std::size_t index,
                                               std::vector<std::shared_ptr<ImageNode>> sources) {
  if (!sources.at(0))
    throw InvalidArgument(forward.display_name() + ": the source gradient is null");
  return std::make_shared<GradientNode>(forward.shared_from_this(), index, std::move(sources));
}

std::unique_ptr<Op> lower_forward_for_gradient(const FilterNode& forward,
                                               const LoweringContext& context, std::size_t first,
                                               std::size_t count) {
  LoweringContext forward_context = context;
  forward_context.src_shapes.assign(context.src_shapes.begin() + first,
                                    context.src_shapes.begin() + first + count);
  auto op = lower_node(forward, forward_context);
  if (context.src_shapes[0] != op->dst_shape) {
    throw_shape_error(forward, "its gradient is " + to_string(context.src_shapes[0]) +
                                   " but its result is " + to_string(op->dst_shape));
  }
  return op;
}

}  // namespace detail
std::string GradientNode::source_name(std::size_t index) const {
  return index == 0 ? "gradient" : "recipe_source " + std::to_string(index - 1);
}

void GradientNode::list_attributes(AttributeVisitor& visitor) const {
  visitor.link("forward", *forward_);
  visitor.integer("source_index", static_cast<std::int64_t>(source_index_));
}

}  // namespace cnngraph
