// Training: training_graph's structure, the three training styles, optimizers against hand
// computed steps, checkpoints, a short training run, and bad input.
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "gradient_support.hpp"

using namespace cnngraph;
using namespace cnngraph::testing;

namespace {

std::filesystem::path temp_path(const std::string& name) {
  const char* dir = std::getenv("CNNGRAPH_TEST_TMP");
  return std::filesystem::path(dir ? dir : "/tmp") / name;
}

const ConvolutionDescriptor kConv = SmallNet::conv_descriptor();
const ConvolutionDescriptor kFc = SmallNet::fc_descriptor();

std::shared_ptr<TrainableDataSource> trainable(const ConvolutionDescriptor& d, std::uint64_t seed,
                                               std::shared_ptr<const Optimizer> optimizer) {
  return TrainableDataSource::uniform("layer" + std::to_string(seed), d, 0.3f, 0.05f, seed,
                                      std::move(optimizer));
}

// Mean loss of the first and of the last 10 of 150 steps on synthetic batches of 16.
struct LossTrend {
  double first = 0, last = 0;
};
LossTrend train_synthetic(Graph& graph, std::mt19937& rng) {
  LossTrend trend;
  for (int step = 0; step < 150; ++step) {
    const Batch batch = synthetic_batch(16, rng);
    const float loss = graph.run({batch.images}, {batch.labels}).loss();
    if (step < 10) trend.first += loss / 10;
    if (step >= 140) trend.last += loss / 10;
  }
  return trend;
}

}  // namespace

TEST(TrainingGraph, MakesOneGradientNodePerForwardNodeAndSkipsTheFirstInputGradient) {
  std::mt19937 rng(1);
  SmallNet net(RecordingSource::random(kConv, rng), RecordingSource::random(kFc, rng));
  std::vector<std::string> made;
  auto terminals = net.loss->training_graph(
      nullptr, [&](FilterNode& gradient, const FilterNode& forward, const ImageNode&,
                   const ImageNode&) { made.push_back(forward.kind() + "->" + gradient.kind()); });
  const std::vector<std::string> expected = {
      "fully_connected->fully_connected_gradient", "max_pooling->max_pooling_gradient",
      "neuron_relu->neuron_relu_gradient", "convolution->convolution_gradient"};
  EXPECT_EQ(made, expected);
  ASSERT_EQ(terminals.size(), 1u);
  const auto* first = dynamic_cast<const ConvolutionGradientNode*>(terminals[0]->producer());
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->gradient_option, GradientOption::weights_and_bias);
}

TEST(TrainingGraph, StopGradientAndFrozenLayersPruneTheBackwardPass) {
  std::mt19937 rng(2);
  SmallNet net(RecordingSource::random(kConv, rng), RecordingSource::random(kFc, rng));
  net.fc->source_images()[0]->stop_gradient = true;
  int made = 0;
  auto terminals = net.loss->training_graph(
      nullptr, [&](FilterNode&, const FilterNode&, const ImageNode&, const ImageNode&) { ++made; });
  EXPECT_EQ(made, 1);  // only the fully connected layer's weights
  net.fc->source_images()[0]->stop_gradient = false;
  net.conv->training_style = TrainingStyle::none;
  net.fc->training_style = TrainingStyle::none;
  EXPECT_THROW(net.loss->training_graph(), InvalidArgument);  // nothing left to train
}

TEST(TrainingGraph, SumsTheGradientsOfAnImageReadTwice) {
  std::mt19937 rng(3);
  auto x = std::make_shared<ImageNode>("x");
  auto conv = std::make_shared<ConvolutionNode>(
      x, RecordingSource::random(ConvolutionDescriptor(3, 3, 2, 2), rng));
  auto a =
      std::make_shared<NeuronNode>(conv->result_image(), NeuronDescriptor::make(NeuronType::tanh));
  auto b = std::make_shared<NeuronNode>(conv->result_image(),
                                        NeuronDescriptor::make(NeuronType::sigmoid));
  auto sum = std::make_shared<AdditionNode>(a->result_image(), b->result_image());
  auto loss = std::make_shared<LossNode>(
      sum->result_image(), LossDescriptor(LossType::mean_squared_error, ReductionType::sum));
  std::vector<std::string> forward_kinds;
  loss->training_graph(nullptr,
                       [&](FilterNode& g, const FilterNode& f, const ImageNode&, const ImageNode&) {
                         forward_kinds.push_back(f.kind() + ":" + g.kind());
                       });
  EXPECT_NE(std::find(forward_kinds.begin(), forward_kinds.end(), "addition:addition"),
            forward_kinds.end());
}

