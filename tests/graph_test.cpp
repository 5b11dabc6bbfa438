// Graph: results, exports, source order, fusion, memory planning, batches, async, dumps.
#include <thread>

#include "graph/program.hpp"

#include "support.hpp"

using namespace cnngraph;
using namespace cnngraph::testing;

namespace {

struct ResidualBlock {
  std::shared_ptr<ImageNode> input = std::make_shared<ImageNode>("input");
  std::shared_ptr<ConvolutionNode> conv1, conv2;
  std::shared_ptr<BatchNormalizationNode> bn;
  std::shared_ptr<NeuronNode> relu1, relu2;
  std::shared_ptr<AdditionNode> add;

  explicit ResidualBlock(std::mt19937& rng) {
    // input -> conv1 -> bn -> relu1 -> conv2 -> (+ input) -> relu2
    conv1 = std::make_shared<ConvolutionNode>(
        input, random_source(ConvolutionDescriptor(3, 3, 4, 4), rng, true, "conv1"));
    bn = std::make_shared<BatchNormalizationNode>(
        conv1->result_image(),
        BatchNormalizationParameters{
            {0.1f, 0.2f, 0.3f, 0.4f}, {1, 2, 3, 4}, {1, 1, 2, 2}, {0, 0.5f, 0, -0.5f}, 1e-5f});
    relu1 =
        std::make_shared<NeuronNode>(bn->result_image(), NeuronDescriptor::make(NeuronType::relu));
    conv2 = std::make_shared<ConvolutionNode>(
        relu1->result_image(),
        random_source(ConvolutionDescriptor(3, 3, 4, 4), rng, true, "conv2"));
    add = std::make_shared<AdditionNode>(conv2->result_image(), input);
    relu2 =
        std::make_shared<NeuronNode>(add->result_image(), NeuronDescriptor::make(NeuronType::relu));
  }
};

}  // namespace

TEST(Graph, FusesConvolutionBatchNormNeuronAndResidualAddition) {
  std::mt19937 rng(1);
  ResidualBlock block(rng);
  Graph graph(Device::cpu(), block.relu2->result_image());
  graph.compile({{2, 6, 6, 4}});
  const std::string text = graph.describe();
  EXPECT_NE(text.find("convolution 'conv1' + batch_normalization + neuron_relu"), std::string::npos)
      << text;
  EXPECT_NE(text.find("convolution 'conv2' + addition + neuron_relu"), std::string::npos) << text;
  EXPECT_NE(text.find("+sum +relu"), std::string::npos) << text;
  EXPECT_NE(text.find("#1"), std::string::npos);
  EXPECT_EQ(text.find("#2"), std::string::npos) << "two fused steps expected:\n" << text;
  expect_backends_agree(block.relu2->result_image(), {random_image({2, 6, 6, 4}, rng)}, 2e-5);
}

TEST(Graph, FusedResultEqualsUnfusedResult) {
  std::mt19937 rng(2);
  ResidualBlock block(rng);
  const Image input = random_image({3, 5, 7, 4}, rng);
  const Image fused = run_on(Device::cpu(), block.relu2->result_image(), {input});
  // Exporting every intermediate forbids fusion.
  for (auto* node : {block.conv1->result_image().get(), block.bn->result_image().get(),
                     block.relu1->result_image().get(), block.conv2->result_image().get(),
                     block.add->result_image().get()}) {
    node->export_from_graph = true;
  }
  Graph unfused(Device::cpu(), block.relu2->result_image());
  unfused.compile({input.shape()});
  EXPECT_EQ(unfused.describe().find(" + "), std::string::npos) << unfused.describe();
  const Results results = unfused.run({input});
  EXPECT_LE(max_relative_error(results[0], fused), 2e-5);
  EXPECT_EQ(results.exported.size(), 5u);
}

TEST(Graph, ExportedIntermediatesAreReturned) {
  std::mt19937 rng(3);
  ResidualBlock block(rng);
  block.relu1->result_image()->export_from_graph = true;
  Graph graph(Device::cpu_reference(), block.relu2->result_image());
  const Image input = random_image({1, 4, 4, 4}, rng);
  const Results results = graph.run({input});
  const Image& hidden = results.exported_image(*block.relu1->result_image());
  EXPECT_EQ(hidden.shape(), (ImageShape{1, 4, 4, 4}));
  EXPECT_EQ(hidden.to_floats(),
            run_on(Device::cpu_reference(), block.relu1->result_image(), {input}).to_floats());
  EXPECT_THROW(results.exported_image(*block.conv1->result_image()), InvalidArgument);
}

