// Binary convolution (src/ops/binary_convolution.cpp): every fast popcount kernel against the
// reference bit for bit, a hand example, bit-packed weights, bad input; training with the
// straight-through estimator (finite differences, a hand example, a network that learns). The
// CPU and CUDA backends against the reference, forward and the CPU gradients: the binconv cases
// of backend_ops_test.
#include <cmath>

#include "gradient_support.hpp"

using namespace cnngraph;
using namespace cnngraph::testing;

namespace {

struct BinaryCase {
  int batch, height, width, channels, outputs, kernel, stride, dilation, groups;
  bool same_padding;
};

std::string describe_case(const BinaryCase& c, BinaryConvolutionType type, bool beta, bool terms) {
  return "n" + std::to_string(c.batch) + " " + std::to_string(c.height) + "x" +
         std::to_string(c.width) + "x" + std::to_string(c.channels) + "->" +
         std::to_string(c.outputs) + " k" + std::to_string(c.kernel) + " s" +
         std::to_string(c.stride) + " d" + std::to_string(c.dilation) + " g" +
         std::to_string(c.groups) + (c.same_padding ? " same" : " valid") + " type " +
         std::to_string(static_cast<int>(type)) + (beta ? " beta" : "") + (terms ? " terms" : "");
}

// Integer-valued inputs in [-3, 3] (zeros included: the sign rules at 0 matter).
Image integer_image(ImageShape shape, std::mt19937& rng) {
  std::uniform_int_distribution<int> level(-3, 3);
  std::vector<float> values(shape.elements());
  for (float& v : values) v = static_cast<float>(level(rng));
  return Image::from_floats(shape, values);
}

std::shared_ptr<BinaryConvolutionNode> binary_node(std::shared_ptr<ImageNode> x,
                                                   std::shared_ptr<ConvolutionDataSource> weights,
                                                   const BinaryCase& c, BinaryConvolutionType type,
                                                   bool beta, BinaryConvolutionTerms terms) {
  auto node = std::make_shared<BinaryConvolutionNode>(
      std::move(x), std::move(weights), 0.5f, type, BinaryConvolutionFlags{beta}, std::move(terms));
  if (c.same_padding) node->padding_policy = PaddingPolicy::same();
  return node;
}

ConvolutionDescriptor binary_descriptor(const BinaryCase& c) {
  ConvolutionDescriptor d(c.kernel, c.kernel, c.channels, c.outputs);
  d.stride_x = d.stride_y = c.stride;
  d.dilation_x = d.dilation_y = c.dilation;
  d.groups = c.groups;
  return d;
}

// Packs float weights (OHWI) by sign into MPS's 32-bit words.
std::vector<std::uint32_t> pack_weights(const std::vector<float>& w,
                                        const ConvolutionDescriptor& d) {
  const int per_group = d.input_feature_channels / d.groups;
  const int words = (per_group + 31) / 32;
  const std::size_t taps =
      static_cast<std::size_t>(d.output_feature_channels) * d.kernel_height * d.kernel_width;
  std::vector<std::uint32_t> packed(taps * words, 0);
  for (std::size_t t = 0; t < taps; ++t)
    for (int c = 0; c < per_group; ++c)
      if (w[t * per_group + c] >= 0.0f) packed[t * words + c / 32] |= 1u << (c % 32);
  return packed;
}

const BinaryCase kBinaryCases[] = {
    {2, 9, 8, 64, 8, 3, 1, 1, 1, true},     // one full word, border correction
    {1, 7, 7, 65, 5, 3, 2, 1, 1, false},    // a word and one bit, odd output count
    {3, 6, 11, 3, 4, 1, 1, 1, 1, false},    // 1x1, three channels
    {2, 10, 9, 130, 6, 3, 1, 2, 2, true},   // groups, dilation, 65 channels per group
    {1, 12, 12, 256, 9, 5, 2, 1, 1, true},  // several words, 5x5
};

}  // namespace

