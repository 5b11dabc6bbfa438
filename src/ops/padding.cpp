// Constant padding (PaddingNode): attributes, shape rule and gradient (a crop).
#include <cmath>
#include <cstdint>

#include "cnngraph/errors.hpp"
#include "io/saved_node.hpp"
#include "ops/op.hpp"

namespace cnngraph {

PaddingNode::PaddingNode(std::shared_ptr<ImageNode> source, PaddingAmounts amounts, float value)
    : FilterNode({std::move(source)}, PaddingPolicy::valid()), amounts_(amounts), value_(value) {
  const PaddingAmounts& a = amounts_;
  if (a.top < 0 || a.bottom < 0 || a.left < 0 || a.right < 0 || a.channels_after < 0) {
    throw InvalidArgument(display_name() + ": padding amounts must be non-negative, got top " +
                          std::to_string(a.top) + " bottom " + std::to_string(a.bottom) + " left " +
                          std::to_string(a.left) + " right " + std::to_string(a.right) +
                          " channels_after " + std::to_string(a.channels_after));
  }
  if (!std::isfinite(value)) {
    throw InvalidArgument(display_name() + ": the padding value must be finite, got " +
                          std::to_string(value));
  }
}

std::unique_ptr<detail::Op> PaddingNode::lower(detail::LoweringContext& context) const {
  detail::require_source_count(*this, context, 1);
  const ImageShape& src = context.src_shapes[0];
  // Three ints always add up within 64 bits; result_shape then checks that each size fits
  // an int and the element count an image (checked_math), naming this node.
  const auto grown = [](int size, int before, int after) {
    return std::int64_t{size} + before + after;
  };
  auto op = std::make_unique<detail::PaddingOp>();
  op->top = amounts_.top;
  op->left = amounts_.left;
  op->value = value_;
  op->dst_shape =
      detail::result_shape(*this, src.batch, grown(src.height, amounts_.top, amounts_.bottom),
                           grown(src.width, amounts_.left, amounts_.right),
                           grown(src.channels, 0, amounts_.channels_after));
  return op;
}

namespace detail {
std::string PaddingOp::attributes() const {
  return "top " + std::to_string(top) + " left " + std::to_string(left) + " value " +
         std::to_string(value);
}
}  // namespace detail

std::shared_ptr<FilterNode> PaddingNode::gradient_filter_for(
    std::size_t index, std::shared_ptr<ImageNode> source_gradient) const {
  return detail::make_gradient_node(*this, index, {std::move(source_gradient), source_images()[0]});
}

// The gradient crops diff_dst back to the source's size: the same mapping read backwards.
std::unique_ptr<detail::Op> PaddingNode::lower_gradient(detail::LoweringContext& context,
                                                        const GradientNode&) const {
  auto forward = detail::lower_forward_for_gradient(*this, context, 1, 1);
  auto op = std::make_unique<detail::PaddingOp>();
  op->top = -amounts_.top;
  op->left = -amounts_.left;
  op->dst_shape = forward->src_shapes[0];
  return op;
}

void PaddingNode::list_attributes(AttributeVisitor& visitor) const {
  visitor.integer("top", amounts_.top);
  visitor.integer("bottom", amounts_.bottom);
  visitor.integer("left", amounts_.left);
  visitor.integer("right", amounts_.right);
  visitor.integer("channels_after", amounts_.channels_after);
  visitor.number("value", value_);
}

namespace detail {
std::shared_ptr<FilterNode> build_padding(const SavedNode& saved) {
  saved.expect_sources(1);
  PaddingAmounts amounts;
  amounts.top = saved.int_value("top");
  amounts.bottom = saved.int_value("bottom");
  amounts.left = saved.int_value("left");
  amounts.right = saved.int_value("right");
  amounts.channels_after = saved.int_value("channels_after");
  return std::make_shared<PaddingNode>(saved.sources[0], amounts, saved.real("value"));
}
}  // namespace detail

}  // namespace cnngraph
