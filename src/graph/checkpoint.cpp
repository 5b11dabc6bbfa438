// Checkpoints (docs/weights-format.md): every weighted node's weights and biases and every
// batch normalization's parameters and running statistics, named by data-source label, with
// the optimizer's moments and time step of every source that has them.
#include "graph/checkpoint.hpp"

#include <algorithm>
#include <charconv>
#include <optional>
#include <set>

#include "cnngraph/errors.hpp"
#include "cnngraph/trainable_data_source.hpp"
#include "cnngraph/weights_file.hpp"
#include "graph/weights.hpp"
#include "ops/batch_normalization.hpp"

namespace cnngraph::detail {

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

// An optimizer state's tensors are named after its parameters' tensors: "<label>.weight.momentum"
// and so on; its time step is the metadata entry "<label>.time_step".
constexpr const char* kMomentNames[] = {"momentum", "velocity", "maximum_velocity"};
std::vector<float>* moment_member(OptimizerState::Tensor& t, int index) {
  std::vector<float>* members[] = {&t.momentum, &t.velocity, &t.maximum_velocity};
  return members[index];
}

void save_state(const std::string& label, const std::vector<std::string>& parameter_names,
                OptimizerState state, std::map<std::string, Tensor>& tensors,
                std::map<std::string, std::string>& metadata) {
  metadata[label + ".time_step"] = std::to_string(state.time_step);
  for (std::size_t t = 0; t < state.tensors.size() && t < parameter_names.size(); ++t) {
    for (int m = 0; m < 3; ++m) {
      const std::vector<float>& values = *moment_member(state.tensors[t], m);
      if (values.empty()) continue;
      tensors[label + "." + parameter_names[t] + "." + kMomentNames[m]] =
          Tensor::from_floats({static_cast<std::int64_t>(values.size())}, values);
    }
  }
}

// The saved optimizer state of `label`, or none when the file has no time step for it (a
// checkpoint written before checkpoints held optimizer states).
std::optional<OptimizerState> read_state(const std::string& label,
                                         const std::vector<std::string>& parameter_names,
                                         const std::vector<std::size_t>& lengths,
                                         const WeightsFileContents& contents,
                                         const std::filesystem::path& path,
                                         const std::string& node) {
  const auto step = contents.metadata.find(label + ".time_step");
  if (step == contents.metadata.end()) return std::nullopt;
  OptimizerState state;
  const std::string& text = step->second;
  const auto [end, error] =
      std::from_chars(text.data(), text.data() + text.size(), state.time_step);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
    throw DataSourceError("load_checkpoint: metadata '" + label + ".time_step' in " +
                          path.string() + " is not an unsigned 64-bit count: '" +
                          text.substr(0, 40) + "'");
  }
  // `lengths` has no entry for a tensor the source lacks (a bias): its moments are ignored.
  state.tensors.resize(std::min(parameter_names.size(), lengths.size()));
  for (std::size_t t = 0; t < state.tensors.size(); ++t) {
    for (int m = 0; m < 3; ++m) {
      const std::string name = label + "." + parameter_names[t] + "." + kMomentNames[m];
      const auto found = contents.tensors.find(name);
      if (found == contents.tensors.end()) continue;
      if (found->second.shape != std::vector<std::int64_t>{static_cast<std::int64_t>(lengths[t])}) {
        throw DataSourceError("load_checkpoint: tensor '" + name + "' in " + path.string() +
                              " is not " + std::to_string(lengths[t]) + " values, for " + node);
      }
      *moment_member(state.tensors[t], m) = checkpoint_values(found->second, name, path, node);
    }
  }
  while (!state.tensors.empty() && state.tensors.back().momentum.empty() &&
         state.tensors.back().velocity.empty() && state.tensors.back().maximum_velocity.empty()) {
    state.tensors.pop_back();
  }
  return state;
}

void save_normalizations(const GraphStructure& structure, std::map<std::string, Tensor>& tensors,
                         std::map<std::string, std::string>& metadata) {
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
    if (node->data_source()->optimizer()) {
      save_state(label, {"gamma", "beta"}, node->data_source()->optimizer_state(), tensors,
                 metadata);
    }
  }
}

