// Training fusion (docs/training.md): a training graph with every fused pattern trains the
// same with GraphOptions::training_fusion on and off (losses, every updated parameter), on
// the reference backend and on CUDA in f32, f16 and bf16 (skipped without a GPU), and
// describe() names each fused group.
#include <cmath>
#include <functional>

#include "cuda_support.hpp"
#include "gradient_support.hpp"

using namespace cnngraph;
using namespace cnngraph::testing;

namespace {

// image 6x6x2 -> conv1 -> bn1 -> relu1 -> max-pool 2 = p (3x3x4)
// p -> conv2 -> bn2 -> relu6_2 -> conv3 -> bn3 -> (+ p) -> relu3 = r
// r -> conv4 (1x1) -> bn4, r -> conv5 (1x1) -> bn5; bn4 + bn5 -> relu4 = q
// q -> conv6 (1x1) -> (+ q) -> relu5 = u
// u -> conv7 (1x1) -> (+ u) -> fully connected (-> 3) -> soft-max cross-entropy.
// relu6_2 is a relu_n of slope 0 whose ceiling (0.5, not 6, so that it clips) f16 and bf16
// hold exactly. Forward: bn1+relu1 and bn2+relu6_2 fuse; bn3 with the sum and relu3, bn4 and
// bn5 with theirs and relu4 (batch_norm+add+relu); the sum and relu5 (add+relu). Backward:
// the pooling's gradient takes relu1's; relu6_2's gradient goes into bn2's; the sums of r's,
// q's and u's two gradients take relu3's, relu4's and relu5's.
constexpr float kCeiling = 0.5f;

struct FusionNet {
  std::shared_ptr<ImageNode> input = std::make_shared<ImageNode>("image");
  std::vector<std::shared_ptr<TrainableDataSource>> convs;
  std::vector<std::shared_ptr<BatchNormalizationDataSource>> norms;
  std::shared_ptr<LossNode> loss;

  FusionNet() {
    auto sgd = std::make_shared<SgdOptimizer>(OptimizerDescriptor{}, 0.9f);
    const auto conv = [&](std::shared_ptr<ImageNode> x, int in, int out, int k) {
      convs.push_back(TrainableDataSource::uniform("conv" + std::to_string(convs.size()),
                                                   ConvolutionDescriptor(k, k, in, out), 0.4f,
                                                   0.05f, 40 + convs.size(), sgd));
      auto node = std::make_shared<ConvolutionNode>(std::move(x), convs.back());
      node->training_style = TrainingStyle::cpu;
      return node->result_image();
    };
    const auto bn = [&](std::shared_ptr<ImageNode> x) {
      BatchNormalizationParameters p;
      p.gamma = {1.0f, 0.8f, 1.2f, 0.9f};
      p.beta = {0.0f, 0.1f, -0.1f, 0.05f};
      p.mean = {0, 0, 0, 0};
      p.variance = {1, 1, 1, 1};
      norms.push_back(std::make_shared<BatchNormalizationDataSource>(
          "bn" + std::to_string(norms.size()), p, sgd));
      return std::make_shared<BatchNormalizationNode>(std::move(x), norms.back())->result_image();
    };
    const auto relu = [](std::shared_ptr<ImageNode> x) {
      return std::make_shared<NeuronNode>(std::move(x), NeuronDescriptor::make(NeuronType::relu))
          ->result_image();
    };
    const auto relu6 = [](std::shared_ptr<ImageNode> x) {
      const auto clipped = NeuronDescriptor::make(NeuronType::relu_n, 0.0f, kCeiling);
      return std::make_shared<NeuronNode>(std::move(x), clipped)->result_image();
    };
    const auto add = [](std::shared_ptr<ImageNode> a, std::shared_ptr<ImageNode> b) {
      return std::make_shared<AdditionNode>(std::move(a), std::move(b))->result_image();
    };
    auto p = std::make_shared<MaxPoolingNode>(relu(bn(conv(input, 2, 4, 3))), 2)->result_image();
    auto r = relu(add(bn(conv(relu6(bn(conv(p, 4, 4, 3))), 4, 4, 3)), p));
    auto q = relu(add(bn(conv(r, 4, 4, 1)), bn(conv(r, 4, 4, 1))));
    auto u = relu(add(conv(q, 4, 4, 1), q));
    auto s = add(conv(u, 4, 4, 1), u);
    convs.push_back(TrainableDataSource::uniform("fc", ConvolutionDescriptor(3, 3, 4, 3), 0.4f,
                                                 0.05f, 49, sgd));
    auto fc = std::make_shared<FullyConnectedNode>(s, convs.back());
    fc->training_style = TrainingStyle::cpu;
    loss = std::make_shared<LossNode>(
        fc->result_image(), LossDescriptor(LossType::softmax_cross_entropy, ReductionType::mean));
  }

