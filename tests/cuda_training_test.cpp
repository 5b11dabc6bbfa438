// Training on CUDA against the reference backend: weight and bias gradients on random
// convolutions, whole training steps (batch norm, every optimizer, both update styles,
// recorded and replayed), that device-style updates copy nothing to the host, non-finite
// gradients, and fp16 with dynamic loss scaling; and a ResNet-18's loss curve against
// PyTorch's (bench/torch_resnet18_curve.py). On a machine without a GPU every test skips,
// saying so.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "core/device_memory.hpp"
#include "cuda_support.hpp"
#include "gradient_support.hpp"
#include "models.hpp"
#include "support.hpp"

using namespace cnngraph;
using namespace cnngraph::testing;

namespace {

// Max |a - b| over max(1, max |b|): gradients are sums over a batch, so their size varies.
double gradient_error(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0, largest = 1;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    worst = std::max(worst, double(std::fabs(a[i] - b[i])));
    largest = std::max(largest, double(std::fabs(b[i])));
  }
  return worst / largest;
}

// conv 3x3 (2 -> 4) -> batch norm -> relu -> max-pool 2 -> fully connected (-> 3) -> loss.
struct NormalizedNet {
  std::shared_ptr<ImageNode> input = std::make_shared<ImageNode>("image");
  std::shared_ptr<TrainableDataSource> conv_source, fc_source;
  std::shared_ptr<BatchNormalizationDataSource> bn_source;
  std::shared_ptr<ConvolutionNode> conv;
  std::shared_ptr<FullyConnectedNode> fc;
  std::shared_ptr<LossNode> loss;

  NormalizedNet(std::shared_ptr<const Optimizer> optimizer, TrainingStyle style) {
    conv_source = TrainableDataSource::uniform("conv", ConvolutionDescriptor(3, 3, 2, 4), 0.3f,
                                               0.05f, 21, optimizer);
    fc_source = TrainableDataSource::uniform("fc", ConvolutionDescriptor(3, 3, 4, 3), 0.3f, 0.05f,
                                             22, optimizer);
    BatchNormalizationParameters p;
    p.gamma = {1.0f, 0.8f, 1.2f, 0.9f};
    p.beta = {0.0f, 0.1f, -0.1f, 0.05f};
    p.mean = {0, 0, 0, 0};
    p.variance = {1, 1, 1, 1};
    bn_source = std::make_shared<BatchNormalizationDataSource>("bn", p, optimizer);
    conv = std::make_shared<ConvolutionNode>(input, conv_source);
    auto bn = std::make_shared<BatchNormalizationNode>(conv->result_image(), bn_source);
    auto relu =
        std::make_shared<NeuronNode>(bn->result_image(), NeuronDescriptor::make(NeuronType::relu));
    auto pool = std::make_shared<MaxPoolingNode>(relu->result_image(), 2);
    fc = std::make_shared<FullyConnectedNode>(pool->result_image(), fc_source);
    conv->training_style = fc->training_style = style;
    loss = std::make_shared<LossNode>(
        fc->result_image(), LossDescriptor(LossType::softmax_cross_entropy, ReductionType::mean));
  }

  Graph graph(Device device, GraphOptions options = {}) const {
    const auto terminals = loss->training_graph();
    return Graph(device, terminals, std::vector<bool>(terminals.size(), false), options);
  }
};

// What a few training steps leave: the losses and every parameter.
struct Trained {
  std::vector<float> losses, conv, conv_bias, fc;
  BatchNormalizationParameters bn;
};

Trained train(const NormalizedNet& net, Device device, GraphOptions options, int steps) {
  Graph graph = net.graph(device, options);
  std::mt19937 rng(31);
  Trained t;
  for (int step = 0; step < steps; ++step) {
    const auto [images, labels] = synthetic_batch(8, rng);
    t.losses.push_back(graph.run({images}, {labels}).loss());
  }
  t.conv = net.conv_source->current_weights();
  t.conv_bias = net.conv_source->current_bias();
  t.fc = net.fc_source->current_weights();
  t.bn = net.bn_source->parameters();
  return t;
}

void expect_same_training(const Trained& gpu, const Trained& want, double tolerance,
                          const std::string& what) {
  EXPECT_LE(gradient_error(gpu.losses, want.losses), tolerance) << what << " losses";
  EXPECT_LE(gradient_error(gpu.conv, want.conv), tolerance) << what << " conv weights";
  EXPECT_LE(gradient_error(gpu.conv_bias, want.conv_bias), tolerance) << what << " conv bias";
  EXPECT_LE(gradient_error(gpu.fc, want.fc), tolerance) << what << " fc weights";
  EXPECT_LE(gradient_error(gpu.bn.gamma, want.bn.gamma), tolerance) << what << " gamma";
  EXPECT_LE(gradient_error(gpu.bn.beta, want.bn.beta), tolerance) << what << " beta";
  EXPECT_LE(gradient_error(gpu.bn.mean, want.bn.mean), tolerance) << what << " running mean";
  EXPECT_LE(gradient_error(gpu.bn.variance, want.bn.variance), tolerance)
      << what << " running variance";
}

// Random signs, magnitudes in [0.2, 0.8]: after a few small steps the binarizations (sign,
// |w| <= 1) still decide alike on the reference and on the device.
std::vector<float> away_from_thresholds(std::size_t count, std::mt19937& rng) {
  std::vector<float> values = random_floats(count, rng, 0.2f, 0.8f);
  for (float& v : values)
    if (rng() & 1u) v = -v;
  return values;
}

// Pixels from +-0.25, +-0.5, +-0.75 and +-1.5: exact in every precision, and none at a sign
// or pass-through threshold of a binary convolution.
Image threshold_free_image(const ImageShape& shape, std::mt19937& rng) {
  const float levels[] = {-1.5f, -0.75f, -0.5f, -0.25f, 0.25f, 0.5f, 0.75f, 1.5f};
  std::vector<float> pixels(shape.elements());
  for (float& v : pixels) v = levels[rng() % 8];
  return Image::from_floats(shape, pixels);
}

