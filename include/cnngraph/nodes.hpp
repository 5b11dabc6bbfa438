// The nodes a graph is built from: ImageNode (MPSNNImageNode), StateNode (MPSNNStateNode),
// FilterNode (MPSNNFilterNode) and every concrete filter. Nodes only describe work; a Graph
// compiles and runs them. Create them with std::make_shared: a filter's result_image()
// keeps the filter (and everything it reads) alive.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cnngraph/attributes.hpp"
#include "cnngraph/batch_normalization_source.hpp"
#include "cnngraph/data_source.hpp"
#include "cnngraph/descriptor.hpp"
#include "cnngraph/image.hpp"
#include "cnngraph/padding.hpp"

namespace cnngraph {

namespace detail {
struct Op;
struct LoweringContext;
struct CrossChannelNormalizationOp;
}  // namespace detail

class FilterNode;
class GradientNode;
class LossNode;
class WeightedNode;

// Apple: MPSNNImageNode. A source (graph input) when no filter produces it.
class ImageNode {
 public:
  explicit ImageNode(std::string handle = "") : handle(std::move(handle)) {}

  // The graph input in source_image_handles() order is named by this handle.
  std::string handle;
  // Storage type of this image; unset means the graph's precision.
  std::optional<DataType> format;
  // Keep this intermediate and return it with the results.
  bool export_from_graph = false;
  // The training graph does not propagate gradients past this node.
  bool stop_gradient = false;

  // The filter that makes this image, or null for a graph source.
  const FilterNode* producer() const { return producer_; }
  bool is_source() const { return producer_ == nullptr; }
  // True for a loss node's labels (and label weights): they enter through Graph::run's
  // labels, not as source images.
  bool is_labels() const { return is_labels_; }

 private:
  friend class FilterNode;
  friend class LossNode;
  const FilterNode* producer_ = nullptr;
  bool is_labels_ = false;
};

// Apple: MPSNNStateNode. Non-image data passed between nodes.
class StateNode {
 public:
  explicit StateNode(std::string handle = "") : handle(std::move(handle)) {}
  virtual ~StateNode() = default;
  std::string handle;
  const FilterNode* producer() const { return producer_; }

 private:
  friend class FilterNode;
  class GradientNode;
  class LossNode;
  const FilterNode* producer_ = nullptr;
};

// Apple: MPSCNNConvolutionGradientStateNode. Links a forward convolution to its gradient
// node and to a ConvolutionTransposeNode that must undo its sizing.
class ConvolutionGradientStateNode : public StateNode {
 public:
  using StateNode::StateNode;
};

// Where a trainable node's weights are updated (MPSNNTrainingStyle).
enum class TrainingStyle { none, cpu, device };

// MPSNNConvolutionAccumulatorPrecisionOption: half permits 16-bit accumulation.
enum class AccumulatorPrecision { half, single };

// Called by training_graph for each node it makes (Apple: MPSGradientNodeBlock): the new
// node, the forward node it differentiates (or, for an inserted sum of gradients, that
// addition node itself), the forward source it is the gradient of, and its gradient source.
using GradientNodeHandler =
    std::function<void(FilterNode& gradient_node, const FilterNode& forward_node,
                       const ImageNode& forward_source, const ImageNode& gradient_source)>;

// Apple: MPSNNFilterNode.
class FilterNode : public std::enable_shared_from_this<FilterNode> {
 public:
  virtual ~FilterNode() = default;
  FilterNode(const FilterNode&) = delete;
  FilterNode& operator=(const FilterNode&) = delete;

  std::shared_ptr<ImageNode> result_image() const;
  const std::vector<std::shared_ptr<ImageNode>>& source_images() const { return sources_; }

  // Used in every error message and in describe() / to_dot().
  std::string label;
  PaddingPolicy padding_policy;

  // The operation's name, e.g. "convolution".
  virtual std::string kind() const = 0;
  // label if set, otherwise a name derived from the kind (and data source).
  virtual std::string display_name() const;

  // Library internal: turns this node into a planned operation for given source sizes.
  virtual std::unique_ptr<detail::Op> lower(detail::LoweringContext& context) const = 0;

  // The node computing the gradient with respect to source `source_index` from the gradient
  // of this node's result. Throws Unsupported for nodes without a gradient.
  virtual std::shared_ptr<FilterNode> gradient_filter_for(
      std::size_t source_index, std::shared_ptr<ImageNode> source_gradient) const;
  // Apple: gradientFilter(withSource:), for the first source.
  std::shared_ptr<FilterNode> gradient_filter(std::shared_ptr<ImageNode> source_gradient) const;
  // Apple: gradientFilters(withSource:), one per source.
  std::vector<std::shared_ptr<FilterNode>> gradient_filters(
      std::shared_ptr<ImageNode> source_gradient) const;

