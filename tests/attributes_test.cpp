// Every node lists itself to an AttributeVisitor: kind and label first, one input per source
// image, then its attributes by name.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "cnngraph/cnngraph.hpp"
#include "support.hpp"

using namespace cnngraph;
using namespace cnngraph::testing;

namespace {

class Recorder : public AttributeVisitor {
 public:
  void node(const std::string& kind, const std::string& label) override {
    ++nodes;
    this->kind = kind;
    this->label = label;
    in_order = in_order && names.empty() && inputs.empty();
  }
  void input(const std::string& name, const ImageNode& image) override {
    inputs.push_back(&image);
    input_names.push_back(name);
  }
  void link(const std::string& name, const FilterNode& node) override {
    names.insert(name);
    links[name] = &node;
  }
  void integer(const std::string& name, std::int64_t value) override {
    names.insert(name);
    integers[name] = value;
  }
  void number(const std::string& name, double value) override {
    names.insert(name);
    numbers_[name] = value;
  }
  void flag(const std::string& name, bool) override { names.insert(name); }
  void text(const std::string& name, const std::string& value) override {
    names.insert(name);
    texts[name] = value;
  }
  void numbers(const std::string& name, const std::vector<float>&) override { names.insert(name); }

  int nodes = 0;
  bool in_order = true;
  std::string kind, label;
  std::vector<const ImageNode*> inputs;
  std::vector<std::string> input_names;
  std::set<std::string> names;
  std::map<std::string, const FilterNode*> links;
  std::map<std::string, std::int64_t> integers;
  std::map<std::string, double> numbers_;
  std::map<std::string, std::string> texts;
};

Recorder record(const FilterNode& node) {
  Recorder r;
  node.visit_attributes(r);
  return r;
}

}  // namespace

TEST(Attributes, EveryNodeKindListsKindLabelSourcesAndItsOwnAttributes) {
  std::mt19937 rng(1);
  auto x = std::make_shared<ImageNode>("x");
  auto conv = std::make_shared<ConvolutionNode>(
      x, random_source(ConvolutionDescriptor(3, 3, 4, 4), rng, true, "w"));
  auto fc = std::make_shared<FullyConnectedNode>(
      x, random_source(ConvolutionDescriptor(4, 4, 4, 2), rng, true, "fc"));
  auto binary = std::make_shared<BinaryConvolutionNode>(
      x, random_source(ConvolutionDescriptor(3, 3, 4, 4), rng, false, "b"), 0.5f,
      BinaryConvolutionType::xnor, BinaryConvolutionFlags{true});
  auto transpose = std::make_shared<ConvolutionTransposeNode>(
      conv->result_image(), conv->convolution_gradient_state(),
      random_source(ConvolutionDescriptor(3, 3, 4, 4), rng, false, "t"));
  auto neuron = std::make_shared<NeuronNode>(x, NeuronDescriptor::make(NeuronType::relu_n, 1, 6));
  auto pool = std::make_shared<MaxPoolingNode>(x, 2, 3, 1, 2);
  auto bn =
      std::make_shared<BatchNormalizationNode>(x, BatchNormalizationDataSource::identity("bn", 4));
  auto lrn = std::make_shared<CrossChannelNormalizationNode>(x, 5);
  auto spatial = std::make_shared<SpatialNormalizationNode>(x, 3, 2);
  auto reshape = std::make_shared<ReshapeNode>(x, 1, 1, 64);
  auto dropout = std::make_shared<DropoutNode>(x, 0.75f, 9);
  auto average = std::make_shared<AveragePoolingNode>(x, 2);
  average->set_counts_padding(true);
  average->set_counted_padding_end(1, 0);
  auto padding = std::make_shared<PaddingNode>(x, PaddingAmounts{.top = 1}, 0.5f);
  auto global_max = std::make_shared<GlobalMaxPoolingNode>(x);
  auto add = std::make_shared<AdditionNode>(x, neuron->result_image());
  auto loss = std::make_shared<LossNode>(
      x, LossDescriptor(LossType::mean_squared_error, ReductionType::mean));
  auto conv_gradient = conv->gradient_filter(conv->result_image());
  auto neuron_gradient = neuron->gradient_filter(neuron->result_image());
  conv->label = "first";

  const std::map<const FilterNode*, std::set<std::string>> expected = {
      {conv.get(), {"weights", "weights_kind", "training_style", "accumulator_precision"}},
      {fc.get(), {"weights", "training_style", "accumulator_precision"}},
      {binary.get(),
       {"weights", "weights_kind", "training_style", "scale_value", "binary_type",
        "use_beta_scaling", "input_bias", "output_scale"}},
      {transpose.get(), {"weights", "training_style", "sized_by"}},
      {neuron.get(), {"neuron", "a", "b", "c"}},
      {pool.get(), {"pooling", "kernel_width", "kernel_height", "stride_x", "stride_y"}},
      {bn.get(), {"data_source", "training_style"}},
      {lrn.get(), {"alpha", "beta", "delta", "kernel_size"}},
      {spatial.get(), {"alpha", "kernel_width", "kernel_height"}},
      {reshape.get(), {"height", "width", "channels"}},
      {dropout.get(), {"keep_probability", "seed"}},
      {average.get(),
       {"pooling", "kernel_width", "kernel_height", "stride_x", "stride_y", "counts_padding",
        "counted_padding_bottom", "counted_padding_right"}},
      {padding.get(), {"top", "bottom", "left", "right", "channels_after", "value"}},
      {global_max.get(), {}},
      {add.get(), {}},
      {loss.get(), {"loss", "reduction", "weight", "label_smoothing", "epsilon", "delta"}},
      {conv_gradient.get(), {"forward", "gradient_option"}},
      {neuron_gradient.get(), {"forward", "source_index"}},
  };
  for (const auto& [node, names] : expected) {
    const Recorder r = record(*node);
    EXPECT_EQ(r.nodes, 1) << node->display_name();
    EXPECT_TRUE(r.in_order) << node->display_name();
    EXPECT_EQ(r.kind, node->kind());
    EXPECT_EQ(r.label, node->label);
    ASSERT_EQ(r.inputs.size(), node->source_images().size()) << node->display_name();
    for (std::size_t i = 0; i < r.inputs.size(); ++i)
      EXPECT_EQ(r.inputs[i], node->source_images()[i].get()) << node->display_name();
    for (const char* common : {"padding", "padding_alignment", "export_from_graph"})
      EXPECT_TRUE(r.names.count(common)) << node->display_name() << " lacks " << common;
    for (const std::string& name : names)
      EXPECT_TRUE(r.names.count(name)) << node->display_name() << " lacks " << name;
  }
}

