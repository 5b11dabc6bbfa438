// Saved graphs: every forward node kind round-trips bit for bit, a loaded graph trains on
// exactly, and hostile files are refused with clear errors.
#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "gradient_support.hpp"
#include "support.hpp"

using namespace cnngraph;
using namespace cnngraph::testing;
namespace fs = std::filesystem;

namespace {

fs::path test_folder() { return fresh_test_folder("saved_graph_test"); }

std::shared_ptr<TrainableDataSource> trainable(const std::string& label,
                                               const ConvolutionDescriptor& d, std::uint64_t seed) {
  return TrainableDataSource::uniform(label, d, 0.5f, 0.1f, seed,
                                      std::make_shared<AdamOptimizer>());
}

struct Case {
  std::string name;
  std::vector<std::shared_ptr<ImageNode>> results;
  std::vector<ImageShape> inputs;
};

// One small graph per forward node kind (and a few variants: fused neuron, padding,
// formats, export flags, shared sources).
std::vector<Case> every_kind() {
  std::mt19937 rng(7);
  std::vector<Case> cases;
  const ImageShape in{2, 6, 6, 4};
  auto add = [&](std::string name, auto make) {
    auto x = std::make_shared<ImageNode>("x");
    cases.push_back({std::move(name), {make(x)}, {in}});
  };
  add("convolution", [&](auto x) {
    ConvolutionDescriptor d(3, 3, 4, 5);
    d.stride_x = 2;
    d.set_neuron(NeuronType::relu, 0.1f);
    auto n = std::make_shared<ConvolutionNode>(x, random_source(d, rng, true, "c"));
    n->padding_policy = PaddingPolicy::tensorflow_same();
    n->label = "the conv";
    return n->result_image();
  });
  add("convolution_trainable_grouped", [&](auto x) {
    ConvolutionDescriptor d(3, 3, 4, 4);
    d.groups = 2;
    d.dilation_y = 2;
    auto n = std::make_shared<ConvolutionNode>(x, trainable("t", d, 3));
    n->padding_policy = PaddingPolicy::valid();
    return n->result_image();
  });
  add("fully_connected", [&](auto x) {
    return std::make_shared<FullyConnectedNode>(
               x, random_source(ConvolutionDescriptor(6, 6, 4, 3), rng, false, "fc"))
        ->result_image();
  });
  add("convolution_transpose", [&](auto x) {
    ConvolutionDescriptor d(3, 3, 4, 2);
    d.stride_x = d.stride_y = 2;
    return std::make_shared<ConvolutionTransposeNode>(x, nullptr, random_source(d, rng, true, "ct"))
        ->result_image();
  });
  add("convolution_transpose_sized_by", [&](auto x) {
    ConvolutionDescriptor d(3, 3, 4, 3);
    d.stride_x = d.stride_y = 2;
    auto conv = std::make_shared<ConvolutionNode>(x, random_source(d, rng, true, "down"));
    ConvolutionDescriptor t(3, 3, 3, 4);
    t.stride_x = t.stride_y = 2;
    return std::make_shared<ConvolutionTransposeNode>(conv->result_image(),
                                                      conv->convolution_gradient_state(),
                                                      random_source(t, rng, true, "up"))
        ->result_image();
  });
  add("binary_convolution", [&](auto x) {
    BinaryConvolutionTerms terms{{0.1f, 0.2f, 0.3f, 0.4f}, {}, {}, {1, 2, 3}};
    return std::make_shared<BinaryConvolutionNode>(
               x, random_source(ConvolutionDescriptor(3, 3, 4, 3), rng, true, "b"), 0.5f,
               BinaryConvolutionType::xnor, BinaryConvolutionFlags{true}, terms)
        ->result_image();
  });
  add("binary_fully_connected", [&](auto x) {
    return std::make_shared<BinaryFullyConnectedNode>(
               x, random_source(ConvolutionDescriptor(6, 6, 4, 2), rng, true, "bfc"), 1.0f,
               BinaryConvolutionType::binary_weights)
        ->result_image();
  });
  add("neuron_tanh", [&](auto x) {
    return std::make_shared<NeuronNode>(x, NeuronDescriptor::make(NeuronType::tanh, 1.5f, 0.5f))
        ->result_image();
  });
  add("neuron_prelu", [&](auto x) {
    return std::make_shared<NeuronNode>(x, NeuronDescriptor::make_prelu({0.1f, 0.2f, 0.3f, 0.4f}))
        ->result_image();
  });
  add("max_pooling", [&](auto x) {
    auto n = std::make_shared<MaxPoolingNode>(x, 3, 2, 2, 1);
    n->padding_policy = PaddingPolicy::full();
    return n->result_image();
  });
  add("average_pooling",
      [&](auto x) { return std::make_shared<AveragePoolingNode>(x, 2)->result_image(); });
  add("global_average_pooling",
      [&](auto x) { return std::make_shared<GlobalAveragePoolingNode>(x)->result_image(); });
  add("average_pooling_counting_padding", [&](auto x) {
    auto n = std::make_shared<AveragePoolingNode>(x, 3, 2, 2, 2);
    n->set_counts_padding(true);
    n->set_counted_padding_end(0, 1);
    return n->result_image();
  });
  add("padding", [&](auto x) {
    return std::make_shared<PaddingNode>(
               x, PaddingAmounts{.top = 1, .bottom = 2, .left = 0, .right = 3, .channels_after = 1},
               -0.75f)
        ->result_image();
  });
  add("global_max_pooling",
      [&](auto x) { return std::make_shared<GlobalMaxPoolingNode>(x)->result_image(); });
  add("addition_concatenation", [&](auto x) {
    auto a = std::make_shared<NeuronNode>(x, NeuronDescriptor::make(NeuronType::sigmoid));
    a->result_image()->export_from_graph = true;
    auto sum = std::make_shared<AdditionNode>(x, a->result_image());
    return std::make_shared<ConcatenationNode>(
               std::vector<std::shared_ptr<ImageNode>>{sum->result_image(), x})
        ->result_image();
  });
  add("arithmetic_broadcast", [&](auto x) {
    // Squeeze-and-excitation's x * s with s of N x 1 x 1 x C, then each other operation.
    auto pooled = std::make_shared<GlobalAveragePoolingNode>(x);
    auto gate = std::make_shared<NeuronNode>(pooled->result_image(),
                                             NeuronDescriptor::make(NeuronType::sigmoid));
    auto scaled = std::make_shared<MultiplicationNode>(x, gate->result_image());
    auto shifted =
        std::make_shared<SubtractionNode>(scaled->result_image(), pooled->result_image());
    auto positive = std::make_shared<NeuronNode>(x, NeuronDescriptor::make(NeuronType::sigmoid));
    auto quotient =
        std::make_shared<DivisionNode>(shifted->result_image(), positive->result_image());
    return std::make_shared<AdditionNode>(gate->result_image(), quotient->result_image())
        ->result_image();
  });
  add("softmax", [&](auto x) { return std::make_shared<SoftMaxNode>(x)->result_image(); });
  add("log_softmax", [&](auto x) { return std::make_shared<LogSoftMaxNode>(x)->result_image(); });
  add("batch_normalization", [&](auto x) {
    BatchNormalizationParameters p{{0.1f, -0.2f, 0.3f, 0.0f},
                                   {1.0f, 0.5f, 2.0f, 1.5f},
                                   {1.0f, 1.1f, 0.9f, 1.2f},
                                   {0.0f, 0.1f, -0.1f, 0.2f},
                                   1e-3f};
    auto bn = std::make_shared<BatchNormalizationDataSource>("bn", p);
    auto first = std::make_shared<BatchNormalizationNode>(x, bn);
    return std::make_shared<BatchNormalizationNode>(first->result_image(), bn)->result_image();
  });
  add("cross_channel_normalization", [&](auto x) {
    auto n = std::make_shared<CrossChannelNormalizationNode>(x, 3);
    n->alpha = 0.5f;
    n->beta = 0.75f;
    n->delta = 2.0f;
    return n->result_image();
  });
  add("spatial_normalization",
      [&](auto x) { return std::make_shared<SpatialNormalizationNode>(x, 3, 2)->result_image(); });
  add("reshape",
      [&](auto x) { return std::make_shared<ReshapeNode>(x, 3, 12, 4)->result_image(); });
  add("dropout",
      [&](auto x) { return std::make_shared<DropoutNode>(x, 0.7f, 42)->result_image(); });
  add("f16_intermediate", [&](auto x) {
    auto n = std::make_shared<NeuronNode>(x, NeuronDescriptor::make(NeuronType::relu));
    n->result_image()->format = DataType::f16;
    return std::make_shared<SoftMaxNode>(n->result_image())->result_image();
  });
  return cases;
}

std::vector<std::vector<float>> run_all(Device device,
                                        const std::vector<std::shared_ptr<ImageNode>>& results,
                                        const std::vector<Image>& inputs) {
  Graph graph(device, results, std::vector<bool>(results.size(), true));
  std::vector<std::vector<float>> out;
  for (const Image& image : graph.run(inputs).images) out.push_back(image.to_floats());
  return out;
}

// Saves `results` to a file, edits the graph JSON and writes it back.
template <typename Edit>
fs::path edited_file(const std::string& name, Edit edit) {
  auto x = std::make_shared<ImageNode>("x");
  auto conv =
      std::make_shared<ConvolutionNode>(x, trainable("conv", ConvolutionDescriptor(3, 3, 2, 4), 1));
  auto relu =
      std::make_shared<NeuronNode>(conv->result_image(), NeuronDescriptor::make(NeuronType::relu));
  auto bn = std::make_shared<BatchNormalizationNode>(
      relu->result_image(), std::make_shared<BatchNormalizationDataSource>(
                                "bn", BatchNormalizationParameters{
                                          {1, 1, 1, 1}, {0, 0, 0, 0}, {0, 0, 0, 0}, {1, 1, 1, 1}}));
  const fs::path path = test_folder() / (name + ".safetensors");
  save_graph(path, {bn->result_image()});
  auto contents = read_weights_file_with_metadata(path);
  nlohmann::json graph = nlohmann::json::parse(contents.metadata.at("cnngraph.graph"));
  edit(graph, contents);
  contents.metadata["cnngraph.graph"] = graph.dump();
  write_weights_file(path, contents.tensors, contents.metadata);
  return path;
}

void expect_refused(const fs::path& path, const std::string& words) {
  try {
    load_graph(path);
    ADD_FAILURE() << "accepted " << path;
  } catch (const DataSourceError& e) {
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(SavedGraph, EveryForwardNodeKindRoundTripsBitIdenticallyOnBothCpuBackends) {
  std::mt19937 rng(3);
  const fs::path folder = test_folder();
  for (const Case& c : every_kind()) {
    SCOPED_TRACE(c.name);
    const fs::path path = folder / (c.name + ".safetensors");
    save_graph(path, c.results);
    const SavedGraph loaded = load_graph(path);
    ASSERT_EQ(loaded.results.size(), c.results.size());
    std::vector<Image> inputs;
    for (const ImageShape& shape : c.inputs) inputs.push_back(random_image(shape, rng));
    for (Device device : {Device::cpu_reference(), Device::cpu()}) {
      EXPECT_EQ(run_all(device, loaded.results, inputs), run_all(device, c.results, inputs))
          << device.name();
    }
    const std::vector<bool> needed(c.results.size(), true);
    Graph original(Device::cpu_reference(), c.results, needed),
        again(Device::cpu_reference(), loaded.results, needed);
    ASSERT_EQ(again.source_image_handles().size(), original.source_image_handles().size());
    for (std::size_t i = 0; i < again.source_image_handles().size(); ++i) {
      EXPECT_EQ(again.source_image_handles()[i]->handle,
                original.source_image_handles()[i]->handle);
    }
  }
}

TEST(SavedGraph, KeepsLabelsPaddingFlagsAndTrainingStyles) {
  auto x = std::make_shared<ImageNode>("pixels");
  auto conv =
      std::make_shared<ConvolutionNode>(x, trainable("conv", ConvolutionDescriptor(3, 3, 2, 4), 1));
  conv->label = "first";
  conv->training_style = TrainingStyle::cpu;
  conv->accumulator_precision = AccumulatorPrecision::half;
  conv->padding_policy = PaddingPolicy::tensorflow_same();
  conv->result_image()->stop_gradient = true;
  auto pool = std::make_shared<MaxPoolingNode>(conv->result_image(), 3, 3, 2, 2);
  pool->padding_policy = PaddingPolicy::explicit_padding(1, 0, 2, 1, true);
  const fs::path path = test_folder() / "flags.safetensors";
  save_graph(path, {pool->result_image()});
  const SavedGraph loaded = load_graph(path);
  ASSERT_EQ(loaded.nodes.size(), 2u);
  EXPECT_EQ(loaded.nodes[1]->padding_policy.size, PaddingSize::explicit_pads);
  EXPECT_EQ(loaded.nodes[1]->padding_policy.pads, (ExplicitPads{1, 0, 2, 1, true}));
  auto* node = dynamic_cast<ConvolutionNode*>(loaded.nodes[0].get());
  ASSERT_NE(node, nullptr);
  EXPECT_EQ(node->label, "first");
  EXPECT_EQ(node->training_style, TrainingStyle::cpu);
  EXPECT_EQ(node->accumulator_precision, AccumulatorPrecision::half);
  EXPECT_EQ(node->padding_policy.remainder, PaddingRemainder::bottom_right);
  EXPECT_TRUE(node->result_image()->stop_gradient);
  ASSERT_EQ(loaded.sources.size(), 1u);
  EXPECT_EQ(loaded.sources[0]->handle, "pixels");
  ASSERT_TRUE(loaded.weights.count("conv"));
  EXPECT_EQ(loaded.weights.at("conv")->optimizer()->name(), "adam");
}

namespace {
Graph training_graph_of(const FilterNode& loss) {
  const auto terminals = loss.training_graph();
  return Graph(Device::cpu_reference(), terminals, std::vector<bool>(terminals.size(), false));
}
}  // namespace

// Trains 3 batches, saves the forward graph with its loss, loads it, builds the training
// graph of the loaded loss and trains 3 more: the same weights, batch-norm parameters,
// running statistics and moments as 6 batches in one go, bit for bit.
TEST(SavedGraph, ALoadedGraphTrainsOnExactlyAsIfNeverSaved) {
  for (const bool adam : {true, false}) {
    SCOPED_TRACE(adam ? "adam" : "sgd with momentum");
    std::shared_ptr<const Optimizer> optimizer =
        adam ? std::shared_ptr<const Optimizer>(
                   std::make_shared<AdamOptimizer>(OptimizerDescriptor{0.01f}))
             : std::make_shared<SgdOptimizer>(OptimizerDescriptor{0.05f}, 0.9f, true);
    std::mt19937 rng(11);
    std::vector<Batch> batches;
    for (int i = 0; i < 6; ++i) batches.push_back(synthetic_batch(4, rng));
    BatchNormNet whole(optimizer, 0.2f);
    {
      Graph graph = training_graph_of(*whole.loss);
      for (int i = 0; i < 6; ++i) graph.run({batches[i].images}, {batches[i].labels});
    }
    const fs::path path = test_folder() / "trained.safetensors";
    {
      BatchNormNet first(optimizer, 0.2f);
      Graph graph = training_graph_of(*first.loss);
      for (int i = 0; i < 3; ++i) graph.run({batches[i].images}, {batches[i].labels});
      save_graph(path, {first.loss->result_image()});
    }
    const SavedGraph loaded = load_graph(path);
    {
      Graph graph = training_graph_of(*loaded.results[0]->producer());
      for (int i = 3; i < 6; ++i) graph.run({batches[i].images}, {batches[i].labels});
    }
    for (const auto& [label, source] : std::map<std::string, std::shared_ptr<TrainableDataSource>>{
             {"conv", whole.conv}, {"fc", whole.fc}}) {
      SCOPED_TRACE(label);
      const auto& again = loaded.weights.at(label);
      EXPECT_EQ(again->current_weights(), source->current_weights());
      EXPECT_EQ(again->current_bias(), source->current_bias());
      const OptimizerState a = again->optimizer_state(), b = source->optimizer_state();
      EXPECT_EQ(a.time_step, 6u);
      EXPECT_EQ(a.time_step, b.time_step);
      ASSERT_EQ(a.tensors.size(), b.tensors.size());
      for (std::size_t t = 0; t < a.tensors.size(); ++t) {
        EXPECT_EQ(a.tensors[t].momentum, b.tensors[t].momentum);
        EXPECT_EQ(a.tensors[t].velocity, b.tensors[t].velocity);
      }
    }
    const auto& bn = loaded.normalizations.at("bn");
    EXPECT_EQ(bn->momentum(), 0.2f);
    EXPECT_EQ(bn->parameters().gamma, whole.bn->parameters().gamma);
    EXPECT_EQ(bn->parameters().beta, whole.bn->parameters().beta);
    EXPECT_EQ(bn->parameters().mean, whole.bn->parameters().mean);
    EXPECT_EQ(bn->parameters().variance, whole.bn->parameters().variance);
    EXPECT_EQ(bn->optimizer_state().time_step, whole.bn->optimizer_state().time_step);
    EXPECT_EQ(bn->optimizer()->name(), optimizer->name());
  }
}

// Graph::save is save_graph on the graph's results: both results, in order, and a loaded
// copy infers the same; a training graph (gradient results) is refused.
TEST(SavedGraph, GraphSaveWritesItsResultsInOrder) {
  auto x = std::make_shared<ImageNode>("x");
  auto conv =
      std::make_shared<ConvolutionNode>(x, trainable("conv", ConvolutionDescriptor(3, 3, 2, 4), 1));
  auto relu =
      std::make_shared<NeuronNode>(conv->result_image(), NeuronDescriptor::make(NeuronType::relu));
  auto pool = std::make_shared<MaxPoolingNode>(conv->result_image(), 2);
  const std::vector<std::shared_ptr<ImageNode>> results{relu->result_image(), pool->result_image()};
  Graph graph(Device::cpu_reference(), results, {true, true});
  std::mt19937 rng(5);
  const Image input = random_image({2, 6, 6, 2}, rng);
  const Results expected = graph.run({input});
  const fs::path path = test_folder() / "graph_save.safetensors";
  graph.save(path);
  const SavedGraph loaded = load_graph(path);
  ASSERT_EQ(loaded.results.size(), 2u);
  EXPECT_EQ(run_all(Device::cpu_reference(), loaded.results, {input}),
            (std::vector<std::vector<float>>{expected[0].to_floats(), expected[1].to_floats()}));

  auto loss = std::make_shared<LossNode>(
      relu->result_image(), LossDescriptor(LossType::mean_squared_error, ReductionType::sum));
  Graph training = training_graph_of(*loss);
  EXPECT_THROW(training.save(test_folder() / "training.safetensors"), InvalidArgument);
}

TEST(SavedGraph, RefusesWhatItCannotSaveNamingTheNode) {
  auto x = std::make_shared<ImageNode>("x");
  auto pool = std::make_shared<MaxPoolingNode>(x, 2);
  pool->label = "odd pool";
  pool->padding_policy = PaddingPolicy::make_custom([](AxisGeometry&, AxisGeometry&) {});
  try {
    save_graph(test_folder() / "custom.safetensors", {pool->result_image()});
    ADD_FAILURE() << "a custom padding callback was saved";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("odd pool"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("custom padding"), std::string::npos) << e.what();
  }
  auto relu = std::make_shared<NeuronNode>(x, NeuronDescriptor::make(NeuronType::relu));
  auto gradient = relu->gradient_filter(std::make_shared<ImageNode>("dy"));
  EXPECT_THROW(save_graph(test_folder() / "gradient.safetensors", {gradient->result_image()}),
               InvalidArgument);
}

TEST(SavedGraphLoading, HostileFilesAreRefusedWithClearErrors) {
  using json = nlohmann::json;
  expect_refused(
      edited_file("version",
                  [](json&, WeightsFileContents& c) { c.metadata["cnngraph.version"] = "2"; }),
      "version '2'");
  expect_refused(
      edited_file("kind",
                  [](json& g, WeightsFileContents&) { g["nodes"][0]["kind"] = "teleport"; }),
      "unknown kind 'teleport'");
  expect_refused(
      edited_file("missing", [](json&, WeightsFileContents& c) { c.tensors.erase("conv.weight"); }),
      "'conv.weight'");
  expect_refused(
      edited_file("shape",
                  [](json&, WeightsFileContents& c) {
                    c.tensors["conv.weight"] = Tensor::from_floats({2, 36}, std::vector<float>(72));
                  }),
      "'conv.weight'");
  expect_refused(edited_file("huge",
                             [](json& g, WeightsFileContents&) {
                               g["nodes"][0]["attributes"]["output_feature_channels"] = 2147483647;
                               g["nodes"][0]["attributes"]["kernel_width"] = 2147483647;
                             }),
                 "conv");
  expect_refused(edited_file("range",
                             [](json& g, WeightsFileContents&) {
                               g["nodes"][0]["attributes"]["stride_x"] = 1e300;
                             }),
                 "'stride_x'");
  expect_refused(edited_file("optimizer",
                             [](json& g, WeightsFileContents&) {
                               g["normalizations"]["bn"].erase("optimizer");
                             }),
                 "no 'optimizer'");
  expect_refused(edited_file("forward",
                             [](json& g, WeightsFileContents&) {
                               g["nodes"][0]["inputs"][0] = {{"node", 1}, {"role", "source"}};
                             }),
                 "index below 0");
  expect_refused(edited_file("count",
                             [](json& g, WeightsFileContents&) {
                               g["nodes"][1]["inputs"].push_back(g["nodes"][1]["inputs"][0]);
                             }),
                 "inputs");
  {
    const fs::path broken = edited_file("json", [](json&, WeightsFileContents&) {});
    auto contents = read_weights_file_with_metadata(broken);
    contents.metadata["cnngraph.graph"] = "{\"nodes\": [";
    write_weights_file(broken, contents.tensors, contents.metadata);
    expect_refused(broken, "not valid JSON");
  }
  const fs::path path = edited_file("truncated", [](json&, WeightsFileContents&) {});
  fs::resize_file(path, fs::file_size(path) / 2);
  EXPECT_THROW(load_graph(path), DataSourceError);
  const fs::path plain = test_folder() / "plain.safetensors";
  write_weights_file(plain, {});
  expect_refused(plain, "not a saved graph");
}