// Checks the file's tensors for every batch-normalization source of the graph and returns
// the parameters to assign.
struct NormalizationAssignment {
  BatchNormalizationDataSource* source;
  BatchNormalizationParameters parameters;
  std::optional<OptimizerState> state;
};
std::vector<NormalizationAssignment> read_normalizations(const GraphStructure& structure,
                                                         const WeightsFileContents& contents,
                                                         const std::filesystem::path& path) {
  const std::map<std::string, Tensor>& tensors = contents.tensors;
  std::vector<NormalizationAssignment> result;
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
    std::optional<OptimizerState> state =
        read_state(label, {"gamma", "beta"}, {p.gamma.size(), p.beta.size()}, contents, path,
                   node->display_name());
    result.push_back({node->data_source().get(), std::move(p), std::move(state)});
  }
  return result;
}
}  // namespace

void collect_checkpoint(const GraphStructure& structure, const ParameterStore& parameters,
                        std::map<std::string, Tensor>& tensors,
                        std::map<std::string, std::string>& metadata) {
  for (const WeightedNode* node : weighted_nodes(structure)) {
    const std::string label = node->weights()->label();
    if (tensors.count(label + ".weight")) {
      throw InvalidArgument("save_checkpoint: two nodes have data sources labelled '" + label +
                            "'; checkpoint tensors are named by label, which must be unique");
    }
    std::vector<float> weights, bias;
    ConvolutionDescriptor descriptor;
    if (const ParameterStore::Convolution* trained = parameters.find(*node)) {
      weights = trained->source_state->weights();
      bias = trained->source_state->biases();
      descriptor = trained->trained->gradient.descriptor;
    } else if (const auto* trainable =
                   dynamic_cast<const TrainableDataSource*>(node->weights().get())) {
      // Its own floats: a binary node's shadow weights, not their signs.
      weights = trainable->current_weights();
      bias = trainable->current_bias();
      descriptor = trainable->descriptor();
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
    if (const auto* source = dynamic_cast<const TrainableDataSource*>(node->weights().get())) {
      save_state(label, {"weight", "bias"}, source->optimizer_state(), tensors, metadata);
    }
  }
  save_normalizations(structure, tensors, metadata);
}

void save_checkpoint(const GraphStructure& structure, const ParameterStore& parameters,
                     const std::filesystem::path& path) {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;
  collect_checkpoint(structure, parameters, tensors, metadata);
  write_weights_file(path, tensors, metadata);
}

void load_checkpoint(const GraphStructure& structure, const std::filesystem::path& path) {
  assign_checkpoint(structure, read_weights_file_with_metadata(path), path);
}

void assign_checkpoint(const GraphStructure& structure, const WeightsFileContents& contents,
                       const std::filesystem::path& path) {
  const std::map<std::string, Tensor>& tensors = contents.tensors;
  // Check everything first, so that a bad file changes nothing.
  struct Assignment {
    TrainableDataSource* source;
    std::vector<float> weights, bias;
    std::optional<OptimizerState> state;
  };
  std::vector<Assignment> assignments;
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
    std::vector<std::size_t> lengths{source->descriptor().weight_count()};
    if (has_bias) lengths.push_back(bias.size());
    std::optional<OptimizerState> state =
        read_state(label, {"weight", "bias"}, lengths, contents, path, node->display_name());
    assignments.push_back(
        {source, checkpoint_values(weight->second, label + ".weight", path, node->display_name()),
         std::move(bias), std::move(state)});
  }
  auto normalizations = read_normalizations(structure, contents, path);
  for (Assignment& a : assignments) {
    if (a.state) {
      a.source->assign(std::move(a.weights), std::move(a.bias), std::move(*a.state));
    } else {
      a.source->assign(std::move(a.weights), std::move(a.bias));
    }
  }
  for (NormalizationAssignment& n : normalizations) {
    if (n.state) {
      n.source->assign(std::move(n.parameters), std::move(*n.state));
    } else {
      n.source->assign(std::move(n.parameters));
    }
  }
}

}  // namespace cnngraph::detail