TEST(Attributes, ValuesAreTheNodesOwn) {
  std::mt19937 rng(2);
  auto x = std::make_shared<ImageNode>();
  auto conv = std::make_shared<ConvolutionNode>(
      x, random_source(ConvolutionDescriptor(3, 3, 4, 4), rng, true, "w"));
  conv->training_style = TrainingStyle::cpu;
  conv->padding_policy = PaddingPolicy::valid();
  Recorder r = record(*conv);
  EXPECT_EQ(r.texts["weights"], "w");
  EXPECT_EQ(r.texts["training_style"], "cpu");
  EXPECT_EQ(r.texts["padding"], "valid");
  auto pool = std::make_shared<AveragePoolingNode>(x, 2, 3, 1, 2);
  r = record(*pool);
  EXPECT_EQ(r.texts["pooling"], "average");
  EXPECT_EQ(r.integers["kernel_height"], 3);
  EXPECT_EQ(r.integers["stride_y"], 2);
  auto gradient = conv->gradient_filter(conv->result_image());
  r = record(*gradient);
  EXPECT_EQ(r.links["forward"], conv.get());
}

TEST(Attributes, AWeightedNodeListsItsDataSourcesDescriptor) {
  std::mt19937 rng(3);
  ConvolutionDescriptor d(3, 5, 4, 6);
  d.stride_x = 2;
  d.dilation_y = 2;
  d.groups = 2;
  d.set_neuron(NeuronType::relu_n, 1.0f, 6.0f);
  auto conv = std::make_shared<ConvolutionNode>(std::make_shared<ImageNode>(),
                                                random_source(d, rng, true, "w"));
  Recorder r = record(*conv);
  EXPECT_EQ(r.integers["kernel_width"], 3);
  EXPECT_EQ(r.integers["kernel_height"], 5);
  EXPECT_EQ(r.integers["input_feature_channels"], 4);
  EXPECT_EQ(r.integers["output_feature_channels"], 6);
  EXPECT_EQ(r.integers["stride_x"], 2);
  EXPECT_EQ(r.integers["stride_y"], 1);
  EXPECT_EQ(r.integers["dilation_y"], 2);
  EXPECT_EQ(r.integers["groups"], 2);
  EXPECT_EQ(r.texts["neuron"], "relu_n");
  EXPECT_EQ(r.numbers_["neuron_b"], 6.0);
  EXPECT_FALSE(r.names.count("batch_normalization_mean"));
}

TEST(Attributes, InputsAreNamedByTheirRole) {
  std::mt19937 rng(4);
  auto x = std::make_shared<ImageNode>();
  auto conv = std::make_shared<ConvolutionNode>(
      x, random_source(ConvolutionDescriptor(3, 3, 4, 4), rng, true, "w"));
  auto add = std::make_shared<AdditionNode>(x, conv->result_image());
  auto neuron =
      std::make_shared<NeuronNode>(add->result_image(), NeuronDescriptor::make(NeuronType::relu));
  EXPECT_EQ(record(*conv).input_names, std::vector<std::string>{"source"});
  EXPECT_EQ(record(*add).input_names, (std::vector<std::string>{"primary", "secondary"}));
  const Recorder conv_gradient = record(*conv->gradient_filter(conv->result_image()));
  EXPECT_EQ(conv_gradient.input_names, (std::vector<std::string>{"gradient", "forward_source"}));
  const Recorder neuron_gradient = record(*neuron->gradient_filter(neuron->result_image()));
  ASSERT_FALSE(neuron_gradient.input_names.empty());
  EXPECT_EQ(neuron_gradient.input_names[0], "gradient");
}

TEST(Attributes, DescribeBeforeCompilationListsEachNodesAttributes) {
  auto pool = std::make_shared<MaxPoolingNode>(std::make_shared<ImageNode>(), 2);
  pool->label = "p";
  Graph graph(Device::cpu(), pool->result_image());
  const std::string text = graph.describe();
  EXPECT_NE(text.find("max_pooling 'p' [padding same"), std::string::npos) << text;
  EXPECT_NE(text.find("kernel_width 2"), std::string::npos) << text;
}