Image random_pixels(const ImageShape& shape, std::mt19937& rng) { return random_image(shape, rng); }

// What a few steps of one trained node under a mean-squared-error loss leave: the losses, the
// weights and biases, and the copies of training values to the host during the steps.
struct Steps {
  std::vector<float> losses, weights, bias;
  std::uint64_t downloads = 0;
};

// `make` builds the node on `x` with `source`; each step's source comes from `image`, the
// targets are random; both are rounded to `rounding`'s type, so that the reference sees the
// values the device does.
template <typename Make>
Steps train_node(const Make& make, const std::shared_ptr<TrainableDataSource>& source,
                 const ImageShape& shape, Image (*image)(const ImageShape&, std::mt19937&),
                 Device device, GraphOptions options, Precision rounding, int steps) {
  auto x = std::make_shared<ImageNode>("x");
  const std::shared_ptr<FilterNode> node = make(x, source);
  auto loss = std::make_shared<LossNode>(
      node->result_image(), LossDescriptor(LossType::mean_squared_error, ReductionType::mean));
  const auto terminals = loss->training_graph();
  Graph graph(device, terminals, std::vector<bool>(terminals.size(), false), options);
  std::mt19937 rng(17);
  Steps result;
  // The result's size, found before the steps: a reference graph over the node during them
  // would load the source, reading the device's weights back (downloads of the test's own).
  const ImageShape out =
      run_on(Device::cpu_reference(), node->result_image(), {Image(shape)}).shape();
  const std::uint64_t before = detail::parameter_downloads();
  for (int step = 0; step < steps; ++step) {
    const Image images = rounded_for(image(shape, rng), rounding);
    const Image targets = rounded_for(random_image(out, rng), rounding);
    result.losses.push_back(graph.run({images}, {LossLabels(targets)}).loss());
  }
  result.downloads = detail::parameter_downloads() - before;
  result.weights = source->current_weights();
  result.bias = source->current_bias();
  return result;
}

void expect_same_steps(const Steps& gpu, const Steps& want, double tolerance,
                       const std::string& what) {
  EXPECT_LE(gradient_error(gpu.losses, want.losses), tolerance) << what << " losses";
  EXPECT_LE(gradient_error(gpu.weights, want.weights), tolerance) << what << " weights";
  EXPECT_LE(gradient_error(gpu.bias, want.bias), tolerance) << what << " bias";
}

}  // namespace

TEST(CudaWeightGradients, RandomConvolutionsMatchTheReferenceInEveryPrecision) {
  REQUIRE_GPU();
  std::mt19937 rng(91);
  std::vector<ConvCase> cases = random_convolution_cases(14, 93);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const ConvCase& c = cases[i];
    ConvolutionDescriptor d = c.descriptor();
    // Every third with the descriptor's neuron, which the gradient recomputes. A smooth one:
    // a relu's kink would flip where 16-bit rounding moves a value across zero.
    if (i % 3 == 1) d.neuron = NeuronDescriptor::make(NeuronType::sigmoid);
    auto source = RecordingSource::random(d, rng);
    auto x = std::make_shared<ImageNode>("x0");
    auto node = std::make_shared<ConvolutionNode>(x, source);
    node->padding_policy = c.padding;
    node->training_style = TrainingStyle::cpu;
    const ImageShape shape{c.batch, c.height, c.width, c.in_channels};
    const ImageShape out = run_on(Device::cpu_reference(), node->result_image(),
                                  {Image::from_floats(shape, std::vector<float>(shape.elements()))})
                               .shape();
    auto dy = std::make_shared<ImageNode>("dy");
    const auto gradient = node->gradient_filter_for(0, dy)->result_image();
    const std::map<std::string, Image> inputs = {{"x0", random_image(shape, rng)},
                                                 {"dy", random_image(out, rng)}};
    for (const PrecisionCase& p : kPrecisions) {
      std::map<std::string, Image> rounded = inputs;
      for (auto& [name, image] : rounded) image = rounded_for(image, p.precision);
      Graph reference(Device::cpu_reference(), gradient);
      const Image want = run_named(reference, rounded);
      const ConvolutionGradientState expected = source->last_gradient;
      Graph gpu(Device::cuda(), gradient, true, options_for(p.precision));
      const Image got = run_named(gpu, rounded).converted_to(DataType::f32);
      const ConvolutionGradientState& actual = source->last_gradient;
      const std::string what = c.name() + (i % 3 == 1 ? " sigmoid " : " ") + p.name;
      EXPECT_LE(max_relative_error(got, want), p.tolerance) << what << " input gradient";
      EXPECT_LE(gradient_error(actual.weights_gradient, expected.weights_gradient), p.tolerance)
          << what << " weight gradient\n"
          << gpu.describe();
      EXPECT_LE(gradient_error(actual.bias_gradient, expected.bias_gradient), p.tolerance)
          << what << " bias gradient";
      EXPECT_EQ(actual.batch_size, c.batch);
    }
  }
  // Fully connected nodes (cuBLASLt's products), with and without a bias.
  for (const bool bias : {true, false}) {
    const ConvolutionDescriptor d(3, 2, 5, 7);
    auto source =
        std::make_shared<RecordingSource>(d, random_floats(d.weight_count(), rng),
                                          bias ? random_floats(7, rng) : std::vector<float>{});
    auto node = std::make_shared<FullyConnectedNode>(std::make_shared<ImageNode>("x0"), source);
    node->training_style = TrainingStyle::cpu;
    auto dy = std::make_shared<ImageNode>("dy");
    const auto gradient = node->gradient_filter_for(0, dy)->result_image();
    const std::map<std::string, Image> inputs = {{"x0", random_image({6, 2, 3, 5}, rng)},
                                                 {"dy", random_image({6, 1, 1, 7}, rng)}};
    for (const PrecisionCase& p : kPrecisions) {
      std::map<std::string, Image> rounded = inputs;
      for (auto& [name, image] : rounded) image = rounded_for(image, p.precision);
      Graph reference(Device::cpu_reference(), gradient);
      const Image want = run_named(reference, rounded);
      const ConvolutionGradientState expected = source->last_gradient;
      Graph gpu(Device::cuda(), gradient, true, options_for(p.precision));
      const Image got = run_named(gpu, rounded).converted_to(DataType::f32);
      EXPECT_NE(gpu.describe().find("cublaslt:fully_connected_gradient"), std::string::npos);
      const std::string what = std::string("fully connected ") + p.name;
      EXPECT_LE(max_relative_error(got, want), p.tolerance) << what << " input gradient";
      EXPECT_LE(gradient_error(source->last_gradient.weights_gradient, expected.weights_gradient),
                p.tolerance)
          << what << " weight gradient";
      if (bias) {
        EXPECT_LE(gradient_error(source->last_gradient.bias_gradient, expected.bias_gradient),
                  p.tolerance)
            << what << " bias gradient";
      }
    }
  }
}

