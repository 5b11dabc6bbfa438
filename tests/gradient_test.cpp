// Gradients: every gradient node against central finite differences on the reference
// backend (f32 images, double accumulation; tolerances in gradient_support.hpp), and the
// oneDNN convolution gradients against the reference on random shapes.
#include <cmath>

#include "gradient_support.hpp"

using namespace cnngraph;
using namespace cnngraph::testing;

namespace {

using Sources = std::vector<std::shared_ptr<ImageNode>>;

// Everything a convolution's gradient computes, on one device.
struct ConvolutionGradients {
  std::vector<float> diff_src, diff_weights, diff_bias;
};

ConvolutionGradients convolution_gradients(
    Device device, const std::shared_ptr<RecordingSource>& source,
    const std::function<std::shared_ptr<ConvolutionNode>(std::shared_ptr<ImageNode>)>& make,
    const Image& x, const Image& dy) {
  auto x_node = std::make_shared<ImageNode>("x");
  auto conv = make(x_node);
  conv->training_style = TrainingStyle::cpu;
  auto dy_node = std::make_shared<ImageNode>("dy");
  auto gradient = conv->gradient_filter(dy_node);
  Graph graph(device, gradient->result_image());
  source->updates = 0;
  const Image dx = run_named(graph, {{"x", x}, {"dy", dy}});
  EXPECT_EQ(source->updates, 1);
  return {dx.to_floats(), source->last_gradient.weights_gradient,
          source->last_gradient.bias_gradient};
}

// Checks input, weight and bias gradients of a convolution against finite differences.
void check_convolution(const ConvolutionDescriptor& d, const ImageShape& x_shape,
                       const std::function<std::shared_ptr<ConvolutionNode>(
                           std::shared_ptr<ImageNode>, std::shared_ptr<RecordingSource>)>& make,
                       unsigned seed, double tolerance = 5e-3) {
  std::mt19937 rng(seed);
  auto source = RecordingSource::random(d, rng);
  const auto build = [&](std::shared_ptr<ImageNode> x) { return make(std::move(x), source); };
  const Image x = random_image(x_shape, rng);
  auto x_node = std::make_shared<ImageNode>("x");
  Graph forward(Device::cpu_reference(), build(x_node)->result_image());
  const Image y = forward.run({x})[0];
  const Image dy = random_image(y.shape(), rng);
  const auto analytic = convolution_gradients(Device::cpu_reference(), source, build, x, dy);
  const auto objective = [&](const Image& input) {
    const auto out = forward.run({input})[0].to_floats(), g = dy.to_floats();
    double sum = 0.0;
    for (std::size_t i = 0; i < out.size(); ++i) sum += static_cast<double>(out[i]) * g[i];
    return sum;
  };
  const float h = 1e-2f;
  std::uniform_int_distribution<int> coin(0, 1 << 30);
  const auto central = [&](std::vector<float>& values, std::size_t k, const auto& evaluate) {
    return central_difference(values, k, h, evaluate);
  };
  std::vector<float> xv = x.to_floats();
  for (int s = 0; s < 12; ++s) {
    const std::size_t k = coin(rng) % xv.size();
    const double numeric =
        central(xv, k, [&] { return objective(Image::from_floats(x_shape, xv)); });
    EXPECT_NEAR(analytic.diff_src[k], numeric, tolerance * (1 + std::fabs(numeric)))
        << "diff_src " << k;
  }
  const auto reloaded = [&] {
    forward.reload_from_data_sources();
    return objective(x);
  };
  for (int s = 0; s < 12; ++s) {
    const std::size_t k = coin(rng) % source->mutable_weights().size();
    const double numeric = central(source->mutable_weights(), k, reloaded);
    EXPECT_NEAR(analytic.diff_weights[k], numeric, tolerance * (1 + std::fabs(numeric)))
        << "diff_weights " << k;
  }
  for (std::size_t k = 0; k < source->mutable_bias().size() && k < 6; ++k) {
    const double numeric = central(source->mutable_bias(), k, reloaded);
    EXPECT_NEAR(analytic.diff_bias[k], numeric, tolerance * (1 + std::fabs(numeric)))
        << "diff_bias " << k;
  }
}

std::shared_ptr<ConvolutionNode> plain_convolution(std::shared_ptr<ImageNode> x,
                                                   std::shared_ptr<RecordingSource> s) {
  return std::make_shared<ConvolutionNode>(std::move(x), std::move(s));
}

}  // namespace

