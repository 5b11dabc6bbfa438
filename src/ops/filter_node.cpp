// FilterNode's shared behaviour and the helpers every op file uses for errors and padding.
#include <cmath>
#include <cstdint>

#include "cnngraph/checked_math.hpp"
#include "cnngraph/errors.hpp"
#include "ops/lower_node.hpp"
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

WeightedNode::WeightedNode(std::vector<std::shared_ptr<ImageNode>> sources,
                           std::shared_ptr<ConvolutionDataSource> weights,
                           PaddingPolicy default_padding)
    : FilterNode(std::move(sources), std::move(default_padding)), weights_(std::move(weights)) {}

namespace {
const char* padding_size_name(PaddingSize size) {
  switch (size) {
    case PaddingSize::valid:
      return "valid";
    case PaddingSize::same:
      return "same";
    case PaddingSize::full:
      return "full";
    case PaddingSize::custom:
      return "custom";
  }
  return "?";
}
const char* alignment_name(PaddingAlignment alignment) {
  switch (alignment) {
    case PaddingAlignment::centered:
      return "centered";
    case PaddingAlignment::top_left:
      return "top_left";
    case PaddingAlignment::bottom_right:
      return "bottom_right";
  }
  return "?";
}
}  // namespace

const char* detail::training_style_name(TrainingStyle style) {
  switch (style) {
    case TrainingStyle::none:
      return "none";
    case TrainingStyle::cpu:
      return "cpu";
    case TrainingStyle::device:
      return "device";
  }
  return "?";
}

void FilterNode::visit_attributes(AttributeVisitor& visitor) const {
  visitor.node(kind(), label);
  for (std::size_t i = 0; i < sources_.size(); ++i)
    visitor.input("source " + std::to_string(i), *sources_[i]);
  visitor.text("padding", padding_size_name(padding_policy.size));
  visitor.text("padding_alignment", alignment_name(padding_policy.alignment));
  visitor.text("padding_remainder", padding_policy.remainder == PaddingRemainder::top_left
                                        ? "top_left"
                                        : "bottom_right");
  if (result_->format) visitor.text("format", to_string(*result_->format));
  visitor.flag("export_from_graph", result_->export_from_graph);
  visitor.flag("stop_gradient", result_->stop_gradient);
  list_attributes(visitor);
}

void FilterNode::list_attributes(AttributeVisitor&) const {}

void WeightedNode::list_attributes(AttributeVisitor& visitor) const {
  visitor.text("weights", weights_->label());
  visitor.text("weights_kind", weights_kind() == WeightsKind::floats ? "floats" : "binary");
  visitor.text("training_style", detail::training_style_name(training_style));
}

std::string WeightedNode::display_name() const {
  if (!label.empty()) return kind() + " '" + label + "'";
  return kind() + " '" + weights_->label() + "'";
}

namespace detail {

std::unique_ptr<Op> lower_node(const FilterNode& node, LoweringContext& context) {
  std::vector<ImageShape> sources = context.src_shapes;
  std::unique_ptr<Op> op = node.lower(context);
  op->name = node.display_name();
  op->src_shapes = std::move(sources);
  return op;
}

void throw_shape_error(const FilterNode& node, const std::string& problem) {
  throw ShapeError(node.display_name() + ": " + problem);
}

void require_source_count(const FilterNode& node, const LoweringContext& context,
                          std::size_t count) {
  if (context.src_shapes.size() != count) {
    throw_shape_error(node, "expects " + std::to_string(count) + " source images, got " +
                                std::to_string(context.src_shapes.size()));
  }
  // Every op's lowering passes here: a source shape no buffer could hold (given to
  // Graph::compile, say) is refused before anything is planned or allocated.
  for (std::size_t i = 0; i < context.src_shapes.size(); ++i) {
    try {
      (void)context.src_shapes[i].elements();
    } catch (const InvalidArgument& e) {
      throw InvalidArgument(node.display_name() + ": source " + std::to_string(i) + ": " +
                            e.what());
    }
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
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(node.display_name() + ": " + axis + " axis: " + e.what());
  }
}

void check_custom_axis(const FilterNode& node, const char* axis, AxisGeometry& g) {
  if (g.result_size <= 0 || g.pad_before < 0 || g.pad_before >= g.kernel_size) {
    throw InvalidArgument(
        node.display_name() + ": the custom padding policy returned " + axis + " result_size " +
        std::to_string(g.result_size) + " and pad_before " + std::to_string(g.pad_before) +
        " (needs result_size > 0 and 0 <= pad_before < " + std::to_string(g.kernel_size) + ")");
  }
  const auto pad_after = fits_int((static_cast<std::int64_t>(g.result_size) - 1) * g.stride +
                                  g.kernel_size - g.source_size - g.pad_before);
  if (!pad_after) {
    throw InvalidArgument(node.display_name() + ": the custom padding policy's " + axis +
                          " result_size " + std::to_string(g.result_size) +
                          " makes the windows span more pixels than an int holds");
  }
  g.pad_after = *pad_after;
}
}  // namespace

ImageShape result_shape(const FilterNode& node, std::int64_t batch, std::int64_t height,
                        std::int64_t width, std::int64_t channels) {
  const auto b = fits_int(batch), h = fits_int(height), w = fits_int(width), c = fits_int(channels);
  const auto count = checked_size_product({batch, height, width, channels});
  if (!b || !h || !w || !c || !count || *count > ImageShape::max_elements) {
    throw InvalidArgument(node.display_name() + ": the result size n" + std::to_string(batch) +
                          "h" + std::to_string(height) + "w" + std::to_string(width) + "c" +
                          std::to_string(channels) + " does not fit (each size an int, at most " +
                          std::to_string(ImageShape::max_elements) + " elements)");
  }
  return {*b, *h, *w, *c};
}

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