// Weight gradients where the padding reaches past the window (the last windows wholly in the
// padding), which cuDNN's backward filter summed wrongly in f32: CUDA pads the source with
// zeros itself and runs the unpadded problem. Every precision, then device-style steps.
TEST(CudaWeightGradients, PaddingPastTheWindowMatchesTheReferenceInEveryPrecision) {
  REQUIRE_GPU();
  struct Case {
    ConvolutionDescriptor descriptor;
    PaddingPolicy padding;
    ImageShape shape;
  };
  const auto descriptor = [](int kw, int kh, int in, int out, int stride, int dilation,
                             int groups) {
    ConvolutionDescriptor d(kw, kh, in, out);
    d.stride_x = d.stride_y = stride;
    d.dilation_x = d.dilation_y = dilation;
    d.groups = groups;
    return d;
  };
  const Case cases[] = {
      {descriptor(2, 2, 4, 3, 2, 1, 1), PaddingPolicy::explicit_padding(1, 3, 1, 2), {2, 6, 5, 4}},
      {descriptor(3, 3, 3, 5, 1, 2, 1), PaddingPolicy::explicit_padding(4, 1, 0, 6), {2, 7, 7, 3}},
      {descriptor(3, 1, 4, 4, 1, 1, 2), PaddingPolicy::explicit_padding(0, 2, 2, 3), {3, 5, 6, 4}},
      {descriptor(3, 3, 8, 16, 2, 1, 1), PaddingPolicy::explicit_padding(1, 4, 1, 4), {2, 9, 9, 8}},
  };
  std::mt19937 rng(41);
  for (std::size_t k = 0; k < std::size(cases); ++k) {
    const Case& c = cases[k];
    auto source = RecordingSource::random(c.descriptor, rng);
    auto x = std::make_shared<ImageNode>("x0");
    auto node = std::make_shared<ConvolutionNode>(x, source);
    node->padding_policy = c.padding;
    node->training_style = TrainingStyle::cpu;
    const Image zeros = Image::from_floats(c.shape, std::vector<float>(c.shape.elements()));
    const ImageShape out = run_on(Device::cpu_reference(), node->result_image(), {zeros}).shape();
    auto dy = std::make_shared<ImageNode>("dy");
    const auto gradient = node->gradient_filter_for(0, dy)->result_image();
    const std::map<std::string, Image> inputs = {{"x0", random_image(c.shape, rng)},
                                                 {"dy", random_image(out, rng)}};
    for (const PrecisionCase& p : kPrecisions) {
      std::map<std::string, Image> rounded = inputs;
      for (auto& [name, image] : rounded) image = rounded_for(image, p.precision);
      Graph reference(Device::cpu_reference(), gradient);
      const Image want = run_named(reference, rounded);
      const ConvolutionGradientState expected = source->last_gradient;
      Graph gpu(Device::cuda(), gradient, true, options_for(p.precision));
      const Image got = run_named(gpu, rounded).converted_to(DataType::f32);
      const std::string what = "case " + std::to_string(k) + " " + p.name;
      EXPECT_LE(max_relative_error(got, want), p.tolerance) << what << " input gradient";
      EXPECT_LE(gradient_error(source->last_gradient.weights_gradient, expected.weights_gradient),
                p.tolerance)
          << what << " weight gradient\n"
          << gpu.describe();
      EXPECT_LE(gradient_error(source->last_gradient.bias_gradient, expected.bias_gradient),
                p.tolerance)
          << what << " bias gradient";
    }
  }
  // Device-style steps of the first case: the updated weights follow the reference's.
  const Case& c = cases[0];
  for (const PrecisionCase& p : kPrecisions) {
    Steps sides[2];
    for (int side = 0; side < 2; ++side) {
      std::mt19937 init(3);
      auto sgd = std::make_shared<SgdOptimizer>(OptimizerDescriptor{0.05f}, 0.9f);
      auto source = std::make_shared<TrainableDataSource>(
          "padded", c.descriptor, random_floats(c.descriptor.weight_count(), init),
          random_floats(c.descriptor.output_feature_channels, init), sgd);
      const auto make = [&](std::shared_ptr<ImageNode> x, std::shared_ptr<TrainableDataSource> s) {
        auto node = std::make_shared<ConvolutionNode>(std::move(x), std::move(s));
        node->padding_policy = c.padding;
        node->training_style = TrainingStyle::device;
        return node;
      };
      sides[side] = train_node(make, source, c.shape, random_pixels,
                               side ? Device::cuda() : Device::cpu_reference(),
                               side ? options_for(p.precision) : GraphOptions{}, p.precision, 4);
    }
    expect_same_steps(sides[1], sides[0], std::max(p.tolerance, 1e-4),
                      std::string("padded steps ") + p.name);
    EXPECT_EQ(sides[1].downloads, 0u) << p.name;
  }
}

