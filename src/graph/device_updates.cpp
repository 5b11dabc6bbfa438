// Training in a device graph: see device_updates.hpp.
#include "graph/device_updates.hpp"

#include <algorithm>
#include <cmath>
#include <typeinfo>

#include "cnngraph/errors.hpp"
#include "core/parameter_view.hpp"

namespace cnngraph::detail {

namespace {

// The library's own optimizer classes have a device rule; a subclass of the user's may
// override apply(), which only the host can run.
bool has_device_rule(const Optimizer& optimizer) {
  const std::type_info& type = typeid(optimizer);
  return type == typeid(SgdOptimizer) || type == typeid(AdamOptimizer) ||
         type == typeid(RmsPropOptimizer);
}

}  // namespace

DeviceUpdates::DeviceUpdates(ParameterStore& parameters, DeviceExecution& execution,
                             const GraphOptions& options, bool has_loss)
    : parameters_(parameters), execution_(execution) {
  if (has_loss && options.precision == Precision::f16 && options.initial_loss_scale > 0.0f) {
    if (!std::isfinite(options.initial_loss_scale) || options.loss_scale_growth_interval < 1) {
      throw InvalidArgument(
          "GraphOptions: initial_loss_scale must be finite and loss_scale_growth_interval at "
          "least 1");
    }
    scale_.active = true;
    scale_.scale = options.initial_loss_scale;
    growth_interval_ = options.loss_scale_growth_interval;
  }
  std::vector<DeviceOptimizerEntry> entries;
  std::vector<TrainableDataSource*> sources;
  bool all_on_device = true;
  for (ParameterStore::Convolution& t : parameters.convolutions) {
    if (t.node->training_style != TrainingStyle::device || !t.fold.scale.empty()) {
      all_on_device = false;
      continue;
    }
    auto* source = dynamic_cast<TrainableDataSource*>(t.node->weights().get());
    if (!source || !has_device_rule(*source->optimizer())) {
      all_on_device = false;
      continue;
    }
    DeviceOptimizerEntry entry;
    entry.parameters = t.trained.get();
    entry.with_bias = !t.source_state->biases().empty();
    entry.optimizer = source->optimizer();
    entry.state = TrainableSourceAccess::state(*source);
    entries.push_back(std::move(entry));
    sources.push_back(source);
    t.stepped_on_device = true;
  }
  if (entries.empty()) return;
  step_in_launch_ = parameters.normalizations.empty() && all_on_device;
  optimizer_ = execution.make_optimizer(std::move(entries));
  for (std::size_t k = 0; k < sources.size(); ++k)
    TrainableSourceAccess::read_from(*sources[k], optimizer_->view(k));
  resident_ = sources;
  std::sort(resident_.begin(), resident_.end(), std::less<>());
}

std::vector<std::unique_lock<std::mutex>> DeviceUpdates::hold_resident_sources() const {
  std::vector<std::unique_lock<std::mutex>> held;
  held.reserve(resident_.size());
  for (TrainableDataSource* source : resident_) held.emplace_back(source->library_mutex());
  return held;
}

void DeviceUpdates::prepare() {
  execution_.set_loss_scale(scale_.scale);
  if (optimizer_) optimizer_->prepare(1.0f / scale_.scale);
}

void DeviceUpdates::skip_step(std::uint64_t batch) {
  if (!scale_.active) {
    throw NumericalError("the gradients of batch " + std::to_string(batch) +
                         " are not finite; no weights were updated (check the inputs)");
  }
  ++scale_.skipped_steps;
  scale_.scale = std::max(scale_.scale * 0.5f, 1.0f / 65536.0f);
  good_steps_ = 0;
}

void DeviceUpdates::enqueue() {
  if (optimizer_) optimizer_->enqueue(step_in_launch_);
}

void DeviceUpdates::launched() {
  if (optimizer_ && step_in_launch_ && optimizer_->gradients_finite()) optimizer_->advance();
}

void DeviceUpdates::apply(const Device& device, std::uint64_t batch, int batch_size) {
  if (optimizer_ && !optimizer_->gradients_finite()) return skip_step(batch);
  const float unscale = 1.0f / scale_.scale;
  std::vector<ParameterStore::Convolution*> on_host;
  std::vector<std::uint64_t> versions;
  for (ParameterStore::Convolution& t : parameters_.convolutions) {
    if (t.stepped_on_device) continue;
    execution_.download_gradients(*t.trained);
    // The device computed them for the prepared (folded) weights; the data source's own
    // weights get them times the fold's scale, as on the CPU devices.
    ConvolutionGradientState& g = t.trained->gradient;
    const std::vector<float>& fold = t.trained->fold_scale;
    const std::size_t per_output = fold.empty() ? 1 : g.weights_gradient.size() / fold.size();
    for (std::size_t e = 0; e < g.weights_gradient.size(); ++e)
      g.weights_gradient[e] *= unscale * (fold.empty() ? 1.0f : fold[e / per_output]);
    for (std::size_t k = 0; k < g.bias_gradient.size(); ++k)
      g.bias_gradient[k] *= unscale * (fold.empty() ? 1.0f : fold[k]);
    if (scale_.active && !(all_finite(g.weights_gradient) && all_finite(g.bias_gradient)))
      return skip_step(batch);
    on_host.push_back(&t);
    versions.push_back(t.trained->prepared->version);
  }
  for (ParameterStore::Normalization& t : parameters_.normalizations) {
    BatchNormalizationGradientState& g = t.trained->gradient;
    for (float& v : g.gamma_gradient) v *= unscale;
    for (float& v : g.beta_gradient) v *= unscale;
    if (scale_.active && !(all_finite(g.gamma_gradient) && all_finite(g.beta_gradient)))
      return skip_step(batch);
  }
  if (scale_.active && ++good_steps_ >= growth_interval_) {
    scale_.scale = std::min(scale_.scale * 2.0f, 65536.0f * 65536.0f);
    good_steps_ = 0;
  }
  parameters_.apply_updates(device, batch, batch_size);
  if (optimizer_ && !step_in_launch_) {
    const auto held = hold_resident_sources();
    optimizer_->enqueue_step();
    execution_.synchronize();
    optimizer_->advance();
  }
  for (std::size_t k = 0; k < on_host.size(); ++k) {
    if (on_host[k]->trained->prepared->version != versions[k])
      execution_.upload_weights(*on_host[k]->trained);
  }
}

void DeviceUpdates::synchronize_states() {
  for (ParameterStore::Convolution& t : parameters_.convolutions) {
    if (!t.stepped_on_device) continue;
    execution_.download_weights(*t.trained, t.source_state->weights(), t.source_state->biases());
  }
}

}  // namespace cnngraph::detail