TEST(ConvolutionGradient, MatchesFiniteDifferencesOnRandomShapes) {
  for (const ConvCase& c : random_convolution_cases(10, 21)) {
    SCOPED_TRACE(c.name());
    const ConvolutionDescriptor d = c.descriptor();
    check_convolution(
        d, {c.batch, c.height, c.width, c.in_channels},
        [&](std::shared_ptr<ImageNode> x, std::shared_ptr<RecordingSource> s) {
          auto node = plain_convolution(std::move(x), std::move(s));
          node->padding_policy = c.padding;
          return node;
        },
        static_cast<unsigned>(c.height * 131 + c.width));
  }
}

TEST(ConvolutionGradient, FusedNeuronSubPixelAndBatchNormAreDifferentiated) {
  ConvolutionDescriptor d(3, 3, 3, 8);
  d.set_neuron(NeuronType::tanh, 1.0f, 0.7f);
  check_convolution(d, {2, 6, 5, 3}, plain_convolution, 1);
  ConvolutionDescriptor sub(3, 3, 2, 8);
  sub.sub_pixel_scale_factor = 2;
  check_convolution(sub, {1, 4, 5, 2}, plain_convolution, 2);
  sub.sub_pixel_order = SubPixelOrder::pixel_shuffle;
  check_convolution(sub, {1, 4, 5, 2}, plain_convolution, 5);
  ConvolutionDescriptor bn(3, 3, 2, 4);
  bn.set_batch_normalization({0.1f, -0.2f, 0.3f, 0.0f}, {1.0f, 2.0f, 0.5f, 1.5f},
                             {1.5f, 0.5f, -1.0f, 2.0f}, {0.0f, 0.1f, 0.2f, 0.3f}, 1e-5f);
  check_convolution(bn, {2, 5, 5, 2}, plain_convolution, 3);
  check_convolution(ConvolutionDescriptor::depthwise(3, 3, 4, 2), {2, 7, 6, 4}, plain_convolution,
                    4);
}

TEST(ConvolutionGradient, FullyConnectedMatchesFiniteDifferences) {
  check_convolution(
      ConvolutionDescriptor(3, 2, 4, 5), {3, 2, 3, 4},
      [](std::shared_ptr<ImageNode> x, std::shared_ptr<RecordingSource> s) {
        return std::make_shared<FullyConnectedNode>(std::move(x), std::move(s));
      },
      5);
}

TEST(ConvolutionGradient, OnednnMatchesReferenceOnRandomShapes) {
  for (const ConvCase& c : random_convolution_cases(25, 33)) {
    SCOPED_TRACE(c.name());
    std::mt19937 rng(c.height * 7 + c.width);
    const ConvolutionDescriptor d = c.descriptor();
    auto source = RecordingSource::random(d, rng);
    const auto make = [&](std::shared_ptr<ImageNode> x) {
      auto node = std::make_shared<ConvolutionNode>(std::move(x), source);
      node->padding_policy = c.padding;
      return node;
    };
    const Image x = random_image({c.batch, c.height, c.width, c.in_channels}, rng);
    auto probe = make(std::make_shared<ImageNode>("x"));
    const Image y = run_on(Device::cpu_reference(), probe->result_image(), {x});
    const Image dy = random_image(y.shape(), rng);
    const auto expected = convolution_gradients(Device::cpu_reference(), source, make, x, dy);
    const auto actual = convolution_gradients(Device::cpu(), source, make, x, dy);
    EXPECT_LE(max_relative_error(actual.diff_src, expected.diff_src), 1e-4);
    EXPECT_LE(max_relative_error(actual.diff_weights, expected.diff_weights), 1e-4);
    EXPECT_LE(max_relative_error(actual.diff_bias, expected.diff_bias), 1e-4);
  }
}

