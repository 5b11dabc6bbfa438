// Soft-max and log-soft-max over the channels of each pixel: shape rule and gradient.
#include "io/saved_node.hpp"
#include "ops/op.hpp"

namespace cnngraph {

namespace {
std::unique_ptr<detail::Op> lower_softmax(const FilterNode& node, detail::LoweringContext& context,
                                          bool logarithmic) {
  detail::require_source_count(node, context, 1);
  auto op = std::make_unique<detail::SoftMaxOp>();
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

// Gradients, from the forward result y: soft-max dx = y * (dy - sum(dy * y)); log-soft-max
// dx = dy - exp(y) * sum(dy).
namespace {
std::unique_ptr<detail::Op> lower_softmax_gradient(const FilterNode& node,
                                                   detail::LoweringContext& context,
                                                   bool logarithmic) {
  detail::require_source_count(node, context, 2);
  if (context.src_shapes[0] != context.src_shapes[1]) {
    detail::throw_shape_error(node, "its gradient is " + to_string(context.src_shapes[0]) +
                                        " but its result is " + to_string(context.src_shapes[1]));
  }
  auto op = std::make_unique<detail::SoftMaxGradientOp>();
  op->logarithmic = logarithmic;
  op->dst_shape = context.src_shapes[1];
  return op;
}
}  // namespace

std::shared_ptr<FilterNode> SoftMaxNode::gradient_filter_for(
    std::size_t index, std::shared_ptr<ImageNode> source_gradient) const {
  return detail::make_gradient_node(*this, index, {std::move(source_gradient), result_image()});
}

std::unique_ptr<detail::Op> SoftMaxNode::lower_gradient(detail::LoweringContext& context,
                                                        const GradientNode&) const {
  return lower_softmax_gradient(*this, context, false);
}

std::shared_ptr<FilterNode> LogSoftMaxNode::gradient_filter_for(
    std::size_t index, std::shared_ptr<ImageNode> source_gradient) const {
  return detail::make_gradient_node(*this, index, {std::move(source_gradient), result_image()});
}

std::unique_ptr<detail::Op> LogSoftMaxNode::lower_gradient(detail::LoweringContext& context,
                                                           const GradientNode&) const {
  return lower_softmax_gradient(*this, context, true);
}

namespace detail {

std::shared_ptr<FilterNode> build_softmax(const SavedNode& saved) {
  saved.expect_sources(1);
  return std::make_shared<SoftMaxNode>(saved.sources[0]);
}

std::shared_ptr<FilterNode> build_log_softmax(const SavedNode& saved) {
  saved.expect_sources(1);
  return std::make_shared<LogSoftMaxNode>(saved.sources[0]);
}
}  // namespace detail

}  // namespace cnngraph