TEST(Graph, MultipleResultsAndResultsThatAreNotNeeded) {
  std::mt19937 rng(4);
  ResidualBlock block(rng);
  Graph graph(Device::cpu(), {block.relu1->result_image(), block.relu2->result_image()},
              {false, true});
  const Image input = random_image({2, 4, 4, 4}, rng);
  const Results results = graph.run({input});
  ASSERT_EQ(results.images.size(), 2u);
  EXPECT_TRUE(results[0].empty());
  EXPECT_LE(
      max_relative_error(results[1], run_on(Device::cpu(), block.relu2->result_image(), {input})),
      1e-6);
  Graph both(Device::cpu(), {block.relu1->result_image(), block.relu2->result_image()},
             {true, true});
  EXPECT_FALSE(both.run({input})[0].empty());
}

TEST(Graph, SourceImageHandlesFollowDepthFirstOrder) {
  auto a = std::make_shared<ImageNode>("a"), b = std::make_shared<ImageNode>("b"),
       c = std::make_shared<ImageNode>("c");
  auto ab = std::make_shared<AdditionNode>(b, a);
  auto abc = std::make_shared<AdditionNode>(ab->result_image(), c);
  Graph graph(Device::cpu_reference(), abc->result_image());
  const auto& handles = graph.source_image_handles();
  ASSERT_EQ(handles.size(), 3u);
  EXPECT_EQ(handles[0]->handle, "b");
  EXPECT_EQ(handles[1]->handle, "a");
  EXPECT_EQ(handles[2]->handle, "c");
}

TEST(Graph, MemoryPlanReusesBuffersOfDeadIntermediates) {
  std::mt19937 rng(5);
  auto node = std::make_shared<ImageNode>("x");
  std::shared_ptr<ImageNode> image = node;
  for (int i = 0; i < 6; ++i) {
    // Neurons do not fuse with each other: six steps, each intermediate dead after one use.
    image = std::make_shared<NeuronNode>(image, NeuronDescriptor::make(NeuronType::tanh))
                ->result_image();
  }
  Graph graph(Device::cpu(), image);
  graph.compile({{1, 8, 8, 16}});
  const std::string text = graph.describe();
  const std::size_t one = 8 * 8 * 16 * sizeof(float);
  EXPECT_NE(text.find("peak intermediate bytes " + std::to_string(2 * one)), std::string::npos)
      << text;
  EXPECT_NE(text.find("unshared would be " + std::to_string(5 * one)), std::string::npos) << text;
}

TEST(Graph, MemoryPlanJoinsNeighbouringFreeBuffers) {
  // t1 -> t2 -> t3 -> concat(t3, t3) -> tanh: t3 takes t1's place, and the twice-as-large
  // concatenation t2's place at the arena's end, which grows by one image: three images at
  // the peak, as many as are ever live (t3 and the concatenation), not four.
  std::mt19937 rng(8);
  auto x = std::make_shared<ImageNode>("x");
  const auto tanh = [](std::shared_ptr<ImageNode> image) {
    return std::make_shared<NeuronNode>(std::move(image), NeuronDescriptor::make(NeuronType::tanh))
        ->result_image();
  };
  const auto t3 = tanh(tanh(tanh(x)));
  const auto joined =
      std::make_shared<ConcatenationNode>(std::vector<std::shared_ptr<ImageNode>>{t3, t3});
  Graph graph(Device::cpu(), tanh(joined->result_image()));
  const ImageShape shape{1, 8, 8, 16};
  const Image input = random_image(shape, rng);
  const std::vector<float> got = graph.run({input})[0].to_floats();
  const std::string text = graph.describe();
  const std::size_t one = shape.elements() * sizeof(float);
  EXPECT_NE(text.find("peak intermediate bytes " + std::to_string(3 * one)), std::string::npos)
      << text;
  // The places shared, the values are still each step's own.
  const std::vector<float> in = input.to_floats();
  ASSERT_EQ(got.size(), 2 * in.size());
  for (std::size_t p = 0; p < in.size() / 16; ++p) {
    for (int c = 0; c < 32; ++c) {
      const float want = std::tanh(std::tanh(std::tanh(std::tanh(in[p * 16 + c % 16]))));
      EXPECT_NEAR(got[p * 32 + c], want, 1e-5f) << p << " " << c;
    }
  }
}