TEST(TrainingStyle, NoneComputesNoWeightGradientAndKeepsWeightsBitIdentical) {
  std::mt19937 rng(4);
  auto conv_source = RecordingSource::random(kConv, rng);
  auto fc_source = RecordingSource::random(kFc, rng);
  SmallNet net(conv_source, fc_source);
  net.conv->training_style = TrainingStyle::none;
  net.fc->training_style = TrainingStyle::cpu;
  Graph graph = net.training_graph(Device::cpu());
  const auto weights_before = conv_source->mutable_weights();
  const Batch batch = synthetic_batch(4, rng);
  graph.run({batch.images}, {batch.labels});
  EXPECT_EQ(conv_source->updates, 0);
  EXPECT_TRUE(conv_source->last_gradient.weights_gradient.empty());
  EXPECT_EQ(fc_source->updates, 1);
  EXPECT_EQ(conv_source->mutable_weights(), weights_before);
  EXPECT_EQ(graph.describe().find("diff_weights", graph.describe().find("gradient of convolution")),
            std::string::npos);
}

TEST(TrainingStyle, CpuCallsUpdateOncePerBatchWithTheReferenceGradients) {
  std::mt19937 rng(5);
  auto conv_source = RecordingSource::random(kConv, rng);
  auto fc_source = RecordingSource::random(kFc, rng);
  SmallNet net(conv_source, fc_source);
  net.conv->training_style = TrainingStyle::cpu;
  net.fc->training_style = TrainingStyle::cpu;
  const Batch batch = synthetic_batch(5, rng);
  Graph reference = net.training_graph(Device::cpu_reference());
  reference.run({batch.images}, {batch.labels});
  const auto expected = conv_source->last_gradient;
  Graph fast = net.training_graph(Device::cpu());
  for (int i = 0; i < 3; ++i) fast.run({batch.images}, {batch.labels});
  EXPECT_EQ(conv_source->updates, 4);
  EXPECT_EQ(fc_source->updates, 4);
  EXPECT_EQ(conv_source->last_gradient.batch_size, 5);
  ASSERT_EQ(conv_source->last_gradient.weights_gradient.size(), expected.weights_gradient.size());
  for (std::size_t i = 0; i < expected.weights_gradient.size(); ++i)
    EXPECT_NEAR(conv_source->last_gradient.weights_gradient[i], expected.weights_gradient[i], 1e-5);
}

TEST(TrainingStyle, DeviceMatchesCpuAndTheInferenceGraphSeesTheTrainedWeights) {
  auto adam = std::make_shared<AdamOptimizer>();
  std::vector<std::shared_ptr<TrainableDataSource>> sources[2];
  std::vector<float> final_weights[2];
  for (int style = 0; style < 2; ++style) {
    sources[style] = {trainable(kConv, 1, adam), trainable(kFc, 2, adam)};
    SmallNet net(sources[style][0], sources[style][1]);
    net.conv->training_style = net.fc->training_style =
        style ? TrainingStyle::device : TrainingStyle::cpu;
    Graph graph = net.training_graph(Device::cpu());
    std::mt19937 rng(6);
    for (int step = 0; step < 4; ++step) {
      const Batch batch = synthetic_batch(8, rng);
      graph.run({batch.images}, {batch.labels});
    }
    final_weights[style] = sources[style][0]->current_weights();
    EXPECT_EQ(sources[style][0]->update_count(), 4u);
  }
  ASSERT_EQ(final_weights[0].size(), final_weights[1].size());
  for (std::size_t i = 0; i < final_weights[0].size(); ++i)
    EXPECT_NEAR(final_weights[0][i], final_weights[1][i], 1e-5);
  // An inference graph on the device-trained sources sees the trained weights.
  auto x = std::make_shared<ImageNode>("x");
  auto conv = std::make_shared<ConvolutionNode>(x, sources[1][0]);
  std::mt19937 rng(7);
  const Image probe = random_image({1, 6, 6, 2}, rng);
  auto fixed = std::make_shared<ArrayDataSource>("fixed", kConv, final_weights[1],
                                                 sources[1][0]->current_bias());
  auto expected_conv = std::make_shared<ConvolutionNode>(x, fixed);
  EXPECT_EQ(run_on(Device::cpu(), conv->result_image(), {probe}).to_floats(),
            run_on(Device::cpu(), expected_conv->result_image(), {probe}).to_floats());
}

