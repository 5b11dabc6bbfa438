// Losses: LossDescriptor (MPSCNNLossDescriptor), LossLabels (MPSCNNLossLabels) and LossNode
// (MPSCNNLossNode). A loss node's result image is the gradient of the loss with respect to
// its source (what the training graph starts from); the loss value itself is returned with
// each run's Results.
#pragma once

#include <memory>
#include <span>
#include <string>

#include "cnngraph/image.hpp"
#include "cnngraph/nodes.hpp"

namespace cnngraph {

// Per element, with y the prediction and t the label:
//   mean_absolute_error       |y - t|
//   mean_squared_error        (y - t)^2
//   softmax_cross_entropy     -sum_c t_c * log_softmax(y)_c   (per pixel, over channels)
//   sigmoid_cross_entropy     max(y, 0) - y * t + log(1 + exp(-|y|))
//   categorical_cross_entropy -t * log(y)                     (y are probabilities)
//   hinge                     max(1 - t' * y, 0) with t' = 2t - 1 (labels 0 / 1)
//   huber                     |y - t| <= delta ? (y - t)^2 / 2 : delta * (|y - t| - delta / 2)
//   cosine_distance           1 - sum_c y_c * t_c               (per pixel)
//   log                       -t * log(y + eps) - (1 - t) * log(1 - y + eps)
//   kullback_leibler_divergence  t * (log t - y)                (y are log-probabilities)
enum class LossType {
  mean_absolute_error,
  mean_squared_error,
  softmax_cross_entropy,
  sigmoid_cross_entropy,
  categorical_cross_entropy,
  hinge,
  huber,
  cosine_distance,
  log,
  kullback_leibler_divergence,
};

// How the weighted per-element losses of a batch become the reported loss:
//   none  no reduction; the reported value is their sum, the gradient is as for sum
//   sum   their sum over the batch
//   mean  sum / count, count = batch * height * width (* channels, except for the per-pixel
//         losses softmax_cross_entropy and cosine_distance, as in MPS)
//   sum_by_non_zero_weights  sum / number of elements whose weight is not zero
// Unlike MPS, whose gradient ignores the reduction, the gradient here is the exact
// derivative of the reported loss (so mean includes its 1 / count).
enum class ReductionType { none, sum, mean, sum_by_non_zero_weights };

std::string to_string(LossType type);

struct LossDescriptor {
  LossDescriptor(LossType type, ReductionType reduction) : type(type), reduction(reduction) {}

  LossType type;
  ReductionType reduction;
  // Multiplies every element's loss (and gradient), e.g. 1 / batch with reduction sum.
  float weight = 1.0f;
  // softmax_cross_entropy: t' = t * (1 - s) + s / classes; sigmoid: t' = t * (1 - s) + s / 2.
  float label_smoothing = 0.0f;
  float epsilon = 1e-7f;  // log loss
  float delta = 1.0f;     // huber

  // Throws InvalidArgument naming the field.
  void validate(const std::string& where) const;
};

// The labels of one batch for one loss node: an f32 image of the prediction's shape.
// Optional per-element weights (same shape) multiply the descriptor's weight.
class LossLabels {
 public:
  explicit LossLabels(Image labels, Image weights = {});
  // One-hot labels for classification: `classes[i]` in [0, number_of_classes) for image i,
  // as 1x1xnumber_of_classes images. Throws InvalidArgument naming the first bad index.
  static LossLabels from_classes(std::span<const int> classes, int number_of_classes);

  const Image& labels() const { return labels_; }
  const Image& weights() const { return weights_; }

 private:
  Image labels_;
  Image weights_;
};

// Apple: MPSCNNLossNode.
class LossNode : public FilterNode {
 public:
  LossNode(std::shared_ptr<ImageNode> source, LossDescriptor descriptor);

  const LossDescriptor& descriptor() const { return descriptor_; }
  // The node through which each run's LossLabels enter (MPS's inputLabels). It is not one
  // of the graph's source images: Graph::run takes labels separately.
  std::shared_ptr<ImageNode> labels() const;
  // The per-element label weights (used when the run's LossLabels have weights).
  std::shared_ptr<ImageNode> label_weights() const;

  std::string kind() const override { return "loss_" + to_string(descriptor_.type); }
  void list_attributes(AttributeVisitor& visitor) const override;
  std::unique_ptr<detail::Op> lower(detail::LoweringContext& context) const override;

 private:
  LossDescriptor descriptor_;
};

}  // namespace cnngraph