// Random lifetimes and sizes: no two values live at one step share a byte, each place is
// 256-byte aligned, and the arena is never larger than the values unshared.
TEST(Graph, MemoryPlanNeverOverlapsValuesLiveTogether) {
  std::mt19937 rng(9);
  for (int trial = 0; trial < 200; ++trial) {
    detail::Program program;
    const int steps = 1 + int(rng() % 40);
    std::size_t unshared = 0;
    for (int step = 0; step < steps; ++step) {
      detail::Value v;
      v.shape = ImageShape{1, 1 + int(rng() % 9), 1 + int(rng() % 9), 1 + int(rng() % 70)};
      v.first_step = step;
      v.last_step = rng() % 5 == 0 ? -1 : step + int(rng() % 8);  // -1: never read
      program.values.push_back(v);
      unshared += (v.shape.elements() + 63) / 64 * 64;
    }
    detail::plan_memory(program);
    EXPECT_LE(program.arena_floats, unshared);
    const auto& values = program.values;
    for (std::size_t a = 0; a < values.size(); ++a) {
      const std::size_t a_end = values[a].offset + values[a].shape.elements();
      EXPECT_EQ(values[a].offset % 64, 0u);
      EXPECT_LE(a_end, program.arena_floats);
      for (std::size_t b = a + 1; b < values.size(); ++b) {
        const auto live_until = [](const detail::Value& v) {
          return std::max(v.first_step, v.last_step);
        };
        // b is written after a; they are live together where a is still read at b's step.
        if (live_until(values[a]) < values[b].first_step) continue;
        const std::size_t b_end = values[b].offset + values[b].shape.elements();
        EXPECT_TRUE(a_end <= values[b].offset || b_end <= values[a].offset)
            << "trial " << trial << ": values " << a << " and " << b << " overlap";
      }
    }
  }
}

TEST(Graph, RunsBatchesOfAnySizeWithOneGraph) {
  std::mt19937 rng(6);
  ResidualBlock block(rng);
  Graph graph(Device::cpu(), block.relu2->result_image());
  for (int batch : {1, 7, 2, 7}) {
    const Image input = random_image({batch, 5, 5, 4}, rng);
    const Image out = graph.run({input})[0];
    EXPECT_EQ(out.shape().batch, batch);
    EXPECT_LE(max_relative_error(
                  out, run_on(Device::cpu_reference(), block.relu2->result_image(), {input})),
              2e-5);
  }
}

TEST(Graph, RunAsyncAndConcurrentRunsGiveCorrectResults) {
  std::mt19937 rng(7);
  ResidualBlock block(rng);
  Graph graph(Device::cpu(), block.relu2->result_image());
  std::vector<Image> inputs;
  for (int i = 0; i < 4; ++i) inputs.push_back(random_image({2, 6, 6, 4}, rng));
  std::vector<std::future<Results>> futures;
  for (const Image& input : inputs) futures.push_back(graph.run_async({input}));
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Image expected =
        run_on(Device::cpu_reference(), block.relu2->result_image(), {inputs[i]});
    EXPECT_LE(max_relative_error(futures[i].get()[0], expected), 2e-5);
  }
}

TEST(Graph, PrecisionSetsTheResultFormatUnlessTheNodeSaysOtherwise) {
  std::mt19937 rng(8);
  auto node = std::make_shared<NeuronNode>(std::make_shared<ImageNode>(),
                                           NeuronDescriptor::make(NeuronType::relu));
  GraphOptions f16;
  f16.precision = Precision::f16;
  const Image input = random_image({1, 2, 2, 3}, rng);
  EXPECT_EQ(run_on(Device::cpu(), node->result_image(), {input}, f16).data_type(), DataType::f16);
  node->result_image()->format = DataType::f32;
  EXPECT_EQ(run_on(Device::cpu(), node->result_image(), {input}, f16).data_type(), DataType::f32);
  // Inputs of any type are accepted.
  EXPECT_EQ(run_on(Device::cpu(), node->result_image(), {input.converted_to(DataType::u8)}).shape(),
            input.shape());
}

TEST(Graph, ToDotNamesNodesAndFusedGroups) {
  std::mt19937 rng(9);
  ResidualBlock block(rng);
  Graph graph(Device::cpu(), block.relu2->result_image());
  graph.compile({{1, 4, 4, 4}});
  const std::string dot = graph.to_dot();
  EXPECT_EQ(dot.rfind("digraph cnngraph {", 0), 0u);
  EXPECT_NE(dot.find("convolution 'conv2'"), std::string::npos);
  EXPECT_NE(dot.find("cluster_"), std::string::npos);
}