  // Apple: trainingGraph(withSourceGradient:nodeHandler:). Walks back from this node (usually
  // a loss) and makes a gradient node for every forward node that leads to something
  // trainable, in reverse order; stops at graph sources and at stop_gradient images; sums
  // the gradients of an image read by several filters; computes no input gradient for a
  // graph source (the first layer). With no source_gradient, the result of this node is the
  // starting gradient (a loss node's result is its gradient). Returns the result images of
  // the terminal nodes: build a Graph from them (results not needed) to run forward, loss,
  // backward and the weight updates in one go.
  std::vector<std::shared_ptr<ImageNode>> training_graph(
      std::shared_ptr<ImageNode> source_gradient = nullptr,
      const GradientNodeHandler& node_handler = {}) const;

  // Whether this node has parameters that a training graph updates.
  virtual bool is_trainable() const { return false; }

  // This node as a node with convolution weights, or null: what a graph loads, trains and
  // checkpoints.
  virtual const WeightedNode* weighted() const { return nullptr; }
  // For a gradient node, the forward node it differentiates; null for a forward node.
  virtual const FilterNode* gradient_of() const { return nullptr; }
  // For a gradient node that computes the weight gradients a training graph updates its
  // forward node's weights from: that forward node; null otherwise.
  virtual const WeightedNode* trains() const { return nullptr; }

  // Library internal: lowers a GradientNode made by this node's gradient_filter_for.
  virtual std::unique_ptr<detail::Op> lower_gradient(detail::LoweringContext& context,
                                                     const GradientNode& gradient) const;

  // Lists this node to `visitor`: node(kind(), label), input() per source image (named by
  // source_name()), the padding policy and the result image's format and flags, then
  // list_attributes().
  void visit_attributes(AttributeVisitor& visitor) const;
  // The role of source image `index`: "source" for a node of one source, "source <index>"
  // unless the node names its sources (a gradient node's "gradient", an addition's
  // "primary" and "secondary", ...).
  virtual std::string source_name(std::size_t index) const;

 protected:
  // The node's own attributes, in one place per node (a subclass lists its parent's first).
  virtual void list_attributes(AttributeVisitor& visitor) const;

  FilterNode(std::vector<std::shared_ptr<ImageNode>> sources, PaddingPolicy default_padding);
  // Aliases a member of this node so that holding it keeps the node alive.
  template <typename T>
  std::shared_ptr<T> share_member(T* member) const {
    return std::shared_ptr<T>(std::const_pointer_cast<FilterNode>(shared_from_this()), member);
  }
  void adopt_state(StateNode& state) const { state.producer_ = this; }

 private:
  std::vector<std::shared_ptr<ImageNode>> sources_;
  std::unique_ptr<ImageNode> result_;
};

// How a weighted node's kernels read its weights: as floats, or binarized by sign (a binary
// convolution, which trains float shadow weights).
enum class WeightsKind { floats, binary };

// A node whose convolution weights come from a data source: ConvolutionNode (fully connected
// included), BinaryConvolutionNode and ConvolutionTransposeNode. A graph loads, trains and
// checkpoints weights through this interface only, so a new weighted node needs nothing of
// the graph beyond it.
class WeightedNode : public FilterNode {
 public:
  // Where a training graph updates the weights (section "Training" of the README).
  TrainingStyle training_style = TrainingStyle::device;

  const std::shared_ptr<ConvolutionDataSource>& weights() const { return weights_; }
  virtual WeightsKind weights_kind() const { return WeightsKind::floats; }

  // A node label overrides the data source's label, as in MPS.
  std::string display_name() const override;
  bool is_trainable() const override { return training_style != TrainingStyle::none; }
  const WeightedNode* weighted() const override { return this; }
  void list_attributes(AttributeVisitor& visitor) const override;

 protected:
  // Each subclass refuses a null `weights` (its message names its kind).
  WeightedNode(std::vector<std::shared_ptr<ImageNode>> sources,
               std::shared_ptr<ConvolutionDataSource> weights, PaddingPolicy default_padding);

 private:
  std::shared_ptr<ConvolutionDataSource> weights_;
};

// Apple: MPSCNNConvolutionNode.
class ConvolutionNode : public WeightedNode {
 public:
  ConvolutionNode(std::shared_ptr<ImageNode> source,
                  std::shared_ptr<ConvolutionDataSource> weights);

  AccumulatorPrecision accumulator_precision = AccumulatorPrecision::single;

  std::shared_ptr<ConvolutionGradientStateNode> convolution_gradient_state() const;

  std::string kind() const override { return "convolution"; }
  void list_attributes(AttributeVisitor& visitor) const override;
  std::unique_ptr<detail::Op> lower(detail::LoweringContext& context) const override;
  std::shared_ptr<FilterNode> gradient_filter_for(
      std::size_t source_index, std::shared_ptr<ImageNode> source_gradient) const override;

 protected:
  ConvolutionNode(std::shared_ptr<ImageNode> source, std::shared_ptr<ConvolutionDataSource> weights,
                  PaddingPolicy default_padding);