// Binary convolutions train on the device: the straight-through-estimator gradient, and
// the sign bits the forward counts with re-derived on the device from the shadow weights
// after each step. Every type, beta scaling, both update styles, every precision, against
// the reference; device style copies nothing to the host.
TEST(CudaTraining, BinaryConvolutionsTrainLikeTheReferenceInEveryPrecision) {
  REQUIRE_GPU();
  struct Case {
    BinaryConvolutionType type;
    bool beta;
    const char* name;
  };
  const Case cases[] = {{BinaryConvolutionType::xnor, false, "xnor"},
                        {BinaryConvolutionType::and_, false, "and"},
                        {BinaryConvolutionType::binary_weights, false, "binary_weights"},
                        {BinaryConvolutionType::xnor, true, "xnor beta"}};
  // 40 channels: a whole word and eight bits of another.
  const ConvolutionDescriptor d(3, 3, 40, 12);
  const ImageShape shape{3, 6, 7, 40};
  for (const Case& c : cases)
    for (const TrainingStyle style : {TrainingStyle::device, TrainingStyle::cpu})
      for (const PrecisionCase& p : kPrecisions) {
        Steps sides[2];
        for (int side = 0; side < 2; ++side) {
          std::mt19937 init(7);
          auto sgd = std::make_shared<SgdOptimizer>(OptimizerDescriptor{0.002f}, 0.9f);
          auto source = std::make_shared<TrainableDataSource>(
              "binary", d, away_from_thresholds(d.weight_count(), init),
              random_floats(12, init, -0.2f, 0.2f), sgd);
          const auto make = [&](std::shared_ptr<ImageNode> x,
                                std::shared_ptr<TrainableDataSource> s) {
            auto node = std::make_shared<BinaryConvolutionNode>(
                std::move(x), std::move(s), 0.25f, c.type, BinaryConvolutionFlags{c.beta});
            node->padding_policy = PaddingPolicy::same();
            node->training_style = style;
            return node;
          };
          sides[side] =
              train_node(make, source, shape, threshold_free_image,
                         side ? Device::cuda() : Device::cpu_reference(),
                         side ? options_for(p.precision) : GraphOptions{}, p.precision, 4);
        }
        const std::string what =
            std::string(c.name) + (style == TrainingStyle::device ? " device " : " cpu ") + p.name;
        expect_same_steps(sides[1], sides[0], std::max(p.tolerance, 1e-4), what);
        if (style == TrainingStyle::device) {
          EXPECT_EQ(sides[1].downloads, 0u) << what;
        }
      }
}

// Steps large enough to flip signs of the shadow weights: the next forward on the device
// counts with the new signs (its loss is the reference's forward on the weights the device
// holds), so the packed bits follow the device's own updates.
TEST(CudaTraining, BinaryWeightBitsFollowTheDevicesOwnUpdates) {
  REQUIRE_GPU();
  const ConvolutionDescriptor d(3, 3, 40, 12);
  const ImageShape shape{3, 6, 7, 40};
  for (const Precision precision : {Precision::f32, Precision::f16}) {
    std::mt19937 init(9);
    auto sgd = std::make_shared<SgdOptimizer>(OptimizerDescriptor{2.0f});
    const std::vector<float> initial = random_floats(d.weight_count(), init, -0.3f, 0.3f);
    auto source = std::make_shared<TrainableDataSource>("binary", d, initial,
                                                        std::vector<float>(12, 0.0f), sgd);
    auto x = std::make_shared<ImageNode>("x");
    auto node =
        std::make_shared<BinaryConvolutionNode>(x, source, 0.25f, BinaryConvolutionType::xnor);
    node->padding_policy = PaddingPolicy::same();
    node->training_style = TrainingStyle::device;
    auto loss = std::make_shared<LossNode>(
        node->result_image(), LossDescriptor(LossType::mean_squared_error, ReductionType::mean));
    const auto terminals = loss->training_graph();
    Graph graph(Device::cuda(), terminals, std::vector<bool>(terminals.size(), false),
                options_for(precision));
    std::mt19937 rng(19);
    const Image targets = rounded_for(random_image({3, 6, 7, 12}, rng), precision);
    const std::uint64_t before = detail::parameter_downloads();
    for (int step = 0; step < 3; ++step)
      graph.run({threshold_free_image(shape, rng)}, {LossLabels(targets)});
    EXPECT_EQ(detail::parameter_downloads(), before) << "the steps copied weights to the host";
    const std::vector<float> now = source->current_weights(), now_bias = source->current_bias();
    std::size_t flipped = 0;
    for (std::size_t i = 0; i < now.size(); ++i) flipped += (now[i] >= 0) != (initial[i] >= 0);
    ASSERT_GT(flipped, 0u) << "no sign changed: the test shows nothing";
    const Image images = threshold_free_image(shape, rng);
    const float device_loss = graph.run({images}, {LossLabels(targets)}).loss();
    // The reference's forward on the weights the device held before that step.
    auto held = std::make_shared<ArrayDataSource>("held", d, now, now_bias);
    auto reference_node =
        std::make_shared<BinaryConvolutionNode>(x, held, 0.25f, BinaryConvolutionType::xnor);
    reference_node->padding_policy = PaddingPolicy::same();
    const std::vector<float> ys =
        run_on(Device::cpu_reference(), reference_node->result_image(), {images}).to_floats();
    const std::vector<float> ts = targets.to_floats();
    double sum = 0;
    for (std::size_t i = 0; i < ys.size(); ++i) sum += double(ys[i] - ts[i]) * (ys[i] - ts[i]);
    const double want = sum / double(ys.size());
    EXPECT_LE(std::fabs(device_loss - want) / (1 + want), precision == Precision::f32 ? 1e-4 : 2e-2)
        << "flipped " << flipped << " signs";
  }
}

