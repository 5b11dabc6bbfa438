// Soft-max and log-soft-max over the channels of each pixel: shape rule.
#include "ops/op.hpp"

namespace cnngraph {

namespace {
std::unique_ptr<detail::Op> lower_softmax(const FilterNode& node, detail::LoweringContext& context,
                                          bool logarithmic) {
  detail::require_source_count(node, context, 1);
  auto op = std::make_unique<detail::SoftMaxOp>();
  op->name = node.display_name();
  op->src_shapes = context.src_shapes;
  op->dst_shape = context.src_shapes[0];
  op->logarithmic = logarithmic;
  return op;
}
}  // namespace

SoftMaxNode::SoftMaxNode(std::shared_ptr<ImageNode> source)
    : FilterNode({std::move(source)}, PaddingPolicy::same()) {}
std::unique_ptr<detail::Op> SoftMaxNode::lower(detail::LoweringContext& context) const {
  return lower_softmax(*this, context, false);
}

LogSoftMaxNode::LogSoftMaxNode(std::shared_ptr<ImageNode> source)
    : FilterNode({std::move(source)}, PaddingPolicy::same()) {}
std::unique_ptr<detail::Op> LogSoftMaxNode::lower(detail::LoweringContext& context) const {
  return lower_softmax(*this, context, true);
}

}  // namespace cnngraph
