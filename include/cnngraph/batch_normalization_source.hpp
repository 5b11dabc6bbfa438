// BatchNormalizationDataSource (Apple: MPSCNNBatchNormalizationDataSource): the parameters of
// a batch-normalization node, shared by the graphs built on it, and what a training graph
// does with them after each batch (running averages, and gamma/beta through an optimizer).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cnngraph/descriptor.hpp"
#include "cnngraph/optimizer.hpp"

namespace cnngraph {

// What a training graph hands to the data source after a batch, f32 on the host.
struct BatchNormalizationGradientState {
  std::string node_label;  // the node's display name, for messages
  std::int64_t count = 0;  // values per channel in the batch (batch * height * width)
  std::vector<float> batch_mean, batch_variance;  // the batch's statistics (variance biased)
  std::vector<float> gamma_gradient, beta_gradient;
};

class BatchNormalizationDataSource {
 public:
  // `parameters` are checked like BatchNormalizationNode's. `optimizer` null: gamma and beta
  // stay fixed (the running averages still follow the batches). `momentum` in (0, 1]: the
  // weight of each batch in the running averages, as in PyTorch:
  //   running_mean = (1 - momentum) * running_mean + momentum * batch_mean
  //   running_variance likewise, with the batch variance made unbiased (count / (count - 1)).
  BatchNormalizationDataSource(std::string label, BatchNormalizationParameters parameters,
                               std::shared_ptr<const Optimizer> optimizer = nullptr,
                               float momentum = 0.1f);
  // gamma 1, beta 0, running mean 0, running variance 1.
  static std::shared_ptr<BatchNormalizationDataSource> identity(
      std::string label, int channels, std::shared_ptr<const Optimizer> optimizer = nullptr,
      float momentum = 0.1f, float epsilon = 1e-5f);

  const std::string& label() const { return label_; }
  int channels() const;
  float momentum() const { return momentum_; }
  const std::shared_ptr<const Optimizer>& optimizer() const { return optimizer_; }
  // The current parameters: trained gamma and beta, running mean and variance.
  BatchNormalizationParameters parameters() const;
  // Replaces all parameters (a checkpoint, say); checked first. Optimizer moments are kept.
  void assign(BatchNormalizationParameters parameters);
  // The same with the optimizer's moments and time step for gamma and beta (tensors 0 and
  // 1), checked first (OptimizerState::validate).
  void assign(BatchNormalizationParameters parameters, OptimizerState state);
  // A copy of the moments and time step of gamma and beta.
  OptimizerState optimizer_state() const;
  // How many batches have updated this source.
  std::uint64_t update_count() const;

  // After a training batch: the running averages first, then, when `train_gamma_and_beta`
  // and an optimizer is set, one optimizer step on gamma and beta. Returns the new
  // parameters.
  BatchNormalizationParameters update(const BatchNormalizationGradientState& gradient,
                                      bool train_gamma_and_beta);

 private:
  std::string label_;
  BatchNormalizationParameters parameters_;
  std::shared_ptr<const Optimizer> optimizer_;
  float momentum_;
  OptimizerState state_;
  std::uint64_t updates_ = 0;
  mutable std::mutex mutex_;
};

}  // namespace cnngraph