TEST(BinaryConvolution, FastKernelsEqualTheReferenceBitForBit) {
  std::vector<std::string> variants = {"portable", "popcnt", "avx512"};
  for (const std::string& variant : variants) {
    ::setenv("CNNGRAPH_POPCOUNT", variant.c_str(), 1);
    std::mt19937 rng(61);
    {  // Is this variant available on this CPU? Making its kernel says.
      const BinaryCase& c = kBinaryCases[0];
      auto x = std::make_shared<ImageNode>("x");
      const ConvolutionDescriptor d = binary_descriptor(c);
      auto probe = binary_node(
          x, std::make_shared<ArrayDataSource>("probe", d, random_floats(d.weight_count(), rng)), c,
          BinaryConvolutionType::xnor, false, {});
      try {
        run_on(Device::cpu(), probe->result_image(),
               {integer_image({1, c.height, c.width, c.channels}, rng)});
      } catch (const InvalidArgument& e) {
        std::printf("[  SKIPPED ] popcount variant %s: %s\n", variant.c_str(), e.what());
        continue;
      }
    }
    for (const BinaryCase& c : kBinaryCases) {
      const ConvolutionDescriptor d = binary_descriptor(c);
      auto weights = std::make_shared<ArrayDataSource>(
          "binary", d, random_floats(d.weight_count(), rng), random_floats(c.outputs, rng));
      for (const BinaryConvolutionType type :
           {BinaryConvolutionType::xnor, BinaryConvolutionType::and_,
            BinaryConvolutionType::binary_weights}) {
        for (int variant_terms = 0; variant_terms < 4; ++variant_terms) {
          const bool beta = variant_terms & 1, with_terms = variant_terms & 2;
          BinaryConvolutionTerms terms;
          if (with_terms) {
            terms.input_bias = std::vector<float>(c.channels, 0.5f);
            terms.input_scale = std::vector<float>(c.channels, -2.0f);
            terms.output_bias = random_floats(c.outputs, rng);
            terms.output_scale = random_floats(c.outputs, rng, 0.5f, 2.0f);
          }
          SCOPED_TRACE(variant + " " + describe_case(c, type, beta, with_terms));
          auto x = std::make_shared<ImageNode>("x");
          auto node = binary_node(x, weights, c, type, beta, terms);
          const Image input = integer_image({c.batch, c.height, c.width, c.channels}, rng);
          const auto actual = run_on(Device::cpu(), node->result_image(), {input}).to_floats();
          const auto expected =
              run_on(Device::cpu_reference(), node->result_image(), {input}).to_floats();
          if (type != BinaryConvolutionType::binary_weights && !beta && !with_terms) {
            EXPECT_EQ(actual, expected);  // integer-valued results: exact
          } else {
            EXPECT_LE(max_relative_error(actual, expected), 1e-5);  // float scale terms round
          }
        }
      }
    }
  }
  ::unsetenv("CNNGRAPH_POPCOUNT");
}

TEST(BinaryConvolution, ReferenceFollowsTheFormulaOnAHandExample) {
  // One pixel, 3 channels, 1x1 kernel, two outputs. x = (1, -2, 0); w0 = (+, -, +),
  // w1 = (-, -, -). xnor: x bits (+, -, +): w0 all agree -> 3; w1 one agrees -> -1.
  // and: x bits (1, 0, 0): w0 bits (1, 0, 1) -> 1; w1 -> 0.
  // binary_weights: w0 . x = 1 + 2 + 0 = 3; w1 . x = -1 + 2 - 0 = 1.
  const ConvolutionDescriptor d(1, 1, 3, 2);
  auto weights = std::make_shared<ArrayDataSource>(
      "hand", d, std::vector<float>{0.3f, -0.1f, 0.0f, -1.0f, -2.0f, -0.5f},
      std::vector<float>{0.0f, 10.0f});
  const Image input = Image::from_floats({1, 1, 1, 3}, std::vector<float>{1.0f, -2.0f, 0.0f});
  const std::pair<BinaryConvolutionType, std::vector<float>> cases[] = {
      {BinaryConvolutionType::xnor, {3.0f, -1.0f}},
      {BinaryConvolutionType::and_, {1.0f, 0.0f}},
      {BinaryConvolutionType::binary_weights, {3.0f, 1.0f}}};
  for (const auto& [type, sums] : cases) {
    for (const Device device : {Device::cpu_reference(), Device::cpu()}) {
      auto x = std::make_shared<ImageNode>("x");
      auto node = std::make_shared<BinaryConvolutionNode>(x, weights, 2.0f, type);
      const auto y = run_on(device, node->result_image(), {input}).to_floats();
      EXPECT_FLOAT_EQ(y[0], 2.0f * sums[0]) << device.name();
      EXPECT_FLOAT_EQ(y[1], 2.0f * sums[1] + 10.0f) << device.name();
    }
  }
}