TEST(Optimizers, StepsMatchHandComputedUpdates) {
  OptimizerDescriptor d;
  d.learning_rate = 0.1f;
  std::vector<float> w = {1.0f, -2.0f}, g = {0.5f, -1.0f};
  const auto step = [&](const Optimizer& o, OptimizerState& s) {
    const ParameterTensor t{w, g};
    o.step(std::span<const ParameterTensor>(&t, 1), s);
  };
  {  // plain SGD: w -= lr g
    OptimizerState s;
    step(SgdOptimizer(d), s);
    EXPECT_FLOAT_EQ(w[0], 0.95f);
    EXPECT_FLOAT_EQ(w[1], -1.9f);
  }
  {  // momentum: m = 0.9 m + lr g; w -= m (twice)
    w = {1.0f, -2.0f};
    OptimizerState s;
    SgdOptimizer sgd(d, 0.9f);
    step(sgd, s);
    step(sgd, s);
    EXPECT_FLOAT_EQ(w[0], 1.0f - 0.05f - (0.9f * 0.05f + 0.05f));
  }
  {  // Nesterov: m = 0.9 m + g; w -= lr (g + 0.9 m)
    w = {1.0f, -2.0f};
    OptimizerState s;
    step(SgdOptimizer(d, 0.9f, true), s);
    EXPECT_FLOAT_EQ(w[0], 1.0f - 0.1f * (0.5f + 0.9f * 0.5f));
  }
  {  // Adam, t = 1: lr_t = lr sqrt(1 - b2) / (1 - b1); m = 0.1 g; v = 0.001 g^2
    w = {1.0f, -2.0f};
    OptimizerState s;
    step(AdamOptimizer(d), s);
    const double lr_t = 0.1 * std::sqrt(1 - 0.999) / (1 - 0.9);
    EXPECT_NEAR(w[0], 1.0 - lr_t * 0.05 / (std::sqrt(0.001 * 0.25) + 1e-8), 1e-6);
    EXPECT_EQ(s.time_step, 1u);
  }
  {  // AMSGrad keeps the larger second moment: a small second gradient uses the old one.
    w = {1.0f, -2.0f};
    OptimizerState s;
    AdamOptimizer ams(d, 0.9, 0.999, 1e-8f, true);
    step(ams, s);
    g = {0.0f, 0.0f};
    step(ams, s);
    EXPECT_NEAR(s.tensors[0].maximum_velocity[0], 0.001 * 0.25, 1e-8);
    g = {0.5f, -1.0f};
  }
  {  // RMSProp: s = 0.1 g^2; w -= lr g / (sqrt(s) + eps)
    w = {1.0f, -2.0f};
    OptimizerState s;
    step(RmsPropOptimizer(d), s);
    EXPECT_NEAR(w[0], 1.0 - 0.1 * 0.5 / std::sqrt(0.1 * 0.25), 1e-6);
  }
  {  // clip to [-0.2, 0.2], rescale by 2, L2 0.5: g' = 2 clip(g) + 0.5 w
    w = {1.0f, -2.0f};
    OptimizerDescriptor c = d;
    c.apply_gradient_clipping = true;
    c.gradient_clip_min = -0.2f;
    c.gradient_clip_max = 0.2f;
    c.gradient_rescale = 2.0f;
    c.regularization_type = RegularizationType::l2;
    c.regularization_scale = 0.5f;
    OptimizerState s;
    step(SgdOptimizer(c), s);
    EXPECT_FLOAT_EQ(w[0], 1.0f - 0.1f * (0.4f + 0.5f));
    EXPECT_FLOAT_EQ(w[1], -2.0f - 0.1f * (-0.4f - 1.0f));
    w = {1.0f, -2.0f};
    c.regularization_type = RegularizationType::l1;
    step(SgdOptimizer(c), s);
    EXPECT_FLOAT_EQ(w[1], -2.0f - 0.1f * (-0.4f - 0.5f));
  }
  OptimizerDescriptor bad;
  bad.learning_rate = -1.0f;
  EXPECT_THROW(AdamOptimizer{bad}, InvalidArgument);
  EXPECT_THROW(SgdOptimizer(d, 1.5f), InvalidArgument);
}