 private:
  std::unique_ptr<ConvolutionGradientStateNode> gradient_state_;
};

// Apple: MPSCNNFullyConnectedNode. A convolution whose kernel covers the whole source image;
// the result is 1x1 with output_feature_channels channels. Padding is valid.
class FullyConnectedNode : public ConvolutionNode {
 public:
  FullyConnectedNode(std::shared_ptr<ImageNode> source,
                     std::shared_ptr<ConvolutionDataSource> weights);
  std::string kind() const override { return "fully_connected"; }
  std::unique_ptr<detail::Op> lower(detail::LoweringContext& context) const override;
};

// Apple: MPSCNNNeuronNode and its per-type subclasses.
class NeuronNode : public FilterNode {
 public:
  NeuronNode(std::shared_ptr<ImageNode> source, NeuronDescriptor neuron);
  const NeuronDescriptor& neuron() const { return neuron_; }
  std::string kind() const override { return "neuron_" + to_string(neuron_.type); }
  void list_attributes(AttributeVisitor& visitor) const override;
  std::unique_ptr<detail::Op> lower(detail::LoweringContext& context) const override;
  std::shared_ptr<FilterNode> gradient_filter_for(
      std::size_t source_index, std::shared_ptr<ImageNode> source_gradient) const override;
  std::unique_ptr<detail::Op> lower_gradient(detail::LoweringContext& context,
                                             const GradientNode& gradient) const override;

 private:
  NeuronDescriptor neuron_;
};

enum class PoolingType { max, average };

// Apple: MPSCNNPoolingMaxNode / MPSCNNPoolingAverageNode. Default padding `same`;
// out-of-image pixels are left out (MPS's clamp edge mode: max ignores them, average
// divides by the number of pixels inside the image).
class PoolingNode : public FilterNode {
 public:
  PoolingNode(std::shared_ptr<ImageNode> source, PoolingType type, int kernel_width,
              int kernel_height, int stride_x, int stride_y);
  PoolingType type() const { return type_; }
  void list_attributes(AttributeVisitor& visitor) const override;
  int kernel_width() const { return kernel_width_; }
  int kernel_height() const { return kernel_height_; }
  int stride_x() const { return stride_x_; }
  int stride_y() const { return stride_y_; }
  std::string kind() const override;
  std::unique_ptr<detail::Op> lower(detail::LoweringContext& context) const override;
  std::shared_ptr<FilterNode> gradient_filter_for(
      std::size_t source_index, std::shared_ptr<ImageNode> source_gradient) const override;
  std::unique_ptr<detail::Op> lower_gradient(detail::LoweringContext& context,
                                             const GradientNode& gradient) const override;

  // Average pooling only (InvalidArgument on max pooling): divide each window's sum by the
  // number of its pixels inside the padded image, padding pixels included (ONNX
  // count_include_pad = 1, PyTorch's default), instead of by its pixels inside the image.
  // Padding pixels add zero to the sum. Default false (MPS).
  void set_counts_padding(bool counts);
  bool counts_padding() const { return counts_padding_; }
  // With counts_padding: the padded image ends `bottom` rows below and `right` columns right
  // of the source (ONNX's end pads, non-negative: InvalidArgument otherwise). The last
  // windows of ceil mode may reach further; those pixels are not counted, as in ONNX and
  // PyTorch. Unset, the padded image ends where the last window does: every window then
  // divides by kernel_width * kernel_height.
  void set_counted_padding_end(int bottom, int right);
  std::optional<int> counted_padding_bottom() const { return counted_bottom_; }
  std::optional<int> counted_padding_right() const { return counted_right_; }