// Transposed convolutions train on the device: alone (padding sizes, groups, strides) and
// sized by a trained convolution's gradient state (an autoencoder), both update styles,
// every precision, against the reference; device style copies nothing to the host.
TEST(CudaTraining, TransposedConvolutionsTrainLikeTheReferenceInEveryPrecision) {
  REQUIRE_GPU();
  struct Case {
    const char* name;
    ConvolutionDescriptor descriptor;
    PaddingPolicy padding;
    ImageShape shape;
  };
  const auto descriptor = [](int k, int in, int out, int stride, int groups) {
    ConvolutionDescriptor d(k, k, in, out);
    d.stride_x = d.stride_y = stride;
    d.groups = groups;
    return d;
  };
  PaddingPolicy valid_top_left = PaddingPolicy::valid();
  valid_top_left.alignment = PaddingAlignment::top_left;  // the adjoint pads past its window
  const Case cases[] = {
      {"same s2 g2", descriptor(3, 6, 4, 2, 2), PaddingPolicy::same(), {2, 5, 4, 6}},
      {"full s1", descriptor(4, 5, 3, 1, 1), PaddingPolicy::full(), {2, 6, 7, 5}},
      {"valid top-left s2", descriptor(3, 5, 3, 2, 1), valid_top_left, {2, 6, 7, 5}},
  };
  for (const Case& c : cases)
    for (const TrainingStyle style : {TrainingStyle::device, TrainingStyle::cpu})
      for (const PrecisionCase& p : kPrecisions) {
        Steps sides[2];
        for (int side = 0; side < 2; ++side) {
          std::mt19937 init(11);
          auto adam =
              std::make_shared<AdamOptimizer>(OptimizerDescriptor{0.01f}, 0.9, 0.999, 1e-3f);
          auto source = std::make_shared<TrainableDataSource>(
              "transpose", c.descriptor, random_floats(c.descriptor.weight_count(), init),
              random_floats(c.descriptor.output_feature_channels, init), adam);
          const auto make = [&](std::shared_ptr<ImageNode> x,
                                std::shared_ptr<TrainableDataSource> s) {
            auto node =
                std::make_shared<ConvolutionTransposeNode>(std::move(x), nullptr, std::move(s));
            node->padding_policy = c.padding;
            node->training_style = style;
            return node;
          };
          sides[side] = train_node(
              make, source, c.shape, random_pixels, side ? Device::cuda() : Device::cpu_reference(),
              side ? options_for(p.precision) : GraphOptions{}, p.precision, 4);
        }
        const std::string what =
            std::string(c.name) + (style == TrainingStyle::device ? " device " : " cpu ") + p.name;
        expect_same_steps(sides[1], sides[0], std::max(p.tolerance, 1e-4), what);
        if (style == TrainingStyle::device) {
          EXPECT_EQ(sides[1].downloads, 0u) << what;
        }
      }
  // conv 3x3 stride 2 (3 -> 6) -> sigmoid -> transpose sized by its gradient state (6 -> 3),
  // both trained on the device.
  for (const PrecisionCase& p : kPrecisions) {
    std::vector<float> losses[2], conv_weights[2], transpose_weights[2], transpose_bias[2];
    std::uint64_t downloads = 0;
    for (int side = 0; side < 2; ++side) {
      std::mt19937 init(13);
      auto sgd = std::make_shared<SgdOptimizer>(OptimizerDescriptor{0.05f}, 0.9f);
      ConvolutionDescriptor down(3, 3, 3, 6);
      down.stride_x = down.stride_y = 2;
      ConvolutionDescriptor up = down;
      up.input_feature_channels = 6;
      up.output_feature_channels = 3;
      auto conv_source = std::make_shared<TrainableDataSource>(
          "down", down, random_floats(down.weight_count(), init, -0.5f, 0.5f),
          random_floats(6, init, -0.1f, 0.1f), sgd);
      auto up_source = std::make_shared<TrainableDataSource>(
          "up", up, random_floats(up.weight_count(), init, -0.5f, 0.5f),
          random_floats(3, init, -0.1f, 0.1f), sgd);
      auto x = std::make_shared<ImageNode>("x");
      auto conv = std::make_shared<ConvolutionNode>(x, conv_source);
      auto sigmoid = std::make_shared<NeuronNode>(conv->result_image(),
                                                  NeuronDescriptor::make(NeuronType::sigmoid));
      auto transpose = std::make_shared<ConvolutionTransposeNode>(
          sigmoid->result_image(), conv->convolution_gradient_state(), up_source);
      conv->training_style = transpose->training_style = TrainingStyle::device;
      auto loss = std::make_shared<LossNode>(
          transpose->result_image(),
          LossDescriptor(LossType::mean_squared_error, ReductionType::mean));
      const auto terminals = loss->training_graph();
      Graph graph(side ? Device::cuda() : Device::cpu_reference(), terminals,
                  std::vector<bool>(terminals.size(), false),
                  side ? options_for(p.precision) : GraphOptions{});
      std::mt19937 rng(23);
      const std::uint64_t before = detail::parameter_downloads();
      for (int step = 0; step < 4; ++step) {
        const Image images = rounded_for(random_image({2, 9, 9, 3}, rng), p.precision);
        losses[side].push_back(graph.run({images}, {LossLabels(images)}).loss());
      }
      if (side) downloads = detail::parameter_downloads() - before;
      conv_weights[side] = conv_source->current_weights();
      transpose_weights[side] = up_source->current_weights();
      transpose_bias[side] = up_source->current_bias();
    }
    const double tolerance = std::max(p.tolerance, 1e-4);
    const std::string what = std::string("autoencoder ") + p.name;
    EXPECT_LE(gradient_error(losses[1], losses[0]), tolerance) << what << " losses";
    EXPECT_LE(gradient_error(conv_weights[1], conv_weights[0]), tolerance) << what << " conv";
    EXPECT_LE(gradient_error(transpose_weights[1], transpose_weights[0]), tolerance)
        << what << " transpose weights";
    EXPECT_LE(gradient_error(transpose_bias[1], transpose_bias[0]), tolerance)
        << what << " transpose bias";
    EXPECT_EQ(downloads, 0u) << what;
  }
}