TEST(Training, SeededRunReducesTheLossFivefold) {
  auto adam = std::make_shared<AdamOptimizer>(OptimizerDescriptor{0.02f});
  SmallNet net(trainable(kConv, 3, adam), trainable(kFc, 4, adam));
  Graph graph = net.training_graph(Device::cpu());
  std::mt19937 rng(8);
  const LossTrend trend = train_synthetic(graph, rng);
  EXPECT_LT(trend.last * 5, trend.first)
      << "first 10 steps " << trend.first << ", last 10 " << trend.last;
}

TEST(Checkpoint, RoundTripsBitExactlyIntoANewGraph) {
  auto adam = std::make_shared<AdamOptimizer>();
  auto conv_source = trainable(kConv, 5, adam), fc_source = trainable(kFc, 6, adam);
  SmallNet net(conv_source, fc_source);
  Graph graph = net.training_graph(Device::cpu());
  std::mt19937 rng(9);
  for (int step = 0; step < 3; ++step) {
    const Batch batch = synthetic_batch(4, rng);
    graph.run({batch.images}, {batch.labels});
  }
  const auto path = temp_path("checkpoint_roundtrip.safetensors");
  graph.save_checkpoint(path);
  // New sources with other weights but the same labels, in a new graph.
  auto conv_copy = TrainableDataSource::uniform(conv_source->label(), kConv, 0.3f, 0.0f, 77, adam);
  auto fc_copy = TrainableDataSource::uniform(fc_source->label(), kFc, 0.3f, 0.0f, 78, adam);
  SmallNet other(conv_copy, fc_copy);
  Graph restored = other.training_graph(Device::cpu());
  restored.load_checkpoint(path);
  EXPECT_EQ(conv_copy->current_weights(), conv_source->current_weights());
  EXPECT_EQ(fc_copy->current_bias(), fc_source->current_bias());
  // The same file reads back with FileDataSource.
  FileDataSource file(path, kConv, conv_source->label() + ".");
  ASSERT_TRUE(file.load());
  const auto* w = static_cast<const float*>(file.weights());
  EXPECT_EQ(std::vector<float>(w, w + kConv.weight_count()), conv_source->current_weights());
  std::filesystem::remove(path);
}

TEST(TrainingErrors, LabelsOutOfRangeOrOfTheWrongBatchAreRejected) {
  std::vector<int> classes = {0, 3};
  EXPECT_THROW(LossLabels::from_classes(classes, 3), InvalidArgument);
  std::mt19937 rng(10);
  SmallNet net(RecordingSource::random(kConv, rng), RecordingSource::random(kFc, rng));
  Graph graph = net.training_graph(Device::cpu());
  const Batch batch = synthetic_batch(4, rng);
  const Batch other = synthetic_batch(3, rng);
  try {
    graph.run({batch.images}, {other.labels});
    FAIL() << "expected a ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("labels"), std::string::npos) << e.what();
  }
  EXPECT_THROW(graph.run({batch.images}), InvalidArgument);  // no labels
}

TEST(TrainingErrors, NanLossThrowsAndUpdatesNothing) {
  auto adam = std::make_shared<AdamOptimizer>();
  auto conv_source = trainable(kConv, 7, adam), fc_source = trainable(kFc, 8, adam);
  SmallNet net(conv_source, fc_source);
  Graph graph = net.training_graph(Device::cpu());
  std::mt19937 rng(11);
  Batch batch = synthetic_batch(4, rng);
  std::vector<float> pixels = batch.images.to_floats();
  pixels[5] = NAN;
  const auto before = conv_source->current_weights();
  EXPECT_THROW(graph.run({Image::from_floats(batch.images.shape(), pixels)}, {batch.labels}),
               NumericalError);
  EXPECT_EQ(conv_source->current_weights(), before);
  EXPECT_EQ(conv_source->update_count(), 0u);
}

