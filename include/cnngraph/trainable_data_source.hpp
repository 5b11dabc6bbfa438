// TrainableDataSource: a ready-made ConvolutionDataSource that holds f32 weights and biases and
// an optimizer, and implements both update paths, so that a training graph needs no user
// code (the pattern of Apple's MPS training sample).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cnngraph/data_source.hpp"
#include "cnngraph/optimizer.hpp"

namespace cnngraph {

namespace detail {
class ParameterView;
struct TrainableSourceAccess;
}  // namespace detail

class TrainableDataSource : public ConvolutionDataSource {
 public:
  // `weights` OHWI, `bias` output_feature_channels floats or empty for none (then biases are
  // neither used nor trained). Lengths are checked against the descriptor.
  TrainableDataSource(std::string label, ConvolutionDescriptor descriptor,
                      std::vector<float> weights, std::vector<float> bias,
                      std::shared_ptr<const Optimizer> optimizer);
  // Weights uniform in [-limit, limit] from `seed`, every bias `bias_value`.
  static std::shared_ptr<TrainableDataSource> uniform(std::string label,
                                                      ConvolutionDescriptor descriptor, float limit,
                                                      float bias_value, std::uint64_t seed,
                                                      std::shared_ptr<const Optimizer> optimizer);

  // The protocol (load, weights, bias_terms, purge, update, update_on_device): the library
  // calls these with library_mutex() held; a caller of its own must hold it too. Every
  // other member takes it itself.
  DataType data_type() const override { return DataType::f32; }
  ConvolutionDescriptor descriptor() const override { return descriptor_; }
  const void* weights() const override { return weights_.data(); }
  const float* bias_terms() const override { return bias_.empty() ? nullptr : bias_.data(); }
  std::optional<std::size_t> weights_size_in_bytes() const override {
    return weights_.size() * sizeof(float);
  }
  std::optional<std::size_t> bias_terms_count() const override { return bias_.size(); }
  // Brings the host copy up to date with the weights of the last device-style update.
  bool load() override;
  void purge() override {}
  std::string label() const override { return label_; }
  // An independent source: same weights (as of the last update), optimizer and moments.
  std::shared_ptr<ConvolutionDataSource> copy() const override;

  // Runs the optimizer on the host copy, starting from the weights the batch used.
  bool update(const ConvolutionGradientState& gradient,
              const WeightsAndBiasesState& source_state) override;
  // Runs the optimizer in place on the graph's weights and remembers them, so that load()
  // (e.g. by an inference graph's reload_from_data_sources) sees the trained values.
  std::shared_ptr<WeightsAndBiasesState> update_on_device(
      const UpdateContext& context, const ConvolutionGradientState& gradient,
      const std::shared_ptr<WeightsAndBiasesState>& source_state) override;

  // The current weights and biases (synchronised with the last device-style update).
  std::vector<float> current_weights() const;
  std::vector<float> current_bias() const;
  // Replaces the weights and biases (e.g. from a checkpoint); graphs see them after
  // reload_from_data_sources(). Lengths are checked.
  void assign(std::vector<float> weights, std::vector<float> bias);
  // The same with the optimizer's moments and time step (a checkpoint that holds them),
  // checked against the weights and biases (OptimizerState::validate): training continues
  // where the saved source left off.
  void assign(std::vector<float> weights, std::vector<float> bias, OptimizerState state);

  std::shared_ptr<const Optimizer> optimizer() const;
  void set_optimizer(std::shared_ptr<const Optimizer> optimizer);
  // A copy of the moments and time step (synchronised with the last device-style update).
  OptimizerState optimizer_state() const;
  // How many updates this source has applied.
  std::uint64_t update_count() const;

 private:
  void synchronize() const;

  std::string label_;
  ConvolutionDescriptor descriptor_;
  // The fields below are guarded by library_mutex(): the library holds it around its calls
  // of the protocol (and around a device graph's run that trains this source there), the
  // other members take it themselves.
  mutable std::vector<float> weights_, bias_;
  std::shared_ptr<const Optimizer> optimizer_;
  mutable OptimizerState state_;
  // Where newer values than weights_ and bias_ live, if anywhere: the weights of the graph
  // that last trained this source with update_on_device(), or a GPU graph that steps it on
  // the device (weights, moments and time step stay there). synchronize() reads them.
  friend struct detail::TrainableSourceAccess;
  mutable std::shared_ptr<const detail::ParameterView> newer_;
};

}  // namespace cnngraph