TEST(CudaTraining, StepsMatchTheReferenceForEveryOptimizerAndStyle) {
  REQUIRE_GPU();
  OptimizerDescriptor clipped;
  clipped.learning_rate = 0.01f;
  clipped.apply_gradient_clipping = true;
  clipped.gradient_clip_min = -0.05f;
  clipped.gradient_clip_max = 0.05f;
  clipped.regularization_type = RegularizationType::l2;
  clipped.regularization_scale = 1e-3f;
  struct Case {
    const char* name;
    std::shared_ptr<const Optimizer> optimizer;
    TrainingStyle style;
  };
  const Case cases[] = {
      // Epsilons of 1e-3: with the default 1e-8 a gradient near zero steps by +-lr, its sign
      // decided by rounding.
      {"adam, device",
       std::make_shared<AdamOptimizer>(OptimizerDescriptor{0.01f}, 0.9, 0.999, 1e-3f),
       TrainingStyle::device},
      {"sgd nesterov, device",
       std::make_shared<SgdOptimizer>(OptimizerDescriptor{0.05f}, 0.9f, true),
       TrainingStyle::device},
      {"amsgrad clipped l2, device",
       std::make_shared<AdamOptimizer>(clipped, 0.9, 0.999, 1e-3f, true), TrainingStyle::device},
      {"rmsprop, cpu", std::make_shared<RmsPropOptimizer>(OptimizerDescriptor{0.01f}, 0.9, 1e-3f),
       TrainingStyle::cpu},
  };
  for (const Case& c : cases) {
    // Five steps: the third and later replay the recorded CUDA graph.
    const Trained want = train(NormalizedNet(c.optimizer, c.style), Device::cpu_reference(), {}, 5);
    const Trained gpu = train(NormalizedNet(c.optimizer, c.style), Device::cuda(), {}, 5);
    expect_same_training(gpu, want, 1e-4, c.name);
    GraphOptions unrecorded;
    unrecorded.cuda_graphs = false;
    const Trained launched =
        train(NormalizedNet(c.optimizer, c.style), Device::cuda(), unrecorded, 5);
    expect_same_training(launched, want, 1e-4, std::string(c.name) + " (not recorded)");
  }
}

// A checkpoint of a graph that trains on the device holds the device's weights and the
// optimizer's moments: 3 steps, save, load into a fresh network (its device step rebuilt
// from the restored state), 3 more steps equal 6 steps in one go (to 1e-5: the two graphs
// may pick different cuDNN algorithms).
TEST(CudaTraining, ACheckpointWithMomentsResumesDeviceTrainingAsIfUninterrupted) {
  REQUIRE_GPU();
  auto adam = std::make_shared<AdamOptimizer>(OptimizerDescriptor{0.01f}, 0.9, 0.999, 1e-3f);
  const auto path = std::filesystem::temp_directory_path() / "cnngraph_cuda_resume.safetensors";
  const auto steps = [](Graph& graph, std::mt19937& rng, int count) {
    for (int step = 0; step < count; ++step) {
      const auto [images, labels] = synthetic_batch(8, rng);
      graph.run({images}, {labels});
    }
  };
  NormalizedNet whole(adam, TrainingStyle::device);
  {
    Graph graph = whole.graph(Device::cuda());
    std::mt19937 rng(31);
    steps(graph, rng, 6);
  }
  NormalizedNet first(adam, TrainingStyle::device), resumed(adam, TrainingStyle::device);
  std::mt19937 rng(31);
  {
    Graph graph = first.graph(Device::cuda());
    steps(graph, rng, 3);
    graph.save_checkpoint(path);
  }
  Graph graph = resumed.graph(Device::cuda());
  graph.load_checkpoint(path);
  steps(graph, rng, 3);
  std::filesystem::remove(path);
  EXPECT_EQ(resumed.conv_source->update_count(), whole.conv_source->update_count());
  EXPECT_LE(
      gradient_error(resumed.conv_source->current_weights(), whole.conv_source->current_weights()),
      1e-5);
  EXPECT_LE(
      gradient_error(resumed.fc_source->current_weights(), whole.fc_source->current_weights()),
      1e-5);
  EXPECT_LE(
      gradient_error(resumed.bn_source->parameters().gamma, whole.bn_source->parameters().gamma),
      1e-5);
  EXPECT_LE(
      gradient_error(resumed.bn_source->parameters().mean, whole.bn_source->parameters().mean),
      1e-5);
}

TEST(CudaTraining, DeviceStyleCopiesNoParametersToTheHostUntilTheyAreRead) {
  REQUIRE_GPU();
  auto adam = std::make_shared<AdamOptimizer>(OptimizerDescriptor{0.01f});
  for (const TrainingStyle style : {TrainingStyle::device, TrainingStyle::cpu}) {
    NormalizedNet net(adam, style);
    Graph graph = net.graph(Device::cuda());
    std::mt19937 rng(5);
    const std::uint64_t before = detail::parameter_downloads();
    for (int step = 0; step < 4; ++step) {
      const auto [images, labels] = synthetic_batch(8, rng);
      graph.run({images}, {labels});
    }
    const std::uint64_t during = detail::parameter_downloads() - before;
    if (style == TrainingStyle::device) {
      EXPECT_EQ(during, 0u) << "device style copied training values to the host";
      // The count of updates is kept on the host; reading the weights fetches them.
      EXPECT_EQ(net.conv_source->update_count(), 4u);
      EXPECT_EQ(detail::parameter_downloads(), before);
      EXPECT_EQ(net.conv_source->current_weights().size(), 72u);
      EXPECT_GT(detail::parameter_downloads(), before);
    } else {
      EXPECT_EQ(during, 4u * 2 * 2) << "cpu style: weight and bias gradients of two layers";
      EXPECT_EQ(net.conv_source->update_count(), 4u);
    }
  }
}

