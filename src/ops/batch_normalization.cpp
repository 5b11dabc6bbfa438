// Batch normalization: the inference form (running statistics folded to a per-channel scale
// and shift), the training form (batch statistics) and its gradient.
#include <cmath>

#include "cnngraph/errors.hpp"
#include "io/saved_node.hpp"
#include "ops/batch_normalization.hpp"
#include "ops/op.hpp"

namespace cnngraph {

namespace detail {
void fold_batch_normalization(const BatchNormalizationParameters& p, std::vector<float>& scale,
                              std::vector<float>& shift) {
  scale.resize(p.mean.size());
  shift.resize(p.mean.size());
  for (std::size_t c = 0; c < p.mean.size(); ++c) {
    const double s = p.gamma[c] / std::sqrt(static_cast<double>(p.variance[c]) + p.epsilon);
    scale[c] = static_cast<float>(s);
    shift[c] = static_cast<float>(p.beta[c] - s * p.mean[c]);
  }
}

void validate_batch_normalization(const BatchNormalizationParameters& p,
                                  const std::string& context) {
  const std::size_t n = p.mean.size();
  if (n == 0 || p.variance.size() != n || p.gamma.size() != n || p.beta.size() != n) {
    throw InvalidArgument(context +
                          ": mean, variance, gamma and beta need the same, non-zero "
                          "number of entries (got " +
                          std::to_string(p.mean.size()) + ", " + std::to_string(p.variance.size()) +
                          ", " + std::to_string(p.gamma.size()) + ", " +
                          std::to_string(p.beta.size()) + ")");
  }
  for (std::size_t c = 0; c < n; ++c) {
    if (!(static_cast<double>(p.variance[c]) + p.epsilon > 0.0) || !std::isfinite(p.mean[c]) ||
        !std::isfinite(p.gamma[c]) || !std::isfinite(p.beta[c])) {
      throw InvalidArgument(context + ": channel " + std::to_string(c) +
                            " has variance + epsilon <= 0 or a non-finite parameter");
    }
  }
}
}  // namespace detail

BatchNormalizationNode::BatchNormalizationNode(
    std::shared_ptr<ImageNode> source, std::shared_ptr<BatchNormalizationDataSource> data_source)
    : FilterNode({std::move(source)}, PaddingPolicy::same()), source_(std::move(data_source)) {
  if (!source_) throw InvalidArgument(kind() + ": the data source is null");
}

BatchNormalizationNode::BatchNormalizationNode(std::shared_ptr<ImageNode> source,
                                               BatchNormalizationParameters parameters)
    : BatchNormalizationNode(std::move(source), std::make_shared<BatchNormalizationDataSource>(
                                                    "batch_normalization", std::move(parameters))) {
}

BatchNormalizationParameters BatchNormalizationNode::parameters() const {
  return source_->parameters();
}

bool BatchNormalizationNode::is_trainable() const {
  return training_style != TrainingStyle::none && source_->optimizer() != nullptr;
}

std::unique_ptr<detail::Op> BatchNormalizationNode::lower(detail::LoweringContext& context) const {
  detail::require_source_count(*this, context, 1);
  const ImageShape& src = context.src_shapes[0];
  const int channels = source_->channels();
  if (src.channels != channels) {
    detail::throw_shape_error(*this, "has parameters for " + std::to_string(channels) +
                                         " channels, the source has " +
                                         std::to_string(src.channels));
  }
  std::unique_ptr<detail::Op> op;
  if (auto* trainable = context.normalization_for ? context.normalization_for(*this) : nullptr) {
    auto training = std::make_unique<detail::BatchNormalizationTrainingOp>();
    training->trainable = trainable;
    op = std::move(training);
  } else {
    auto inference = std::make_unique<detail::BatchNormalizationOp>();
    detail::fold_batch_normalization(parameters(), inference->scale, inference->shift);
    op = std::move(inference);
  }
  op->dst_shape = src;
  return op;
}

// Gradient (training mode): with xhat = (x - mean) / sqrt(var + eps) per channel over the
// batch's N*H*W values, dbeta = sum(dy), dgamma = sum(dy * xhat) and
// dx = gamma / sqrt(var + eps) * (dy - dbeta / M - xhat * dgamma / M).
std::shared_ptr<FilterNode> BatchNormalizationNode::gradient_filter_for(
    std::size_t index, std::shared_ptr<ImageNode> source_gradient) const {
  return detail::make_gradient_node(*this, index, {std::move(source_gradient), source_images()[0]});
}

std::unique_ptr<detail::Op> BatchNormalizationNode::lower_gradient(
    detail::LoweringContext& context, const GradientNode& gradient) const {
  auto forward = detail::lower_forward_for_gradient(*this, context, 1, 1);
  auto* trainable = context.normalization_for ? context.normalization_for(*this) : nullptr;
  if (!trainable) {
    throw InvalidArgument(gradient.display_name() +
                          ": its forward node has no training state in this graph");
  }
  auto op = std::make_unique<detail::BatchNormalizationGradientOp>();
  op->trainable = trainable;
  op->dst_shape = forward->src_shapes[0];
  return op;
}

void BatchNormalizationNode::list_attributes(AttributeVisitor& visitor) const {
  visitor.text("data_source", source_->label());
  visitor.text("training_style", detail::training_style_name(training_style));
}

namespace detail {

std::shared_ptr<FilterNode> build_batch_normalization(const SavedNode& saved) {
  saved.expect_sources(1);
  return std::make_shared<BatchNormalizationNode>(saved.sources[0],
                                                  saved.normalization(saved.text("data_source")));
}
}  // namespace detail

}  // namespace cnngraph