  Graph graph(Device device, GraphOptions options) const {
    const auto terminals = loss->training_graph();
    return Graph(device, terminals, std::vector<bool>(terminals.size(), false), options);
  }
};

// What a few steps leave: the losses and every parameter, in one list each.
struct Trained {
  std::vector<float> losses, parameters;
  std::string description;
  std::uint64_t skipped_steps = 0;  // f16 steps whose scaled gradients overflowed
};

Trained train(Device device, Precision precision, bool fusion, int steps = 3) {
  FusionNet net;
  GraphOptions options;
  options.precision = precision;
  options.training_fusion = fusion;
  // f16's default loss scale (65536) overflows this net's first gradients, and a skipped
  // step would leave it behind the reference; 256 keeps every step.
  options.initial_loss_scale = 256.0f;
  Graph graph = net.graph(device, options);
  std::mt19937 rng(7);
  Trained t;
  for (int step = 0; step < steps; ++step) {
    const Batch batch = synthetic_batch(8, rng);
    t.losses.push_back(graph.run({batch.images}, {batch.labels}).loss());
  }
  for (const auto& c : net.convs) {
    for (float w : c->current_weights()) t.parameters.push_back(w);
    for (float b : c->current_bias()) t.parameters.push_back(b);
  }
  for (const auto& n : net.norms) {
    const BatchNormalizationParameters p = n->parameters();
    for (const auto* v : {&p.gamma, &p.beta, &p.mean, &p.variance})
      t.parameters.insert(t.parameters.end(), v->begin(), v->end());
  }
  t.description = graph.describe();
  t.skipped_steps = graph.loss_scale().skipped_steps;
  return t;
}

// Max |a - b| over max(1, max |b|).
double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0, largest = 1;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    worst = std::max(worst, double(std::fabs(a[i] - b[i])));
    largest = std::max(largest, double(std::fabs(b[i])));
  }
  return worst / largest;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST(TrainingFusion, ReferenceTrainsLikeTheUnfusedGraph) {
  const Trained fused = train(Device::cpu_reference(), Precision::f32, true);
  const Trained unfused = train(Device::cpu_reference(), Precision::f32, false);
  EXPECT_LE(relative_error(fused.losses, unfused.losses), 1e-6);
  EXPECT_LE(relative_error(fused.parameters, unfused.parameters), 1e-6);
}

