// The parameter store: preparing trained weights and batch norms, the per-style update step.
#include "graph/parameters.hpp"

#include <set>

#include "cnngraph/errors.hpp"

namespace cnngraph::detail {

namespace {

using Convolution = ParameterStore::Convolution;

Convolution load_trained(const WeightedNode& node) {
  Convolution t;
  t.node = &node;
  auto raw = prepare_node_weights(node, &t.fold, true);
  t.source_state = std::make_shared<WeightsAndBiasesState>(
      raw->weights, raw->has_bias ? raw->bias : std::vector<float>{});
  t.trained = std::make_unique<TrainedWeights>();
  raw->trained = true;
  t.trained->prepared = raw;
  t.trained->fold_scale = t.fold.scale;
  refresh_prepared_weights(*raw, *t.source_state, t.fold);
  if (!t.fold.scale.empty()) raw->has_bias = true;
  ConvolutionGradientState& g = t.trained->gradient;
  g.descriptor = raw->descriptor;
  g.node_label = node.display_name();
  g.weights_gradient.assign(raw->weights.size(), 0.0f);
  g.bias_gradient.assign(raw->bias.size(), 0.0f);
  return t;
}

void reload(Convolution& t) {
  Convolution fresh = load_trained(*t.node);
  t.source_state = fresh.source_state;
  t.fold = fresh.fold;
  refresh_prepared_weights(*t.trained->prepared, *t.source_state, t.fold);
}

// Runs a user callback, turning what it throws into a clear error naming the node.
template <typename Call>
auto call_source(const Convolution& t, const char* what, Call call) {
  ConvolutionDataSource& source = *t.node->weights();
  std::lock_guard lock(source.library_mutex());
  try {
    return call(source);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw DataSourceError(t.node->display_name() + ", data source '" + source.label() +
                          "': " + what + " failed: " + e.what());
  }
}

}  // namespace

ParameterStore::ParameterStore(
    const GraphStructure& structure,
    std::map<const FilterNode*, std::shared_ptr<const PreparedWeights>>& weights) {
  std::set<const FilterNode*> nodes;
  std::set<const ConvolutionDataSource*> sources;
  for (const WeightedNode* node : structure.weight_updates) {
    if (!nodes.insert(node).second) {
      throw InvalidArgument(node->display_name() +
                            ": has two weight-gradient nodes in one graph; its weights would be "
                            "updated twice per batch");
    }
    const ConvolutionDataSource& source = *node->weights();
    if (!sources.insert(&source).second) {
      throw InvalidArgument(node->display_name() + ": its data source '" + source.label() +
                            "' is trained by another node of this graph too");
    }
    convolutions.push_back(load_trained(*node));
    weights[node] = convolutions.back().trained->prepared;
  }
  std::set<const BatchNormalizationDataSource*> normalization_sources;
  for (const BatchNormalizationNode* node : structure.normalization_updates) {
    if (!normalization_sources.insert(node->data_source().get()).second) {
      throw InvalidArgument(node->display_name() + ": its data source '" +
                            node->data_source()->label() +
                            "' is trained by another node of this graph too");
    }
    Normalization t;
    t.node = node;
    t.trained = std::make_unique<TrainedNormalization>();
    t.trained->parameters = node->parameters();
    t.trained->gradient.node_label = node->display_name();
    normalizations.push_back(std::move(t));
  }
}

const ParameterStore::Convolution* ParameterStore::find(const FilterNode& node) const {
  for (const Convolution& t : convolutions) {
    if (t.node == &node) return &t;
  }
  return nullptr;
}

TrainedWeights* ParameterStore::weights_for(const FilterNode& node) {
  const Convolution* t = find(node);
  return t ? t->trained.get() : nullptr;
}

TrainedNormalization* ParameterStore::normalization_for(const BatchNormalizationNode& node) {
  for (Normalization& t : normalizations) {
    if (t.node == &node) return t.trained.get();
  }
  return nullptr;
}

bool all_finite(const std::vector<float>& values) {
  const float* v = values.data();
  const auto count = static_cast<std::ptrdiff_t>(values.size());
  float sum = 0.0f;
#pragma omp parallel for simd reduction(+ : sum) if (count > (1 << 15))
  for (std::ptrdiff_t i = 0; i < count; ++i) sum += v[i] * 0.0f;  // NaN or inf make it NaN
  return sum == 0.0f;
}

namespace {
[[noreturn]] void throw_not_finite(const std::string& node, std::uint64_t batch) {
  throw NumericalError(node + ": the gradients of batch " + std::to_string(batch) +
                       " are not finite; no weights were updated (check the inputs)");
}
}  // namespace

void ParameterStore::apply_updates(const Device& device, std::uint64_t batch, int batch_size) {
  // A non-finite gradient (e.g. from a NaN input that max-pooling hid from the loss) would
  // silently poison the weights: refuse the whole batch's updates instead.
  for (Convolution& t : convolutions) {
    if (t.stepped_on_device) continue;
    ConvolutionGradientState& g = t.trained->gradient;
    g.batch_size = batch_size;
    if (!all_finite(g.weights_gradient) || !all_finite(g.bias_gradient))
      throw_not_finite(t.node->display_name(), batch);
  }
  for (Normalization& t : normalizations) {
    const BatchNormalizationGradientState& g = t.trained->gradient;
    if (!all_finite(g.gamma_gradient) || !all_finite(g.beta_gradient) ||
        !all_finite(g.batch_mean) || !all_finite(g.batch_variance))
      throw_not_finite(t.node->display_name(), batch);
  }
  std::vector<Convolution*> reloads;
  for (Convolution& t : convolutions) {
    if (t.node->training_style != TrainingStyle::cpu || t.stepped_on_device) continue;
    const bool changed = call_source(t, "update()", [&](ConvolutionDataSource& source) {
      return source.update(t.trained->gradient, *t.source_state);
    });
    if (changed) reloads.push_back(&t);
  }
  for (Convolution* t : reloads) reload(*t);
  const UpdateContext context{device, batch};
  for (Convolution& t : convolutions) {
    if (t.node->training_style != TrainingStyle::device || t.stepped_on_device) continue;
    auto updated = call_source(t, "update_on_device()", [&](ConvolutionDataSource& source) {
      return source.update_on_device(context, t.trained->gradient, t.source_state);
    });
    if (!updated) continue;  // no change, as in MPS
    if (updated->weights().size() != t.source_state->weights().size() ||
        updated->biases().size() != t.source_state->biases().size()) {
      throw DataSourceError(t.node->display_name() +
                            ": update_on_device() returned a state of the wrong size");
    }
    t.source_state = std::move(updated);
    refresh_prepared_weights(*t.trained->prepared, *t.source_state, t.fold);
  }
  for (Normalization& t : normalizations) {
    t.trained->parameters =
        t.node->data_source()->update(t.trained->gradient, t.node->is_trainable());
  }
}

}  // namespace cnngraph::detail