 private:
  PoolingType type_;
  int kernel_width_, kernel_height_, stride_x_, stride_y_;
  bool counts_padding_ = false;
  std::optional<int> counted_bottom_, counted_right_;
};

class MaxPoolingNode : public PoolingNode {
 public:
  // filter_size x filter_size window, stride filter_size (MPS's nodeWithSource:filterSize:).
  MaxPoolingNode(std::shared_ptr<ImageNode> source, int filter_size)
      : PoolingNode(std::move(source), PoolingType::max, filter_size, filter_size, filter_size,
                    filter_size) {}
  MaxPoolingNode(std::shared_ptr<ImageNode> source, int kernel_width, int kernel_height,
                 int stride_x, int stride_y)
      : PoolingNode(std::move(source), PoolingType::max, kernel_width, kernel_height, stride_x,
                    stride_y) {}
};

class AveragePoolingNode : public PoolingNode {
 public:
  AveragePoolingNode(std::shared_ptr<ImageNode> source, int filter_size)
      : PoolingNode(std::move(source), PoolingType::average, filter_size, filter_size, filter_size,
                    filter_size) {}
  AveragePoolingNode(std::shared_ptr<ImageNode> source, int kernel_width, int kernel_height,
                     int stride_x, int stride_y)
      : PoolingNode(std::move(source), PoolingType::average, kernel_width, kernel_height, stride_x,
                    stride_y) {}
};

// Average over the whole image: the result is 1x1 per channel.
class GlobalAveragePoolingNode : public FilterNode {
 public:
  explicit GlobalAveragePoolingNode(std::shared_ptr<ImageNode> source);
  std::string kind() const override { return "global_average_pooling"; }
  std::unique_ptr<detail::Op> lower(detail::LoweringContext& context) const override;
  std::shared_ptr<FilterNode> gradient_filter_for(
      std::size_t source_index, std::shared_ptr<ImageNode> source_gradient) const override;
  std::unique_ptr<detail::Op> lower_gradient(detail::LoweringContext& context,
                                             const GradientNode& gradient) const override;
};

// Maximum over the whole image: the result is 1x1 per channel (ONNX GlobalMaxPool). The
// gradient goes to the position of the maximum; where several pixels hold it, to the first
// in row-major order (as in max pooling).
class GlobalMaxPoolingNode : public FilterNode {
 public:
  explicit GlobalMaxPoolingNode(std::shared_ptr<ImageNode> source);
  std::string kind() const override { return "global_max_pooling"; }
  std::unique_ptr<detail::Op> lower(detail::LoweringContext& context) const override;
  std::shared_ptr<FilterNode> gradient_filter_for(
      std::size_t source_index, std::shared_ptr<ImageNode> source_gradient) const override;
  std::unique_ptr<detail::Op> lower_gradient(detail::LoweringContext& context,
                                             const GradientNode& gradient) const override;
};

// How far PaddingNode extends an image on each side. All non-negative.
struct PaddingAmounts {
  int top = 0, bottom = 0, left = 0, right = 0;
  int channels_after = 0;  // feature channels added after the last
};

// Constant padding: the source surrounded by `amounts` rows, columns (and channels after the
// last) of `value` (ONNX Pad in constant mode over height, width and trailing channels;
// PyTorch's ConstantPad2d). Apple has no such node (MPS pads inside each filter). The
// gradient crops the padding off. Negative amounts or a value that is not finite:
// InvalidArgument naming the node; a result too large for an image: InvalidArgument when
// the graph is compiled.
class PaddingNode : public FilterNode {
 public:
  PaddingNode(std::shared_ptr<ImageNode> source, PaddingAmounts amounts, float value = 0.0f);
  std::string kind() const override { return "padding"; }
  const PaddingAmounts& amounts() const { return amounts_; }
  float value() const { return value_; }
  void list_attributes(AttributeVisitor& visitor) const override;
  std::unique_ptr<detail::Op> lower(detail::LoweringContext& context) const override;
  std::shared_ptr<FilterNode> gradient_filter_for(
      std::size_t source_index, std::shared_ptr<ImageNode> source_gradient) const override;
  std::unique_ptr<detail::Op> lower_gradient(detail::LoweringContext& context,
                                             const GradientNode& gradient) const override;

 private:
  PaddingAmounts amounts_;
  float value_;
};

// The element-wise operation of an ArithmeticNode.
enum class ArithmeticOperation { addition, subtraction, multiplication, division };

// Apple: MPSNNBinaryArithmeticNode. primary (op) secondary, element by element, with
// broadcasting: in each of batch, height, width and channels the two sizes are equal or one
// of them is 1, and the result takes the larger (a 1 x 1 x 1 x C image scales every pixel
// per channel, an N x 1 x 1 x C one every image's pixels, an N x H x W x 1 one every
// channel). Other sizes are a ShapeError naming the node and both sizes. The gradient of a
// source that was broadcast is summed over the dimensions it was broadcast along.
class ArithmeticNode : public FilterNode {
 public:
  ArithmeticOperation operation() const { return operation_; }
  // "addition", "subtraction", "multiplication" or "division".
  std::string kind() const override;
  std::string source_name(std::size_t index) const override {
    return index == 0 ? "primary" : "secondary";
  }
  std::unique_ptr<detail::Op> lower(detail::LoweringContext& context) const override;
  // The gradient node reads the gradient and both forward sources (the sizes of both,
  // and the values that a product or quotient needs).
  std::shared_ptr<FilterNode> gradient_filter_for(
      std::size_t source_index, std::shared_ptr<ImageNode> source_gradient) const override;
  std::unique_ptr<detail::Op> lower_gradient(detail::LoweringContext& context,
                                             const GradientNode& gradient) const override;

 protected:
  ArithmeticNode(std::shared_ptr<ImageNode> primary, std::shared_ptr<ImageNode> secondary,
                 ArithmeticOperation operation);