TEST(TrainingErrors, ThrowingUpdateFailsTheBatchAndKeepsTheWeights) {
  std::mt19937 rng(12);
  auto conv_source = RecordingSource::random(kConv, rng);
  auto adam = std::make_shared<AdamOptimizer>();
  auto fc_source = trainable(kFc, 9, adam);
  SmallNet net(conv_source, fc_source);
  net.conv->training_style = TrainingStyle::cpu;
  conv_source->throw_on_update = true;
  Graph graph = net.training_graph(Device::cpu());
  const Batch batch = synthetic_batch(4, rng);
  const auto before = fc_source->current_weights();
  try {
    graph.run({batch.images}, {batch.labels});
    FAIL() << "expected a DataSourceError";
  } catch (const DataSourceError& e) {
    EXPECT_NE(std::string(e.what()).find("update() failed"), std::string::npos) << e.what();
  }
  EXPECT_EQ(fc_source->current_weights(), before);  // the device-style update did not run
  conv_source->throw_on_update = false;
  graph.run({batch.images}, {batch.labels});  // the graph stays usable
  EXPECT_EQ(conv_source->updates, 1);
}

TEST(TrainingErrors, SourceWithoutUpdateIsAClearError) {
  std::mt19937 rng(13);
  auto conv_source = random_source(kConv, rng, true, "plain");
  SmallNet net(conv_source, RecordingSource::random(kFc, rng));
  net.fc->training_style = TrainingStyle::cpu;
  Graph graph = net.training_graph(Device::cpu());
  const Batch batch = synthetic_batch(2, rng);
  try {
    graph.run({batch.images}, {batch.labels});
    FAIL() << "expected Unsupported";
  } catch (const Unsupported& e) {
    EXPECT_NE(std::string(e.what()).find("update_on_device"), std::string::npos) << e.what();
  }
}

// Batch normalization in training mode.
namespace {

BatchNormalizationParameters random_normalization(int channels, std::mt19937& rng) {
  const auto n = static_cast<std::size_t>(channels);
  return {random_floats(n, rng, -0.5f, 0.5f), random_floats(n, rng, 0.5f, 2.0f),
          random_floats(n, rng, 0.5f, 1.5f), random_floats(n, rng, -0.5f, 0.5f), 1e-3f};
}

// y and dx of a training-mode batch normalization on the reference backend.
struct NormalizationRun {
  std::vector<float> y, dx;
};
NormalizationRun run_normalization(const std::shared_ptr<BatchNormalizationDataSource>& source,
                                   const Image& x, const Image& dy,
                                   Device device = Device::cpu_reference()) {
  auto x_node = std::make_shared<ImageNode>("x");
  auto bn = std::make_shared<BatchNormalizationNode>(x_node, source);
  auto dy_node = std::make_shared<ImageNode>("dy");
  Graph graph(device, {bn->result_image(), bn->gradient_filter(dy_node)->result_image()},
              {true, true});
  std::vector<Image> sources;
  for (const auto& handle : graph.source_image_handles())
    sources.push_back(handle->handle == "x" ? x : dy);
  const Results r = graph.run(sources);
  return {r[0].to_floats(), r[1].to_floats()};
}

}  // namespace