TEST(NeuronGradient, EveryTypeMatchesFiniteDifferences) {
  // Inputs away from the kinks (|x| >= 0.2) and inside each function's domain.
  const std::vector<NeuronDescriptor> neurons = {
      NeuronDescriptor::make(NeuronType::none),
      NeuronDescriptor::make(NeuronType::relu, 0.1f),
      NeuronDescriptor::make(NeuronType::linear, 2.0f, 0.5f),
      NeuronDescriptor::make(NeuronType::sigmoid),
      NeuronDescriptor::make(NeuronType::hard_sigmoid, 0.2f, 0.5f),
      NeuronDescriptor::make(NeuronType::tanh, 1.5f, 0.5f),
      NeuronDescriptor::make(NeuronType::absolute),
      NeuronDescriptor::make(NeuronType::soft_plus, 1.0f, 2.0f),
      NeuronDescriptor::make(NeuronType::soft_sign),
      NeuronDescriptor::make(NeuronType::elu, 1.0f),
      NeuronDescriptor::make_prelu({0.1f, 0.2f, 0.3f}),
      NeuronDescriptor::make(NeuronType::relu_n, 0.1f, 6.0f),
      NeuronDescriptor::make(NeuronType::power, 1.0f, 3.0f, 2.0f),
      NeuronDescriptor::make(NeuronType::exponential, 1.0f, 0.0f, 2.0f),
      NeuronDescriptor::make(NeuronType::logarithm, 1.0f, 3.0f, 0.0f),
      NeuronDescriptor::make(NeuronType::gelu),
      NeuronDescriptor::make(NeuronType::silu),
  };
  for (const NeuronDescriptor& neuron : neurons) {
    SCOPED_TRACE(to_string(neuron.type));
    check_input_gradients([&](Sources x) { return std::make_shared<NeuronNode>(x[0], neuron); },
                          {{2, 3, 4, 3}}, 11, 0.2f, 1.5f);
    check_input_gradients([&](Sources x) { return std::make_shared<NeuronNode>(x[0], neuron); },
                          {{2, 3, 4, 3}}, 12, -1.5f, -0.2f);
  }
}

TEST(PoolingGradient, MaxAverageAndGlobalMatchFiniteDifferences) {
  for (const PoolingType type : {PoolingType::max, PoolingType::average}) {
    check_input_gradients(
        [&](Sources x) { return std::make_shared<PoolingNode>(x[0], type, 3, 2, 2, 1); },
        {{2, 7, 6, 3}}, 13);
    check_input_gradients(
        [&](Sources x) {
          auto node = std::make_shared<PoolingNode>(x[0], type, 2, 2, 2, 2);
          node->padding_policy = PaddingPolicy::valid();
          return node;
        },
        {{1, 5, 5, 2}}, 14);
  }
  check_input_gradients([](Sources x) { return std::make_shared<GlobalAveragePoolingNode>(x[0]); },
                        {{2, 4, 3, 5}}, 15);
  check_input_gradients([](Sources x) { return std::make_shared<GlobalMaxPoolingNode>(x[0]); },
                        {{3, 5, 3, 4}}, 16);
}

TEST(PoolingGradient, AverageCountingPaddingMatchesFiniteDifferences) {
  for (const bool declared_end : {false, true}) {
    SCOPED_TRACE(declared_end ? "counted end 0, 1" : "counted to the last window");
    check_input_gradients(
        [&](Sources x) {
          auto node = std::make_shared<AveragePoolingNode>(x[0], 3, 2, 2, 2);
          node->set_counts_padding(true);
          if (declared_end) node->set_counted_padding_end(0, 1);
          return node;
        },
        {{2, 7, 6, 3}}, 17);
  }
}

