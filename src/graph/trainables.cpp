// Training state of a graph: preparing trained weights, the per-style update step, checkpoints.
#include "graph/trainables.hpp"

#include <set>

#include "cnngraph/errors.hpp"
#include "cnngraph/trainable_data_source.hpp"
#include "cnngraph/weights_file.hpp"

namespace cnngraph::detail {

namespace {

Trainable load_trainable(const ConvolutionNode& node) {
  Trainable t;
  t.node = &node;
  auto raw = prepare_weights(node, &t.fold);
  t.state = std::make_shared<WeightsAndBiasesState>(
      raw->weights, raw->has_bias ? raw->bias : std::vector<float>{});
  t.parameters = std::make_unique<TrainableParameters>();
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
    throw DataSourceError(t.node->display_name() + ", data source '" + source.label() + "': " +
                          what + " failed: " + e.what());
  }
}

}  // namespace

std::vector<Trainable> prepare_trainables(
    const GraphStructure& structure,
    std::map<const FilterNode*, std::shared_ptr<const PreparedWeights>>& weights) {
  std::vector<Trainable> trainables;
  std::set<const ConvolutionNode*> nodes;
  std::set<const ConvolutionDataSource*> sources;
  for (const ConvolutionGradientNode* gradient : structure.weight_updates) {
    const ConvolutionNode& node = gradient->forward();
    if (!nodes.insert(&node).second) {
      throw InvalidArgument(node.display_name() +
                            ": has two weight-gradient nodes in one graph; its weights would be "
                            "updated twice per batch");
    }
    if (!sources.insert(node.weights().get()).second) {
      throw InvalidArgument(node.display_name() + ": its data source '" + node.weights()->label() +
                            "' is trained by another node of this graph too");
    }
    trainables.push_back(load_trainable(node));
    weights[&node] = trainables.back().parameters->prepared;
  }
  return trainables;
}

void apply_updates(std::vector<Trainable>& trainables, const Device& device, std::uint64_t batch,
                   int batch_size) {
  for (Trainable& t : trainables) {
    ConvolutionGradientState& g = t.parameters->gradient;
    g.batch_size = batch_size;
    // A non-finite gradient (e.g. from a NaN input that max-pooling hid from the loss) would
    // silently poison the weights: refuse the whole batch's updates instead.
    const auto finite = [](const std::vector<float>& values) {
      const float* v = values.data();
      const auto count = static_cast<std::ptrdiff_t>(values.size());
      float sum = 0.0f;
#pragma omp parallel for simd reduction(+ : sum) if (count > (1 << 15))
      for (std::ptrdiff_t i = 0; i < count; ++i) sum += v[i] * 0.0f;  // NaN or inf make it NaN
      return sum == 0.0f;
    };
    if (!finite(g.weights_gradient) || !finite(g.bias_gradient)) {
      throw NumericalError(t.node->display_name() + ": the weight gradients of batch " +
                           std::to_string(batch) +
                           " are not finite; no weights were updated (check the inputs)");
    }
  }
  std::vector<Trainable*> reloads;
  for (Trainable& t : trainables) {
    if (t.node->training_style != TrainingStyle::cpu) continue;
    const bool changed = call_source(t, "update()", [&](ConvolutionDataSource& source) {
      return source.update(t.parameters->gradient, *t.state);
    });
    if (changed) reloads.push_back(&t);
  }
  for (Trainable* t : reloads) reload(*t);
  const UpdateContext context{device, batch};
  for (Trainable& t : trainables) {
    if (t.node->training_style != TrainingStyle::device) continue;
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
}

namespace {
std::vector<std::int64_t> weight_shape(const ConvolutionDescriptor& d) {
  return {d.output_feature_channels, d.kernel_height, d.kernel_width,
          d.input_feature_channels / d.groups};
}

std::vector<const ConvolutionNode*> convolution_nodes(const GraphStructure& structure) {
  std::vector<const ConvolutionNode*> nodes;
  for (const auto& filter : structure.order) {
    if (const auto* c = dynamic_cast<const ConvolutionNode*>(filter.get())) nodes.push_back(c);
  }
  return nodes;
}
}  // namespace

void save_checkpoint(const GraphStructure& structure, const std::vector<Trainable>& trainables,
                     const std::filesystem::path& path) {
  std::map<std::string, Tensor> tensors;
  for (const ConvolutionNode* node : convolution_nodes(structure)) {
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
      auto raw = prepare_weights(*node, &fold);
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
  write_weights_file(path, tensors);
}

void load_checkpoint(const GraphStructure& structure, const std::filesystem::path& path) {
  const auto tensors = read_weights_file(path);
  // Check everything first, so that a bad file changes nothing.
  std::vector<std::pair<TrainableDataSource*, std::pair<std::vector<float>, std::vector<float>>>>
      assignments;
  for (const ConvolutionNode* node : convolution_nodes(structure)) {
    auto* source = dynamic_cast<TrainableDataSource*>(node->weights().get());
    const std::string label = node->weights()->label();
    if (!source) {
      throw Unsupported(node->display_name() + ": load_checkpoint assigns TrainableDataSource "
                        "weights only; data source '" + label +
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
    std::vector<float> bias;
    if (const auto b = tensors.find(label + ".bias"); b != tensors.end()) bias = b->second.to_floats();
    if (bias.empty() != source->current_bias().empty()) {
      throw DataSourceError("load_checkpoint: " + path.string() + (bias.empty() ? " lacks" : " has") +
                            " tensor '" + label + ".bias' but " + node->display_name() +
                            (bias.empty() ? " has a bias" : " has none"));
    }
    assignments.push_back({source, {weight->second.to_floats(), std::move(bias)}});
  }
  for (auto& [source, values] : assignments) {
    source->assign(std::move(values.first), std::move(values.second));
  }
}

}  // namespace cnngraph::detail
