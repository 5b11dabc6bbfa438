// One node of a saved graph as its builder sees it (docs/saved-graphs.md). Each op file
// defines the builders of its nodes (build_<kind> below) from the attributes its
// list_attributes() writes; node_builders.cpp maps kind() to them. The loader sets what every
// node shares (label, padding, result format and flags, training style) after the builder.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cnngraph/batch_normalization_source.hpp"
#include "cnngraph/data_source.hpp"
#include "cnngraph/errors.hpp"
#include "cnngraph/nodes.hpp"

namespace cnngraph::detail {

class SavedNode {
 public:
  std::string kind;
  std::string where;  // "saved graph <file>, node <i> (<kind>)", for messages
  std::vector<std::shared_ptr<ImageNode>> sources;
  const nlohmann::json* attributes = nullptr;  // an object
  std::map<std::string, const FilterNode*> links;
  // The data sources the file defines, by label (DataSourceError when it has none).
  std::function<std::shared_ptr<ConvolutionDataSource>(const std::string& label,
                                                       const ConvolutionDescriptor& descriptor)>
      weights;
  std::function<std::shared_ptr<BatchNormalizationDataSource>(const std::string& label)>
      normalization;

  // Each throws DataSourceError naming `where` and the attribute when it is missing or of
  // another type or range.
  bool has(const std::string& name) const;
  std::int64_t integer(const std::string& name, std::int64_t min, std::int64_t max) const;
  int int_value(const std::string& name, int min = 0) const;  // [min, INT_MAX]
  float real(const std::string& name) const;                  // finite, within float
  double number(const std::string& name) const;               // finite
  bool flag(const std::string& name) const;
  std::string text(const std::string& name) const;
  std::vector<float> numbers(const std::string& name) const;  // empty when absent
  // The value of an enum whose names `name_of` gives for 0..count-1.
  template <typename Enum, typename NameOf>
  Enum choice(const std::string& name, int count, NameOf name_of) const {
    const std::string value = text(name);
    for (int i = 0; i < count; ++i) {
      if (value == std::string(name_of(static_cast<Enum>(i)))) return static_cast<Enum>(i);
    }
    throw DataSourceError(where + ": attribute '" + name + "' has an unknown value '" +
                          value.substr(0, 64) + "'");
  }
  // The source images, checked to be `count`.
  void expect_sources(std::size_t count) const;
  // A weighted node's data source: its label and descriptor (WeightedNode::list_attributes).
  std::shared_ptr<ConvolutionDataSource> weighted_source() const;
  const FilterNode& link(const std::string& name) const;
};

using NodeBuilder = std::shared_ptr<FilterNode> (*)(const SavedNode&);
// The builder of `kind`, or null for a kind no builder makes.
NodeBuilder find_node_builder(const std::string& kind);

// One per forward node kind, in its op file.
std::shared_ptr<FilterNode> build_convolution(const SavedNode&);
std::shared_ptr<FilterNode> build_fully_connected(const SavedNode&);
std::shared_ptr<FilterNode> build_convolution_transpose(const SavedNode&);
std::shared_ptr<FilterNode> build_binary_convolution(const SavedNode&);
std::shared_ptr<FilterNode> build_binary_fully_connected(const SavedNode&);
std::shared_ptr<FilterNode> build_neuron(const SavedNode&);
std::shared_ptr<FilterNode> build_pooling(const SavedNode&);
std::shared_ptr<FilterNode> build_global_average_pooling(const SavedNode&);
std::shared_ptr<FilterNode> build_global_max_pooling(const SavedNode&);
std::shared_ptr<FilterNode> build_padding(const SavedNode&);
std::shared_ptr<FilterNode> build_addition(const SavedNode&);
std::shared_ptr<FilterNode> build_subtraction(const SavedNode&);
std::shared_ptr<FilterNode> build_multiplication(const SavedNode&);
std::shared_ptr<FilterNode> build_division(const SavedNode&);
std::shared_ptr<FilterNode> build_concatenation(const SavedNode&);
std::shared_ptr<FilterNode> build_softmax(const SavedNode&);
std::shared_ptr<FilterNode> build_log_softmax(const SavedNode&);
std::shared_ptr<FilterNode> build_batch_normalization(const SavedNode&);
std::shared_ptr<FilterNode> build_cross_channel_normalization(const SavedNode&);
std::shared_ptr<FilterNode> build_spatial_normalization(const SavedNode&);
std::shared_ptr<FilterNode> build_reshape(const SavedNode&);
std::shared_ptr<FilterNode> build_dropout(const SavedNode&);
std::shared_ptr<FilterNode> build_loss(const SavedNode&);

}  // namespace cnngraph::detail