TEST(BinaryConvolution, BitPackedWeightsEqualFloatWeightsAndFullyConnectedWorks) {
  std::mt19937 rng(62);
  const BinaryCase c{2, 5, 5, 70, 6, 3, 1, 1, 1, true};
  const ConvolutionDescriptor d = binary_descriptor(c);
  const auto w = random_floats(d.weight_count(), rng);
  auto floats = std::make_shared<ArrayDataSource>("f", d, w);
  auto packed = ArrayDataSource::bit_packed("p", d, pack_weights(w, d));
  const Image input = integer_image({c.batch, c.height, c.width, c.channels}, rng);
  for (const Device device : {Device::cpu_reference(), Device::cpu()}) {
    auto x = std::make_shared<ImageNode>("x");
    const auto a = run_on(
        device, binary_node(x, floats, c, BinaryConvolutionType::xnor, false, {})->result_image(),
        {input});
    const auto b = run_on(
        device, binary_node(x, packed, c, BinaryConvolutionType::xnor, false, {})->result_image(),
        {input});
    EXPECT_EQ(a.to_floats(), b.to_floats()) << device.name();
  }
  // Fully connected over a 5x5x70 source.
  const ConvolutionDescriptor fc_d(5, 5, 70, 4);
  auto fc_weights =
      std::make_shared<ArrayDataSource>("fc", fc_d, random_floats(fc_d.weight_count(), rng));
  auto x = std::make_shared<ImageNode>("x");
  auto fc =
      std::make_shared<BinaryFullyConnectedNode>(x, fc_weights, 1.0f, BinaryConvolutionType::xnor);
  const Image y = run_on(Device::cpu(), fc->result_image(), {input});
  EXPECT_EQ(y.shape(), (ImageShape{2, 1, 1, 4}));
  EXPECT_EQ(y.to_floats(),
            run_on(Device::cpu_reference(), fc->result_image(), {input}).to_floats());
}

TEST(BinaryConvolution, BadInputIsAClearError) {
  const ConvolutionDescriptor d(3, 3, 40, 2);
  // 2 outputs x 9 taps x 2 words = 36 words.
  EXPECT_THROW(ArrayDataSource::bit_packed("p", d, std::vector<std::uint32_t>(35)),
               InvalidArgument);
  EXPECT_NO_THROW(ArrayDataSource::bit_packed("p", d, std::vector<std::uint32_t>(36)));
  auto packed = ArrayDataSource::bit_packed("p", d, std::vector<std::uint32_t>(36, 0x5u));
  std::mt19937 rng(63);
  const Image input = random_image({1, 5, 5, 40}, rng);
  auto x = std::make_shared<ImageNode>("x");
  // Bit-packed weights in an ordinary convolution.
  auto conv = std::make_shared<ConvolutionNode>(x, packed);
  EXPECT_THROW(run_on(Device::cpu(), conv->result_image(), {input}), DataSourceError);
  // Terms of the wrong length name the node.
  auto node = std::make_shared<BinaryConvolutionNode>(
      x, packed, 1.0f, BinaryConvolutionType::xnor, BinaryConvolutionFlags{},
      BinaryConvolutionTerms{{1.0f, 2.0f}, {}, {}, {}});
  node->label = "bin1";
  try {
    run_on(Device::cpu(), node->result_image(), {input});
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("bin1"), std::string::npos) << e.what();
  }
  // A fused neuron in the descriptor is refused.
  ConvolutionDescriptor with_neuron = d;
  with_neuron.set_neuron(NeuronType::relu);
  auto neuron_source =
      std::make_shared<ArrayDataSource>("n", with_neuron, random_floats(d.weight_count(), rng));
  auto neuron_node =
      std::make_shared<BinaryConvolutionNode>(x, neuron_source, 1.0f, BinaryConvolutionType::xnor);
  EXPECT_THROW(run_on(Device::cpu(), neuron_node->result_image(), {input}), InvalidArgument);
  EXPECT_THROW(BinaryConvolutionNode(x, packed, NAN, BinaryConvolutionType::xnor), InvalidArgument);
  // The source has the wrong channel count.
  EXPECT_THROW(run_on(Device::cpu(), node->result_image(), {random_image({1, 5, 5, 3}, rng)}),
               ShapeError);
}