 private:
  ArithmeticOperation operation_;
};

// Apple: MPSNNAdditionNode. primary + secondary (a residual when both have one size).
class AdditionNode : public ArithmeticNode {
 public:
  AdditionNode(std::shared_ptr<ImageNode> left, std::shared_ptr<ImageNode> right)
      : ArithmeticNode(std::move(left), std::move(right), ArithmeticOperation::addition) {}
};

// Apple: MPSNNSubtractionNode. primary - secondary.
class SubtractionNode : public ArithmeticNode {
 public:
  SubtractionNode(std::shared_ptr<ImageNode> primary, std::shared_ptr<ImageNode> secondary)
      : ArithmeticNode(std::move(primary), std::move(secondary), ArithmeticOperation::subtraction) {
  }
};

// Apple: MPSNNMultiplicationNode. primary * secondary.
class MultiplicationNode : public ArithmeticNode {
 public:
  MultiplicationNode(std::shared_ptr<ImageNode> primary, std::shared_ptr<ImageNode> secondary)
      : ArithmeticNode(std::move(primary), std::move(secondary),
                       ArithmeticOperation::multiplication) {}
};

// Apple: MPSNNDivisionNode. primary / secondary (IEEE: a zero divisor gives an infinity or
// NaN, as on the GPU).
class DivisionNode : public ArithmeticNode {
 public:
  DivisionNode(std::shared_ptr<ImageNode> primary, std::shared_ptr<ImageNode> secondary)
      : ArithmeticNode(std::move(primary), std::move(secondary), ArithmeticOperation::division) {}
};

// Apple: MPSNNConcatenationNode. Joins images of the same size along channels.
class ConcatenationNode : public FilterNode {
 public:
  explicit ConcatenationNode(std::vector<std::shared_ptr<ImageNode>> sources);
  std::string kind() const override { return "concatenation"; }
  std::unique_ptr<detail::Op> lower(detail::LoweringContext& context) const override;
  std::shared_ptr<FilterNode> gradient_filter_for(
      std::size_t source_index, std::shared_ptr<ImageNode> source_gradient) const override;
  std::unique_ptr<detail::Op> lower_gradient(detail::LoweringContext& context,
                                             const GradientNode& gradient) const override;
};

// Apple: MPSCNNSoftMaxNode. Soft-max over the channels of each pixel.
class SoftMaxNode : public FilterNode {
 public:
  explicit SoftMaxNode(std::shared_ptr<ImageNode> source);
  std::string kind() const override { return "softmax"; }
  std::unique_ptr<detail::Op> lower(detail::LoweringContext& context) const override;
  std::shared_ptr<FilterNode> gradient_filter_for(
      std::size_t source_index, std::shared_ptr<ImageNode> source_gradient) const override;
  std::unique_ptr<detail::Op> lower_gradient(detail::LoweringContext& context,
                                             const GradientNode& gradient) const override;
};

// Apple: MPSCNNLogSoftMaxNode.
class LogSoftMaxNode : public FilterNode {
 public:
  explicit LogSoftMaxNode(std::shared_ptr<ImageNode> source);
  std::string kind() const override { return "log_softmax"; }
  std::unique_ptr<detail::Op> lower(detail::LoweringContext& context) const override;
  std::shared_ptr<FilterNode> gradient_filter_for(
      std::size_t source_index, std::shared_ptr<ImageNode> source_gradient) const override;
  std::unique_ptr<detail::Op> lower_gradient(detail::LoweringContext& context,
                                             const GradientNode& gradient) const override;
};

// Apple: MPSCNNBatchNormalizationNode. In a graph that also holds its gradient node (a
// training graph through it), it normalizes with the batch's own statistics, and after each
// batch the data source updates its running averages and, unless training_style is none,
// trains gamma and beta with its optimizer. Everywhere else it is the inference form: the
// data source's running averages, folded into a scale and shift (or into a preceding
// convolution's weights) when the graph is compiled.
class BatchNormalizationNode : public FilterNode {
 public:
  BatchNormalizationNode(std::shared_ptr<ImageNode> source,
                         std::shared_ptr<BatchNormalizationDataSource> data_source);
  // Fixed parameters: a data source of its own without an optimizer.
  BatchNormalizationNode(std::shared_ptr<ImageNode> source,
                         BatchNormalizationParameters parameters);

  // Whether a training graph trains gamma and beta (on the CPU backends, cpu and device
  // both update in place through the data source).
  TrainingStyle training_style = TrainingStyle::device;

  const std::shared_ptr<BatchNormalizationDataSource>& data_source() const { return source_; }
  // The data source's current parameters.
  BatchNormalizationParameters parameters() const;
  std::string kind() const override { return "batch_normalization"; }
  void list_attributes(AttributeVisitor& visitor) const override;
  std::unique_ptr<detail::Op> lower(detail::LoweringContext& context) const override;
  std::shared_ptr<FilterNode> gradient_filter_for(
      std::size_t source_index, std::shared_ptr<ImageNode> source_gradient) const override;
  std::unique_ptr<detail::Op> lower_gradient(detail::LoweringContext& context,
                                             const GradientNode& gradient) const override;
  bool is_trainable() const override;