TEST(PaddingGradient, CropMatchesFiniteDifferences) {
  check_input_gradients(
      [](Sources x) {
        return std::make_shared<PaddingNode>(
            x[0], PaddingAmounts{.top = 1, .bottom = 2, .left = 3, .right = 1, .channels_after = 2},
            0.5f);
      },
      {{2, 4, 3, 3}}, 18);
}

TEST(PoolingGradient, GlobalMaxGoesToTheFirstMaximumOnEveryCpuBackend) {
  // Channel 0 holds its maximum 5 twice (pixels 1 and 3): the gradient goes to pixel 1 only.
  const Image x = Image::from_floats({1, 2, 2, 2}, std::vector<float>{1, 0, 5, 2, 3, 7, 5, -1});
  const Image dy = Image::from_floats({1, 1, 1, 2}, std::vector<float>{10, 20});
  auto src = std::make_shared<ImageNode>("x");
  auto dy_node = std::make_shared<ImageNode>("dy");
  auto pool = std::make_shared<GlobalMaxPoolingNode>(src);
  const auto gradient = pool->gradient_filter(dy_node)->result_image();
  for (Device device : {Device::cpu_reference(), Device::cpu()}) {
    SCOPED_TRACE(device.name());
    EXPECT_EQ(run_on(device, pool->result_image(), {x}).to_floats(), (std::vector<float>{5, 7}));
    Graph graph(device, gradient);
    EXPECT_EQ(run_named(graph, {{"x", x}, {"dy", dy}}).to_floats(),
              (std::vector<float>{0, 0, 10, 0, 0, 20, 0, 0}));
  }
}

TEST(OtherGradients, SoftMaxAdditionConcatenationReshapeMatchFiniteDifferences) {
  check_input_gradients([](Sources x) { return std::make_shared<SoftMaxNode>(x[0]); },
                        {{2, 2, 3, 5}}, 16, -2.0f, 2.0f);
  check_input_gradients([](Sources x) { return std::make_shared<LogSoftMaxNode>(x[0]); },
                        {{2, 2, 3, 5}}, 17, -2.0f, 2.0f);
  check_input_gradients([](Sources x) { return std::make_shared<AdditionNode>(x[0], x[1]); },
                        {{2, 3, 3, 4}, {2, 3, 3, 4}}, 18);
  check_input_gradients([](Sources x) { return std::make_shared<ConcatenationNode>(x); },
                        {{2, 3, 2, 2}, {2, 3, 2, 5}, {2, 3, 2, 1}}, 19);
  check_input_gradients([](Sources x) { return std::make_shared<ReshapeNode>(x[0], 1, 1, 24); },
                        {{2, 2, 3, 4}}, 20);
}

TEST(DropoutGradient, AppliesTheForwardMaskOfTheSameBatch) {
  std::mt19937 rng(3);
  auto x = std::make_shared<ImageNode>("x");
  auto dy = std::make_shared<ImageNode>("dy");
  auto dropout = std::make_shared<DropoutNode>(x, 0.6f, 9);
  const ImageShape shape{4, 5, 5, 8};
  std::vector<float> xv = random_floats(shape.elements(), rng, 0.5f, 1.0f);
  const Image input = Image::from_floats(shape, xv), gradient = random_image(shape, rng);
  Graph forward(Device::cpu(), dropout->result_image());
  Graph backward(Device::cpu(), dropout->gradient_filter(dy)->result_image());
  const auto y = forward.run({input})[0].to_floats();
  const auto dx = run_named(backward, {{"x", input}, {"dy", gradient}}).to_floats();
  const auto g = gradient.to_floats();
  int kept = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const float factor = y[i] / xv[i];  // 0 or 1 / keep
    EXPECT_NEAR(dx[i], g[i] * factor, 1e-5);
    kept += y[i] != 0.0f;
  }
  EXPECT_NEAR(static_cast<double>(kept) / y.size(), 0.6, 0.06);
  // The next batch draws a new mask.
  EXPECT_NE(forward.run({input})[0].to_floats(), y);
}

