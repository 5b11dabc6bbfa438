// Local response normalization nodes, across channels and spatial: parameter checks, shape
// rule (the source's size) and gradient.
#include <cmath>

#include "cnngraph/errors.hpp"
#include "ops/op.hpp"

namespace cnngraph {

CrossChannelNormalizationNode::CrossChannelNormalizationNode(std::shared_ptr<ImageNode> source,
                                                             int kernel_size)
    : FilterNode({std::move(source)}, PaddingPolicy::same()), kernel_size_(kernel_size) {
  if (kernel_size < 1) {
    throw InvalidArgument(kind() + ": kernel_size must be at least 1, got " +
                          std::to_string(kernel_size));
  }
}

namespace {
// The op for either node; `set_window` fills its window.
template <typename Node, typename SetWindow>
std::unique_ptr<detail::Op> lower_normalization(const Node& node, const ImageShape& shape,
                                                bool gradient, SetWindow set_window) {
  const auto fail = [&](const std::string& member, float value, const std::string& rule) {
    throw InvalidArgument(node.display_name() + ": " + member + " is " + std::to_string(value) +
                          "; " + rule);
  };
  if (!(std::isfinite(node.alpha) && node.alpha >= 0.0f))
    fail("alpha", node.alpha, "it must be finite and >= 0");
  if (!std::isfinite(node.beta)) fail("beta", node.beta, "it must be finite");
  // delta > 0 keeps the denominator positive for all-zero windows (no 0^-beta).
  if (!(std::isfinite(node.delta) && node.delta > 0.0f))
    fail("delta", node.delta, "it must be finite and > 0");
  auto op = std::make_unique<detail::CrossChannelNormalizationOp>(gradient);
  set_window(*op);
  op->alpha = node.alpha;
  op->beta = node.beta;
  op->delta = node.delta;
  op->dst_shape = shape;
  return op;
}

std::unique_ptr<detail::Op> lower_normalization(const CrossChannelNormalizationNode& node,
                                                const ImageShape& shape, bool gradient) {
  return lower_normalization(node, shape, gradient, [&](detail::CrossChannelNormalizationOp& op) {
    op.kernel_size = node.kernel_size();
  });
}

std::unique_ptr<detail::Op> lower_normalization(const SpatialNormalizationNode& node,
                                                const ImageShape& shape, bool gradient) {
  return lower_normalization(node, shape, gradient, [&](detail::CrossChannelNormalizationOp& op) {
    op.spatial = true;
    op.kernel_width = node.kernel_width();
    op.kernel_height = node.kernel_height();
  });
}
}  // namespace

std::unique_ptr<detail::Op> CrossChannelNormalizationNode::lower(
    detail::LoweringContext& context) const {
  detail::require_source_count(*this, context, 1);
  auto op = lower_normalization(*this, context.src_shapes[0], false);
  op->name = display_name();
  op->src_shapes = context.src_shapes;
  return op;
}

// Gradient, with d[k] = delta + alpha / N * sum(in^2 over k's window):
//   diff_src[j] = diff_dst[j] * d[j]^-beta
//                 - 2 * beta * alpha / N * in[j] * sum over k whose window holds j of
//                   diff_dst[k] * in[k] * d[k]^(-beta - 1).
std::shared_ptr<FilterNode> CrossChannelNormalizationNode::gradient_filter_for(
    std::size_t index, std::shared_ptr<ImageNode> source_gradient) const {
  return detail::make_gradient_node(*this, index, {std::move(source_gradient), source_images()[0]});
}

std::unique_ptr<detail::Op> CrossChannelNormalizationNode::lower_gradient(
    detail::LoweringContext& context, const GradientNode&) const {
  auto forward = detail::lower_forward_for_gradient(*this, context, 1, 1);
  return lower_normalization(*this, forward->src_shapes[0], true);
}

SpatialNormalizationNode::SpatialNormalizationNode(std::shared_ptr<ImageNode> source,
                                                   int kernel_width, int kernel_height)
    : FilterNode({std::move(source)}, PaddingPolicy::same()),
      kernel_width_(kernel_width),
      kernel_height_(kernel_height) {
  if (kernel_width < 1 || kernel_height < 1) {
    throw InvalidArgument(kind() + ": kernel sizes must be at least 1, got " +
                          std::to_string(kernel_width) + "x" + std::to_string(kernel_height));
  }
}

std::unique_ptr<detail::Op> SpatialNormalizationNode::lower(
    detail::LoweringContext& context) const {
  detail::require_source_count(*this, context, 1);
  auto op = lower_normalization(*this, context.src_shapes[0], false);
  op->name = display_name();
  op->src_shapes = context.src_shapes;
  return op;
}

std::shared_ptr<FilterNode> SpatialNormalizationNode::gradient_filter_for(
    std::size_t index, std::shared_ptr<ImageNode> source_gradient) const {
  return detail::make_gradient_node(*this, index, {std::move(source_gradient), source_images()[0]});
}

std::unique_ptr<detail::Op> SpatialNormalizationNode::lower_gradient(
    detail::LoweringContext& context, const GradientNode&) const {
  auto forward = detail::lower_forward_for_gradient(*this, context, 1, 1);
  return lower_normalization(*this, forward->src_shapes[0], true);
}

}  // namespace cnngraph
