// Checkpoints (docs/weights-format.md): every weighted node's weights and biases and every
// batch normalization's parameters and running statistics, named by data-source label.
#include "graph/checkpoint.hpp"

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

void save_checkpoint(const GraphStructure& structure, const ParameterStore& parameters,
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
    if (const ParameterStore::Convolution* trained = parameters.find(*node)) {
      weights = trained->source_state->weights();
      bias = trained->source_state->biases();
      descriptor = trained->trained->gradient.descriptor;
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
