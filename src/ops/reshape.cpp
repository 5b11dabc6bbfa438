// Reshape: the same elements in NHWC order under a new height, width and channel count;
// its gradient reshapes back.
#include "cnngraph/errors.hpp"
#include "io/saved_node.hpp"
#include "ops/op.hpp"

namespace cnngraph {

ReshapeNode::ReshapeNode(std::shared_ptr<ImageNode> source, int height, int width, int channels)
    : FilterNode({std::move(source)}, PaddingPolicy::same()),
      height_(height),
      width_(width),
      channels_(channels) {
  if (height <= 0 || width <= 0 || channels <= 0) {
    throw InvalidArgument(kind() + ": sizes must be positive, got " + std::to_string(height) + "x" +
                          std::to_string(width) + "x" + std::to_string(channels));
  }
}

std::unique_ptr<detail::Op> ReshapeNode::lower(detail::LoweringContext& context) const {
  detail::require_source_count(*this, context, 1);
  const ImageShape& src = context.src_shapes[0];
  const ImageShape dst{src.batch, height_, width_, channels_};
  if (dst.elements_per_image() != src.elements_per_image()) {
    detail::throw_shape_error(*this, "cannot reshape " + to_string(src) + " to " + to_string(dst) +
                                         ": element counts differ");
  }
  auto op = std::make_unique<detail::ReshapeOp>();
  op->dst_shape = dst;
  return op;
}

// Gradient: the gradient reshaped back to the source's sizes.
std::shared_ptr<FilterNode> ReshapeNode::gradient_filter_for(
    std::size_t index, std::shared_ptr<ImageNode> source_gradient) const {
  return detail::make_gradient_node(*this, index, {std::move(source_gradient), source_images()[0]});
}

std::unique_ptr<detail::Op> ReshapeNode::lower_gradient(detail::LoweringContext& context,
                                                        const GradientNode&) const {
  auto forward = detail::lower_forward_for_gradient(*this, context, 1, 1);
  auto op = std::make_unique<detail::ReshapeOp>();
  op->dst_shape = forward->src_shapes[0];
  return op;
}

void ReshapeNode::list_attributes(AttributeVisitor& visitor) const {
  visitor.integer("height", height_);
  visitor.integer("width", width_);
  visitor.integer("channels", channels_);
}

namespace detail {

std::shared_ptr<FilterNode> build_reshape(const SavedNode& saved) {
  saved.expect_sources(1);
  return std::make_shared<ReshapeNode>(saved.sources[0], saved.int_value("height", 1),
                                       saved.int_value("width", 1), saved.int_value("channels", 1));
}
}  // namespace detail

}  // namespace cnngraph
