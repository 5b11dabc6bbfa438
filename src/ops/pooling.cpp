// Max, average and global-average pooling: attributes, shape rule and gradient.
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
  return op;
}

GlobalAveragePoolingNode::GlobalAveragePoolingNode(std::shared_ptr<ImageNode> source)
    : FilterNode({std::move(source)}, PaddingPolicy::valid()) {}

std::unique_ptr<detail::Op> GlobalAveragePoolingNode::lower(
    detail::LoweringContext& context) const {
  detail::require_source_count(*this, context, 1);
  const ImageShape& src = context.src_shapes[0];
  auto op = std::make_unique<detail::PoolingOp>();
  op->type = PoolingType::average;
  op->x = forward_axis_geometry(src.width, src.width, 1, 1, PaddingSize::valid,
                                PaddingAlignment::centered, PaddingRemainder::top_left);
  op->y = forward_axis_geometry(src.height, src.height, 1, 1, PaddingSize::valid,
                                PaddingAlignment::centered, PaddingRemainder::top_left);
  op->dst_shape = {src.batch, 1, 1, src.channels};
  return op;
}

namespace detail {
std::string PoolingOp::attributes() const {
  return std::string(type == PoolingType::max ? "max" : "avg") + " k" +
         std::to_string(x.kernel_size) + "x" + std::to_string(y.kernel_size) + " s" +
         std::to_string(x.stride) + "x" + std::to_string(y.stride) + " pad " +
         std::to_string(y.pad_before) + "," + std::to_string(x.pad_before);
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

void PoolingNode::list_attributes(AttributeVisitor& visitor) const {
  visitor.text("pooling", type_ == PoolingType::max ? "max" : "average");
  visitor.integer("kernel_width", kernel_width_);
  visitor.integer("kernel_height", kernel_height_);
  visitor.integer("stride_x", stride_x_);
  visitor.integer("stride_y", stride_y_);
}

namespace detail {

std::shared_ptr<FilterNode> build_pooling(const SavedNode& saved) {
  saved.expect_sources(1);
  const PoolingType type = saved.kind == "max_pooling" ? PoolingType::max : PoolingType::average;
  return std::make_shared<PoolingNode>(saved.sources[0], type, saved.int_value("kernel_width", 1),
                                       saved.int_value("kernel_height", 1),
                                       saved.int_value("stride_x", 1),
                                       saved.int_value("stride_y", 1));
}

std::shared_ptr<FilterNode> build_global_average_pooling(const SavedNode& saved) {
  saved.expect_sources(1);
  return std::make_shared<GlobalAveragePoolingNode>(saved.sources[0]);
}
}  // namespace detail

}  // namespace cnngraph
