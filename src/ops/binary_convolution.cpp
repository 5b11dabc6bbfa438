// BinaryConvolutionNode and BinaryFullyConnectedNode: attributes, term checks, shape rule.
#include <cmath>

#include "cnngraph/errors.hpp"
#include "io/saved_node.hpp"
#include "ops/op.hpp"

namespace cnngraph {

namespace {
const char* type_name(BinaryConvolutionType type) {
  switch (type) {
    case BinaryConvolutionType::binary_weights:
      return "binary_weights";
    case BinaryConvolutionType::xnor:
      return "xnor";
    case BinaryConvolutionType::and_:
      return "and";
  }
  return "?";
}
}  // namespace

BinaryConvolutionNode::BinaryConvolutionNode(std::shared_ptr<ImageNode> source,
                                             std::shared_ptr<ConvolutionDataSource> weights,
                                             float scale_value, BinaryConvolutionType type,
                                             BinaryConvolutionFlags flags,
                                             BinaryConvolutionTerms terms)
    : BinaryConvolutionNode(std::move(source), std::move(weights), scale_value, type, flags,
                            std::move(terms), PaddingPolicy::valid()) {}

BinaryConvolutionNode::BinaryConvolutionNode(std::shared_ptr<ImageNode> source,
                                             std::shared_ptr<ConvolutionDataSource> weights,
                                             float scale_value, BinaryConvolutionType type,
                                             BinaryConvolutionFlags flags,
                                             BinaryConvolutionTerms terms,
                                             PaddingPolicy default_padding)
    : WeightedNode({std::move(source)}, std::move(weights), std::move(default_padding)),
      scale_value_(scale_value),
      type_(type),
      flags_(flags),
      terms_(std::move(terms)) {
  if (!this->weights()) throw InvalidArgument(kind() + ": the weights data source is null");
  if (!std::isfinite(scale_value_)) {
    throw InvalidArgument(kind() + ": scale_value must be finite, got " +
                          std::to_string(scale_value));
  }
  for (const auto* terms_of :
       {&terms_.input_bias, &terms_.input_scale, &terms_.output_bias, &terms_.output_scale}) {
    for (float v : *terms_of) {
      if (!std::isfinite(v)) throw InvalidArgument(kind() + ": a bias or scale term is not finite");
    }
  }
}

namespace {

std::unique_ptr<detail::BinaryConvolutionOp> lower_binary(const BinaryConvolutionNode& node,
                                                          detail::LoweringContext& context) {
  detail::require_source_count(node, context, 1);
  auto op = std::make_unique<detail::BinaryConvolutionOp>();
  op->set_weights(node, context.src_shapes, context.weights_for(node));
  const ConvolutionDescriptor& d = op->weights->descriptor;
  const BinaryConvolutionTerms& t = node.terms();
  const auto check = [&](const std::vector<float>& terms, int expected, const char* name) {
    if (!terms.empty() && static_cast<int>(terms.size()) != expected) {
      throw InvalidArgument(node.display_name() + ": " + name + " has " +
                            std::to_string(terms.size()) + " entries, expected " +
                            std::to_string(expected));
    }
  };
  check(t.input_bias, d.input_feature_channels, "input_bias");
  check(t.input_scale, d.input_feature_channels, "input_scale");
  check(t.output_bias, d.output_feature_channels, "output_bias");
  check(t.output_scale, d.output_feature_channels, "output_scale");
  op->type = node.type();
  op->scale_value = node.scale_value();
  op->beta_scaling = node.flags().use_beta_scaling;
  op->terms = t;
  return op;
}

}  // namespace

std::unique_ptr<detail::Op> BinaryConvolutionNode::lower(detail::LoweringContext& context) const {
  auto op = lower_binary(*this, context);
  const ConvolutionDescriptor& d = op->weights->descriptor;
  detail::resolve_padding(*this, context.src_shapes[0], d.kernel_width, d.kernel_height, d.stride_x,
                          d.stride_y, d.dilation_x, d.dilation_y, op->x, op->y);
  op->dst_shape = {context.src_shapes[0].batch, op->y.result_size, op->x.result_size,
                   op->output_channels};
  return op;
}

BinaryFullyConnectedNode::BinaryFullyConnectedNode(std::shared_ptr<ImageNode> source,
                                                   std::shared_ptr<ConvolutionDataSource> weights,
                                                   float scale_value, BinaryConvolutionType type,
                                                   BinaryConvolutionFlags flags,
                                                   BinaryConvolutionTerms terms)
    : BinaryConvolutionNode(std::move(source), std::move(weights), scale_value, type, flags,
                            std::move(terms), PaddingPolicy::valid()) {}

std::unique_ptr<detail::Op> BinaryFullyConnectedNode::lower(
    detail::LoweringContext& context) const {
  auto op = lower_binary(*this, context);
  op->set_fully_connected(*this);
  return op;
}

// Gradient: sources dy, x (the forward's source).
std::shared_ptr<FilterNode> BinaryConvolutionNode::gradient_filter_for(
    std::size_t index, std::shared_ptr<ImageNode> source_gradient) const {
  return detail::make_gradient_node(*this, index, {std::move(source_gradient), source_images()[0]});
}

std::unique_ptr<detail::Op> BinaryConvolutionNode::lower_gradient(detail::LoweringContext& context,
                                                                  const GradientNode&) const {
  auto forward = detail::lower_forward_for_gradient(*this, context, 1, 1);
  auto op = std::make_unique<detail::BinaryConvolutionGradientOp>();
  op->forward = static_cast<const detail::BinaryConvolutionOp&>(*forward);
  op->dst_shape = forward->src_shapes[0];
  if (training_style != TrainingStyle::none && context.parameters_for)
    op->parameters = context.parameters_for(*this);
  return op;
}

namespace detail {
void BinaryConvolutionOp::fold_channel_affine(const std::vector<float>& scale,
                                              const std::vector<float>& shift) {
  if (terms.output_scale.empty()) terms.output_scale.assign(output_channels, 1.0f);
  if (terms.output_bias.empty()) terms.output_bias.assign(output_channels, 0.0f);
  for (int o = 0; o < output_channels; ++o) {
    terms.output_scale[o] *= scale[o];
    terms.output_bias[o] = terms.output_bias[o] * scale[o] + shift[o];
  }
}

BitPacking BinaryConvolutionOp::source_packing() const {
  BitPacking packing;
  packing.channels = input_channels;
  packing.groups = groups;
  packing.strict = type == BinaryConvolutionType::and_;
  packing.magnitudes = beta_scaling;
  packing.input_bias = terms.input_bias;
  packing.input_scale = terms.input_scale;
  return packing;
}

std::string BinaryConvolutionOp::attributes() const {
  return std::string(type_name(type)) + (beta_scaling ? " beta " : " ") +
         ConvolutionOp::attributes() + (packed_source ? " bits_in" : "") +
         (packed_result ? " bits_out" : "");
}
}  // namespace detail

void BinaryConvolutionNode::list_attributes(AttributeVisitor& visitor) const {
  WeightedNode::list_attributes(visitor);
  visitor.number("scale_value", scale_value_);
  visitor.text("binary_type", type_name(type_));
  visitor.flag("use_beta_scaling", flags_.use_beta_scaling);
  visitor.numbers("input_bias", terms_.input_bias);
  visitor.numbers("input_scale", terms_.input_scale);
  visitor.numbers("output_bias", terms_.output_bias);
  visitor.numbers("output_scale", terms_.output_scale);
}

namespace detail {

namespace {
template <typename Node>
std::shared_ptr<FilterNode> build_binary(const SavedNode& saved) {
  saved.expect_sources(1);
  BinaryConvolutionFlags flags;
  flags.use_beta_scaling = saved.flag("use_beta_scaling");
  BinaryConvolutionTerms terms{saved.numbers("input_bias"), saved.numbers("input_scale"),
                               saved.numbers("output_bias"), saved.numbers("output_scale")};
  return std::make_shared<Node>(
      saved.sources[0], saved.weighted_source(), saved.real("scale_value"),
      saved.choice<BinaryConvolutionType>("binary_type", 3, type_name), flags, std::move(terms));
}
}  // namespace

std::shared_ptr<FilterNode> build_binary_convolution(const SavedNode& saved) {
  return build_binary<BinaryConvolutionNode>(saved);
}
std::shared_ptr<FilterNode> build_binary_fully_connected(const SavedNode& saved) {
  return build_binary<BinaryFullyConnectedNode>(saved);
}
}  // namespace detail

}  // namespace cnngraph