TEST(BatchNormalizationTraining, GradientsMatchFiniteDifferencesAndRunningAveragesFollow) {
  std::mt19937 rng(21);
  const ImageShape shape{3, 4, 5, 6};
  const BatchNormalizationParameters initial = random_normalization(6, rng);
  const Image x = random_image(shape, rng), dy = random_image(shape, rng);
  const auto g = dy.to_floats();
  const auto objective = [&](const BatchNormalizationParameters& p, const Image& input) {
    const auto y =
        run_normalization(std::make_shared<BatchNormalizationDataSource>("bn", p), input, dy).y;
    double sum = 0.0;
    for (std::size_t i = 0; i < y.size(); ++i) sum += static_cast<double>(y[i]) * g[i];
    return sum;
  };
  // Analytic: dx from the gradient node; dgamma and dbeta from one SGD step at rate 1.
  auto sgd = std::make_shared<SgdOptimizer>(OptimizerDescriptor{1.0f});
  auto trained = std::make_shared<BatchNormalizationDataSource>("bn", initial, sgd, 0.25f);
  const auto analytic = run_normalization(trained, x, dy);
  const BatchNormalizationParameters after = trained->parameters();
  EXPECT_EQ(trained->update_count(), 1u);
  const float h = 1e-2f;
  auto xv = x.to_floats();
  for (std::size_t k = 0; k < xv.size(); k += 17) {
    const double numeric = central_difference(
        xv, k, h, [&] { return objective(initial, Image::from_floats(shape, xv)); });
    EXPECT_NEAR(analytic.dx[k], numeric, 5e-3 * (1 + std::fabs(numeric))) << "dx[" << k << "]";
  }
  for (int c = 0; c < 6; ++c) {
    for (int member = 0; member < 2; ++member) {
      BatchNormalizationParameters p = initial;
      std::vector<float>& v = member == 0 ? p.gamma : p.beta;
      const double numeric = central_difference(v, c, h, [&] { return objective(p, x); });
      const double step =
          member == 0 ? initial.gamma[c] - after.gamma[c] : initial.beta[c] - after.beta[c];
      EXPECT_NEAR(step, numeric, 5e-3 * (1 + std::fabs(numeric)))
          << (member ? "beta " : "gamma ") << c;
    }
    // Running averages: momentum 0.25 towards the batch mean and unbiased batch variance.
    const auto xs = x.to_floats();
    const std::size_t count = shape.elements() / 6;
    double mean = 0, square = 0;
    for (std::size_t i = 0; i < count; ++i) mean += xs[i * 6 + c];
    mean /= count;
    for (std::size_t i = 0; i < count; ++i)
      square += (xs[i * 6 + c] - mean) * (xs[i * 6 + c] - mean);
    EXPECT_NEAR(after.mean[c], 0.75 * initial.mean[c] + 0.25 * mean, 1e-5);
    EXPECT_NEAR(after.variance[c], 0.75 * initial.variance[c] + 0.25 * square / (count - 1), 1e-5);
  }
  // The forward result is normalized with the batch statistics: per channel mean beta.
  for (int c = 0; c < 6; ++c) {
    double mean = 0;
    const std::size_t count = shape.elements() / 6;
    for (std::size_t i = 0; i < count; ++i) mean += analytic.y[i * 6 + c];
    EXPECT_NEAR(mean / count, initial.beta[c], 1e-4);
  }
}

TEST(BatchNormalizationTraining, OnednnLoopsMatchTheReference) {
  std::mt19937 rng(22);
  for (const ImageShape shape : {ImageShape{3, 4, 5, 6}, ImageShape{16, 12, 12, 24}}) {
    const BatchNormalizationParameters initial = random_normalization(shape.channels, rng);
    const Image x = random_image(shape, rng), dy = random_image(shape, rng);
    auto sgd = std::make_shared<SgdOptimizer>(OptimizerDescriptor{1.0f});
    auto reference_source = std::make_shared<BatchNormalizationDataSource>("r", initial, sgd);
    auto fast_source = std::make_shared<BatchNormalizationDataSource>("f", initial, sgd);
    const auto expected = run_normalization(reference_source, x, dy, Device::cpu_reference());
    const auto actual = run_normalization(fast_source, x, dy, Device::cpu());
    EXPECT_LE(max_relative_error(actual.y, expected.y), 1e-5);
    EXPECT_LE(max_relative_error(actual.dx, expected.dx), 1e-5);
    const auto p = fast_source->parameters(), q = reference_source->parameters();
    EXPECT_LE(max_relative_error(p.gamma, q.gamma), 1e-5);
    EXPECT_LE(max_relative_error(p.beta, q.beta), 1e-5);
    EXPECT_LE(max_relative_error(p.mean, q.mean), 1e-6);
    EXPECT_LE(max_relative_error(p.variance, q.variance), 1e-6);
  }
}

