// ConvolutionTransposeNode: the adjoint of a convolution. Sizing (from a forward
// convolution's gradient state, or the reverse-filter rule), the adjoint convolution's
// weights and geometry, and the input gradient (which is that convolution itself).
#include <cstdint>

#include "cnngraph/errors.hpp"
#include "io/saved_node.hpp"
#include "ops/op.hpp"

namespace cnngraph {

using detail::ConvolutionOp;
using detail::PreparedWeights;

namespace {
const ConvolutionNode* forward_of(const std::shared_ptr<ConvolutionGradientStateNode>& state) {
  if (!state) return nullptr;
  const auto* forward = dynamic_cast<const ConvolutionNode*>(state->producer());
  if (!forward) {
    throw InvalidArgument(
        "convolution_transpose: the gradient state does not come from a convolution node");
  }
  return forward;
}

// With a gradient state, the forward convolution's source is a shape-only second source:
// the result takes its size.
std::vector<std::shared_ptr<ImageNode>> transpose_sources(
    std::shared_ptr<ImageNode> source, const std::shared_ptr<ConvolutionGradientStateNode>& state) {
  std::vector<std::shared_ptr<ImageNode>> sources{std::move(source)};
  if (const ConvolutionNode* forward = forward_of(state))
    sources.push_back(forward->source_images()[0]);
  return sources;
}
}  // namespace

ConvolutionTransposeNode::ConvolutionTransposeNode(
    std::shared_ptr<ImageNode> source,
    std::shared_ptr<ConvolutionGradientStateNode> convolution_gradient_state,
    std::shared_ptr<ConvolutionDataSource> weights)
    : WeightedNode(transpose_sources(std::move(source), convolution_gradient_state),
                   std::move(weights), PaddingPolicy::same()),
      state_(std::move(convolution_gradient_state)),
      sized_by_(forward_of(state_)) {
  if (!this->weights()) throw InvalidArgument(kind() + ": the weights data source is null");
}

namespace {

int dilated(int kernel, int dilation) { return dilation * (kernel - 1) + 1; }

// The adjoint convolution's axis: from the transpose's result (`out`) to its source (`in`).
AxisGeometry reverse_axis(const ConvolutionTransposeNode& node, const char* axis, int in,
                          int kernel, int stride) {
  const PaddingPolicy& policy = node.padding_policy;
  int style = 0;
  switch (policy.size) {
    case PaddingSize::valid:
      style = -1;
      break;
    case PaddingSize::same:
      style = 0;
      break;
    case PaddingSize::full:
      style = 1;
      break;
    case PaddingSize::custom:
    case PaddingSize::explicit_pads:
      throw Unsupported(node.display_name() +
                        ": a custom or explicit padding policy is not supported without a "
                        "gradient state");
  }
  // In 64 bits: a large stride must not wrap. The span of the adjoint's windows must fit an
  // int for its kernels' index arithmetic.
  const std::int64_t span = (static_cast<std::int64_t>(in) - 1) * stride + kernel;
  const std::int64_t out64 = span - kernel + 1 + static_cast<std::int64_t>(style) * (kernel - 1);
  if (!detail::fits_int(span) || !detail::fits_int(out64)) {
    throw InvalidArgument(node.display_name() + ": axis " + axis + ": a source of " +
                          std::to_string(in) + " at stride " + std::to_string(stride) +
                          " gives a result of " + std::to_string(out64) +
                          " pixels, more than an int holds");
  }
  const int out = static_cast<int>(out64);
  if (out < 1) {
    detail::throw_shape_error(node, std::string("axis ") + axis + ": a source of " +
                                        std::to_string(in) + " gives an empty result");
  }
  const int total = static_cast<int>(span - out);  // padding of the adjoint convolution
  int before = 0;
  switch (policy.alignment) {
    case PaddingAlignment::centered:
      before = policy.remainder == PaddingRemainder::top_left ? (total + 1) / 2 : total / 2;
      break;
    case PaddingAlignment::top_left:
      before = total;
      break;
    case PaddingAlignment::bottom_right:
      before = 0;
      break;
  }
  AxisGeometry g;
  g.source_size = out;
  g.result_size = in;
  g.kernel_size = kernel;
  g.stride = stride;
  g.pad_before = before;
  g.pad_after = total - before;
  return g;
}

// conv_w[i][r][s][o] = w[o][r][s][i] within each group, into `adjoint` (same size).
void transpose_weights(const PreparedWeights& w, std::vector<float>& adjoint) {
  const ConvolutionDescriptor& d = w.descriptor;
  const int G = d.groups, O = d.output_feature_channels, I = d.input_feature_channels;
  const int Og = O / G, Ig = I / G, taps = d.kernel_height * d.kernel_width;
  adjoint.resize(w.weights.size());
  for (int g = 0; g < G; ++g)
    for (int o = 0; o < Og; ++o)
      for (int t = 0; t < taps; ++t)
        for (int i = 0; i < Ig; ++i) {
          adjoint[((static_cast<std::size_t>(g * Ig + i)) * taps + t) * Og + o] =
              w.weights[((static_cast<std::size_t>(g * Og + o)) * taps + t) * Ig + i];
        }
}

}  // namespace

namespace detail {
AdjointWeights::AdjointWeights(std::shared_ptr<const PreparedWeights> weights)
    : source(std::move(weights)), adjoint(std::make_shared<PreparedWeights>()) {
  const ConvolutionDescriptor& d = source->descriptor;
  adjoint->descriptor = d;
  adjoint->descriptor.input_feature_channels = d.output_feature_channels;
  adjoint->descriptor.output_feature_channels = d.input_feature_channels;
  adjoint->source_label = source->source_label;
  adjoint->bias.assign(d.input_feature_channels, 0.0f);
  transpose_weights(*source, adjoint->weights);
  adjoint->version = source->version;
  adjoint->trained = source->trained;  // device kernels then keep no rearranged copy of it
}

void AdjointWeights::refresh() const {
  if (adjoint->version == source->version) return;
  std::lock_guard lock(adjoint->cache_mutex);
  transpose_weights(*source, adjoint->weights);
  adjoint->version = source->version;  // backends re-reorder their cached copies
}
}  // namespace detail

std::unique_ptr<detail::Op> ConvolutionTransposeNode::lower(
    detail::LoweringContext& context) const {
  detail::require_source_count(*this, context, state_ ? 2 : 1);
  const auto weights = context.weights_for(*this);
  const ConvolutionDescriptor& d = weights->descriptor;
  const ImageShape& src = context.src_shapes[0];
  if (src.channels != d.input_feature_channels) {
    detail::throw_shape_error(*this, "the source image has " + std::to_string(src.channels) +
                                         " feature channels but the descriptor's "
                                         "input_feature_channels is " +
                                         std::to_string(d.input_feature_channels));
  }
  if (d.neuron.type != NeuronType::none || d.batch_normalization || d.sub_pixel_scale_factor != 1) {
    throw InvalidArgument(display_name() +
                          ": a transposed convolution's descriptor takes no "
                          "neuron, batch normalization or sub-pixel factor (add nodes after it)");
  }
  const int kw = dilated(d.kernel_width, d.dilation_x), kh = dilated(d.kernel_height, d.dilation_y);
  ConvolutionOp adjoint;
  if (state_) {
    // The forward convolution's own placement over its source, which must be ours reversed.
    const ConvolutionNode& forward = *sized_by_;
    const ConvolutionDescriptor fd = forward.weights()->descriptor();
    if (fd.kernel_width != d.kernel_width || fd.kernel_height != d.kernel_height ||
        fd.stride_x != d.stride_x || fd.stride_y != d.stride_y || fd.dilation_x != d.dilation_x ||
        fd.dilation_y != d.dilation_y) {
      throw InvalidArgument(display_name() + ": kernel, stride and dilation must match those of " +
                            forward.display_name() + ", whose gradient state sizes it");
    }
    detail::resolve_padding(forward, context.src_shapes[1], d.kernel_width, d.kernel_height,
                            d.stride_x, d.stride_y, d.dilation_x, d.dilation_y, adjoint.x,
                            adjoint.y);
    if (adjoint.x.result_size != src.width || adjoint.y.result_size != src.height) {
      detail::throw_shape_error(
          *this, "its source is " + std::to_string(src.width) + "x" + std::to_string(src.height) +
                     " but " + forward.display_name() + " makes " +
                     std::to_string(adjoint.x.result_size) + "x" +
                     std::to_string(adjoint.y.result_size) + " from its source");
    }
  } else {
    adjoint.x = reverse_axis(*this, "x", src.width, kw, d.stride_x);
    adjoint.y = reverse_axis(*this, "y", src.height, kh, d.stride_y);
  }
  const ImageShape result = detail::result_shape(*this, src.batch, adjoint.y.source_size,
                                                 adjoint.x.source_size, d.output_feature_channels);
  adjoint.name = display_name();
  adjoint.src_shapes = {result};
  adjoint.dst_shape = src;
  auto adjoint_weights = std::make_shared<detail::AdjointWeights>(weights);
  adjoint.weights = adjoint_weights->adjoint;
  adjoint.groups = d.groups;
  adjoint.kernel_width = d.kernel_width;
  adjoint.kernel_height = d.kernel_height;
  adjoint.dilation_x = d.dilation_x;
  adjoint.dilation_y = d.dilation_y;
  adjoint.input_channels = d.output_feature_channels;
  adjoint.output_channels = d.input_feature_channels;

  auto op = std::make_unique<detail::ConvolutionTransposeOp>();
  op->dst_shape = result;
  op->inner.name = display_name();
  op->inner.forward = std::move(adjoint);
  op->inner.src_shapes = {src, result};
  op->inner.dst_shape = result;
  op->inner.input_gradient = true;
  op->weights = std::move(adjoint_weights);
  return op;
}

// The input gradient of a transpose is its adjoint convolution applied to the result's
// gradient. Sources: the result's gradient, then the transpose's own sources. The shape-only
// second source has no gradient: null.
std::shared_ptr<FilterNode> ConvolutionTransposeNode::gradient_filter_for(
    std::size_t index, std::shared_ptr<ImageNode> source_gradient) const {
  if (index != 0) return nullptr;
  std::vector<std::shared_ptr<ImageNode>> sources{std::move(source_gradient)};
  for (const auto& s : source_images()) sources.push_back(s);
  return detail::make_gradient_node(*this, index, std::move(sources));
}

std::unique_ptr<detail::Op> ConvolutionTransposeNode::lower_gradient(
    detail::LoweringContext& context, const GradientNode& gradient) const {
  auto forward = detail::lower_forward_for_gradient(*this, context, 1, state_ ? 2 : 1);
  auto& transpose = static_cast<detail::ConvolutionTransposeOp&>(*forward);
  const ImageShape& y = context.src_shapes[1];
  auto op = std::make_unique<detail::ConvolutionTransposeGradientOp>();
  op->dst_shape = y;
  op->weights = transpose.weights;
  op->input_gradient = transpose.inner.forward;
  op->input_gradient.name = gradient.display_name();
  op->input_gradient.src_shapes = {context.src_shapes[0]};
  op->input_gradient.dst_shape = y;
  if (training_style != TrainingStyle::none && context.parameters_for)
    op->parameters = context.parameters_for(*this);
  if (op->parameters) {
    auto scratch = std::make_shared<detail::TrainedWeights>();
    scratch->prepared = op->weights->adjoint;
    scratch->gradient.descriptor = op->weights->adjoint->descriptor;
    scratch->gradient.node_label = display_name();
    scratch->gradient.weights_gradient.assign(op->weights->adjoint->weights.size(), 0.0f);
    scratch->gradient.bias_gradient.assign(op->weights->adjoint->bias.size(), 0.0f);
    op->adjoint_parameters = std::move(scratch);
    detail::ConvolutionGradientOp& w = op->weights_gradient;
    w.name = gradient.display_name();
    w.forward = op->input_gradient;  // the adjoint convolution, reading dz
    w.src_shapes = {y, context.src_shapes[0]};
    w.dst_shape = context.src_shapes[0];
    w.input_gradient = false;
    w.parameters = op->adjoint_parameters.get();
  }
  return op;
}

void ConvolutionTransposeNode::list_attributes(AttributeVisitor& visitor) const {
  WeightedNode::list_attributes(visitor);
  if (sized_by_) visitor.link("sized_by", *sized_by_);
}

namespace detail {

// Sized by a convolution, the node also reads that convolution's source (for its shape);
// the link rebuilds it.
std::shared_ptr<FilterNode> build_convolution_transpose(const SavedNode& saved) {
  saved.expect_sources(saved.links.count("sized_by") ? 2 : 1);
  std::shared_ptr<ConvolutionGradientStateNode> state;
  if (saved.links.count("sized_by")) {
    const auto* convolution = dynamic_cast<const ConvolutionNode*>(&saved.link("sized_by"));
    if (!convolution) throw DataSourceError(saved.where + ": 'sized_by' is not a convolution");
    state = convolution->convolution_gradient_state();
  }
  return std::make_shared<ConvolutionTransposeNode>(saved.sources[0], std::move(state),
                                                    saved.weighted_source());
}
}  // namespace detail

}  // namespace cnngraph