TEST(TrainingFusion, DescribeNamesEveryFusedGroup) {
  const std::string fused = train(Device::cpu_reference(), Precision::f32, true, 1).description;
  EXPECT_EQ(count(fused, "[fused batch_norm+relu]"), 1u) << fused;
  EXPECT_EQ(count(fused, "[fused batch_norm+relu (relu_n 0.5)]"), 1u) << fused;
  EXPECT_EQ(count(fused, "[fused batch_norm+add+relu]"), 2u) << fused;
  EXPECT_EQ(count(fused, "[fused add+relu]"), 1u) << fused;
  EXPECT_EQ(count(fused, "[fused max_pooling_gradient+relu_gradient]"), 1u) << fused;
  EXPECT_EQ(count(fused, "[fused relu_gradient+batch_norm_gradient (relu_n 0.5)]"), 1u) << fused;
  EXPECT_EQ(count(fused, "[fused add+relu_gradient]"), 3u) << fused;
  EXPECT_NE(fused.find("via reference:batch_normalization_relu"), std::string::npos) << fused;
  EXPECT_NE(fused.find("via reference:batch_normalization_addition_relu"), std::string::npos);
  const std::string unfused = train(Device::cpu_reference(), Precision::f32, false, 1).description;
  EXPECT_EQ(unfused.find("fused"), std::string::npos) << unfused;
  // Thirteen steps fewer: each group of two is one step, and each batch norm a sum
  // normalizes has no step of its own (three).
  EXPECT_EQ(count(unfused, "\n  #") - count(fused, "\n  #"), 13u);
}

TEST(TrainingFusion, TheCpuBackendRunsEveryStepOnItsOwn) {
  const Trained fast = train(Device::cpu(), Precision::f32, true, 1);
  EXPECT_EQ(fast.description.find("fused"), std::string::npos) << fast.description;
  const Trained reference = train(Device::cpu_reference(), Precision::f32, true, 1);
  EXPECT_LE(relative_error(fast.parameters, reference.parameters), 1e-4);
}

TEST(TrainingFusion, AnExportedIntermediateKeepsItsStep) {
  std::mt19937 rng(7);
  const Batch batch = synthetic_batch(8, rng);
  FusionNet net;
  const auto terminals = net.loss->training_graph();
  // The first batch norm's result (the one that reads the first convolution's), exported:
  // it stays an image of its own, so its relu is not fused.
  std::shared_ptr<ImageNode> bn1_result;
  std::function<void(const std::shared_ptr<ImageNode>&)> find = [&](const auto& image) {
    if (bn1_result || image->is_source()) return;
    const FilterNode* producer = image->producer();
    if (dynamic_cast<const BatchNormalizationNode*>(producer) &&
        producer->source_images()[0]->producer()->source_images()[0] == net.input) {
      bn1_result = image;
      return;
    }
    for (const auto& s : producer->source_images()) find(s);
  };
  for (const auto& t : terminals) find(t);
  ASSERT_TRUE(bn1_result);
  bn1_result->export_from_graph = true;
  Graph graph(Device::cpu_reference(), terminals, std::vector<bool>(terminals.size(), false));
  graph.run({batch.images}, {batch.labels});
  // bn2 and relu6_2 still fuse, both ways.
  EXPECT_EQ(count(graph.describe(), "[fused batch_norm+relu"), 1u) << graph.describe();
  EXPECT_EQ(count(graph.describe(), "[fused relu_gradient+batch_norm_gradient"), 1u);
}

// conv -> bn -> `neuron` -> fully connected -> loss, trained one step on the reference
// backend: its describe().
std::string described_with(const NeuronDescriptor& neuron) {
  auto sgd = std::make_shared<SgdOptimizer>(OptimizerDescriptor{}, 0.9f);
  auto input = std::make_shared<ImageNode>("image");
  auto conv = std::make_shared<ConvolutionNode>(
      input,
      TrainableDataSource::uniform("conv", ConvolutionDescriptor(3, 3, 2, 4), 0.4f, 0.05f, 3, sgd));
  BatchNormalizationParameters p;
  p.gamma = {1, 1, 1, 1};
  p.beta = p.mean = {0, 0, 0, 0};
  p.variance = {1, 1, 1, 1};
  auto bn = std::make_shared<BatchNormalizationNode>(
      conv->result_image(), std::make_shared<BatchNormalizationDataSource>("bn", p, sgd));
  auto relu = std::make_shared<NeuronNode>(bn->result_image(), neuron);
  auto fc = std::make_shared<FullyConnectedNode>(
      relu->result_image(),
      TrainableDataSource::uniform("fc", ConvolutionDescriptor(6, 6, 4, 3), 0.4f, 0.05f, 4, sgd));
  auto loss = std::make_shared<LossNode>(
      fc->result_image(), LossDescriptor(LossType::softmax_cross_entropy, ReductionType::mean));
  const auto terminals = loss->training_graph();
  Graph graph(Device::cpu_reference(), terminals, std::vector<bool>(terminals.size(), false));
  std::mt19937 rng(3);
  const Batch batch = synthetic_batch(4, rng);
  graph.run({batch.images}, {batch.labels});
  return graph.describe();
}

