// Bad input: every case gives a clear exception naming the node and the problem.
#include <cmath>

#include "support.hpp"

using namespace cnngraph;
using namespace cnngraph::testing;

namespace {

// Runs `fn`, expects exception type E whose message contains every fragment.
template <typename E, typename Fn>
void expect_error(Fn fn, std::initializer_list<std::string> fragments) {
  try {
    fn();
    ADD_FAILURE() << "no exception";
  } catch (const E& e) {
    for (const std::string& f : fragments) {
      EXPECT_NE(std::string(e.what()).find(f), std::string::npos)
          << "'" << f << "' not in: " << e.what();
    }
  }
}

std::shared_ptr<ConvolutionNode> conv_node(ConvolutionDescriptor d, const std::string& label) {
  std::mt19937 rng(1);
  auto node =
      std::make_shared<ConvolutionNode>(std::make_shared<ImageNode>(), random_source(d, rng));
  node->label = label;
  return node;
}

}  // namespace

TEST(Errors, AllDeriveFromError) {
  EXPECT_TRUE((std::is_base_of_v<Error, InvalidArgument> && std::is_base_of_v<Error, ShapeError> &&
               std::is_base_of_v<Error, DataSourceError> && std::is_base_of_v<Error, DeviceError> &&
               std::is_base_of_v<Error, Unsupported>));
}

TEST(Errors, ChannelMismatchNamesNodeAndBothCounts) {
  auto node = conv_node(ConvolutionDescriptor(3, 3, 4, 8), "conv2");
  Graph graph(Device::cpu(), node->result_image());
  std::mt19937 rng(2);
  expect_error<ShapeError>(
      [&] {
        graph.run({random_image({1, 5, 5, 3}, rng)});
      },
      {"conv2", "3 feature channels", "input_feature_channels is 4"});
}

TEST(Errors, GroupsMustDivideChannels) {
  ConvolutionDescriptor d(3, 3, 6, 4);
  d.groups = 4;
  expect_error<InvalidArgument>([&] { d.validate("conv"); },
                                {"groups = 4", "input_feature_channels = 6"});
  std::mt19937 rng(3);
  expect_error<InvalidArgument>([&] { random_source(d, rng); }, {"groups"});
}

TEST(Errors, NonPositiveSizesAreRejected) {
  for (auto [field, setter] : std::vector<std::pair<std::string, void (*)(ConvolutionDescriptor&)>>{
           {"kernel_width", [](ConvolutionDescriptor& d) { d.kernel_width = 0; }},
           {"stride_y", [](ConvolutionDescriptor& d) { d.stride_y = -1; }},
           {"dilation_x", [](ConvolutionDescriptor& d) { d.dilation_x = 0; }},
           {"output_feature_channels",
            [](ConvolutionDescriptor& d) { d.output_feature_channels = 0; }}}) {
    ConvolutionDescriptor d(3, 3, 2, 2);
    setter(d);
    expect_error<InvalidArgument>([&] { d.validate("conv"); }, {field});
  }
  expect_error<InvalidArgument>([] { Image({0, 4, 4, 1}); }, {"positive"});
  expect_error<InvalidArgument>([] { MaxPoolingNode(std::make_shared<ImageNode>(), 0); },
                                {"max_pooling"});
  expect_error<InvalidArgument>([] { ReshapeNode(std::make_shared<ImageNode>(), 1, -1, 3); },
                                {"reshape"});
}

TEST(Errors, EmptyBatchAndWrongNumberOfSources) {
  auto add = std::make_shared<AdditionNode>(std::make_shared<ImageNode>("left"),
                                            std::make_shared<ImageNode>("right"));
  Graph graph(Device::cpu(), add->result_image());
  std::mt19937 rng(4);
  const Image image = random_image({1, 2, 2, 1}, rng);
  expect_error<InvalidArgument>([&] { graph.run({image}); },
                                {"expected 2 source images", "left", "right"});
  expect_error<InvalidArgument>([&] { graph.run({image, Image()}); }, {"empty", "right"});
  expect_error<ShapeError>([&] { graph.run({image, random_image({2, 2, 2, 1}, rng)}); }, {"batch"});
  expect_error<ShapeError>(
      [&] {
        graph.run({image, random_image({1, 3, 2, 1}, rng)});
      },
      {"addition", "n1h2w2c1", "n1h3w2c1"});
}

TEST(Errors, FullyConnectedNeedsSourceOfKernelSize) {
  std::mt19937 rng(5);
  auto fc = std::make_shared<FullyConnectedNode>(
      std::make_shared<ImageNode>(),
      random_source(ConvolutionDescriptor(7, 7, 64, 10), rng, true, "fc1"));
  Graph graph(Device::cpu(), fc->result_image());
  expect_error<ShapeError>(
      [&] {
        graph.compile({{1, 14, 14, 64}});
      },
      {"fully_connected 'fc1'", "7x7", "14x14"});
}

TEST(Errors, NonFiniteWeightsAreRejectedNamingTheNode) {
  ConvolutionDescriptor d(1, 1, 2, 1);
  auto source = std::make_shared<ArrayDataSource>("poisoned", d, std::vector<float>{1.0f, NAN});
  auto node = std::make_shared<ConvolutionNode>(std::make_shared<ImageNode>(), source);
  node->label = "head";
  Graph graph(Device::cpu(), node->result_image());
  expect_error<DataSourceError>(
      [&] {
        graph.compile({{1, 1, 1, 2}});
      },
      {"'head'", "'poisoned'", "weights[1]", "non-finite"});
  auto bias_source = std::make_shared<ArrayDataSource>("b", d, std::vector<float>{1.0f, 1.0f},
                                                       std::vector<float>{INFINITY});
  Graph bias_graph(Device::cpu(),
                   std::make_shared<ConvolutionNode>(std::make_shared<ImageNode>(), bias_source)
                       ->result_image());
  expect_error<DataSourceError>([&] { bias_graph.compile({{1, 1, 1, 2}}); }, {"bias_terms[0]"});
}

TEST(Errors, WrongWeightCountsAndBadParameters) {
  expect_error<InvalidArgument>(
      [] { ArrayDataSource("w", ConvolutionDescriptor(3, 3, 2, 2), std::vector<float>(10)); },
      {"'w'", "expected 36, got 10"});
  expect_error<InvalidArgument>(
      [] {
        NeuronNode(std::make_shared<ImageNode>(), NeuronDescriptor::make(NeuronType::linear, NAN));
      },
      {"finite"});
  expect_error<InvalidArgument>(
      [] { NeuronNode(std::make_shared<ImageNode>(), NeuronDescriptor::make_prelu({})); },
      {"prelu"});
  ConvolutionDescriptor bn(1, 1, 1, 2);
  bn.set_batch_normalization({0}, {1}, {1}, {0}, 1e-5f);
  expect_error<InvalidArgument>([&] { bn.validate("conv"); }, {"batch normalization", "2 entries"});
  expect_error<InvalidArgument>([] { Graph(Device::cpu(), std::make_shared<ImageNode>()); },
                                {"graph source"});
  expect_error<InvalidArgument>([] { ConvolutionNode(std::make_shared<ImageNode>(), nullptr); },
                                {"null"});
}

TEST(Errors, ValidWindowLargerThanImage) {
  auto node = conv_node(ConvolutionDescriptor(5, 5, 1, 1), "big");
  node->padding_policy = PaddingPolicy::valid();
  Graph graph(Device::cpu(), node->result_image());
  expect_error<ShapeError>([&] { graph.compile({{1, 3, 3, 1}}); }, {"'big'", "x axis", "empty"});
}
