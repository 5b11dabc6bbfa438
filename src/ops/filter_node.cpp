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
    case PaddingSize::explicit_pads:
      return "explicit";
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
  for (std::size_t i = 0; i < sources_.size(); ++i) visitor.input(source_name(i), *sources_[i]);
  visitor.text("padding", padding_size_name(padding_policy.size));
  visitor.text("padding_alignment", alignment_name(padding_policy.alignment));
  visitor.text("padding_remainder", padding_policy.remainder == PaddingRemainder::top_left
                                        ? "top_left"
                                        : "bottom_right");
  if (padding_policy.size == PaddingSize::explicit_pads) {
    visitor.integer("pad_top", padding_policy.pads.top);
    visitor.integer("pad_bottom", padding_policy.pads.bottom);
    visitor.integer("pad_left", padding_policy.pads.left);
    visitor.integer("pad_right", padding_policy.pads.right);
    visitor.flag("ceil_mode", padding_policy.pads.ceil_mode);
  }
  if (result_->format) visitor.text("format", to_string(*result_->format));
  visitor.flag("export_from_graph", result_->export_from_graph);
  visitor.flag("stop_gradient", result_->stop_gradient);
  list_attributes(visitor);
}

void FilterNode::list_attributes(AttributeVisitor&) const {}

std::string FilterNode::source_name(std::size_t index) const {
  return sources_.size() == 1 ? "source" : "source " + std::to_string(index);
}

namespace {
void list_descriptor(AttributeVisitor& visitor, const ConvolutionDescriptor& d) {
  visitor.integer("kernel_width", d.kernel_width);
  visitor.integer("kernel_height", d.kernel_height);
  visitor.integer("input_feature_channels", d.input_feature_channels);
  visitor.integer("output_feature_channels", d.output_feature_channels);
  visitor.integer("stride_x", d.stride_x);
  visitor.integer("stride_y", d.stride_y);
  visitor.integer("dilation_x", d.dilation_x);
  visitor.integer("dilation_y", d.dilation_y);
  visitor.integer("groups", d.groups);
  visitor.integer("sub_pixel_scale_factor", d.sub_pixel_scale_factor);
  if (d.sub_pixel_scale_factor != 1) visitor.text("sub_pixel_order", to_string(d.sub_pixel_order));
  if (d.neuron.type != NeuronType::none) {
    visitor.text("neuron", to_string(d.neuron.type));
    visitor.number("neuron_a", d.neuron.a);
    visitor.number("neuron_b", d.neuron.b);
    visitor.number("neuron_c", d.neuron.c);
    if (!d.neuron.prelu_slopes.empty()) visitor.numbers("prelu_slopes", d.neuron.prelu_slopes);
  }
  if (const auto& bn = d.batch_normalization) {
    visitor.numbers("batch_normalization_mean", bn->mean);
    visitor.numbers("batch_normalization_variance", bn->variance);
    visitor.numbers("batch_normalization_gamma", bn->gamma);
    visitor.numbers("batch_normalization_beta", bn->beta);
    visitor.number("batch_normalization_epsilon", bn->epsilon);
  }
}
}  // namespace

void WeightedNode::list_attributes(AttributeVisitor& visitor) const {
  visitor.text("weights", weights_->label());
  visitor.text("weights_kind", weights_kind() == WeightsKind::floats ? "floats" : "binary");
  visitor.text("training_style", detail::training_style_name(training_style));
  // The data source's descriptor (cheap to ask: no load), so that the list says what the
  // node computes.
  list_descriptor(visitor, weights_->descriptor());
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
  if (op->read_sources < sources.size()) sources.resize(op->read_sources);
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
        node.display_name() + ": the padding policy gives " + axis + " result_size " +
        std::to_string(g.result_size) + " and pad_before " + std::to_string(g.pad_before) +
        " (needs result_size > 0 and 0 <= pad_before < " + std::to_string(g.kernel_size) + ")");
  }
  const auto pad_after = fits_int((static_cast<std::int64_t>(g.result_size) - 1) * g.stride +
                                  g.kernel_size - g.source_size - g.pad_before);
  if (!pad_after) {
    throw InvalidArgument(node.display_name() + ": the padding policy's " + axis + " result_size " +
                          std::to_string(g.result_size) +
                          " makes the windows span more pixels than an int holds");
  }
  g.pad_after = *pad_after;
}

// Windows placed by the policy's pads; the same checks then hold as for a callback's.
void apply_explicit_pads(const FilterNode& node, const char* axis, int before, int after,
                         AxisGeometry& g) {
  if (before < 0 || after < 0) {
    throw InvalidArgument(node.display_name() + ": explicit padding on the " + axis + " axis is " +
                          std::to_string(before) + " before and " + std::to_string(after) +
                          " after (each must be at least 0)");
  }
  const std::int64_t result = explicit_result_size(g.source_size, g.kernel_size, g.stride, before,
                                                   after, node.padding_policy.pads.ceil_mode);
  if (result < 1) {
    throw ShapeError(node.display_name() + ": " + axis + " axis: the " +
                     std::to_string(g.kernel_size) + "-pixel window does not fit a source of " +
                     std::to_string(g.source_size) + " with pads " + std::to_string(before) +
                     " and " + std::to_string(after));
  }
  const auto size = fits_int(result);
  if (!size) {
    throw InvalidArgument(node.display_name() + ": " + axis + " axis: the result of " +
                          std::to_string(result) + " pixels does not fit an int");
  }
  g.result_size = *size;
  g.pad_before = before;
  check_custom_axis(node, axis, g);
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
  if (node.padding_policy.size == PaddingSize::explicit_pads) {
    apply_explicit_pads(node, "x", node.padding_policy.pads.left, node.padding_policy.pads.right,
                        x);
    apply_explicit_pads(node, "y", node.padding_policy.pads.top, node.padding_policy.pads.bottom,
                        y);
  } else if (node.padding_policy.size == PaddingSize::custom) {
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