TEST(BatchNormalizationTraining, TrainsInANetworkAndTheInferenceGraphUsesTheRunningAverages) {
  auto adam = std::make_shared<AdamOptimizer>(OptimizerDescriptor{0.02f});
  auto conv_source = trainable(kConv, 11, adam), fc_source = trainable(kFc, 12, adam);
  auto bn_source = BatchNormalizationDataSource::identity("bn", 4, adam);
  const auto build = [&](std::shared_ptr<ImageNode> input) {
    auto conv = std::make_shared<ConvolutionNode>(input, conv_source);
    auto bn = std::make_shared<BatchNormalizationNode>(conv->result_image(), bn_source);
    auto relu =
        std::make_shared<NeuronNode>(bn->result_image(), NeuronDescriptor::make(NeuronType::relu));
    auto pool = std::make_shared<MaxPoolingNode>(relu->result_image(), 2);
    return std::make_shared<FullyConnectedNode>(pool->result_image(), fc_source)->result_image();
  };
  auto input = std::make_shared<ImageNode>("image");
  auto loss = std::make_shared<LossNode>(
      build(input), LossDescriptor(LossType::softmax_cross_entropy, ReductionType::mean));
  const auto terminals = loss->training_graph();
  Graph training(Device::cpu(), terminals, std::vector<bool>(terminals.size(), false));
  std::mt19937 rng(13);
  const LossTrend trend = train_synthetic(training, rng);
  EXPECT_LT(trend.last * 5, trend.first)
      << "first 10 steps " << trend.first << ", last 10 " << trend.last;
  EXPECT_EQ(bn_source->update_count(), 150u);
  const BatchNormalizationParameters p = bn_source->parameters();
  EXPECT_NE(p.gamma, std::vector<float>(4, 1.0f));
  EXPECT_NE(p.mean, std::vector<float>(4, 0.0f));

  // Inference: conv -> bn (folded into the conv, running averages) equals conv, then the
  // formula with the data source's parameters.
  auto x = std::make_shared<ImageNode>("x");
  auto conv = std::make_shared<ConvolutionNode>(x, conv_source);
  auto bn = std::make_shared<BatchNormalizationNode>(conv->result_image(), bn_source);
  const Image images = synthetic_batch(4, rng).images;
  const auto folded = run_on(Device::cpu(), bn->result_image(), {images}).to_floats();
  const auto raw = run_on(Device::cpu(), conv->result_image(), {images}).to_floats();
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const std::size_t c = i % 4;
    const double expected =
        p.gamma[c] * (raw[i] - p.mean[c]) / std::sqrt(p.variance[c] + p.epsilon) + p.beta[c];
    EXPECT_NEAR(folded[i], expected, 1e-4 * (1 + std::fabs(expected)));
  }

  // Checkpoint round trip of all four tensors.
  const auto path = temp_path("checkpoint_batch_norm.safetensors");
  training.save_checkpoint(path);
  auto other = BatchNormalizationDataSource::identity("bn", 4, adam);
  auto other_input = std::make_shared<ImageNode>("image");
  auto other_conv = std::make_shared<ConvolutionNode>(other_input, trainable(kConv, 11, adam));
  auto other_bn = std::make_shared<BatchNormalizationNode>(other_conv->result_image(), other);
  Graph restored(Device::cpu(), other_bn->result_image());
  restored.load_checkpoint(path);
  const BatchNormalizationParameters q = other->parameters();
  EXPECT_EQ(q.gamma, p.gamma);
  EXPECT_EQ(q.beta, p.beta);
  EXPECT_EQ(q.mean, p.mean);
  EXPECT_EQ(q.variance, p.variance);
  std::filesystem::remove(path);
}

TEST(BatchNormalizationTraining, BadParametersAndSharedSourcesAreRejected) {
  EXPECT_THROW(BatchNormalizationDataSource(
                   "bn", BatchNormalizationParameters{{0.0f}, {-1.0f}, {1.0f}, {0.0f}, 1e-5f}),
               InvalidArgument);
  EXPECT_THROW(BatchNormalizationDataSource::identity("bn", 2, nullptr, 0.0f), InvalidArgument);
  EXPECT_THROW(BatchNormalizationDataSource::identity("bn", 0), InvalidArgument);
  auto source = BatchNormalizationDataSource::identity("bn", 2);
  EXPECT_THROW(source->assign(BatchNormalizationParameters{{0.0f}, {1.0f}, {1.0f}, {0.0f}, 1e-5f}),
               InvalidArgument);
  // One source trained by two nodes of one graph: its statistics would be updated twice.
  auto x = std::make_shared<ImageNode>("x");
  auto a = std::make_shared<BatchNormalizationNode>(x, source);
  auto b = std::make_shared<BatchNormalizationNode>(a->result_image(), source);
  auto dy = std::make_shared<ImageNode>("dy");
  auto ga = a->gradient_filter(b->gradient_filter(dy)->result_image());
  Graph graph(Device::cpu(), ga->result_image());
  std::mt19937 rng(3);
  const Image image = random_image({2, 2, 2, 2}, rng);
  try {
    graph.run({image, image});
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("trained by another node"), std::string::npos) << e.what();
  }
}
