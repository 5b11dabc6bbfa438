// BatchNormalizationDataSource: parameters, running averages and the gamma/beta optimizer.
#include "cnngraph/batch_normalization_source.hpp"

#include <cmath>

#include "cnngraph/errors.hpp"
#include "ops/batch_normalization.hpp"

namespace cnngraph {

BatchNormalizationDataSource::BatchNormalizationDataSource(
    std::string label, BatchNormalizationParameters parameters,
    std::shared_ptr<const Optimizer> optimizer, float momentum)
    : label_(std::move(label)),
      parameters_(std::move(parameters)),
      optimizer_(std::move(optimizer)),
      momentum_(momentum) {
  const std::string where = "BatchNormalizationDataSource '" + label_ + "'";
  detail::validate_batch_normalization(parameters_, where);
  if (!(momentum > 0.0f && momentum <= 1.0f)) {
    throw InvalidArgument(where + ": momentum must be in (0, 1], got " + std::to_string(momentum));
  }
}

std::shared_ptr<BatchNormalizationDataSource> BatchNormalizationDataSource::identity(
    std::string label, int channels, std::shared_ptr<const Optimizer> optimizer, float momentum,
    float epsilon) {
  if (channels <= 0) {
    throw InvalidArgument("BatchNormalizationDataSource '" + label +
                          "': channels must be positive, got " + std::to_string(channels));
  }
  const auto n = static_cast<std::size_t>(channels);
  BatchNormalizationParameters p{std::vector<float>(n, 0.0f), std::vector<float>(n, 1.0f),
                                 std::vector<float>(n, 1.0f), std::vector<float>(n, 0.0f), epsilon};
  return std::make_shared<BatchNormalizationDataSource>(std::move(label), std::move(p),
                                                        std::move(optimizer), momentum);
}

int BatchNormalizationDataSource::channels() const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(parameters_.mean.size());
}

BatchNormalizationParameters BatchNormalizationDataSource::parameters() const {
  std::lock_guard lock(mutex_);
  return parameters_;
}

void BatchNormalizationDataSource::assign(BatchNormalizationParameters parameters) {
  const std::string where = "BatchNormalizationDataSource '" + label_ + "'";
  detail::validate_batch_normalization(parameters, where);
  std::lock_guard lock(mutex_);
  if (parameters.mean.size() != parameters_.mean.size()) {
    throw InvalidArgument(where + ": has " + std::to_string(parameters_.mean.size()) +
                          " channels, the assigned parameters " +
                          std::to_string(parameters.mean.size()));
  }
  parameters_ = std::move(parameters);
}

void BatchNormalizationDataSource::assign(BatchNormalizationParameters parameters,
                                          OptimizerState state) {
  const std::string where = "BatchNormalizationDataSource '" + label_ + "'";
  state.validate({parameters.gamma.size(), parameters.beta.size()}, where);
  assign(std::move(parameters));
  std::lock_guard lock(mutex_);
  state_ = std::move(state);
}

OptimizerState BatchNormalizationDataSource::optimizer_state() const {
  std::lock_guard lock(mutex_);
  return state_;
}

std::uint64_t BatchNormalizationDataSource::update_count() const {
  std::lock_guard lock(mutex_);
  return updates_;
}

BatchNormalizationParameters BatchNormalizationDataSource::update(
    const BatchNormalizationGradientState& g, bool train_gamma_and_beta) {
  std::lock_guard lock(mutex_);
  const std::size_t n = parameters_.mean.size();
  if (g.batch_mean.size() != n || g.batch_variance.size() != n || g.gamma_gradient.size() != n ||
      g.beta_gradient.size() != n || g.count <= 0) {
    throw InvalidArgument("BatchNormalizationDataSource '" + label_ + "': the gradient state of " +
                          g.node_label + " does not have " + std::to_string(n) + " channels");
  }
  // Unbiased batch variance for the running average (a batch of one value per channel has
  // none: its variance is left out).
  const double unbias = g.count > 1 ? static_cast<double>(g.count) / (g.count - 1) : 0.0;
  const double m = momentum_;
  for (std::size_t c = 0; c < n; ++c) {
    parameters_.mean[c] = static_cast<float>((1.0 - m) * parameters_.mean[c] + m * g.batch_mean[c]);
    if (g.count > 1) {
      parameters_.variance[c] = static_cast<float>((1.0 - m) * parameters_.variance[c] +
                                                   m * g.batch_variance[c] * unbias);
    }
  }
  if (train_gamma_and_beta && optimizer_) {
    const ParameterTensor tensors[] = {{parameters_.gamma, g.gamma_gradient},
                                       {parameters_.beta, g.beta_gradient}};
    optimizer_->step(tensors, state_);
  }
  ++updates_;
  return parameters_;
}

}  // namespace cnngraph