TEST(LossGradient, EveryTypeAndReductionMatchesFiniteDifferences) {
  for (const LossCase& c : loss_cases()) {
    for (const ReductionType reduction :
         {ReductionType::sum, ReductionType::mean, ReductionType::sum_by_non_zero_weights}) {
      if (c.type == LossType::cosine_distance && reduction != ReductionType::sum) continue;
      SCOPED_TRACE(to_string(c.type) + " reduction " + std::to_string(static_cast<int>(reduction)));
      std::mt19937 rng(static_cast<unsigned>(c.type) * 10 + static_cast<unsigned>(reduction));
      const ImageShape shape{3, 2, 1, 4};
      auto predictions = std::make_shared<ImageNode>("y");
      auto loss = std::make_shared<LossNode>(predictions, loss_descriptor_for(c, reduction));
      Graph graph(Device::cpu_reference(), loss->result_image());
      const LossCaseLabels case_labels = loss_labels_for(c, shape, rng);
      const std::vector<float>& labels = case_labels.labels;
      const LossLabels& loss_labels = case_labels.loss_labels;
      std::vector<float> y = random_floats(shape.elements(), rng, c.lo, c.hi);
      const auto value = [&] {
        return graph.run({Image::from_floats(shape, y)}, {loss_labels}).loss();
      };
      const auto gradient = graph.run({Image::from_floats(shape, y)}, {loss_labels})[0].to_floats();
      const float h = 1e-3f;
      for (std::size_t k = 0; k < y.size(); ++k) {
        if (c.type == LossType::mean_absolute_error && std::fabs(y[k] - labels[k]) < 2 * h)
          continue;
        const double numeric = central_difference(y, k, h, value);
        EXPECT_NEAR(gradient[k], numeric, 3e-3 * (1 + std::fabs(numeric))) << "element " << k;
      }
    }
  }
}

// The oneDNN backend's own gradient loops (neuron, pooling, dropout) against the reference,
// on shapes large enough to be split over threads and small odd ones.
namespace {

// The largest difference of dx of `node` (source handle "x") for random dy, oneDNN backend
// against reference.
double onednn_against_reference(const std::shared_ptr<FilterNode>& node, const Image& x,
                                std::mt19937& rng) {
  const Image y = run_on(Device::cpu_reference(), node->result_image(), {x});
  const Image dy = random_image(y.shape(), rng);
  auto dy_node = std::make_shared<ImageNode>("dy");
  const auto gradient = node->gradient_filter(dy_node)->result_image();
  Graph reference(Device::cpu_reference(), gradient), fast(Device::cpu(), gradient);
  return max_relative_error(run_named(fast, {{"x", x}, {"dy", dy}}),
                            run_named(reference, {{"x", x}, {"dy", dy}}));
}

}  // namespace

TEST(TrainingOps, OnednnNeuronGradientsMatchReference) {
  std::mt19937 rng(41);
  for (const NeuronDescriptor& neuron :
       {NeuronDescriptor::make(NeuronType::relu), NeuronDescriptor::make(NeuronType::relu, 0.1f),
        NeuronDescriptor::make(NeuronType::tanh, 1.5f, 0.5f),
        NeuronDescriptor::make_prelu({0.1f, 0.2f, 0.3f})}) {
    for (const ImageShape shape : {ImageShape{3, 5, 7, 3}, ImageShape{8, 30, 31, 3}}) {
      SCOPED_TRACE(to_string(neuron.type) + " " + std::to_string(shape.elements()));
      auto x = std::make_shared<ImageNode>("x");
      const Image input = random_image(shape, rng);
      EXPECT_LE(onednn_against_reference(std::make_shared<NeuronNode>(x, neuron), input, rng),
                1e-6);
    }
  }
}

