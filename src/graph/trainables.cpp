// Training state of a graph: preparing trained weights, the per-style update step, checkpoints.
#include "graph/trainables.hpp"

#include <set>

#include "cnngraph/errors.hpp"
#include "cnngraph/trainable_data_source.hpp"
#include "cnngraph/weights_file.hpp"
#include "ops/batch_normalization.hpp"

namespace cnngraph::detail {

namespace {

Trainable load_trainable(const WeightedNode& node) {
  Trainable t;
  t.node = &node;
  auto raw = prepare_node_weights(node, &t.fold, true);
  t.state = std::make_shared<WeightsAndBiasesState>(
      raw->weights, raw->has_bias ? raw->bias : std::vector<float>{});
  t.parameters = std::make_unique<TrainableParameters>();
  raw->trained = true;
  t.parameters->prepared = raw;
  t.parameters->fold_scale = t.fold.scale;
  refresh_prepared_weights(*raw, *t.state, t.fold);
  if (!t.fold.scale.empty()) raw->has_bias = true;
  ConvolutionGradientState& g = t.parameters->gradient;
  g.descriptor = raw->descriptor;
  g.node_label = node.display_name();
  g.weights_gradient.assign(raw->weights.size(), 0.0f);
  g.bias_gradient.assign(raw->bias.size(), 0.0f);
  return t;
}

void reload(Trainable& t) {
  Trainable fresh = load_trainable(*t.node);
  t.state = fresh.state;
  t.fold = fresh.fold;
  refresh_prepared_weights(*t.parameters->prepared, *t.state, t.fold);
}

// Runs a user callback, turning what it throws into a clear error naming the node.
template <typename Call>
auto call_source(const Trainable& t, const char* what, Call call) {
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

std::vector<Trainable> prepare_trainables(
    const GraphStructure& structure,
    std::map<const FilterNode*, std::shared_ptr<const PreparedWeights>>& weights) {
  std::vector<Trainable> trainables;
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
    trainables.push_back(load_trainable(*node));
    weights[node] = trainables.back().parameters->prepared;
  }
  return trainables;
}

std::vector<NormalizationTrainable> prepare_normalizations(const GraphStructure& structure) {
  std::vector<NormalizationTrainable> normalizations;
  std::set<const BatchNormalizationDataSource*> sources;
  for (const BatchNormalizationNode* node : structure.normalization_updates) {
    if (!sources.insert(node->data_source().get()).second) {
      throw InvalidArgument(node->display_name() + ": its data source '" +
                            node->data_source()->label() +
                            "' is trained by another node of this graph too");
    }
    NormalizationTrainable t;
    t.node = node;
    t.state = std::make_unique<TrainableNormalization>();
    t.state->parameters = node->parameters();
    t.state->gradient.node_label = node->display_name();
    normalizations.push_back(std::move(t));
  }
  return normalizations;
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

void apply_updates(std::vector<Trainable>& trainables,
                   std::vector<NormalizationTrainable>& normalizations, const Device& device,
                   std::uint64_t batch, int batch_size,
                   const std::vector<bool>& updated_elsewhere) {
  const auto here = [&](const Trainable& t) {
    const auto i = static_cast<std::size_t>(&t - trainables.data());
    return i >= updated_elsewhere.size() || !updated_elsewhere[i];
  };
  // A non-finite gradient (e.g. from a NaN input that max-pooling hid from the loss) would
  // silently poison the weights: refuse the whole batch's updates instead.
  for (Trainable& t : trainables) {
    if (!here(t)) continue;
    ConvolutionGradientState& g = t.parameters->gradient;
    g.batch_size = batch_size;
    if (!all_finite(g.weights_gradient) || !all_finite(g.bias_gradient))
      throw_not_finite(t.node->display_name(), batch);
  }
  for (NormalizationTrainable& t : normalizations) {
    const BatchNormalizationGradientState& g = t.state->gradient;
    if (!all_finite(g.gamma_gradient) || !all_finite(g.beta_gradient) ||
        !all_finite(g.batch_mean) || !all_finite(g.batch_variance))
      throw_not_finite(t.node->display_name(), batch);
  }
  std::vector<Trainable*> reloads;
  for (Trainable& t : trainables) {
    if (t.node->training_style != TrainingStyle::cpu || !here(t)) continue;
    const bool changed = call_source(t, "update()", [&](ConvolutionDataSource& source) {
      return source.update(t.parameters->gradient, *t.state);
    });
    if (changed) reloads.push_back(&t);
  }
  for (Trainable* t : reloads) reload(*t);
  const UpdateContext context{device, batch};
  for (Trainable& t : trainables) {
    if (t.node->training_style != TrainingStyle::device || !here(t)) continue;
    auto updated = call_source(t, "update_on_device()", [&](ConvolutionDataSource& source) {
      return source.update_on_device(context, t.parameters->gradient, t.state);
    });
    if (!updated) continue;  // no change, as in MPS
    if (updated->weights().size() != t.state->weights().size() ||
        updated->biases().size() != t.state->biases().size()) {
      throw DataSourceError(t.node->display_name() +
                            ": update_on_device() returned a state of the wrong size");
    }
    t.state = std::move(updated);
    refresh_prepared_weights(*t.parameters->prepared, *t.state, t.fold);
  }
  for (NormalizationTrainable& t : normalizations) {
    t.state->parameters = t.node->data_source()->update(t.state->gradient, t.node->is_trainable());
  }
}

namespace {
std::vector<std::int64_t> weight_shape(const ConvolutionDescriptor& d) {
  return {d.output_feature_channels, d.kernel_height, d.kernel_width,
          d.input_feature_channels / d.groups};
}

template <typename Node>
std::vector<const Node*> nodes_of(const GraphStructure& structure) {
  std::vector<const Node*> nodes;
  for (const auto& filter : structure.order) {
    if (const auto* node = dynamic_cast<const Node*>(filter.get())) nodes.push_back(node);
  }
  return nodes;
}

// The nodes with convolution weights, in graph order.
std::vector<const WeightedNode*> weighted_nodes(const GraphStructure& structure) {
  std::vector<const WeightedNode*> nodes;
  for (const auto& filter : structure.order) {
    if (const WeightedNode* node = filter->weighted()) nodes.push_back(node);
  }
  return nodes;
}

// A batch-normalization source's four tensors, in checkpoint order.
constexpr const char* kNormalizationTensors[] = {"gamma", "beta", "running_mean",
                                                 "running_variance"};
std::vector<float>* normalization_member(BatchNormalizationParameters& p, int index) {
  std::vector<float>* members[] = {&p.gamma, &p.beta, &p.mean, &p.variance};
  return members[index];
}

void save_normalizations(const GraphStructure& structure, std::map<std::string, Tensor>& tensors) {
  std::set<const BatchNormalizationDataSource*> saved;
  for (const BatchNormalizationNode* node : nodes_of<BatchNormalizationNode>(structure)) {
    if (!saved.insert(node->data_source().get()).second) continue;
    const std::string label = node->data_source()->label();
    BatchNormalizationParameters p = node->parameters();
    for (int i = 0; i < 4; ++i) {
      const std::string name = label + "." + kNormalizationTensors[i];
      if (tensors.count(name)) {
        throw InvalidArgument("save_checkpoint: two data sources are labelled '" + label +
                              "'; checkpoint tensors are named by label, which must be unique");
      }
      const std::vector<float>& values = *normalization_member(p, i);
      tensors[name] = Tensor::from_floats({static_cast<std::int64_t>(values.size())}, values);
    }
  }
}

// A checkpoint tensor's values; a NaN or infinity would make every later run fail, so it is
// refused like a missing tensor.
std::vector<float> checkpoint_values(const Tensor& tensor, const std::string& name,
                                     const std::filesystem::path& path, const std::string& node) {
  std::vector<float> values = tensor.to_floats();
  if (!all_finite(values)) {
    throw DataSourceError("load_checkpoint: tensor '" + name + "' in " + path.string() +
                          " holds a NaN or infinite value, for " + node);
  }
  return values;
}

// Checks the file's tensors for every batch-normalization source of the graph and returns
// the parameters to assign.
std::vector<std::pair<BatchNormalizationDataSource*, BatchNormalizationParameters>>
read_normalizations(const GraphStructure& structure, const std::map<std::string, Tensor>& tensors,
                    const std::filesystem::path& path) {
  std::vector<std::pair<BatchNormalizationDataSource*, BatchNormalizationParameters>> result;
  for (const BatchNormalizationNode* node : nodes_of<BatchNormalizationNode>(structure)) {
    BatchNormalizationParameters p = node->parameters();
    const std::string label = node->data_source()->label();
    for (int i = 0; i < 4; ++i) {
      const std::string name = label + "." + kNormalizationTensors[i];
      const auto found = tensors.find(name);
      std::vector<float>& member = *normalization_member(p, i);
      if (found == tensors.end() ||
          found->second.shape !=
              std::vector<std::int64_t>{static_cast<std::int64_t>(member.size())}) {
        throw DataSourceError("load_checkpoint: " + path.string() + " has no tensor '" + name +
                              "' of " + std::to_string(member.size()) + " values for " +
                              node->display_name());
      }
      member = checkpoint_values(found->second, name, path, node->display_name());
    }
    detail::validate_batch_normalization(p, "load_checkpoint: " + node->display_name());
    result.emplace_back(node->data_source().get(), std::move(p));
  }
  return result;
}
}  // namespace

void save_checkpoint(const GraphStructure& structure, const std::vector<Trainable>& trainables,
                     const std::filesystem::path& path) {
  std::map<std::string, Tensor> tensors;
  for (const WeightedNode* node : weighted_nodes(structure)) {
    const std::string label = node->weights()->label();
    if (tensors.count(label + ".weight")) {
      throw InvalidArgument("save_checkpoint: two nodes have data sources labelled '" + label +
                            "'; checkpoint tensors are named by label, which must be unique");
    }
    std::vector<float> weights, bias;
    ConvolutionDescriptor descriptor;
    const Trainable* trained = nullptr;
    for (const Trainable& t : trainables) trained = t.node == node ? &t : trained;
    if (trained) {
      weights = trained->state->weights();
      bias = trained->state->biases();
      descriptor = trained->parameters->gradient.descriptor;
    } else {
      ChannelAffine fold;
      auto raw = prepare_node_weights(*node, &fold, false);
      weights = raw->weights;
      if (raw->has_bias) bias = raw->bias;
      descriptor = raw->descriptor;
    }
    tensors[label + ".weight"] = Tensor::from_floats(weight_shape(descriptor), weights);
    if (!bias.empty()) {
      tensors[label + ".bias"] =
          Tensor::from_floats({static_cast<std::int64_t>(bias.size())}, bias);
    }
  }
  save_normalizations(structure, tensors);
  write_weights_file(path, tensors);
}

void load_checkpoint(const GraphStructure& structure, const std::filesystem::path& path) {
  const auto tensors = read_weights_file(path);
  // Check everything first, so that a bad file changes nothing.
  std::vector<std::pair<TrainableDataSource*, std::pair<std::vector<float>, std::vector<float>>>>
      assignments;
  for (const WeightedNode* node : weighted_nodes(structure)) {
    auto* source = dynamic_cast<TrainableDataSource*>(node->weights().get());
    const std::string label = node->weights()->label();
    if (!source) {
      throw Unsupported(node->display_name() +
                        ": load_checkpoint assigns TrainableDataSource "
                        "weights only; data source '" +
                        label +
                        "' is not one (read the file with FileDataSource(path, descriptor, \"" +
                        label + ".\") instead)");
    }
    const auto weight = tensors.find(label + ".weight");
    if (weight == tensors.end()) {
      throw DataSourceError("load_checkpoint: " + path.string() + " has no tensor '" + label +
                            ".weight' for " + node->display_name());
    }
    if (weight->second.shape != weight_shape(source->descriptor())) {
      throw DataSourceError("load_checkpoint: tensor '" + label + ".weight' in " + path.string() +
                            " does not match the descriptor of " + node->display_name());
    }
    const auto b = tensors.find(label + ".bias");
    const bool has_bias = !source->current_bias().empty();
    if ((b != tensors.end()) != has_bias) {
      throw DataSourceError("load_checkpoint: " + path.string() + (has_bias ? " lacks" : " has") +
                            " tensor '" + label + ".bias' but " + node->display_name() +
                            (has_bias ? " has a bias" : " has none"));
    }
    std::vector<float> bias;
    if (has_bias) {
      const std::vector<std::int64_t> bias_shape = {source->descriptor().output_feature_channels};
      if (b->second.shape != bias_shape) {
        throw DataSourceError("load_checkpoint: tensor '" + label + ".bias' in " + path.string() +
                              " has " + std::to_string(b->second.elements()) + " values, " +
                              node->display_name() + " needs " + std::to_string(bias_shape[0]));
      }
      bias = checkpoint_values(b->second, label + ".bias", path, node->display_name());
    }
    assignments.push_back(
        {source,
         {checkpoint_values(weight->second, label + ".weight", path, node->display_name()),
          std::move(bias)}});
  }
  auto normalizations = read_normalizations(structure, tensors, path);
  for (auto& [source, values] : assignments) {
    source->assign(std::move(values.first), std::move(values.second));
  }
  for (auto& [source, parameters] : normalizations) source->assign(std::move(parameters));
}

}  // namespace cnngraph::detail
