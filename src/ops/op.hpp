// The planned form of an operation: what the graph compiler hands to a backend. One struct
// per operation family, holding its attributes and the sizes fixed by shape inference.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cnngraph/descriptor.hpp"
#include "cnngraph/image.hpp"
#include "cnngraph/loss.hpp"
#include "cnngraph/nodes.hpp"
#include "cnngraph/padding.hpp"

namespace cnngraph::detail {

enum class OpKind {
  convolution,  // also fully connected, depthwise and sub-pixel
  neuron,
  pooling,  // also global average and global max pooling
  addition,
  concatenation,
  softmax,  // also log-softmax
  batch_normalization,
  reshape,  // also the identity gradient of an addition
  // Training:
  convolution_gradient,
  neuron_gradient,
  pooling_gradient,
  softmax_gradient,
  channel_slice,  // the gradient of a concatenation
  dropout,        // forward and gradient alike
  loss,
  batch_normalization_training,  // batch statistics
  batch_normalization_gradient,
  cross_channel_normalization,
  cross_channel_normalization_gradient,  // srcs: diff_dst, the forward src
  binary_convolution,
  convolution_transpose,
  convolution_transpose_gradient,
  binary_convolution_gradient,  // srcs: diff_dst, the forward src
  padding,                      // also its gradient (a crop)
  arithmetic,                   // broadcasting, and every operation but equal-size addition
  // Training fusion (graph/structure.hpp, plan_training_fusion): memory-bound neighbours of
  // a training graph in one step. Each reuses the op struct of its main part.
  fused_batch_normalization_relu,           // BatchNormalizationTrainingOp, then relu
  fused_relu_batch_normalization_gradient,  // BatchNormalizationGradientOp, srcs dy, x, mask
  fused_addition_relu,                      // AdditionOp, then relu
  fused_addition_relu_gradient,             // NeuronGradientOp, srcs a, b, mask: (a + b) relu'
  fused_max_pooling_relu_gradient,          // PoolingGradientOp, then relu' of its src
  fused_batch_normalization_addition_relu,  // AdditionOp with normalized sources, then relu
  arithmetic_gradient,                      // the last kind (dispatch_test)
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
  // Bumped (under cache_mutex) whenever training changes the values; backends refresh their
  // reordered copies when it differs from the one they made them from.
  std::uint64_t version = 0;
  // A training graph changes the values between runs, possibly on the device itself: device
  // kernels then read only the shared device copy, never a rearranged one of their own.
  bool trained = false;
};

// A convolution being trained by a graph: the weights its kernels read and where its
// gradient kernel leaves the gradients with respect to the data source's own weights.
struct TrainedWeights {
  std::shared_ptr<PreparedWeights> prepared;
  ConvolutionGradientState gradient;
  // The descriptor's batch-norm scale per output channel, folded into `prepared`; empty
  // when none. The gradient kernel multiplies by it to reach the unfolded weights.
  std::vector<float> fold_scale;
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
  // How many of the node's sources, from the first, the kernel reads. The compiler passes
  // only those to it and keeps only those alive for the step; src_shapes lists only those.
  // The rest only sized the op (the forward sources of an addition's gradient).
  std::size_t read_sources = static_cast<std::size_t>(-1);
};

// Something a convolution applies to its result before storing it.
struct PostOp {
  enum class Kind { neuron, sum } kind = Kind::neuron;
  NeuronDescriptor neuron;  // for Kind::neuron
};

struct ConvolutionOp : Op {
  ConvolutionOp() : Op(OpKind::convolution) {}
  explicit ConvolutionOp(OpKind kind) : Op(kind) {}
  std::string attributes() const override;

  std::shared_ptr<const PreparedWeights> weights;
  int groups = 1;
  int kernel_width = 1, kernel_height = 1;
  int dilation_x = 1, dilation_y = 1;
  int input_channels = 0;
  int output_channels = 0;  // of the convolution itself, before any sub-pixel shuffle
  int sub_pixel = 1;
  SubPixelOrder sub_pixel_order = SubPixelOrder::depth_to_space;
  AxisGeometry x, y;
  AccumulatorPrecision accumulator = AccumulatorPrecision::single;
  bool fully_connected = false;
  // Applied in order after bias; a sum adds source 1 (a residual).
  std::vector<PostOp> post_ops;