TEST(TrainingOps, OnednnPoolingGradientsMatchReferenceOnRandomShapes) {
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> size(1, 19), channels(1, 40), kernel(1, 4), stride(1, 3),
      batch(1, 9);
  for (int trial = 0; trial < 40; ++trial) {
    const PoolingType type = trial % 2 ? PoolingType::max : PoolingType::average;
    const int kw = kernel(rng), kh = kernel(rng), sx = stride(rng), sy = stride(rng);
    const ImageShape shape{batch(rng), std::max(size(rng), kh), std::max(size(rng), kw),
                           channels(rng)};
    SCOPED_TRACE("trial " + std::to_string(trial) + ": " + std::to_string(shape.batch) + "x" +
                 std::to_string(shape.height) + "x" + std::to_string(shape.width) + "x" +
                 std::to_string(shape.channels) + " kernel " + std::to_string(kw) + "x" +
                 std::to_string(kh) + " stride " + std::to_string(sx) + "x" + std::to_string(sy));
    auto x = std::make_shared<ImageNode>("x");
    auto node = std::make_shared<PoolingNode>(x, type, kw, kh, sx, sy);
    if (trial % 3 == 0) node->padding_policy = PaddingPolicy::valid();
    if (type == PoolingType::average && trial % 4 == 0) node->set_counts_padding(true);
    if (type == PoolingType::average && trial % 8 == 0) node->set_counted_padding_end(0, 0);
    // Small integers make ties, which must go to the same (first) maximum as the reference.
    std::vector<float> values(shape.elements());
    std::uniform_int_distribution<int> level(-3, 3);
    for (float& v : values) v = static_cast<float>(level(rng));
    EXPECT_LE(onednn_against_reference(node, Image::from_floats(shape, values), rng), 1e-6);
  }
}

TEST(TrainingOps, OnednnDropoutMatchesReference) {
  std::mt19937 rng(43);
  for (const ImageShape shape : {ImageShape{2, 3, 3, 5}, ImageShape{16, 16, 16, 16}}) {
    auto x = std::make_shared<ImageNode>("x");
    auto dropout = std::make_shared<DropoutNode>(x, 0.7f, 5);
    const Image input = random_image(shape, rng);
    EXPECT_EQ(run_on(Device::cpu(), dropout->result_image(), {input}).to_floats(),
              run_on(Device::cpu_reference(), dropout->result_image(), {input}).to_floats());
    EXPECT_LE(onednn_against_reference(dropout, input, rng), 1e-6);
  }
}

TEST(ConvolutionGradient, InputGradientOfAConvolutionTrainedNowhereRunsWithoutItsForwardNode) {
  // The gradient node alone in a graph, its convolution untrained: the graph must still load
  // the convolution's weights (it once failed with a bare map::at).
  std::mt19937 rng(91);
  const ConvolutionDescriptor d(3, 3, 4, 6);
  auto source = RecordingSource::random(d, rng);
  const Image x = random_image({2, 7, 5, 4}, rng);
  const Image dy = random_image({2, 7, 5, 6}, rng);
  const auto dx_with = [&](TrainingStyle style, Device device) {
    auto x_node = std::make_shared<ImageNode>("x");
    auto conv = plain_convolution(x_node, source);
    conv->training_style = style;
    auto dy_node = std::make_shared<ImageNode>("dy");
    Graph graph(device, conv->gradient_filter(dy_node)->result_image());
    return run_named(graph, {{"x", x}, {"dy", dy}});
  };
  const Image trained = dx_with(TrainingStyle::cpu, Device::cpu_reference());
  EXPECT_LE(max_relative_error(dx_with(TrainingStyle::none, Device::cpu_reference()), trained),
            1e-6);
  EXPECT_LE(max_relative_error(dx_with(TrainingStyle::none, Device::cpu()), trained), 1e-5);
}
