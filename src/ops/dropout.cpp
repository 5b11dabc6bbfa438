// Dropout: attributes, shape rule and gradient (the same mask applied to the gradient).
#include <cmath>

#include "cnngraph/errors.hpp"
#include "io/saved_node.hpp"
#include "ops/op.hpp"

namespace cnngraph {

DropoutNode::DropoutNode(std::shared_ptr<ImageNode> source, float keep_probability,
                         std::uint64_t seed)
    : FilterNode({std::move(source)}, PaddingPolicy::same()),
      keep_probability_(keep_probability),
      seed_(seed) {
  if (!(keep_probability > 0.0f && keep_probability <= 1.0f)) {
    throw InvalidArgument(kind() + ": keep_probability must be in (0, 1], got " +
                          std::to_string(keep_probability));
  }
}

namespace {
std::unique_ptr<detail::Op> lower_dropout(const DropoutNode& node,
                                          const detail::LoweringContext& context) {
  auto op = std::make_unique<detail::DropoutOp>();
  op->dst_shape = context.src_shapes[0];
  op->keep_probability = node.keep_probability();
  op->seed = node.seed();
  return op;
}
}  // namespace

std::unique_ptr<detail::Op> DropoutNode::lower(detail::LoweringContext& context) const {
  detail::require_source_count(*this, context, 1);
  return lower_dropout(*this, context);
}

std::shared_ptr<FilterNode> DropoutNode::gradient_filter_for(
    std::size_t index, std::shared_ptr<ImageNode> source_gradient) const {
  return detail::make_gradient_node(*this, index, {std::move(source_gradient)});
}

std::unique_ptr<detail::Op> DropoutNode::lower_gradient(detail::LoweringContext& context,
                                                        const GradientNode&) const {
  return lower_dropout(*this, context);
}

void DropoutNode::list_attributes(AttributeVisitor& visitor) const {
  visitor.number("keep_probability", keep_probability_);
  visitor.integer("seed", static_cast<std::int64_t>(seed_));
}

namespace detail {

std::shared_ptr<FilterNode> build_dropout(const SavedNode& saved) {
  saved.expect_sources(1);
  return std::make_shared<DropoutNode>(
      saved.sources[0], saved.real("keep_probability"),
      static_cast<std::uint64_t>(saved.integer("seed", INT64_MIN, INT64_MAX)));
}
}  // namespace detail

}  // namespace cnngraph