TEST(CudaTraining, NonFiniteGradientsUpdateNothingAndLossScalingSkipsOverflowingSteps) {
  REQUIRE_GPU();
  auto sgd = std::make_shared<SgdOptimizer>(OptimizerDescriptor{0.05f}, 0.9f);
  std::mt19937 rng(8);
  {
    NormalizedNet net(sgd, TrainingStyle::device);
    Graph graph = net.graph(Device::cuda());
    auto [images, labels] = synthetic_batch(8, rng);
    graph.run({images}, {labels});
    const std::vector<float> weights = net.conv_source->current_weights();
    std::vector<float> pixels = images.to_floats();
    pixels[5] = std::nanf("");
    EXPECT_THROW(graph.run({Image::from_floats(images.shape(), pixels)}, {labels}), NumericalError);
    EXPECT_EQ(net.conv_source->current_weights(), weights);
    EXPECT_EQ(net.conv_source->update_count(), 1u);
  }
  // fp16: a scale so large that the gradients overflow halves until they fit; the skipped
  // steps change nothing; then training goes on with finite losses.
  for (const Precision precision : {Precision::f16, Precision::bf16}) {
    NormalizedNet net(sgd, TrainingStyle::device);
    GraphOptions options = options_for(precision);
    options.initial_loss_scale = std::ldexp(1.0f, 24);
    Graph graph = net.graph(Device::cuda(), options);
    const std::vector<float> initial = net.conv_source->current_weights();
    const auto [images, labels] = synthetic_batch(8, rng);
    graph.run({images}, {labels});
    const LossScaleStatus status = graph.loss_scale();
    if (precision == Precision::f16) {
      EXPECT_TRUE(status.active);
      EXPECT_EQ(status.skipped_steps, 1u);
      EXPECT_EQ(status.scale, std::ldexp(1.0f, 23));
      EXPECT_EQ(net.conv_source->current_weights(), initial);
      EXPECT_EQ(net.conv_source->update_count(), 0u);
    } else {
      EXPECT_FALSE(status.active) << "bf16 needs no loss scaling";
    }
    float first = 0, last = 0;
    for (int step = 0; step < 120; ++step) {
      const auto [x, y] = synthetic_batch(16, rng);
      const float loss = graph.run({x}, {y}).loss();
      ASSERT_TRUE(std::isfinite(loss));
      if (step < 10) first += loss / 10;
      if (step >= 110) last += loss / 10;
    }
    EXPECT_LT(last * 2, first) << "precision " << static_cast<int>(precision);
    if (precision == Precision::f16) {
      EXPECT_GT(graph.loss_scale().skipped_steps, 1u);
      EXPECT_LT(graph.loss_scale().scale, std::ldexp(1.0f, 23));
    }
  }
}

TEST(CudaBatchNormalization, TrainingStepsMatchTheReferenceForManyChannelCounts) {
  REQUIRE_GPU();
  // x -> batch norm -> mean squared error: the statistics, the normalization, gamma's and
  // beta's gradients and the input gradient's use in the update, over channel counts that
  // take the vector paths (multiples of 4 and 8) and the scalar one.
  for (const int channels : {3, 16, 64, 200}) {
    for (const PrecisionCase& p : kPrecisions) {
      if (p.precision == Precision::tf32_allowed) continue;  // no convolution here
      auto sgd = std::make_shared<SgdOptimizer>(OptimizerDescriptor{0.1f});
      std::vector<float> results[2];
      BatchNormalizationParameters trained[2];
      for (int side = 0; side < 2; ++side) {
        BatchNormalizationParameters start;
        std::mt19937 init(channels);
        start.gamma = random_floats(channels, init, 0.5f, 1.5f);
        start.beta = random_floats(channels, init, -0.5f, 0.5f);
        start.mean.assign(channels, 0.0f);
        start.variance.assign(channels, 1.0f);
        auto source = std::make_shared<BatchNormalizationDataSource>("bn", start, sgd);
        auto x = std::make_shared<ImageNode>("x");
        auto bn = std::make_shared<BatchNormalizationNode>(x, source);
        auto loss = std::make_shared<LossNode>(
            bn->result_image(), LossDescriptor(LossType::mean_squared_error, ReductionType::mean));
        const auto terminals = loss->training_graph();
        Graph graph(side ? Device::cuda() : Device::cpu_reference(), terminals,
                    std::vector<bool>(terminals.size(), false),
                    side ? options_for(p.precision) : GraphOptions{});
        std::mt19937 rng(5);
        for (int step = 0; step < 3; ++step) {
          const ImageShape shape{3, 5, 7, channels};
          // Means away from zero and unequal spreads, as activations have.
          std::vector<float> values = random_floats(shape.elements(), rng, -1.0f, 3.0f);
          const Image images = rounded_for(Image::from_floats(shape, values), p.precision);
          const Image targets = rounded_for(random_image(shape, rng), p.precision);
          results[side].push_back(graph.run({images}, {LossLabels(targets)}).loss());
        }
        trained[side] = source->parameters();
      }
      const std::string what = std::to_string(channels) + " channels " + p.name;
      const double tolerance = std::max(p.tolerance, 1e-4);
      EXPECT_LE(gradient_error(results[1], results[0]), tolerance) << what << " losses";
      EXPECT_LE(gradient_error(trained[1].gamma, trained[0].gamma), tolerance) << what;
      EXPECT_LE(gradient_error(trained[1].beta, trained[0].beta), tolerance) << what;
      EXPECT_LE(gradient_error(trained[1].mean, trained[0].mean), tolerance) << what;
      EXPECT_LE(gradient_error(trained[1].variance, trained[0].variance), tolerance) << what;
    }
  }
}