// Binary convolution training (straight-through estimator).
TEST(BinaryConvolutionTraining, BinaryWeightsInputGradientMatchesFiniteDifferences) {
  // With binary_weights the result is linear in the input: the gradient is exact.
  std::mt19937 rng(81);
  const ConvolutionDescriptor d(3, 3, 5, 4);
  auto weights = std::make_shared<ArrayDataSource>("b", d, random_floats(d.weight_count(), rng));
  check_input_gradients(
      [&](std::vector<std::shared_ptr<ImageNode>> x) {
        auto node = std::make_shared<BinaryConvolutionNode>(
            x[0], weights, 0.7f, BinaryConvolutionType::binary_weights, BinaryConvolutionFlags{},
            BinaryConvolutionTerms{
                {}, std::vector<float>(5, 1.5f), {}, std::vector<float>(4, 2.0f)});
        node->padding_policy = PaddingPolicy::same();
        node->training_style = TrainingStyle::none;
        return node;
      },
      {{2, 5, 6, 5}}, 82);
}

TEST(BinaryConvolutionTraining, XnorGradientIsTheStraightThroughEstimator) {
  // 1x1 kernel, one pixel: dx[c] = sum_o dy[o] * s * sign(w[o][c]) * [|x[c]| <= 1],
  // dw[o][c] = dy[o] * s * sign(x[c]) * [|w[o][c]| <= 1], dbias[o] = dy[o].
  const ConvolutionDescriptor d(1, 1, 3, 2);
  const std::vector<float> w = {0.5f, -0.2f, 1.5f, -0.7f, 0.1f, -3.0f};
  auto source = std::make_shared<RecordingSource>(d, w, std::vector<float>{0.0f, 0.0f});
  const std::vector<float> x = {0.3f, -2.0f, -0.4f}, dy = {1.0f, -2.0f};
  const float s = 0.5f;
  auto x_node = std::make_shared<ImageNode>("x");
  auto node =
      std::make_shared<BinaryConvolutionNode>(x_node, source, s, BinaryConvolutionType::xnor);
  node->training_style = TrainingStyle::cpu;
  auto dy_node = std::make_shared<ImageNode>("dy");
  for (const Device device : {Device::cpu_reference(), Device::cpu()}) {
    Graph graph(device, node->gradient_filter(dy_node)->result_image());
    const auto dx = run_named(graph, {{"x", Image::from_floats({1, 1, 1, 3}, x)},
                                      {"dy", Image::from_floats({1, 1, 1, 2}, dy)}})
                        .to_floats();
    const auto sign = [](float v) { return v >= 0.0f ? 1.0f : -1.0f; };
    for (int c = 0; c < 3; ++c) {
      float expected = 0.0f;
      for (int o = 0; o < 2; ++o) expected += dy[o] * s * sign(w[o * 3 + c]);
      if (std::fabs(x[c]) > 1.0f) expected = 0.0f;
      EXPECT_FLOAT_EQ(dx[c], expected) << device.name() << " dx " << c;
    }
    const ConvolutionGradientState& g = source->last_gradient;
    for (int o = 0; o < 2; ++o) {
      EXPECT_FLOAT_EQ(g.bias_gradient[o], dy[o]);
      for (int c = 0; c < 3; ++c) {
        const float expected = std::fabs(w[o * 3 + c]) <= 1.0f ? dy[o] * s * sign(x[c]) : 0.0f;
        EXPECT_FLOAT_EQ(g.weights_gradient[o * 3 + c], expected)
            << device.name() << " dw " << o << c;
      }
    }
  }
}