  // The convolution's own result size (before the sub-pixel shuffle).
  ImageShape convolution_shape() const {
    return {dst_shape.batch, y.result_size, x.result_size, output_channels};
  }

  // Shared by every node with convolution weights (convolution, binary, fully connected):
  // checks the source's channels against `weights`' descriptor (ShapeError naming `node`)
  // and fills name, sources, weights, kernel, dilation, groups and channels.
  void set_weights(const FilterNode& node, const std::vector<ImageShape>& sources,
                   std::shared_ptr<const PreparedWeights> prepared);
  // A fully connected node's geometry: the kernel covers the whole (checked) source, 1x1 result.
  void set_fully_connected(const FilterNode& node);
};

// A bit-packed image: an NHWC image of `channels` channels binarized the way a binary
// convolution binarizes its source, bit c of a pixel set where
// (x[c] + input_bias[c]) * input_scale[c] is >= 0 (xnor), or > 0 (`strict`, and). Words of
// 64 bits, [batch][group][height][width][words_per_group()], bit k of word j of a group
// being its channel 64 j + k (the group's channels are c = group * channels / groups + ...);
// the last word's spare bits are 0. With `magnitudes` (beta scaling), floats follow the
// words, [batch][group][height][width]: the sum of |(x[c] + input_bias[c]) * input_scale[c]|
// over the group's channels. Consecutive xnor / and layers hand each other their images so
// (docs/family.md): the producer writes the bits once in its epilogue, the consumer reads
// them as they are.
struct BitPacking {
  int channels = 0;
  int groups = 1;
  bool strict = false;
  bool magnitudes = false;
  std::vector<float> input_bias, input_scale;  // per channel; empty: 0 and 1

