// TrainableDataSource: weights, biases, an optimizer and its moments; both update paths.
#include "cnngraph/trainable_data_source.hpp"

#include <random>

#include "cnngraph/errors.hpp"
#include "core/parameter_view.hpp"

namespace cnngraph {

namespace {

// The weights a CPU graph trained with update_on_device(): the graph keeps rewriting them,
// so they are read when asked for, not copied after every step.
class GraphWeightsView : public detail::ParameterView {
 public:
  explicit GraphWeightsView(std::shared_ptr<WeightsAndBiasesState> weights)
      : weights_(std::move(weights)) {}
  void fetch(std::vector<float>& weights, std::vector<float>& bias,
             OptimizerState&) const override {
    weights = weights_->weights();
    if (!bias.empty()) bias = weights_->biases();
  }
  std::optional<std::uint64_t> time_step() const override { return std::nullopt; }

 private:
  std::shared_ptr<WeightsAndBiasesState> weights_;
};

void check_lengths(const std::string& where, const ConvolutionDescriptor& d,
                   const std::vector<float>& weights, const std::vector<float>& bias) {
  if (weights.size() != d.weight_count()) {
    throw InvalidArgument(where + ": weights count expected " + std::to_string(d.weight_count()) +
                          ", got " + std::to_string(weights.size()));
  }
  if (!bias.empty() && bias.size() != static_cast<std::size_t>(d.output_feature_channels)) {
    throw InvalidArgument(where + ": bias count expected " +
                          std::to_string(d.output_feature_channels) + ", got " +
                          std::to_string(bias.size()));
  }
}
}  // namespace

TrainableDataSource::TrainableDataSource(std::string label, ConvolutionDescriptor descriptor,
                                         std::vector<float> weights, std::vector<float> bias,
                                         std::shared_ptr<const Optimizer> optimizer)
    : label_(std::move(label)),
      descriptor_(std::move(descriptor)),
      weights_(std::move(weights)),
      bias_(std::move(bias)),
      optimizer_(std::move(optimizer)) {
  const std::string where = "TrainableDataSource '" + label_ + "'";
  descriptor_.validate(where);
  check_lengths(where, descriptor_, weights_, bias_);
  if (!optimizer_) throw InvalidArgument(where + ": the optimizer is null");
}

std::shared_ptr<TrainableDataSource> TrainableDataSource::uniform(
    std::string label, ConvolutionDescriptor descriptor, float limit, float bias_value,
    std::uint64_t seed, std::shared_ptr<const Optimizer> optimizer) {
  std::mt19937_64 generator(seed);
  std::uniform_real_distribution<float> distribution(-limit, limit);
  std::vector<float> weights(descriptor.weight_count());
  for (float& w : weights) w = distribution(generator);
  std::vector<float> bias(descriptor.output_feature_channels, bias_value);
  return std::make_shared<TrainableDataSource>(std::move(label), std::move(descriptor),
                                               std::move(weights), std::move(bias),
                                               std::move(optimizer));
}

void TrainableDataSource::synchronize() const {
  if (newer_) newer_->fetch(weights_, bias_, state_);
}

// The library calls load(), weights(), bias_terms(), update() and update_on_device() with
// library_mutex() held; every other member takes it, so that nothing rewrites the host copy
// while another graph reads it, and no device copy is read while a graph trains it.
bool TrainableDataSource::load() {
  synchronize();
  return true;
}

std::shared_ptr<ConvolutionDataSource> TrainableDataSource::copy() const {
  std::lock_guard lock(library_mutex());
  synchronize();
  auto copied =
      std::make_shared<TrainableDataSource>(label_, descriptor_, weights_, bias_, optimizer_);
  copied->state_ = state_;
  return copied;
}

namespace {
// The weights and, where the source has biases, the biases as optimizer tensors.
std::vector<ParameterTensor> tensors_of(std::vector<float>& weights, std::vector<float>& bias,
                                        const ConvolutionGradientState& gradient) {
  std::vector<ParameterTensor> tensors{{weights, gradient.weights_gradient}};
  if (!bias.empty()) tensors.push_back({bias, gradient.bias_gradient});
  return tensors;
}
}  // namespace

bool TrainableDataSource::update(const ConvolutionGradientState& gradient,
                                 const WeightsAndBiasesState& source_state) {
  weights_ = source_state.weights();
  if (!bias_.empty()) bias_ = source_state.biases();
  newer_.reset();  // the host copy is now the newest
  optimizer_->step(tensors_of(weights_, bias_, gradient), state_);
  return true;
}

std::shared_ptr<WeightsAndBiasesState> TrainableDataSource::update_on_device(
    const UpdateContext&, const ConvolutionGradientState& gradient,
    const std::shared_ptr<WeightsAndBiasesState>& source_state) {
  std::vector<float> none;
  optimizer_->step(
      tensors_of(source_state->weights(), bias_.empty() ? none : source_state->biases(), gradient),
      state_);
  newer_ = std::make_shared<GraphWeightsView>(source_state);
  return source_state;
}

std::vector<float> TrainableDataSource::current_weights() const {
  std::lock_guard lock(library_mutex());
  synchronize();
  return weights_;
}

std::vector<float> TrainableDataSource::current_bias() const {
  std::lock_guard lock(library_mutex());
  synchronize();
  return bias_;
}

void TrainableDataSource::assign(std::vector<float> weights, std::vector<float> bias) {
  std::lock_guard lock(library_mutex());
  synchronize();  // the moments stay those of the last update, wherever it ran
  check_lengths("TrainableDataSource '" + label_ + "'", descriptor_, weights, bias);
  if (bias.empty() != bias_.empty()) {
    throw InvalidArgument("TrainableDataSource '" + label_ +
                          "': " + (bias_.empty() ? "has no bias to assign" : "needs its bias"));
  }
  weights_ = std::move(weights);
  bias_ = std::move(bias);
  newer_.reset();
}

void TrainableDataSource::assign(std::vector<float> weights, std::vector<float> bias,
                                 OptimizerState state) {
  const std::string where = "TrainableDataSource '" + label_ + "'";
  std::vector<std::size_t> lengths{descriptor_.weight_count()};
  if (!bias.empty()) lengths.push_back(bias.size());
  state.validate(lengths, where);
  std::lock_guard lock(library_mutex());
  check_lengths(where, descriptor_, weights, bias);
  if (bias.empty() != bias_.empty()) {
    throw InvalidArgument(where + ": " +
                          (bias_.empty() ? "has no bias to assign" : "needs its bias"));
  }
  weights_ = std::move(weights);
  bias_ = std::move(bias);
  state_ = std::move(state);
  newer_.reset();
}

std::uint64_t TrainableDataSource::update_count() const {
  std::lock_guard lock(library_mutex());
  const std::optional<std::uint64_t> elsewhere = newer_ ? newer_->time_step() : std::nullopt;
  return elsewhere.value_or(state_.time_step);
}

OptimizerState TrainableDataSource::optimizer_state() const {
  std::lock_guard lock(library_mutex());
  synchronize();
  return state_;
}

namespace detail {

OptimizerState TrainableSourceAccess::state(const TrainableDataSource& source) {
  return source.optimizer_state();
}

void TrainableSourceAccess::read_from(TrainableDataSource& source,
                                      std::shared_ptr<const ParameterView> view) {
  std::lock_guard lock(source.library_mutex());
  source.synchronize();  // whatever another graph trained, before this one takes over
  source.newer_ = std::move(view);
}

}  // namespace detail

std::shared_ptr<const Optimizer> TrainableDataSource::optimizer() const {
  std::lock_guard lock(library_mutex());
  return optimizer_;
}

void TrainableDataSource::set_optimizer(std::shared_ptr<const Optimizer> optimizer) {
  if (!optimizer) throw InvalidArgument("TrainableDataSource '" + label_ + "': optimizer is null");
  std::lock_guard lock(library_mutex());
  optimizer_ = std::move(optimizer);
}

}  // namespace cnngraph
