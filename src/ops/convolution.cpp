// Convolution and fully connected: attributes, shape rule and gradient node.
#include "cnngraph/errors.hpp"
#include "io/saved_node.hpp"
#include "ops/op.hpp"

namespace cnngraph {

using detail::ConvolutionOp;

ConvolutionNode::ConvolutionNode(std::shared_ptr<ImageNode> source,
                                 std::shared_ptr<ConvolutionDataSource> weights)
    : ConvolutionNode(std::move(source), std::move(weights), PaddingPolicy::same()) {}

ConvolutionNode::ConvolutionNode(std::shared_ptr<ImageNode> source,
                                 std::shared_ptr<ConvolutionDataSource> weights,
                                 PaddingPolicy default_padding)
    : WeightedNode({std::move(source)}, std::move(weights), std::move(default_padding)),
      gradient_state_(std::make_unique<ConvolutionGradientStateNode>()) {
  if (!this->weights()) throw InvalidArgument(kind() + ": the weights data source is null");
  adopt_state(*gradient_state_);
}

std::shared_ptr<ConvolutionGradientStateNode> ConvolutionNode::convolution_gradient_state() const {
  return share_member(gradient_state_.get());
}

namespace {

std::unique_ptr<ConvolutionOp> lower_convolution(const ConvolutionNode& node,
                                                 detail::LoweringContext& context) {
  detail::require_source_count(node, context, 1);
  auto op = std::make_unique<ConvolutionOp>();
  op->set_weights(node, context.src_shapes, context.weights_for(node));
  const ConvolutionDescriptor& d = op->weights->descriptor;
  op->sub_pixel = d.sub_pixel_scale_factor;
  op->sub_pixel_order = d.sub_pixel_order;
  op->accumulator = node.accumulator_precision;
  if (d.neuron.type != NeuronType::none) {
    op->post_ops.push_back({detail::PostOp::Kind::neuron, d.neuron});
  }
  return op;
}

}  // namespace

std::unique_ptr<detail::Op> ConvolutionNode::lower(detail::LoweringContext& context) const {
  auto op = lower_convolution(*this, context);
  const ConvolutionDescriptor& d = op->weights->descriptor;
  detail::resolve_padding(*this, context.src_shapes[0], d.kernel_width, d.kernel_height, d.stride_x,
                          d.stride_y, d.dilation_x, d.dilation_y, op->x, op->y);
  const std::int64_t s = op->sub_pixel;
  op->dst_shape = detail::result_shape(*this, context.src_shapes[0].batch, op->y.result_size * s,
                                       op->x.result_size * s, op->output_channels / (s * s));
  return op;
}

FullyConnectedNode::FullyConnectedNode(std::shared_ptr<ImageNode> source,
                                       std::shared_ptr<ConvolutionDataSource> weights)
    : ConvolutionNode(std::move(source), std::move(weights), PaddingPolicy::valid()) {}

std::unique_ptr<detail::Op> FullyConnectedNode::lower(detail::LoweringContext& context) const {
  auto op = lower_convolution(*this, context);
  const ConvolutionDescriptor& d = op->weights->descriptor;
  if (d.dilation_x != 1 || d.dilation_y != 1 || d.sub_pixel_scale_factor != 1) {
    throw InvalidArgument(
        display_name() + ": dilation and sub-pixel scaling do not apply to a fully connected node");
  }
  op->set_fully_connected(*this);
  return op;
}

std::shared_ptr<FilterNode> ConvolutionNode::gradient_filter_for(
    std::size_t index, std::shared_ptr<ImageNode> source_gradient) const {
  if (index != 0)
    throw InvalidArgument(display_name() + ": has one source, not " + std::to_string(index + 1));
  return std::make_shared<ConvolutionGradientNode>(std::move(source_gradient), source_images()[0],
                                                   convolution_gradient_state(), weights());
}

ConvolutionGradientNode::ConvolutionGradientNode(
    std::shared_ptr<ImageNode> source_gradient, std::shared_ptr<ImageNode> source_image,
    std::shared_ptr<ConvolutionGradientStateNode> gradient_state,
    std::shared_ptr<ConvolutionDataSource> weights)
    : FilterNode({std::move(source_gradient), std::move(source_image)}, PaddingPolicy::same()) {
  if (!gradient_state || !gradient_state->producer()) {
    throw InvalidArgument(
        "convolution_gradient: needs the convolution_gradient_state() of a forward convolution");
  }
  forward_ = std::static_pointer_cast<const ConvolutionNode>(
      gradient_state->producer()->shared_from_this());
  if (weights != forward_->weights()) {
    throw InvalidArgument(display_name() +
                          ": the weights data source differs from the forward convolution's");
  }
  if (source_images()[1] != forward_->source_images()[0]) {
    throw InvalidArgument(display_name() +
                          ": source_image is not the forward convolution's source image");
  }
}

const WeightedNode* ConvolutionGradientNode::trains() const {
  return gradient_option != GradientOption::input && forward_->is_trainable() ? forward_.get()
                                                                              : nullptr;
}

std::string ConvolutionGradientNode::display_name() const {
  if (!label.empty()) return kind() + " '" + label + "'";
  return "gradient of " + forward_->display_name();
}

std::unique_ptr<detail::Op> ConvolutionGradientNode::lower(detail::LoweringContext& context) const {
  detail::require_source_count(*this, context, 2);
  auto forward = detail::lower_forward_for_gradient(*forward_, context, 1, 1);
  auto op = std::make_unique<detail::ConvolutionGradientOp>();
  op->forward = static_cast<const ConvolutionOp&>(*forward);
  op->dst_shape = context.src_shapes[1];
  op->input_gradient = gradient_option != GradientOption::weights_and_bias;
  if (trains()) {
    op->parameters = context.parameters_for ? context.parameters_for(*forward_) : nullptr;
  }
  return op;
}

namespace detail {
void ConvolutionOp::set_weights(const FilterNode& node, const std::vector<ImageShape>& sources,
                                std::shared_ptr<const PreparedWeights> prepared) {
  const ConvolutionDescriptor& d = prepared->descriptor;
  const ImageShape& src = sources[0];
  if (src.channels != d.input_feature_channels) {
    throw_shape_error(node, "the source image has " + std::to_string(src.channels) +
                                " feature channels but the descriptor's "
                                "input_feature_channels is " +
                                std::to_string(d.input_feature_channels));
  }
  name = node.display_name();
  src_shapes = sources;
  weights = std::move(prepared);
  groups = d.groups;
  kernel_width = d.kernel_width;
  kernel_height = d.kernel_height;
  dilation_x = d.dilation_x;
  dilation_y = d.dilation_y;
  input_channels = d.input_feature_channels;
  output_channels = d.output_feature_channels;
}

void ConvolutionOp::set_fully_connected(const FilterNode& node) {
  const ImageShape& src = src_shapes[0];
  if (src.width != kernel_width || src.height != kernel_height) {
    throw_shape_error(node, "a fully connected node needs a source of the kernel's size " +
                                std::to_string(kernel_width) + "x" + std::to_string(kernel_height) +
                                " (width x height), got " + std::to_string(src.width) + "x" +
                                std::to_string(src.height));
  }
  fully_connected = true;
  x = forward_axis_geometry(src.width, kernel_width, 1, 1, PaddingSize::valid,
                            PaddingAlignment::centered, PaddingRemainder::top_left);
  y = forward_axis_geometry(src.height, kernel_height, 1, 1, PaddingSize::valid,
                            PaddingAlignment::centered, PaddingRemainder::top_left);
  dst_shape = {src.batch, 1, 1, output_channels};
}

std::string ConvolutionOp::attributes() const {
  std::string s = (fully_connected ? "fc " : "") + std::string("k") + std::to_string(kernel_width) +
                  "x" + std::to_string(kernel_height) + " s" + std::to_string(x.stride) + "x" +
                  std::to_string(y.stride) + " d" + std::to_string(dilation_x) + "x" +
                  std::to_string(dilation_y) + " g" + std::to_string(groups) + " pad " +
                  std::to_string(y.pad_before) + "," + std::to_string(x.pad_before) + "," +
                  std::to_string(y.pad_after) + "," + std::to_string(x.pad_after);
  if (sub_pixel > 1)
    s += " subpixel" + std::to_string(sub_pixel) + " " + to_string(sub_pixel_order);
  if (accumulator == AccumulatorPrecision::half) s += " acc=half";
  for (const PostOp& p : post_ops) {
    s += p.kind == PostOp::Kind::sum ? " +sum" : " +" + to_string(p.neuron.type);
  }
  return s;
}

std::string ConvolutionGradientOp::attributes() const {
  return forward.attributes() + (input_gradient ? " diff_src" : "") +
         (parameters ? " diff_weights" : "");
}
}  // namespace detail

void ConvolutionNode::list_attributes(AttributeVisitor& visitor) const {
  WeightedNode::list_attributes(visitor);
  visitor.text("accumulator_precision",
               accumulator_precision == AccumulatorPrecision::half ? "half" : "single");
}

std::string ConvolutionGradientNode::source_name(std::size_t index) const {
  return index == 0 ? "gradient" : "forward_source";
}

void ConvolutionGradientNode::list_attributes(AttributeVisitor& visitor) const {
  visitor.link("forward", *forward_);
  visitor.text("gradient_option", gradient_option == GradientOption::input ? "input"
                                  : gradient_option == GradientOption::all ? "all"
                                                                           : "weights_and_bias");
}

namespace detail {

namespace {
void set_accumulator(ConvolutionNode& node, const SavedNode& saved) {
  node.accumulator_precision = saved.text("accumulator_precision") == "half"
                                   ? AccumulatorPrecision::half
                                   : AccumulatorPrecision::single;
}
}  // namespace

std::shared_ptr<FilterNode> build_convolution(const SavedNode& saved) {
  saved.expect_sources(1);
  auto node = std::make_shared<ConvolutionNode>(saved.sources[0], saved.weighted_source());
  set_accumulator(*node, saved);
  return node;
}

std::shared_ptr<FilterNode> build_fully_connected(const SavedNode& saved) {
  saved.expect_sources(1);
  auto node = std::make_shared<FullyConnectedNode>(saved.sources[0], saved.weighted_source());
  set_accumulator(*node, saved);
  return node;
}
}  // namespace detail

}  // namespace cnngraph
