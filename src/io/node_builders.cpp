// The table of saved-graph node builders (one row per forward kind; the builders live in the
// op files) and the checked attribute reads they share.
#include <climits>
#include <cmath>
#include <limits>

#include "io/saved_node.hpp"

namespace cnngraph::detail {

namespace {

struct BuilderRow {
  const char* kind;
  NodeBuilder build;
  bool prefix;  // a family of kinds: "neuron_relu", "neuron_tanh", ...
};

constexpr BuilderRow kBuilders[] = {
    {"convolution", build_convolution, false},
    {"fully_connected", build_fully_connected, false},
    {"convolution_transpose", build_convolution_transpose, false},
    {"binary_convolution", build_binary_convolution, false},
    {"binary_fully_connected", build_binary_fully_connected, false},
    {"neuron_", build_neuron, true},
    {"max_pooling", build_pooling, false},
    {"average_pooling", build_pooling, false},
    {"global_average_pooling", build_global_average_pooling, false},
    {"global_max_pooling", build_global_max_pooling, false},
    {"padding", build_padding, false},
    {"addition", build_addition, false},
    {"subtraction", build_subtraction, false},
    {"multiplication", build_multiplication, false},
    {"division", build_division, false},
    {"concatenation", build_concatenation, false},
    {"softmax", build_softmax, false},
    {"log_softmax", build_log_softmax, false},
    {"batch_normalization", build_batch_normalization, false},
    {"cross_channel_normalization", build_cross_channel_normalization, false},
    {"spatial_normalization", build_spatial_normalization, false},
    {"reshape", build_reshape, false},
    {"dropout", build_dropout, false},
    {"loss_", build_loss, true},
};

}  // namespace

NodeBuilder find_node_builder(const std::string& kind) {
  for (const BuilderRow& row : kBuilders) {
    if (row.prefix ? kind.rfind(row.kind, 0) == 0 : kind == row.kind) return row.build;
  }
  return nullptr;
}

namespace {
const nlohmann::json& attribute(const SavedNode& node, const std::string& name) {
  const auto found = node.attributes->find(name);
  if (found == node.attributes->end()) {
    throw DataSourceError(node.where + ": attribute '" + name + "' is missing");
  }
  return *found;
}
[[noreturn]] void wrong(const SavedNode& node, const std::string& name, const char* expected) {
  throw DataSourceError(node.where + ": attribute '" + name + "' is not " + expected);
}
}  // namespace

bool SavedNode::has(const std::string& name) const { return attributes->contains(name); }

std::int64_t SavedNode::integer(const std::string& name, std::int64_t min, std::int64_t max) const {
  const nlohmann::json& value = attribute(*this, name);
  std::int64_t result = 0;
  if (value.is_number_unsigned()) {
    const auto u = value.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(INT64_MAX)) wrong(*this, name, "a 64-bit integer");
    result = static_cast<std::int64_t>(u);
  } else if (value.is_number_integer()) {
    result = value.get<std::int64_t>();
  } else {
    wrong(*this, name, "an integer");
  }
  if (result < min || result > max) {
    throw DataSourceError(where + ": attribute '" + name + "' is " + std::to_string(result) +
                          ", outside [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return result;
}

int SavedNode::int_value(const std::string& name, int min) const {
  return static_cast<int>(integer(name, min, INT_MAX));
}

float SavedNode::real(const std::string& name) const {
  const nlohmann::json& value = attribute(*this, name);
  if (!value.is_number()) wrong(*this, name, "a number");
  const double d = value.get<double>();
  if (!std::isfinite(d) || std::fabs(d) > std::numeric_limits<float>::max()) {
    wrong(*this, name, "a finite float");
  }
  return static_cast<float>(d);
}

double SavedNode::number(const std::string& name) const {
  const nlohmann::json& value = attribute(*this, name);
  if (!value.is_number() || !std::isfinite(value.get<double>()))
    wrong(*this, name, "a finite number");
  return value.get<double>();
}

bool SavedNode::flag(const std::string& name) const {
  const nlohmann::json& value = attribute(*this, name);
  if (!value.is_boolean()) wrong(*this, name, "true or false");
  return value.get<bool>();
}

std::string SavedNode::text(const std::string& name) const {
  const nlohmann::json& value = attribute(*this, name);
  if (!value.is_string()) wrong(*this, name, "a string");
  return value.get<std::string>();
}

std::vector<float> SavedNode::numbers(const std::string& name) const {
  if (!has(name)) return {};
  const nlohmann::json& value = attribute(*this, name);
  if (!value.is_array()) wrong(*this, name, "a list of numbers");
  std::vector<float> result;
  result.reserve(value.size());  // the parsed header, already bounded by the file
  for (const nlohmann::json& v : value) {
    if (!v.is_number()) wrong(*this, name, "a list of numbers");
    const double d = v.get<double>();
    if (!std::isfinite(d) || std::fabs(d) > std::numeric_limits<float>::max()) {
      wrong(*this, name, "a list of finite floats");
    }
    result.push_back(static_cast<float>(d));
  }
  return result;
}

void SavedNode::expect_sources(std::size_t count) const {
  if (sources.size() != count) {
    throw DataSourceError(where + ": has " + std::to_string(sources.size()) +
                          " inputs, the kind takes " + std::to_string(count));
  }
}

std::shared_ptr<ConvolutionDataSource> SavedNode::weighted_source() const {
  ConvolutionDescriptor d;
  d.kernel_width = int_value("kernel_width", 1);
  d.kernel_height = int_value("kernel_height", 1);
  d.input_feature_channels = int_value("input_feature_channels", 1);
  d.output_feature_channels = int_value("output_feature_channels", 1);
  d.stride_x = int_value("stride_x", 1);
  d.stride_y = int_value("stride_y", 1);
  d.dilation_x = int_value("dilation_x", 1);
  d.dilation_y = int_value("dilation_y", 1);
  d.groups = int_value("groups", 1);
  d.sub_pixel_scale_factor = int_value("sub_pixel_scale_factor", 1);
  if (has("sub_pixel_order")) {
    d.sub_pixel_order =
        choice<SubPixelOrder>("sub_pixel_order", 2, [](SubPixelOrder o) { return to_string(o); });
  }
  if (has("neuron")) {
    d.neuron.type = choice<NeuronType>("neuron", static_cast<int>(NeuronType::silu) + 1,
                                       [](NeuronType t) { return to_string(t); });
    d.neuron.a = real("neuron_a");
    d.neuron.b = real("neuron_b");
    d.neuron.c = real("neuron_c");
    d.neuron.prelu_slopes = numbers("prelu_slopes");
  }
  if (has("batch_normalization_epsilon")) {
    d.batch_normalization = BatchNormalizationParameters{
        numbers("batch_normalization_mean"), numbers("batch_normalization_variance"),
        numbers("batch_normalization_gamma"), numbers("batch_normalization_beta"),
        real("batch_normalization_epsilon")};
  }
  try {
    d.validate(where);
  } catch (const InvalidArgument& e) {
    throw DataSourceError(e.what());
  }
  return weights(text("weights"), d);
}

const FilterNode& SavedNode::link(const std::string& name) const {
  const auto found = links.find(name);
  if (found == links.end()) throw DataSourceError(where + ": link '" + name + "' is missing");
  return *found->second;
}

}  // namespace cnngraph::detail
