// The planned form of an operation: what the graph compiler hands to a backend. One struct
// per operation family, holding its attributes and the sizes fixed by shape inference.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cnngraph/descriptor.hpp"
#include "cnngraph/graph.hpp"
#include "cnngraph/image.hpp"
#include "cnngraph/nodes.hpp"
#include "cnngraph/padding.hpp"

namespace cnngraph::detail {

enum class OpKind {
  convolution,  // also fully connected, depthwise and sub-pixel
  neuron,
  pooling,  // also global average pooling
  addition,
  concatenation,
  softmax,  // also log-softmax
  batch_normalization,
  reshape,
};

// Convolution weights in the library's own form: f32 OHWI, dequantized, with batch
// normalization folded in. Made once per node when a graph is built and shared, read-only,
// by every plan of that graph. Backends may keep their reordered copies in backend_cache.
struct PreparedWeights {
  ConvolutionDescriptor descriptor;  // as the data source gave it
  std::string source_label;
  std::vector<float> weights;  // OHWI
  std::vector<float> bias;     // output_feature_channels entries (zeros where none)
  bool has_bias = false;

  mutable std::mutex cache_mutex;
  mutable std::map<std::string, std::shared_ptr<void>> backend_cache;
};

struct Op {
  explicit Op(OpKind kind) : kind(kind) {}
  virtual ~Op() = default;
  // A compact description of the attributes for describe() and verbose logs.
  virtual std::string attributes() const { return ""; }

  OpKind kind;
  std::string name;                    // the node's display name
  std::vector<ImageShape> src_shapes;  // batch included
  ImageShape dst_shape;
};

// Something a convolution applies to its result before storing it.
struct PostOp {
  enum class Kind { neuron, sum } kind = Kind::neuron;
  NeuronDescriptor neuron;  // for Kind::neuron
};

struct ConvolutionOp : Op {
  ConvolutionOp() : Op(OpKind::convolution) {}
  std::string attributes() const override;

  std::shared_ptr<const PreparedWeights> weights;
  int groups = 1;
  int kernel_width = 1, kernel_height = 1;
  int dilation_x = 1, dilation_y = 1;
  int input_channels = 0;
  int output_channels = 0;  // of the convolution itself, before any sub-pixel shuffle
  int sub_pixel = 1;
  AxisGeometry x, y;
  AccumulatorPrecision accumulator = AccumulatorPrecision::single;
  bool fully_connected = false;
  // Applied in order after bias; a sum adds source 1 (a residual).
  std::vector<PostOp> post_ops;

  // The convolution's own result size (before the sub-pixel shuffle).
  ImageShape convolution_shape() const {
    return {dst_shape.batch, y.result_size, x.result_size, output_channels};
  }
};

struct NeuronOp : Op {
  NeuronOp() : Op(OpKind::neuron) {}
  std::string attributes() const override { return to_string(neuron.type); }
  NeuronDescriptor neuron;
};

struct PoolingOp : Op {
  PoolingOp() : Op(OpKind::pooling) {}
  std::string attributes() const override;
  PoolingType type = PoolingType::max;
  AxisGeometry x, y;
};

struct AdditionOp : Op {
  AdditionOp() : Op(OpKind::addition) {}
};

struct ConcatenationOp : Op {
  ConcatenationOp() : Op(OpKind::concatenation) {}
};

struct SoftMaxOp : Op {
  SoftMaxOp() : Op(OpKind::softmax) {}
  std::string attributes() const override { return logarithmic ? "log" : ""; }
  bool logarithmic = false;
};

// y = x * scale[c] + shift[c]
struct BatchNormalizationOp : Op {
  BatchNormalizationOp() : Op(OpKind::batch_normalization) {}
  std::vector<float> scale, shift;
};

struct ReshapeOp : Op {
  ReshapeOp() : Op(OpKind::reshape) {}
};

// What a node's lower() gets from the graph compiler.
struct LoweringContext {
  std::vector<ImageShape> src_shapes;  // batch included
  // The prepared weights of a convolution node (loaded once when the graph was built).
  std::function<std::shared_ptr<const PreparedWeights>(const ConvolutionNode&)> weights_for;
};

// Shared helpers of the op files.
[[noreturn]] void throw_shape_error(const FilterNode& node, const std::string& problem);
void require_source_count(const FilterNode& node, const LoweringContext& context,
                          std::size_t count);
// The padding policy of `node` applied to both axes (custom callbacks included).
void resolve_padding(const FilterNode& node, const ImageShape& source, int kernel_width,
                     int kernel_height, int stride_x, int stride_y, int dilation_x, int dilation_y,
                     AxisGeometry& x, AxisGeometry& y);

}  // namespace cnngraph::detail