TEST(BinaryConvolutionTraining, AnXnorNetworkLearnsAndTheFastKernelFollowsTheShadowWeights) {
  auto adam = std::make_shared<AdamOptimizer>(OptimizerDescriptor{0.01f});
  const ConvolutionDescriptor bd(3, 3, 2, 16), fd(6, 6, 16, 3);
  auto binary_source = TrainableDataSource::uniform("binary", bd, 0.5f, 0.0f, 5, adam);
  auto fc_source = TrainableDataSource::uniform("fc", fd, 0.1f, 0.0f, 6, adam);
  const auto build = [&](std::shared_ptr<ImageNode> input) {
    auto binary = std::make_shared<BinaryConvolutionNode>(input, binary_source, 1.0f,
                                                          BinaryConvolutionType::binary_weights);
    binary->padding_policy = PaddingPolicy::same();
    auto fc = std::make_shared<FullyConnectedNode>(binary->result_image(), fc_source);
    return fc->result_image();
  };
  auto input = std::make_shared<ImageNode>("image");
  auto loss = std::make_shared<LossNode>(
      build(input), LossDescriptor(LossType::softmax_cross_entropy, ReductionType::mean));
  const auto terminals = loss->training_graph();
  Graph training(Device::cpu(), terminals, std::vector<bool>(terminals.size(), false));
  std::mt19937 rng(83);
  // Synthetic data: the class is the quadrant of the brightest channel-0 pixel.
  double first = 0, last = 0;
  for (int step = 0; step < 150; ++step) {
    std::vector<float> pixels = random_floats(16 * 6 * 6 * 2, rng, 0.0f, 0.3f);
    std::vector<int> classes(16);
    for (int i = 0; i < 16; ++i) {
      classes[i] = static_cast<int>(rng() % 3);
      const int y = classes[i] == 1 ? 4 : 1, x = classes[i] == 2 ? 4 : 1;
      pixels[((i * 6 + y) * 6 + x) * 2] = 1.0f;
    }
    const float value = training
                            .run({Image::from_floats({16, 6, 6, 2}, pixels)},
                                 {LossLabels::from_classes(classes, 3)})
                            .loss();
    if (step < 10) first += value / 10;
    if (step >= 140) last += value / 10;
  }
  EXPECT_LT(last * 3, first) << "first 10 steps " << first << ", last 10 " << last;
  // Inference on the trained shadow weights: the fast kernels agree with the reference.
  for (const BinaryConvolutionType type :
       {BinaryConvolutionType::xnor, BinaryConvolutionType::binary_weights}) {
    auto x = std::make_shared<ImageNode>("x");
    auto node = std::make_shared<BinaryConvolutionNode>(x, binary_source, 1.0f, type);
    const Image images = integer_image({4, 6, 6, 2}, rng);
    EXPECT_LE(max_relative_error(
                  run_on(Device::cpu(), node->result_image(), {images}).to_floats(),
                  run_on(Device::cpu_reference(), node->result_image(), {images}).to_floats()),
              1e-5);
  }
}

TEST(BinaryConvolutionTraining, BitPackedWeightsCannotBeTrained) {
  const ConvolutionDescriptor d(1, 1, 3, 2);
  auto packed = ArrayDataSource::bit_packed("p", d, std::vector<std::uint32_t>(2, 1u));
  auto x = std::make_shared<ImageNode>("x");
  auto node = std::make_shared<BinaryConvolutionNode>(x, packed, 1.0f, BinaryConvolutionType::xnor);
  auto dy = std::make_shared<ImageNode>("dy");
  Graph graph(Device::cpu(), node->gradient_filter(dy)->result_image());
  std::mt19937 rng(84);
  EXPECT_THROW(run_named(graph, {{"x", random_image({1, 2, 2, 3}, rng)},
                                 {"dy", random_image({1, 2, 2, 2}, rng)}}),
               Unsupported);
}
