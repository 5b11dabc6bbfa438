// Addition (residual) and channel concatenation: shape rules and gradients.
#include <cstdint>

#include "cnngraph/errors.hpp"
#include "io/saved_node.hpp"
#include "ops/op.hpp"

namespace cnngraph {

AdditionNode::AdditionNode(std::shared_ptr<ImageNode> left, std::shared_ptr<ImageNode> right)
    : FilterNode({std::move(left), std::move(right)}, PaddingPolicy::same()) {}

std::unique_ptr<detail::Op> AdditionNode::lower(detail::LoweringContext& context) const {
  detail::require_source_count(*this, context, 2);
  const ImageShape& a = context.src_shapes[0];
  const ImageShape& b = context.src_shapes[1];
  if (a != b) {
    detail::throw_shape_error(
        *this, "the two sources differ in size: " + to_string(a) + " and " + to_string(b));
  }
  auto op = std::make_unique<detail::AdditionOp>();
  op->dst_shape = a;
  return op;
}

ConcatenationNode::ConcatenationNode(std::vector<std::shared_ptr<ImageNode>> sources)
    : FilterNode(std::move(sources), PaddingPolicy::same()) {
  if (source_images().empty()) throw InvalidArgument(kind() + ": needs at least one source");
}

std::unique_ptr<detail::Op> ConcatenationNode::lower(detail::LoweringContext& context) const {
  detail::require_source_count(*this, context, source_images().size());
  ImageShape dst = context.src_shapes[0];
  std::int64_t channels = 0;
  for (const ImageShape& s : context.src_shapes) {
    if (s.batch != dst.batch || s.height != dst.height || s.width != dst.width) {
      detail::throw_shape_error(
          *this, "sources must share batch, height and width: " + to_string(context.src_shapes[0]) +
                     " and " + to_string(s));
    }
    channels += s.channels;
  }
  dst = detail::result_shape(*this, dst.batch, dst.height, dst.width, channels);
  auto op = std::make_unique<detail::ConcatenationOp>();
  op->dst_shape = dst;
  return op;
}

// Gradients: an addition passes its gradient unchanged to both sources; a concatenation
// hands each source its own channels of the gradient.
std::shared_ptr<FilterNode> AdditionNode::gradient_filter_for(
    std::size_t index, std::shared_ptr<ImageNode> source_gradient) const {
  return detail::make_gradient_node(*this, index, {std::move(source_gradient)});
}

std::unique_ptr<detail::Op> AdditionNode::lower_gradient(detail::LoweringContext& context,
                                                         const GradientNode&) const {
  auto op = std::make_unique<detail::ReshapeOp>();
  op->dst_shape = context.src_shapes.at(0);
  return op;
}

std::shared_ptr<FilterNode> ConcatenationNode::gradient_filter_for(
    std::size_t index, std::shared_ptr<ImageNode> source_gradient) const {
  std::vector<std::shared_ptr<ImageNode>> sources{std::move(source_gradient)};
  for (const auto& s : source_images()) sources.push_back(s);
  return detail::make_gradient_node(*this, index, std::move(sources));
}

std::unique_ptr<detail::Op> ConcatenationNode::lower_gradient(detail::LoweringContext& context,
                                                              const GradientNode& gradient) const {
  auto forward = detail::lower_forward_for_gradient(*this, context, 1, source_images().size());
  auto op = std::make_unique<detail::ChannelSliceOp>();
  for (std::size_t i = 0; i < gradient.source_index(); ++i)
    op->first_channel += forward->src_shapes[i].channels;
  op->dst_shape = forward->src_shapes[gradient.source_index()];
  return op;
}

namespace detail {

std::shared_ptr<FilterNode> build_addition(const SavedNode& saved) {
  saved.expect_sources(2);
  return std::make_shared<AdditionNode>(saved.sources[0], saved.sources[1]);
}

std::shared_ptr<FilterNode> build_concatenation(const SavedNode& saved) {
  return std::make_shared<ConcatenationNode>(saved.sources);
}
}  // namespace detail

}  // namespace cnngraph
