// Max, average, global-average and global-max pooling: attributes, shape rule and gradient.
#include <algorithm>
#include <climits>

#include "cnngraph/errors.hpp"
#include "io/saved_node.hpp"
#include "ops/op.hpp"

namespace cnngraph {

PoolingNode::PoolingNode(std::shared_ptr<ImageNode> source, PoolingType type, int kernel_width,
                         int kernel_height, int stride_x, int stride_y)
    : FilterNode({std::move(source)}, PaddingPolicy::same()),
      type_(type),
      kernel_width_(kernel_width),
      kernel_height_(kernel_height),
      stride_x_(stride_x),
      stride_y_(stride_y) {
  if (kernel_width <= 0 || kernel_height <= 0 || stride_x <= 0 || stride_y <= 0) {
    throw InvalidArgument(kind() + ": kernel and stride must be positive, got kernel " +
                          std::to_string(kernel_width) + "x" + std::to_string(kernel_height) +
                          " stride " + std::to_string(stride_x) + "x" + std::to_string(stride_y));
  }
}

void PoolingNode::set_counts_padding(bool counts) {
  if (counts && type_ != PoolingType::average) {
    throw InvalidArgument(display_name() +
                          ": counting padding pixels applies to average pooling only");
  }
  counts_padding_ = counts;
}

void PoolingNode::set_counted_padding_end(int bottom, int right) {
  if (bottom < 0 || right < 0) {
    throw InvalidArgument(display_name() + ": the counted padding end must be non-negative, got " +
                          "bottom " + std::to_string(bottom) + " right " + std::to_string(right));
  }
  counted_bottom_ = bottom;
  counted_right_ = right;
}

std::string PoolingNode::kind() const {
  return type_ == PoolingType::max ? "max_pooling" : "average_pooling";
}

std::unique_ptr<detail::Op> PoolingNode::lower(detail::LoweringContext& context) const {
  detail::require_source_count(*this, context, 1);
  const ImageShape& src = context.src_shapes[0];
  auto op = std::make_unique<detail::PoolingOp>();
  op->type = type_;
  detail::resolve_padding(*this, src, kernel_width_, kernel_height_, stride_x_, stride_y_, 1, 1,
                          op->x, op->y);
  op->dst_shape = {src.batch, op->y.result_size, op->x.result_size, src.channels};
  if (counts_padding_) {
    // Every window ends by the last one's end (source size + pad_after): the padded image
    // reaches there unless its declared end comes first.
    op->divisor.counts_padding = true;
    op->divisor.padded_after_x = std::min(op->x.pad_after, counted_right_.value_or(INT_MAX));
    op->divisor.padded_after_y = std::min(op->y.pad_after, counted_bottom_.value_or(INT_MAX));
  }
  return op;
}

namespace {
// A window covering the whole source: a 1x1 result per channel.
std::unique_ptr<detail::Op> lower_global_pooling(const FilterNode& node,
                                                 detail::LoweringContext& context,
                                                 PoolingType type) {
  detail::require_source_count(node, context, 1);
  const ImageShape& src = context.src_shapes[0];
  auto op = std::make_unique<detail::PoolingOp>();
  op->type = type;
  op->x = forward_axis_geometry(src.width, src.width, 1, 1, PaddingSize::valid,
                                PaddingAlignment::centered, PaddingRemainder::top_left);
  op->y = forward_axis_geometry(src.height, src.height, 1, 1, PaddingSize::valid,
                                PaddingAlignment::centered, PaddingRemainder::top_left);
  op->dst_shape = {src.batch, 1, 1, src.channels};
  return op;
}
}  // namespace

GlobalAveragePoolingNode::GlobalAveragePoolingNode(std::shared_ptr<ImageNode> source)
    : FilterNode({std::move(source)}, PaddingPolicy::valid()) {}

std::unique_ptr<detail::Op> GlobalAveragePoolingNode::lower(
    detail::LoweringContext& context) const {
  return lower_global_pooling(*this, context, PoolingType::average);
}

GlobalMaxPoolingNode::GlobalMaxPoolingNode(std::shared_ptr<ImageNode> source)
    : FilterNode({std::move(source)}, PaddingPolicy::valid()) {}

std::unique_ptr<detail::Op> GlobalMaxPoolingNode::lower(detail::LoweringContext& context) const {
  return lower_global_pooling(*this, context, PoolingType::max);
}

namespace detail {
std::string PoolingOp::attributes() const {
  return std::string(type == PoolingType::max ? "max" : "avg") + " k" +
         std::to_string(x.kernel_size) + "x" + std::to_string(y.kernel_size) + " s" +
         std::to_string(x.stride) + "x" + std::to_string(y.stride) + " pad " +
         std::to_string(y.pad_before) + "," + std::to_string(x.pad_before) +
         (divisor.counts_padding ? " counts padding" : "");
}
}  // namespace detail

// Gradient: the forward window geometry, recomputed from the forward source's size.
namespace {
std::unique_ptr<detail::Op> lower_pooling_gradient(const FilterNode& node,
                                                   detail::LoweringContext& context) {
  auto forward = detail::lower_forward_for_gradient(node, context, 1, 1);
  const auto& pooling = static_cast<const detail::PoolingOp&>(*forward);
  auto op = std::make_unique<detail::PoolingGradientOp>();
  op->type = pooling.type;
  op->x = pooling.x;
  op->y = pooling.y;
  op->divisor = pooling.divisor;
  op->dst_shape = pooling.src_shapes[0];
  return op;
}
}  // namespace

std::shared_ptr<FilterNode> PoolingNode::gradient_filter_for(
    std::size_t index, std::shared_ptr<ImageNode> source_gradient) const {
  return detail::make_gradient_node(*this, index, {std::move(source_gradient), source_images()[0]});
}

std::unique_ptr<detail::Op> PoolingNode::lower_gradient(detail::LoweringContext& context,
                                                        const GradientNode&) const {
  return lower_pooling_gradient(*this, context);
}

std::shared_ptr<FilterNode> GlobalAveragePoolingNode::gradient_filter_for(
    std::size_t index, std::shared_ptr<ImageNode> source_gradient) const {
  return detail::make_gradient_node(*this, index, {std::move(source_gradient), source_images()[0]});
}

std::unique_ptr<detail::Op> GlobalAveragePoolingNode::lower_gradient(
    detail::LoweringContext& context, const GradientNode&) const {
  return lower_pooling_gradient(*this, context);
}

// The gradient of max pooling over the whole image: to the first maximum (row-major), as
// every backend's max-pooling gradient routes it.
std::shared_ptr<FilterNode> GlobalMaxPoolingNode::gradient_filter_for(
    std::size_t index, std::shared_ptr<ImageNode> source_gradient) const {
  return detail::make_gradient_node(*this, index, {std::move(source_gradient), source_images()[0]});
}

std::unique_ptr<detail::Op> GlobalMaxPoolingNode::lower_gradient(detail::LoweringContext& context,
                                                                 const GradientNode&) const {
  return lower_pooling_gradient(*this, context);
}

void PoolingNode::list_attributes(AttributeVisitor& visitor) const {
  visitor.text("pooling", type_ == PoolingType::max ? "max" : "average");
  visitor.integer("kernel_width", kernel_width_);
  visitor.integer("kernel_height", kernel_height_);
  visitor.integer("stride_x", stride_x_);
  visitor.integer("stride_y", stride_y_);
  if (type_ == PoolingType::average) visitor.flag("counts_padding", counts_padding_);
  if (counted_bottom_) visitor.integer("counted_padding_bottom", *counted_bottom_);
  if (counted_right_) visitor.integer("counted_padding_right", *counted_right_);
}

namespace detail {

std::shared_ptr<FilterNode> build_pooling(const SavedNode& saved) {
  saved.expect_sources(1);
  const PoolingType type = saved.kind == "max_pooling" ? PoolingType::max : PoolingType::average;
  auto node =
      std::make_shared<PoolingNode>(saved.sources[0], type, saved.int_value("kernel_width", 1),
                                    saved.int_value("kernel_height", 1),
                                    saved.int_value("stride_x", 1), saved.int_value("stride_y", 1));
  // Files written before the option have neither attribute: MPS's divisor.
  if (type == PoolingType::average && saved.has("counts_padding"))
    node->set_counts_padding(saved.flag("counts_padding"));
  if (saved.has("counted_padding_bottom") || saved.has("counted_padding_right")) {
    node->set_counted_padding_end(saved.int_value("counted_padding_bottom"),
                                  saved.int_value("counted_padding_right"));
  }
  return node;
}

std::shared_ptr<FilterNode> build_global_average_pooling(const SavedNode& saved) {
  saved.expect_sources(1);
  return std::make_shared<GlobalAveragePoolingNode>(saved.sources[0]);
}

std::shared_ptr<FilterNode> build_global_max_pooling(const SavedNode& saved) {
  saved.expect_sources(1);
  return std::make_shared<GlobalMaxPoolingNode>(saved.sources[0]);
}
}  // namespace detail

}  // namespace cnngraph