 private:
  std::shared_ptr<BatchNormalizationDataSource> source_;
};

// Apple: MPSCNNConvolutionTransposeNode: the exact adjoint (transpose) of a convolution. Its
// data source's descriptor describes the transpose itself: input_feature_channels are the
// channels it reads, output_feature_channels the channels it makes; weights OHWI
// [output][kh][kw][input / groups], bias (optional) per output channel. Then
//   <conv(x), y> = <x, transpose(y)>   (bias aside)
// for the convolution conv with weights conv_w[i][r][s][o] = w[o][r][s][i] (per group), the
// same kernel, stride and dilation, from the transpose's result size to its source size.
// Result size: with `convolution_gradient_state` (of a forward convolution in the same graph,
// whose kernel, stride and dilation must match), exactly that convolution's source size and
// its padding; without it (null), per axis
//   out = (in - 1) * stride + 1 + style * (dilated kernel - 1)
// with style -1 / 0 / +1 for a valid / same / full padding_policy (default same; custom is
// not supported), padding placed by the policy's alignment and remainder. Its gradient node
// gives the input gradient (gradient_filter_for(1, ...), the shape-only source of the state,
// is null) and, unless training_style is none, the weight and bias gradients that update the
// data source after each batch, as for a ConvolutionNode.
class ConvolutionTransposeNode : public WeightedNode {
 public:
  ConvolutionTransposeNode(std::shared_ptr<ImageNode> source,
                           std::shared_ptr<ConvolutionGradientStateNode> convolution_gradient_state,
                           std::shared_ptr<ConvolutionDataSource> weights);
  // The forward convolution whose source size the result takes, or null.
  const ConvolutionNode* sized_by() const { return sized_by_; }
  std::string kind() const override { return "convolution_transpose"; }
  void list_attributes(AttributeVisitor& visitor) const override;
  std::unique_ptr<detail::Op> lower(detail::LoweringContext& context) const override;
  std::shared_ptr<FilterNode> gradient_filter_for(
      std::size_t source_index, std::shared_ptr<ImageNode> source_gradient) const override;
  std::unique_ptr<detail::Op> lower_gradient(detail::LoweringContext& context,
                                             const GradientNode& gradient) const override;

 private:
  std::shared_ptr<ConvolutionGradientStateNode> state_;
  const ConvolutionNode* sized_by_ = nullptr;
};

// Apple: MPSCNNBinaryConvolutionType.
//   binary_weights: weights sign(w) (+1 for w >= 0, else -1), the input at full precision.
//   xnor: input and weights both +1/-1 (+1 for values >= 0); a product is an XNOR of bits and
//         the sum over n in-image taps is 2 * popcount(xnor) - n.
//   and:  input 1 where > 0, else 0; weights 1 where w >= 0 (a set bit), else 0; the sum is
//         popcount(and).
enum class BinaryConvolutionType { binary_weights, xnor, and_ };
// Apple: MPSCNNBinaryConvolutionFlags. use_beta_scaling multiplies each output pixel by the
// mean absolute value of the (biased, scaled) input under its window: over the in-image taps
// and the group's channels (XNOR-Net's K).
struct BinaryConvolutionFlags {
  bool use_beta_scaling = false;
};

// Per input / output feature channel terms of a binary convolution; empty means none.
struct BinaryConvolutionTerms {
  std::vector<float> input_bias, input_scale, output_bias, output_scale;
};

// Apple: MPSCNNBinaryConvolutionNode (and MPSCNNBinaryFullyConnectedNode below). Computes,
// per output channel o,
//   x' = (x + input_bias) * input_scale                   (per input channel, when given)
//   y  = (scale_value * beta * S(x', w) + bias[o]) * output_scale[o] + output_bias[o]
// where S is the binary sum of `type`, beta the window's mean |x'| with use_beta_scaling
// (else 1), and bias the data source's bias_terms (0 if none). Padding taps contribute
// nothing. The data source gives float weights (binarized by sign) or bit-packed words
// (QuantizationType::binary, see ArrayDataSource::bit_packed). Default padding `valid`, as
// in MPS. Beyond MPS, it trains: the gradient node uses the straight-through estimator
// (docs/family.md) and updates the data source's float shadow weights (a
// TrainableDataSource, say), as training_style says; bit-packed weights cannot be trained.
class BinaryConvolutionNode : public WeightedNode {
 public:
  BinaryConvolutionNode(std::shared_ptr<ImageNode> source,
                        std::shared_ptr<ConvolutionDataSource> weights, float scale_value,
                        BinaryConvolutionType type, BinaryConvolutionFlags flags = {},
                        BinaryConvolutionTerms terms = {});
  WeightsKind weights_kind() const override { return WeightsKind::binary; }
  std::shared_ptr<FilterNode> gradient_filter_for(
      std::size_t source_index, std::shared_ptr<ImageNode> source_gradient) const override;
  std::unique_ptr<detail::Op> lower_gradient(detail::LoweringContext& context,
                                             const GradientNode& gradient) const override;
  float scale_value() const { return scale_value_; }
  BinaryConvolutionType type() const { return type_; }
  const BinaryConvolutionFlags& flags() const { return flags_; }
  const BinaryConvolutionTerms& terms() const { return terms_; }
  std::string kind() const override { return "binary_convolution"; }
  void list_attributes(AttributeVisitor& visitor) const override;
  std::unique_ptr<detail::Op> lower(detail::LoweringContext& context) const override;

