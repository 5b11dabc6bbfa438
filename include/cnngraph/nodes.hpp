// The nodes a graph is built from: ImageNode (MPSNNImageNode), StateNode (MPSNNStateNode),
// FilterNode (MPSNNFilterNode) and every concrete filter. Nodes only describe work; a Graph
// compiles and runs them. Create them with std::make_shared: a filter's result_image()
// keeps the filter (and everything it reads) alive.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cnngraph/data_source.hpp"
#include "cnngraph/descriptor.hpp"
#include "cnngraph/image.hpp"
#include "cnngraph/padding.hpp"

namespace cnngraph {

namespace detail {
struct Op;
struct LoweringContext;
}  // namespace detail

class FilterNode;

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

 private:
  friend class FilterNode;
  const FilterNode* producer_ = nullptr;
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

 protected:
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

// Apple: MPSCNNConvolutionNode.
class ConvolutionNode : public FilterNode {
 public:
  ConvolutionNode(std::shared_ptr<ImageNode> source,
                  std::shared_ptr<ConvolutionDataSource> weights);

  AccumulatorPrecision accumulator_precision = AccumulatorPrecision::single;
  // Behaviour lands with training; stored and reported now.
  TrainingStyle training_style = TrainingStyle::device;

  const std::shared_ptr<ConvolutionDataSource>& weights() const { return weights_; }
  std::shared_ptr<ConvolutionGradientStateNode> convolution_gradient_state() const;

  std::string kind() const override { return "convolution"; }
  std::string display_name() const override;
  std::unique_ptr<detail::Op> lower(detail::LoweringContext& context) const override;

 protected:
  ConvolutionNode(std::shared_ptr<ImageNode> source, std::shared_ptr<ConvolutionDataSource> weights,
                  PaddingPolicy default_padding);

 private:
  std::shared_ptr<ConvolutionDataSource> weights_;
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
  std::unique_ptr<detail::Op> lower(detail::LoweringContext& context) const override;

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
  int kernel_width() const { return kernel_width_; }
  int kernel_height() const { return kernel_height_; }
  int stride_x() const { return stride_x_; }
  int stride_y() const { return stride_y_; }
  std::string kind() const override;
  std::unique_ptr<detail::Op> lower(detail::LoweringContext& context) const override;

 private:
  PoolingType type_;
  int kernel_width_, kernel_height_, stride_x_, stride_y_;
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
};

// Apple: MPSNNAdditionNode. Element-wise sum of two images of the same size (residual).
class AdditionNode : public FilterNode {
 public:
  AdditionNode(std::shared_ptr<ImageNode> left, std::shared_ptr<ImageNode> right);
  std::string kind() const override { return "addition"; }
  std::unique_ptr<detail::Op> lower(detail::LoweringContext& context) const override;
};

// Apple: MPSNNConcatenationNode. Joins images of the same size along channels.
class ConcatenationNode : public FilterNode {
 public:
  explicit ConcatenationNode(std::vector<std::shared_ptr<ImageNode>> sources);
  std::string kind() const override { return "concatenation"; }
  std::unique_ptr<detail::Op> lower(detail::LoweringContext& context) const override;
};

// Apple: MPSCNNSoftMaxNode. Soft-max over the channels of each pixel.
class SoftMaxNode : public FilterNode {
 public:
  explicit SoftMaxNode(std::shared_ptr<ImageNode> source);
  std::string kind() const override { return "softmax"; }
  std::unique_ptr<detail::Op> lower(detail::LoweringContext& context) const override;
};

// Apple: MPSCNNLogSoftMaxNode.
class LogSoftMaxNode : public FilterNode {
 public:
  explicit LogSoftMaxNode(std::shared_ptr<ImageNode> source);
  std::string kind() const override { return "log_softmax"; }
  std::unique_ptr<detail::Op> lower(detail::LoweringContext& context) const override;
};

// Apple: MPSCNNBatchNormalizationNode, inference form (running statistics).
class BatchNormalizationNode : public FilterNode {
 public:
  BatchNormalizationNode(std::shared_ptr<ImageNode> source,
                         BatchNormalizationParameters parameters);
  const BatchNormalizationParameters& parameters() const { return parameters_; }
  std::string kind() const override { return "batch_normalization"; }
  std::unique_ptr<detail::Op> lower(detail::LoweringContext& context) const override;

 private:
  BatchNormalizationParameters parameters_;
};

// Apple: MPSNNReshapeNode. Same elements (NHWC order), new height, width and channels.
class ReshapeNode : public FilterNode {
 public:
  ReshapeNode(std::shared_ptr<ImageNode> source, int height, int width, int channels);
  int height() const { return height_; }
  int width() const { return width_; }
  int channels() const { return channels_; }
  std::string kind() const override { return "reshape"; }
  std::unique_ptr<detail::Op> lower(detail::LoweringContext& context) const override;

 private:
  int height_, width_, channels_;
};

}  // namespace cnngraph