TEST(CudaTraining, ResNet18LossCurveFollowsPyTorch) {
  REQUIRE_GPU();
  const char* dir = std::getenv("CNNGRAPH_RESNET18_CURVE_DIR");
  if (!dir) {
    GTEST_SKIP() << "CNNGRAPH_RESNET18_CURVE_DIR is not set (bench/torch_resnet18_curve.py "
                    "writes PyTorch's initial weights, batches and losses there)";
  }
  const auto weights = read_weights_file(std::filesystem::path(dir) / "resnet18_curve.safetensors");
  const auto data =
      read_weights_file(std::filesystem::path(dir) / "resnet18_curve_data.safetensors");
  const std::vector<float> images = data.at("images").to_floats();
  const std::vector<float> labels = data.at("labels").to_floats();
  const std::vector<float> torch_losses = data.at("losses").to_floats();
  const int steps = static_cast<int>(torch_losses.size()), batch = 16, size = 64, classes = 10;
  ASSERT_EQ(images.size(), std::size_t(steps) * batch * size * size * 3);
  for (const Precision precision : {Precision::f32, Precision::f16}) {
    const float learning_rate = data.at("learning_rate").to_floats().at(0);
    auto sgd = std::make_shared<SgdOptimizer>(OptimizerDescriptor{learning_rate}, 0.9f);
    const models::Network net =
        models::resnet18(models::Parameters{models::tensors_from(weights), sgd}, size, classes);
    auto loss = std::make_shared<LossNode>(
        net.logits, LossDescriptor(LossType::softmax_cross_entropy, ReductionType::mean));
    const auto terminals = loss->training_graph();
    Graph graph(Device::cuda(), terminals, std::vector<bool>(terminals.size(), false),
                options_for(precision));
    const std::size_t per_batch = std::size_t(batch) * size * size * 3;
    const std::size_t labels_per_batch = std::size_t(batch) * classes;
    double worst = 0;
    std::string curve;
    for (int step = 0; step < steps; ++step) {
      const Image x = Image::from_floats(
          {batch, size, size, 3}, std::vector<float>(images.begin() + step * per_batch,
                                                     images.begin() + (step + 1) * per_batch));
      const Image y =
          Image::from_floats({batch, 1, 1, classes},
                             std::vector<float>(labels.begin() + step * labels_per_batch,
                                                labels.begin() + (step + 1) * labels_per_batch));
      const float ours = graph.run({x}, {LossLabels(y)}).loss();
      ASSERT_TRUE(std::isfinite(ours)) << "step " << step;
      const double deviation = std::fabs(ours - torch_losses[step]) / torch_losses[step];
      worst = std::max(worst, deviation);
      curve += " " + std::to_string(ours) + "/" + std::to_string(torch_losses[step]);
      if (precision == Precision::f32 && step < 3) {
        EXPECT_LE(deviation, 1e-4) << "step " << step << " (two updates included)";
      }
    }
    std::printf("resnet18 %s losses (cnngraph/torch):%s\nworst relative deviation %.2e\n",
                precision == Precision::f32 ? "f32" : "f16", curve.c_str(), worst);
    // fp32: the first steps agree to 1e-7 .. 1e-5 (the whole step is right); after that the
    // summation orders of cuDNN and PyTorch, which differ by 1e-7, grow about tenfold a step
    // (batch norm over 64 values a channel in the last stage, random labels) until the
    // curves differ by a few percent: measured on the H100, worst 5.2% in fp32 and in fp16.
    EXPECT_LE(worst, 0.1) << "precision " << static_cast<int>(precision);
  }
}

// A batch whose cpu-style update() throws changes no weight, also those the device's own
// optimizer steps (it waits for the host-side updates), and the graph goes on training.
TEST(CudaTraining, ThrowingCpuStyleUpdateLeavesTheDeviceStyleWeightsUnchanged) {
  REQUIRE_GPU();
  std::mt19937 rng(12);
  auto conv_source = RecordingSource::random(SmallNet::conv_descriptor(), rng);
  auto fc_source = TrainableDataSource::uniform("fc", SmallNet::fc_descriptor(), 0.3f, 0.05f, 9,
                                                std::make_shared<AdamOptimizer>());
  SmallNet net(conv_source, fc_source);
  net.conv->training_style = TrainingStyle::cpu;
  net.fc->training_style = TrainingStyle::device;
  Graph graph = net.training_graph(Device::cuda());
  const Batch batch = synthetic_batch(4, rng);
  graph.run({batch.images}, {batch.labels});  // one good step first (and its recording)
  const auto before = fc_source->current_weights();
  const auto steps = fc_source->update_count();
  conv_source->throw_on_update = true;
  for (int attempt = 0; attempt < 2; ++attempt) {  // recorded and replayed
    try {
      graph.run({batch.images}, {batch.labels});
      FAIL() << "expected a DataSourceError";
    } catch (const DataSourceError& e) {
      EXPECT_NE(std::string(e.what()).find("update() failed"), std::string::npos) << e.what();
    }
    EXPECT_EQ(fc_source->current_weights(), before) << "attempt " << attempt;
    EXPECT_EQ(fc_source->update_count(), steps) << "attempt " << attempt;
  }
  conv_source->throw_on_update = false;
  graph.run({batch.images}, {batch.labels});
  EXPECT_NE(fc_source->current_weights(), before);
  EXPECT_EQ(fc_source->update_count(), steps + 1);
  EXPECT_EQ(conv_source->updates, 2);
}