 protected:
  BinaryConvolutionNode(std::shared_ptr<ImageNode> source,
                        std::shared_ptr<ConvolutionDataSource> weights, float scale_value,
                        BinaryConvolutionType type, BinaryConvolutionFlags flags,
                        BinaryConvolutionTerms terms, PaddingPolicy default_padding);

 private:
  float scale_value_;
  BinaryConvolutionType type_;
  BinaryConvolutionFlags flags_;
  BinaryConvolutionTerms terms_;
};

// Apple: MPSCNNBinaryFullyConnectedNode: the kernel covers the whole source; result 1x1.
class BinaryFullyConnectedNode : public BinaryConvolutionNode {
 public:
  BinaryFullyConnectedNode(std::shared_ptr<ImageNode> source,
                           std::shared_ptr<ConvolutionDataSource> weights, float scale_value,
                           BinaryConvolutionType type, BinaryConvolutionFlags flags = {},
                           BinaryConvolutionTerms terms = {});
  std::string kind() const override { return "binary_fully_connected"; }
  std::unique_ptr<detail::Op> lower(detail::LoweringContext& context) const override;
};

// What the local response normalizations share: alpha, beta and delta (checked when the graph
// is compiled: alpha >= 0, delta > 0, all finite; MPS's defaults 1, 5, 1), the shape rule
// (the source's size) and the gradient, a GradientNode:
//   d = delta + alpha / N * sum(in^2 over the window), out = in * d^-beta,
//   diff_src[j] = diff_dst[j] d[j]^-beta - 2 beta alpha / N in[j] * (sum over the elements e
//                 whose window holds j of diff_dst[e] in[e] d[e]^(-beta - 1)).
class LocalResponseNormalizationNode : public FilterNode {
 public:
  float alpha = 1.0f;
  float beta = 5.0f;
  float delta = 1.0f;
  void list_attributes(AttributeVisitor& visitor) const override;
  std::unique_ptr<detail::Op> lower(detail::LoweringContext& context) const override;
  std::shared_ptr<FilterNode> gradient_filter_for(
      std::size_t source_index, std::shared_ptr<ImageNode> source_gradient) const override;
  std::unique_ptr<detail::Op> lower_gradient(detail::LoweringContext& context,
                                             const GradientNode& gradient) const override;

 protected:
  explicit LocalResponseNormalizationNode(std::shared_ptr<ImageNode> source);
  // Library internal: the window of the node's op.
  virtual void set_window(detail::CrossChannelNormalizationOp& op) const = 0;
};

// Apple: MPSCNNCrossChannelNormalizationNode (local response normalization across channels).
// For channel k of D, with N = kernel_size, the window is the channels q from
// max(0, k - floor(N/2)) to min(D - 1, k + floor((N - 1) / 2)); alpha is divided by the
// nominal N, not by the clipped count. PyTorch's LocalResponseNorm(size=N, alpha, beta,
// k=delta) is the same function. Its gradient node (Apple:
// MPSCNNCrossChannelNormalizationGradientNode) is a GradientNode.
class CrossChannelNormalizationNode : public LocalResponseNormalizationNode {
 public:
  // Throws InvalidArgument unless kernel_size >= 1.
  CrossChannelNormalizationNode(std::shared_ptr<ImageNode> source, int kernel_size);
  int kernel_size() const { return kernel_size_; }
  std::string kind() const override { return "cross_channel_normalization"; }
  void list_attributes(AttributeVisitor& visitor) const override;

 protected:
  void set_window(detail::CrossChannelNormalizationOp& op) const override;

 private:
  int kernel_size_;
};

// Apple: MPSCNNSpatialNormalizationNode: local response normalization over a
// kernel_width x kernel_height window of each channel, its rows from y - floor(kh/2) to
// y + floor((kh-1)/2) clipped to the image (columns likewise); alpha is divided by the
// nominal kernel_width * kernel_height.
class SpatialNormalizationNode : public LocalResponseNormalizationNode {
 public:
  // Throws InvalidArgument unless both kernel sizes are >= 1.
  SpatialNormalizationNode(std::shared_ptr<ImageNode> source, int kernel_width, int kernel_height);
  int kernel_width() const { return kernel_width_; }
  int kernel_height() const { return kernel_height_; }
  std::string kind() const override { return "spatial_normalization"; }
  void list_attributes(AttributeVisitor& visitor) const override;

 protected:
  void set_window(detail::CrossChannelNormalizationOp& op) const override;