TEST(Graph, DescribeBeforeCompilationListsNodes) {
  auto node = std::make_shared<SoftMaxNode>(std::make_shared<ImageNode>());
  node->label = "probabilities";
  Graph graph(Device::cpu(), node->result_image());
  EXPECT_NE(graph.describe().find("softmax 'probabilities'"), std::string::npos);
}

TEST(Graph, KeepsAtMostMaxCompiledSizesProgramsEvictingTheLeastRecentlyRun) {
  std::mt19937 rng(31);
  auto src = std::make_shared<ImageNode>();
  auto conv =
      std::make_shared<ConvolutionNode>(src, random_source(ConvolutionDescriptor(3, 3, 2, 3), rng));
  GraphOptions options;
  options.max_compiled_sizes = 4;
  Graph graph(Device::cpu(), conv->result_image(), true, options);
  Graph reference(Device::cpu_reference(), conv->result_image());
  const Image kept = random_image({1, 5, 5, 2}, rng);
  for (int batch = 1; batch <= 40; ++batch) {
    const Image x = random_image({batch, 5, 5, 2}, rng);
    EXPECT_LE(max_relative_error(graph.run({x})[0], reference.run({x})[0]), 1e-5);
    graph.run({kept});  // the most recently run sizes are never the ones evicted
    ASSERT_LE(graph.compiled_sizes().size(), 4u);
    EXPECT_EQ(graph.compiled_sizes()[0], std::vector<ImageShape>{kept.shape()});
  }
  // Sizes evicted long ago compile again and stay right.
  const Image again = random_image({3, 5, 5, 2}, rng);
  EXPECT_LE(max_relative_error(graph.run({again})[0], reference.run({again})[0]), 1e-5);
  // Which sizes go: the least recently run.
  Graph fresh(Device::cpu(), conv->result_image(), true, options);
  const auto shape = [](int batch) { return std::vector<ImageShape>{{batch, 5, 5, 2}}; };
  for (int batch : {1, 2, 3, 4, 1, 5}) fresh.run({random_image(shape(batch)[0], rng)});
  EXPECT_EQ(fresh.compiled_sizes(),
            (std::vector<std::vector<ImageShape>>{shape(5), shape(1), shape(4), shape(3)}));
}

TEST(Graph, MovedFromGraphAndMissingResultsAreClearErrors) {
  std::mt19937 rng(32);
  auto src = std::make_shared<ImageNode>();
  auto conv =
      std::make_shared<ConvolutionNode>(src, random_source(ConvolutionDescriptor(1, 1, 2, 2), rng));
  Graph graph(Device::cpu(), conv->result_image());
  Graph moved = std::move(graph);
  const Image x = random_image({1, 2, 2, 2}, rng);
  EXPECT_THROW(graph.run({x}), InvalidArgument);  // NOLINT(bugprone-use-after-move)
  EXPECT_THROW(graph.describe(), InvalidArgument);
  EXPECT_THROW(graph.compile({x.shape()}), InvalidArgument);
  EXPECT_THROW(graph.run_async({x}), InvalidArgument);
  const Results results = moved.run({x});
  EXPECT_EQ(results[0].shape(), x.shape());
  try {
    (void)results[1];
    FAIL() << "no error for result 1 of 1";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("result 1"), std::string::npos) << e.what();
  }
  graph = std::move(moved);  // assignment brings it back
  EXPECT_EQ(graph.run({x})[0].shape(), x.shape());
}

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
TEST(Graph, HostOutOfMemoryIsADeviceError) {
  std::mt19937 rng(33);
  auto src = std::make_shared<ImageNode>();
  auto softmax = std::make_shared<SoftMaxNode>(src);  // its result is an intermediate
  auto relu = std::make_shared<NeuronNode>(softmax->result_image(),
                                           NeuronDescriptor::make(NeuronType::relu));
  for (Device device : {Device::cpu(), Device::cpu_reference()}) {
    Graph graph(device, relu->result_image());
    try {
      // 2^59 elements fit a size_t, but their 2^61 bytes fit no address space, whatever the
      // system's overcommit policy.
      graph.compile({{1 << 14, 1 << 15, 1 << 15, 1 << 15}});
      ADD_FAILURE() << device.name() << ": no error";
    } catch (const DeviceError& e) {
      EXPECT_NE(std::string(e.what()).find("out of host memory"), std::string::npos) << e.what();
    }
    const Image x = random_image({1, 2, 2, 3}, rng);
    EXPECT_EQ(graph.run({x})[0].shape(), x.shape());  // still usable
  }
}
#endif
