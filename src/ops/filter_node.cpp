// FilterNode's shared behaviour and the helpers every op file uses for errors and padding.
#include <cmath>

#include "cnngraph/errors.hpp"
#include "ops/op.hpp"

namespace cnngraph {

FilterNode::FilterNode(std::vector<std::shared_ptr<ImageNode>> sources,
                       PaddingPolicy default_padding)
    : padding_policy(std::move(default_padding)),
      sources_(std::move(sources)),
      result_(std::make_unique<ImageNode>()) {
  for (const auto& s : sources_) {
    if (!s) throw InvalidArgument("a filter node was given a null source image node");
  }
  result_->producer_ = this;
}

std::shared_ptr<ImageNode> FilterNode::result_image() const { return share_member(result_.get()); }

std::string FilterNode::display_name() const {
  return label.empty() ? kind() : kind() + " '" + label + "'";
}

namespace detail {

void throw_shape_error(const FilterNode& node, const std::string& problem) {
  throw ShapeError(node.display_name() + ": " + problem);
}

void require_source_count(const FilterNode& node, const LoweringContext& context,
                          std::size_t count) {
  if (context.src_shapes.size() != count) {
    throw_shape_error(node, "expects " + std::to_string(count) + " source images, got " +
                                std::to_string(context.src_shapes.size()));
  }
}

namespace {
AxisGeometry standard_axis(const FilterNode& node, const char* axis, int source, int kernel,
                           int stride, int dilation) {
  const PaddingPolicy& p = node.padding_policy;
  try {
    return forward_axis_geometry(source, kernel, stride, dilation, p.size, p.alignment,
                                 p.remainder);
  } catch (const ShapeError& e) {
    throw ShapeError(node.display_name() + ": " + axis + " axis: " + e.what());
  }
}

void check_custom_axis(const FilterNode& node, const char* axis, AxisGeometry& g) {
  if (g.result_size <= 0 || g.pad_before < 0 || g.pad_before >= g.kernel_size) {
    throw InvalidArgument(
        node.display_name() + ": the custom padding policy returned " + axis + " result_size " +
        std::to_string(g.result_size) + " and pad_before " + std::to_string(g.pad_before) +
        " (needs result_size > 0 and 0 <= pad_before < " + std::to_string(g.kernel_size) + ")");
  }
  g.pad_after = (g.result_size - 1) * g.stride + g.kernel_size - g.source_size - g.pad_before;
}
}  // namespace

void resolve_padding(const FilterNode& node, const ImageShape& source, int kernel_width,
                     int kernel_height, int stride_x, int stride_y, int dilation_x, int dilation_y,
                     AxisGeometry& x, AxisGeometry& y) {
  x = standard_axis(node, "x", source.width, kernel_width, stride_x, dilation_x);
  y = standard_axis(node, "y", source.height, kernel_height, stride_y, dilation_y);
  if (node.padding_policy.size == PaddingSize::custom) {
    if (!node.padding_policy.custom) {
      throw InvalidArgument(node.display_name() +
                            ": padding size is custom but the policy has no callback");
    }
    node.padding_policy.custom(x, y);
    check_custom_axis(node, "x", x);
    check_custom_axis(node, "y", y);
  }
}

}  // namespace detail
}  // namespace cnngraph
