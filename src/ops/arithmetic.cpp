// Element-wise arithmetic (addition, subtraction, multiplication, division, with
// broadcasting) and channel concatenation: shape rules and gradients.
#include <cstdint>

#include "cnngraph/errors.hpp"
#include "io/saved_node.hpp"
#include "ops/arithmetic_math.hpp"
#include "ops/op.hpp"

namespace cnngraph {

ArithmeticNode::ArithmeticNode(std::shared_ptr<ImageNode> primary,
                               std::shared_ptr<ImageNode> secondary, ArithmeticOperation operation)
    : FilterNode({std::move(primary), std::move(secondary)}, PaddingPolicy::same()),
      operation_(operation) {}

std::string ArithmeticNode::kind() const { return detail::arithmetic_name(operation_); }

std::unique_ptr<detail::Op> ArithmeticNode::lower(detail::LoweringContext& context) const {
  detail::require_source_count(*this, context, 2);
  const ImageShape& a = context.src_shapes[0];
  const ImageShape& b = context.src_shapes[1];
  const auto larger = [&](int x, int y) -> std::int64_t {
    if (x != y && x != 1 && y != 1) {
      detail::throw_shape_error(
          *this, "the sources " + to_string(a) + " and " + to_string(b) +
                     " do not broadcast (in each of batch, height, width and channels the two "
                     "sizes must be equal or one of them 1)");
    }
    return x > y ? x : y;
  };
  const ImageShape dst =
      detail::result_shape(*this, larger(a.batch, b.batch), larger(a.height, b.height),
                           larger(a.width, b.width), larger(a.channels, b.channels));
  // A sum of two images of one size keeps its own op kind: the residual that a convolution
  // fuses and that backends add without any index arithmetic.
  if (operation_ == ArithmeticOperation::addition && a == b) {
    auto op = std::make_unique<detail::AdditionOp>();
    op->dst_shape = dst;
    return op;
  }
  auto op = std::make_unique<detail::ArithmeticOp>();
  op->operation = operation_;
  op->dst_shape = dst;
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

// Gradients: a source at the result's size gets the gradient times the partial derivative
// (a sum or a difference's primary: the gradient itself, which costs no copy); a broadcast
// source the sum of those over the elements that read it. A concatenation hands each source
// its own channels of the gradient.
std::shared_ptr<FilterNode> ArithmeticNode::gradient_filter_for(
    std::size_t index, std::shared_ptr<ImageNode> source_gradient) const {
  return detail::make_gradient_node(
      *this, index, {std::move(source_gradient), source_images()[0], source_images()[1]});
}

std::unique_ptr<detail::Op> ArithmeticNode::lower_gradient(detail::LoweringContext& context,
                                                           const GradientNode& gradient) const {
  auto forward = detail::lower_forward_for_gradient(*this, context, 1, 2);
  const int index = static_cast<int>(gradient.source_index());
  const ImageShape& source = forward->src_shapes[static_cast<std::size_t>(index)];
  const bool linear =
      operation_ == ArithmeticOperation::addition || operation_ == ArithmeticOperation::subtraction;
  if (source == forward->dst_shape &&
      (operation_ == ArithmeticOperation::addition ||
       (operation_ == ArithmeticOperation::subtraction && index == 0))) {
    auto op = std::make_unique<detail::ReshapeOp>();
    op->dst_shape = source;
    op->read_sources = 1;
    return op;
  }
  auto op = std::make_unique<detail::ArithmeticGradientOp>();
  op->operation = operation_;
  op->source_index = index;
  op->primary = forward->src_shapes[0];
  op->secondary = forward->src_shapes[1];
  op->dst_shape = source;
  op->read_sources = linear ? 1 : 3;
  return op;
}

std::string detail::ArithmeticOp::attributes() const { return arithmetic_name(operation); }

std::string detail::ArithmeticGradientOp::attributes() const {
  return std::string(arithmetic_name(operation)) + (source_index == 0 ? " primary" : " secondary");
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

std::shared_ptr<FilterNode> build_subtraction(const SavedNode& saved) {
  saved.expect_sources(2);
  return std::make_shared<SubtractionNode>(saved.sources[0], saved.sources[1]);
}

std::shared_ptr<FilterNode> build_multiplication(const SavedNode& saved) {
  saved.expect_sources(2);
  return std::make_shared<MultiplicationNode>(saved.sources[0], saved.sources[1]);
}

std::shared_ptr<FilterNode> build_division(const SavedNode& saved) {
  saved.expect_sources(2);
  return std::make_shared<DivisionNode>(saved.sources[0], saved.sources[1]);
}

std::shared_ptr<FilterNode> build_concatenation(const SavedNode& saved) {
  return std::make_shared<ConcatenationNode>(saved.sources);
}
}  // namespace detail

}  // namespace cnngraph