TEST(TrainingFusion, TakesOnlyTheReluNWhoseMaskTheResultGivesExactly) {
  const auto relu_n = [](float a, float b) {
    return NeuronDescriptor::make(NeuronType::relu_n, a, b);
  };
  const std::string relu6 = described_with(relu_n(0.0f, 6.0f));
  EXPECT_EQ(count(relu6, "[fused batch_norm+relu (relu_n 6)]"), 1u) << relu6;
  EXPECT_EQ(count(relu6, "[fused relu_gradient+batch_norm_gradient (relu_n 6)]"), 1u) << relu6;
  // A ceiling that f16 or bf16 rounds (0.1: both; 1000.5: bf16 only), a leaky slope, and a
  // slope of -0 (its negative side is +0, the fused kernels' -0): each runs unfused.
  for (const NeuronDescriptor& unfused :
       {relu_n(0.0f, 0.1f), relu_n(0.0f, 1000.5f), relu_n(0.1f, 6.0f), relu_n(-0.0f, 6.0f),
        NeuronDescriptor::make(NeuronType::relu, -0.0f)}) {
    const std::string text = described_with(unfused);
    EXPECT_EQ(text.find("fused"), std::string::npos) << text;
  }
}

TEST(TrainingFusion, CudaTrainsLikeTheUnfusedGraphInEveryPrecision) {
  REQUIRE_GPU();
  const Trained want = train(Device::cpu_reference(), Precision::f32, false);
  for (const PrecisionCase& p : kPrecisions) {
    if (p.precision == Precision::tf32_allowed) continue;
    const Trained fused = train(Device::cuda(), p.precision, true);
    const Trained unfused = train(Device::cuda(), p.precision, false);
    EXPECT_NE(fused.description.find("via cuda:batch_normalization_relu"), std::string::npos)
        << fused.description;
    EXPECT_NE(fused.description.find("via cuda:relu_batch_normalization_gradient"),
              std::string::npos);
    EXPECT_NE(fused.description.find("via cuda:add_relu"), std::string::npos);
    EXPECT_NE(fused.description.find("via cuda:batch_normalization_addition_relu"),
              std::string::npos);
    EXPECT_NE(fused.description.find("via cuda:addition_relu_gradient"), std::string::npos);
    EXPECT_NE(fused.description.find("via cuda:max_pooling_relu_gradient"), std::string::npos);
    EXPECT_EQ(unfused.description.find("fused"), std::string::npos);
    EXPECT_EQ(fused.skipped_steps + unfused.skipped_steps, 0u) << p.name;
    // Fused and unfused CUDA round alike (each fused pass rounds once where the unfused
    // pair rounded an exact intermediate), so they agree closely; both follow the reference
    // within the precision's tolerance.
    EXPECT_LE(relative_error(fused.losses, unfused.losses), p.tolerance / 4) << p.name;
    EXPECT_LE(relative_error(fused.parameters, unfused.parameters), p.tolerance / 4) << p.name;
    EXPECT_LE(relative_error(fused.losses, want.losses), p.tolerance) << p.name;
    EXPECT_LE(relative_error(fused.parameters, want.parameters), p.tolerance) << p.name;
  }
}