 private:
  int kernel_width_, kernel_height_;
};

// Apple: MPSNNReshapeNode. Same elements (NHWC order), new height, width and channels.
class ReshapeNode : public FilterNode {
 public:
  ReshapeNode(std::shared_ptr<ImageNode> source, int height, int width, int channels);
  int height() const { return height_; }
  int width() const { return width_; }
  int channels() const { return channels_; }
  std::string kind() const override { return "reshape"; }
  void list_attributes(AttributeVisitor& visitor) const override;
  std::unique_ptr<detail::Op> lower(detail::LoweringContext& context) const override;
  std::shared_ptr<FilterNode> gradient_filter_for(
      std::size_t source_index, std::shared_ptr<ImageNode> source_gradient) const override;
  std::unique_ptr<detail::Op> lower_gradient(detail::LoweringContext& context,
                                             const GradientNode& gradient) const override;

 private:
  int height_, width_, channels_;
};

// MPSNNConvolutionGradientOption: which gradients a ConvolutionGradientNode computes.
enum class GradientOption { input, weights_and_bias, all };

// Apple: MPSCNNConvolutionGradientNode. Its result is the gradient with respect to the
// forward convolution's source; it also fills the weight and bias gradients that the
// forward node's data source is updated from (per its training_style).
class ConvolutionGradientNode : public FilterNode {
 public:
  // `source_image` is the forward convolution's source, `gradient_state` its
  // convolution_gradient_state(), `weights` its data source (checked).
  ConvolutionGradientNode(std::shared_ptr<ImageNode> source_gradient,
                          std::shared_ptr<ImageNode> source_image,
                          std::shared_ptr<ConvolutionGradientStateNode> gradient_state,
                          std::shared_ptr<ConvolutionDataSource> weights);

  GradientOption gradient_option = GradientOption::all;

  const ConvolutionNode& forward() const { return *forward_; }
  const FilterNode* gradient_of() const override { return forward_.get(); }
  // The forward convolution, unless gradient_option is input or its training_style none.
  const WeightedNode* trains() const override;
  std::string kind() const override { return forward_->kind() + "_gradient"; }
  // "gradient" (of the forward result), then "forward_source".
  std::string source_name(std::size_t index) const override;
  void list_attributes(AttributeVisitor& visitor) const override;
  std::string display_name() const override;
  std::unique_ptr<detail::Op> lower(detail::LoweringContext& context) const override;

 private:
  std::shared_ptr<const ConvolutionNode> forward_;
};

// The gradient of every other forward node (Apple: MPSCNNNeuronGradientNode,
// MPSCNNPoolingGradientNode, MPSCNNSoftMaxGradientNode, MPSNNArithmeticGradientNode, ...),
// made by the forward node's gradient_filter_for. sources()[0] is the gradient of the
// forward result; the others are what the forward node's gradient recipe reads.
class GradientNode : public FilterNode {
 public:
  GradientNode(std::shared_ptr<const FilterNode> forward, std::size_t source_index,
               std::vector<std::shared_ptr<ImageNode>> sources);
  const FilterNode& forward() const { return *forward_; }
  // Which source of the forward node this is the gradient of.
  std::size_t source_index() const { return source_index_; }
  const FilterNode* gradient_of() const override { return forward_.get(); }
  // A weighted forward node (a transposed or binary convolution) that a training graph
  // trains: its gradient recipe also fills the weight gradients.
  const WeightedNode* trains() const override;
  std::string kind() const override { return forward_->kind() + "_gradient"; }
  // "gradient" (of the forward result), then "recipe_source <k>": what the forward node's
  // gradient recipe reads.
  std::string source_name(std::size_t index) const override;
  void list_attributes(AttributeVisitor& visitor) const override;
  std::string display_name() const override;
  std::unique_ptr<detail::Op> lower(detail::LoweringContext& context) const override;

 private:
  std::shared_ptr<const FilterNode> forward_;
  std::size_t source_index_;
};

// Apple: MPSCNNDropoutNode. Keeps each element with probability keep_probability and scales
// it by 1 / keep_probability. The mask is a pure function of (seed, the graph's batch count,
// element index), so the gradient node reproduces it without storing it. Put it only in the
// training graph (an inference graph simply leaves it out).
class DropoutNode : public FilterNode {
 public:
  DropoutNode(std::shared_ptr<ImageNode> source, float keep_probability, std::uint64_t seed = 1);
  float keep_probability() const { return keep_probability_; }
  std::uint64_t seed() const { return seed_; }
  std::string kind() const override { return "dropout"; }
  void list_attributes(AttributeVisitor& visitor) const override;
  std::unique_ptr<detail::Op> lower(detail::LoweringContext& context) const override;
  std::shared_ptr<FilterNode> gradient_filter_for(
      std::size_t source_index, std::shared_ptr<ImageNode> source_gradient) const override;
  std::unique_ptr<detail::Op> lower_gradient(detail::LoweringContext& context,
                                             const GradientNode& gradient) const override;

 private:
  float keep_probability_;
  std::uint64_t seed_;
};

}  // namespace cnngraph