  int words_per_group() const { return (channels / groups + 63) / 64; }
  // The image's size in 4-byte units (the planner's elements on the CPU).
  std::size_t elements(const ImageShape& shape) const {
    const std::size_t places = static_cast<std::size_t>(shape.batch) * groups * shape.height *
                               static_cast<std::size_t>(shape.width);
    return places * words_per_group() * 2 + (magnitudes ? places : 0);
  }
  bool operator==(const BitPacking&) const = default;
};

// A binary convolution: the geometry of a convolution, weights +1/-1 (prepared), and the
// binary arithmetic of BinaryConvolutionNode.
struct BinaryConvolutionOp : ConvolutionOp {
  BinaryConvolutionOp() : ConvolutionOp(OpKind::binary_convolution) {}
  std::string attributes() const override;
  BinaryConvolutionType type = BinaryConvolutionType::xnor;
  float scale_value = 1.0f;
  bool beta_scaling = false;
  BinaryConvolutionTerms terms;  // empty vectors: none
  // How this op binarizes its source (xnor and and only): the packing a producer writes
  // for it.
  BitPacking source_packing() const;
  // Set by the compiler where the backend takes them (Backend::packs_bits): the source is
  // bit-packed as source_packing() says, and the result is written bit-packed as
  // result_packing says (for its consumers) instead of as floats.
  bool packed_source = false;
  bool packed_result = false;
  BitPacking result_packing;
  // y -> scale[o] * y + shift[o] after everything else (a folded inference batch norm):
  // the output scale and bias absorb it.
  void fold_channel_affine(const std::vector<float>& scale, const std::vector<float>& shift);
};

// The straight-through-estimator gradient of a binary convolution: diff_src, and with
// `parameters` the shadow weights' and the bias's gradients.
struct BinaryConvolutionGradientOp : Op {
  BinaryConvolutionGradientOp() : Op(OpKind::binary_convolution_gradient) {}
  std::string attributes() const override {
    return forward.attributes() + (parameters ? " diff_weights" : "");
  }
  BinaryConvolutionOp forward;
  TrainedWeights* parameters = nullptr;
};

struct NeuronOp : Op {
  NeuronOp() : Op(OpKind::neuron) {}
  std::string attributes() const override { return to_string(neuron.type); }
  NeuronDescriptor neuron;
};

// How an average window's divisor is counted: by default its pixels inside the image; with
// `counts_padding`, its pixels inside the padded image, which reaches pad_before before the
// source and `padded_after` past its end on each axis (pooling_math.hpp).
struct AverageDivisor {
  bool counts_padding = false;
  int padded_after_x = 0, padded_after_y = 0;
};

struct PoolingOp : Op {
  PoolingOp() : Op(OpKind::pooling) {}
  std::string attributes() const override;
  PoolingType type = PoolingType::max;
  AxisGeometry x, y;
  AverageDivisor divisor;
};

// Two sources of one size: the residual sum that a convolution can fuse. With kind
// fused_addition_relu, dst = max(src0 + src1, 0).
struct TrainedNormalization;

// With kind fused_batch_normalization_addition_relu, a source s with normalized[s] is the
// source of that training-mode batch norm, whose result only this sum read: the sum reads
// it normalized with the batch's statistics (rounded to the storage type, as the batch
// norm's own result would be), records the statistics as BatchNormalizationTrainingOp does,
// and the relu follows.
struct AdditionOp : Op {
  AdditionOp() : Op(OpKind::addition) {}
  std::string attributes() const override;
  std::array<TrainedNormalization*, 2> normalized{};
};

// The name of a training-fusion kind's group ("batch_norm+relu"), or null for other kinds.
const char* training_fusion_name(OpKind kind);

// dst = src0 (operation) src1, each source broadcast to dst_shape along the dimensions where
// its size is 1 (ArithmeticNode).
struct ArithmeticOp : Op {
  ArithmeticOp() : Op(OpKind::arithmetic) {}
  std::string attributes() const override;
  ArithmeticOperation operation = ArithmeticOperation::addition;
};

// The gradient of an ArithmeticNode with respect to source `source_index`: dst (that
// source's size) is the sum, over the result elements that read each of its elements, of
// d(result)/d(source) * diff_dst. srcs: diff_dst, and for a product or quotient also the
// forward primary and secondary (read_sources 3); a sum or difference reads diff_dst only.
struct ArithmeticGradientOp : Op {
  ArithmeticGradientOp() : Op(OpKind::arithmetic_gradient) {}
  std::string attributes() const override;
  ArithmeticOperation operation = ArithmeticOperation::addition;
  int source_index = 0;
  ImageShape primary, secondary;  // the forward sources' sizes; diff_dst has the result's
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

// Local response normalization, forward and gradient alike (OpKind tells which): across
// channels (CrossChannelNormalizationNode) or, with `spatial`, over a kernel_width x
// kernel_height window of each channel (SpatialNormalizationNode).
struct CrossChannelNormalizationOp : Op {
  explicit CrossChannelNormalizationOp(bool gradient)
      : Op(gradient ? OpKind::cross_channel_normalization_gradient
                    : OpKind::cross_channel_normalization) {}
  std::string attributes() const override {
    return spatial ? "spatial " + std::to_string(kernel_width) + "x" + std::to_string(kernel_height)
                   : "size " + std::to_string(kernel_size);
  }
  int kernel_size = 1;  // channels in the window (cross-channel)
  bool spatial = false;
  int kernel_width = 1, kernel_height = 1;  // the spatial window
  float alpha = 1.0f, beta = 5.0f, delta = 1.0f;
  // The nominal window size that divides alpha.
  int window_size() const { return spatial ? kernel_width * kernel_height : kernel_size; }
};

struct ReshapeOp : Op {
  ReshapeOp() : Op(OpKind::reshape) {}
};

// A batch-normalization node being trained by a graph: the gamma and beta the kernels read
// (refreshed after each update), and what the kernels leave for the update.
struct TrainedNormalization {
  BatchNormalizationParameters parameters;
  BatchNormalizationGradientState gradient;  // batch statistics and gamma/beta gradients
  // A device backend's buffers for it, shared by its forward and gradient kernels.
  std::mutex cache_mutex;
  std::map<std::string, std::shared_ptr<void>> backend_cache;
};

// Training-mode batch normalization: normalizes with the batch's statistics (biased
// variance) and records them in `trainable->gradient`.
// With kind fused_batch_normalization_relu, dst = fused_relu(that, relu_ceiling)
// (ops/neuron_math.hpp).
struct BatchNormalizationTrainingOp : Op {
  BatchNormalizationTrainingOp() : Op(OpKind::batch_normalization_training) {}
  std::string attributes() const override;
  TrainedNormalization* trainable = nullptr;
  // The fused relu's ceiling: a relu_n's b, +infinity for a plain relu.
  float relu_ceiling = INFINITY;
};

// srcs: diff_dst, the forward src. Recomputes the batch statistics from the src, writes
// diff_src, and the gamma and beta gradients into `trainable->gradient`. With kind
// fused_relu_batch_normalization_gradient a third source, a relu's mask (its source or its
// result): diff_dst counts only where fused_relu_passes(mask, relu_ceiling) (the relu's
// gradient folded in).
struct BatchNormalizationGradientOp : Op {
  BatchNormalizationGradientOp() : Op(OpKind::batch_normalization_gradient) {}
  std::string attributes() const override;
  TrainedNormalization* trainable = nullptr;
  float relu_ceiling = INFINITY;  // as BatchNormalizationTrainingOp's
  // Fused with the gradient of a relu that reads this batch norm's result: the relu passes
  // the mask (src 2) exactly where it passes the normalized source rounded to the storage
  // type, so a kernel whose forward ran in the same step may recompute it instead of
  // reading it.
  bool mask_from_statistics = false;
};

// The gradient of a convolution (or fully connected) node. srcs: diff_dst, the forward src.
struct ConvolutionGradientOp : Op {
  ConvolutionGradientOp() : Op(OpKind::convolution_gradient) {}
  std::string attributes() const override;
  ConvolutionOp forward;  // as lowered for the forward source (post-ops = the descriptor's)
  bool input_gradient = true;
  // Null when no weight gradient is computed (training_style none, or input only).
  TrainedWeights* parameters = nullptr;
};

// The weights of a transposed convolution's adjoint convolution, conv_w[i][r][s][o] =
// w[o][r][s][i] per group, kept in step with the transpose's own (trained) weights.
struct AdjointWeights {
  std::shared_ptr<const PreparedWeights> source;  // the transpose's, as the graph prepared them
  std::shared_ptr<PreparedWeights> adjoint;       // what the adjoint convolution reads
  explicit AdjointWeights(std::shared_ptr<const PreparedWeights> transpose_weights);
  // Re-derives `adjoint` when training has changed `source` (their versions differ).
  void refresh() const;
};

// A transposed convolution: the input gradient of its adjoint convolution (`inner`, whose
// forward is that convolution), plus the transpose's own bias. srcs: the source (and, when
// sized by a gradient state, a shape-only image that the kernels do not read).
struct ConvolutionTransposeOp : Op {
  ConvolutionTransposeOp() : Op(OpKind::convolution_transpose) {}
  std::string attributes() const override { return "transpose of " + inner.forward.attributes(); }
  ConvolutionGradientOp inner;
  std::shared_ptr<AdjointWeights> weights;
};

// The gradient of a transposed convolution. srcs: diff_dst (dz), the transpose's source (y),
// [the shape-only image]. dst: diff_src, the adjoint convolution applied to dz. With
// `parameters`, also the weight and bias gradients in the data source's (transpose) layout:
// the adjoint convolution's weight gradient (src dz, diff_dst y), transposed back, and
// the sum of dz per channel.
struct ConvolutionTransposeGradientOp : Op {
  ConvolutionTransposeGradientOp() : Op(OpKind::convolution_transpose_gradient) {}
  std::string attributes() const override {
    return "transpose of " + input_gradient.attributes() + (parameters ? " diff_weights" : "");
  }
  ConvolutionOp input_gradient;            // the adjoint convolution on dz
  ConvolutionGradientOp weights_gradient;  // its weight gradient into adjoint_parameters
  std::shared_ptr<TrainedWeights> adjoint_parameters;
  TrainedWeights* parameters = nullptr;  // the transpose's own; null: not trained
  std::shared_ptr<AdjointWeights> weights;
};

// srcs: diff_dst, the forward src. With kind fused_addition_relu_gradient (neuron a plain
// relu): srcs a, b, a mask, and dst = (a + b) where the mask is > 0, else 0.
struct NeuronGradientOp : Op {
  NeuronGradientOp() : Op(OpKind::neuron_gradient) {}
  std::string attributes() const override;
  NeuronDescriptor neuron;
};

// srcs: diff_dst, the forward src. Max routes each gradient to the first maximum of its
// window (recomputed from src); average spreads it over the window's in-image pixels,
// divided as the forward divided. With kind fused_max_pooling_relu_gradient (max only, src
// a relu's result), diff_src is 0 also where src is not > 0 (the relu's gradient).
struct PoolingGradientOp : Op {
  PoolingGradientOp() : Op(OpKind::pooling_gradient) {}
  std::string attributes() const override;
  PoolingType type = PoolingType::max;
  AxisGeometry x, y;
  AverageDivisor divisor;
};

// dst[n, y, x, c] = src[n, y - top, x - left, c] where that lies inside src (and c is one of
// src's channels), else `value`. Padding has top, left >= 0; its gradient is the same op with
// -top, -left (a crop of diff_dst, which has no pixel outside it). srcs: src (a gradient
// also gets the forward source, for its size only; kernels do not read it).
struct PaddingOp : Op {
  PaddingOp() : Op(OpKind::padding) {}
  std::string attributes() const override;
  int top = 0, left = 0;
  float value = 0.0f;
};

// srcs: diff_dst, the forward dst.
struct SoftMaxGradientOp : Op {
  SoftMaxGradientOp() : Op(OpKind::softmax_gradient) {}
  std::string attributes() const override { return logarithmic ? "log" : ""; }
  bool logarithmic = false;
};

// dst = channels [first_channel, first_channel + dst channels) of src 0.
struct ChannelSliceOp : Op {
  ChannelSliceOp() : Op(OpKind::channel_slice) {}
  int first_channel = 0;
};

// dst = src * mask / keep, mask[i] = hash(seed, batch, i) < keep.
struct DropoutOp : Op {
  DropoutOp() : Op(OpKind::dropout) {}
  float keep_probability = 0.5f;
  std::uint64_t seed = 1;
};

// srcs: predictions, labels, label weights. dst: the gradient of the reduced loss.
struct LossOp : Op {
  LossOp() : Op(OpKind::loss) {}
  std::string attributes() const override { return to_string(descriptor.type); }
  LossDescriptor descriptor{LossType::mean_squared_error, ReductionType::sum};
  mutable double value = 0.0;  // the reduced loss of the last run
};

// What a node's lower() gets from the graph compiler.
struct LoweringContext {
  std::vector<ImageShape> src_shapes;  // batch included
  // The prepared weights of a convolution node (loaded once when the graph was built).
  std::function<std::shared_ptr<const PreparedWeights>(const FilterNode&)> weights_for;
  // The parameters a training graph updates, or null when the node is not trained here.
  std::function<TrainedWeights*(const FilterNode&)> parameters_for;
  // The same for a batch-normalization node: non-null exactly in a graph that holds its
  // gradient, where it runs in training mode.
  std::function<TrainedNormalization*(const BatchNormalizationNode&)> normalization_for;
};

// Shared helpers of the gradient recipes.
std::shared_ptr<FilterNode> make_gradient_node(const FilterNode& forward, std::size_t index,
                                               std::vector<std::shared_ptr<ImageNode>> sources);
// Lowers `forward` for the gradient's sources [first, first + count) and checks that the
// gradient (source 0) has the forward result's size.
std::unique_ptr<Op> lower_forward_for_gradient(const FilterNode& forward,
                                               const LoweringContext& context, std::size_t first,
                                               std::size_t count);

// Shared helpers of the op files.
// "none", "cpu" or "device", for the attribute lists.
const char* training_style_name(TrainingStyle style);
[[noreturn]] void throw_shape_error(const FilterNode& node, const std::string& problem);
void require_source_count(const FilterNode& node, const LoweringContext& context,
                          std::size_t count);
// A result size computed from the sources', checked: InvalidArgument naming `node` when a
// size does not fit an int or the element count exceeds ImageShape::max_elements.
ImageShape result_shape(const FilterNode& node, std::int64_t batch, std::int64_t height,
                        std::int64_t width, std::int64_t channels);
// The padding policy of `node` applied to both axes (custom callbacks included).
void resolve_padding(const FilterNode& node, const ImageShape& source, int kernel_width,
                     int kernel_height, int stride_x, int stride_y, int dilation_x, int dilation_y,
                     AxisGeometry& x, AxisGeometry& y);

}  // namespace cnngraph::detail
