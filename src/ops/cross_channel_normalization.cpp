// Local response normalization nodes, across channels and spatial: parameter checks, shape
// rule (the source's size) and gradient, shared through LocalResponseNormalizationNode.
#include <cmath>

#include "cnngraph/errors.hpp"
#include "io/saved_node.hpp"
#include "ops/op.hpp"

namespace cnngraph {

LocalResponseNormalizationNode::LocalResponseNormalizationNode(std::shared_ptr<ImageNode> source)
    : FilterNode({std::move(source)}, PaddingPolicy::same()) {}

namespace {
std::unique_ptr<detail::CrossChannelNormalizationOp> lower_normalization(
    const LocalResponseNormalizationNode& node, const ImageShape& shape, bool gradient) {
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
  op->alpha = node.alpha;
  op->beta = node.beta;
  op->delta = node.delta;
  op->dst_shape = shape;
  return op;
}
}  // namespace

std::unique_ptr<detail::Op> LocalResponseNormalizationNode::lower(
    detail::LoweringContext& context) const {
  detail::require_source_count(*this, context, 1);
  auto op = lower_normalization(*this, context.src_shapes[0], false);
  set_window(*op);
  return op;
}

std::shared_ptr<FilterNode> LocalResponseNormalizationNode::gradient_filter_for(
    std::size_t index, std::shared_ptr<ImageNode> source_gradient) const {
  return detail::make_gradient_node(*this, index, {std::move(source_gradient), source_images()[0]});
}

std::unique_ptr<detail::Op> LocalResponseNormalizationNode::lower_gradient(
    detail::LoweringContext& context, const GradientNode&) const {
  auto forward = detail::lower_forward_for_gradient(*this, context, 1, 1);
  auto op = lower_normalization(*this, forward->src_shapes[0], true);
  set_window(*op);
  return op;
}

CrossChannelNormalizationNode::CrossChannelNormalizationNode(std::shared_ptr<ImageNode> source,
                                                             int kernel_size)
    : LocalResponseNormalizationNode(std::move(source)), kernel_size_(kernel_size) {
  if (kernel_size < 1) {
    throw InvalidArgument(kind() + ": kernel_size must be at least 1, got " +
                          std::to_string(kernel_size));
  }
}

void CrossChannelNormalizationNode::set_window(detail::CrossChannelNormalizationOp& op) const {
  op.kernel_size = kernel_size_;
}

SpatialNormalizationNode::SpatialNormalizationNode(std::shared_ptr<ImageNode> source,
                                                   int kernel_width, int kernel_height)
    : LocalResponseNormalizationNode(std::move(source)),
      kernel_width_(kernel_width),
      kernel_height_(kernel_height) {
  if (kernel_width < 1 || kernel_height < 1 ||
      !detail::fits_int(static_cast<std::int64_t>(kernel_width) * kernel_height)) {
    throw InvalidArgument(kind() + ": kernel sizes must be at least 1 and their product fit an " +
                          "int, got " + std::to_string(kernel_width) + "x" +
                          std::to_string(kernel_height));
  }
}

void SpatialNormalizationNode::set_window(detail::CrossChannelNormalizationOp& op) const {
  op.spatial = true;
  op.kernel_width = kernel_width_;
  op.kernel_height = kernel_height_;
}

void LocalResponseNormalizationNode::list_attributes(AttributeVisitor& visitor) const {
  visitor.number("alpha", alpha);
  visitor.number("beta", beta);
  visitor.number("delta", delta);
}

void CrossChannelNormalizationNode::list_attributes(AttributeVisitor& visitor) const {
  LocalResponseNormalizationNode::list_attributes(visitor);
  visitor.integer("kernel_size", kernel_size_);
}

void SpatialNormalizationNode::list_attributes(AttributeVisitor& visitor) const {
  LocalResponseNormalizationNode::list_attributes(visitor);
  visitor.integer("kernel_width", kernel_width_);
  visitor.integer("kernel_height", kernel_height_);
}

namespace detail {

namespace {
void set_response(LocalResponseNormalizationNode& node, const SavedNode& saved) {
  node.alpha = saved.real("alpha");
  node.beta = saved.real("beta");
  node.delta = saved.real("delta");
}
}  // namespace

std::shared_ptr<FilterNode> build_cross_channel_normalization(const SavedNode& saved) {
  saved.expect_sources(1);
  auto node = std::make_shared<CrossChannelNormalizationNode>(saved.sources[0],
                                                              saved.int_value("kernel_size", 1));
  set_response(*node, saved);
  return node;
}

std::shared_ptr<FilterNode> build_spatial_normalization(const SavedNode& saved) {
  saved.expect_sources(1);
  auto node = std::make_shared<SpatialNormalizationNode>(
      saved.sources[0], saved.int_value("kernel_width", 1), saved.int_value("kernel_height", 1));
  set_response(*node, saved);
  return node;
}
}  // namespace detail

}  // namespace cnngraph
