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
    // Wide enough for blocks of four windows without padding taps, which the fast kernel
    // reads in the packed image instead of gathering them.
    {2, 9, 21, 64, 8, 3, 2, 1, 1, true},    // stride 2
    {1, 11, 16, 128, 9, 3, 1, 2, 1, true},  // dilation 2, two words a tap
};

}  // namespace

TEST(BinaryConvolution, FastKernelsEqualTheReferenceBitForBit) {
  // Which popcount variants this CPU has: making a kernel with the variant forced says.
  std::vector<std::string> variants;
  for (const char* variant : {"portable", "popcnt", "avx512"}) {
    ::setenv("CNNGRAPH_POPCOUNT", variant, 1);
    std::mt19937 rng(61);
    const BinaryCase& c = kBinaryCases[0];
    auto x = std::make_shared<ImageNode>("x");
    const ConvolutionDescriptor d = binary_descriptor(c);
    auto probe = binary_node(
        x, std::make_shared<ArrayDataSource>("probe", d, random_floats(d.weight_count(), rng)), c,
        BinaryConvolutionType::xnor, false, {});
    try {
      run_on(Device::cpu(), probe->result_image(),
             {integer_image({1, c.height, c.width, c.channels}, rng)});
      variants.push_back(variant);
    } catch (const InvalidArgument& e) {
      std::printf("[  SKIPPED ] popcount variant %s: %s\n", variant, e.what());
    }
  }
  ::unsetenv("CNNGRAPH_POPCOUNT");
  std::mt19937 rng(61);
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
        auto x = std::make_shared<ImageNode>("x");
        auto node = binary_node(x, weights, c, type, beta, terms);
        const Image input = integer_image({c.batch, c.height, c.width, c.channels}, rng);
        // The reference once, every popcount variant against it (binary_weights counts no
        // bits: one variant is enough).
        const auto expected =
            run_on(Device::cpu_reference(), node->result_image(), {input}).to_floats();
        for (const std::string& variant : variants) {
          if (type == BinaryConvolutionType::binary_weights && variant != variants.back()) continue;
          SCOPED_TRACE(variant + " " + describe_case(c, type, beta, with_terms));
          ::setenv("CNNGRAPH_POPCOUNT", variant.c_str(), 1);
          const auto actual = run_on(Device::cpu(), node->result_image(), {input}).to_floats();
          ::unsetenv("CNNGRAPH_POPCOUNT");
          if (type != BinaryConvolutionType::binary_weights && !beta && !with_terms) {
            EXPECT_EQ(actual, expected);  // integer-valued results: exact
          } else {
            EXPECT_LE(max_relative_error(actual, expected), 1e-5);  // float scale terms round
          }
        }
      }
    }
  }
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

// Bit-packed images between binary layers (BitPacking, graph/compile.cpp): on the CPU
// backend an image that one binary convolution writes and only binary convolutions read is
// stored as bits. The results equal the same graph with every image in floats
// (CNNGRAPH_BIT_PACKING=off) exactly, and the reference's exactly where they are
// integer-valued.
namespace {

struct PackedLayer {
  BinaryConvolutionType type;
  int kernel, stride, dilation, groups, outputs;
  bool same_padding, beta, input_terms;
};

// Runs `result` on the CPU with and without bit packing; returns the packed run's result
// and checks describe() shows `packed_steps` producers of bits.
Image run_packed_and_unpacked(const std::shared_ptr<ImageNode>& result, const Image& input,
                              int packed_steps, GraphOptions options = {}) {
  Graph graph(Device::cpu(), result, true, options);
  const Image packed = graph.run({input})[0];
  const std::string description = graph.describe();
  int bits_out = 0;
  for (std::size_t at = description.find("bits_out"); at != std::string::npos;
       at = description.find("bits_out", at + 1))
    ++bits_out;
  EXPECT_EQ(bits_out, packed_steps) << description;
  ::setenv("CNNGRAPH_BIT_PACKING", "off", 1);
  Graph unpacked_graph(Device::cpu(), result, true, options);
  const Image unpacked = unpacked_graph.run({input})[0];
  ::unsetenv("CNNGRAPH_BIT_PACKING");
  EXPECT_EQ(unpacked_graph.describe().find("bits_out"), std::string::npos);
  EXPECT_EQ(packed.to_floats(), unpacked.to_floats());
  return packed;
}

}  // namespace

TEST(BitPackedImages, ConsecutiveBinaryLayersHandOverBitsAndEqualTheReference) {
  std::mt19937 rng(83);
  const auto pick = [&](std::initializer_list<int> values) {
    std::uniform_int_distribution<std::size_t> at(0, values.size() - 1);
    return *(values.begin() + at(rng));
  };
  for (int trial = 0; trial < 16; ++trial) {
    const int batch = pick({1, 2, 3}), height = pick({5, 7, 9}), width = pick({4, 6, 11});
    const int channels = pick({3, 64, 65, 130});
    const int layer_count = pick({2, 3});
    std::vector<PackedLayer> layers;
    int in = channels;
    for (int l = 0; l < layer_count; ++l) {
      PackedLayer layer{};
      layer.type = pick({0, 1}) ? BinaryConvolutionType::xnor : BinaryConvolutionType::and_;
      layer.kernel = pick({1, 3});
      layer.stride = l == 0 ? pick({1, 2}) : 1;
      layer.dilation = layer.kernel == 3 ? pick({1, 2}) : 1;
      layer.outputs = pick({6, 66, 72});
      const int groups = pick({1, 2});
      layer.groups = in % groups == 0 && layer.outputs % groups == 0 ? groups : 1;
      // Valid 3x3 windows only in the first layer, where every source is big enough.
      layer.same_padding =
          layer.kernel == 3 && (l > 0 || layer.dilation > 1) ? true : pick({0, 1}) == 1;
      // Beta scaling and input terms only where a producer packs for this layer.
      layer.beta = l > 0 && pick({0, 0, 1});
      layer.input_terms = l > 0 && pick({0, 1});
      layers.push_back(layer);
      in = layer.outputs;
    }
    std::string name = "n" + std::to_string(batch) + " " + std::to_string(height) + "x" +
                       std::to_string(width) + "x" + std::to_string(channels);
    auto x = std::make_shared<ImageNode>("x");
    std::shared_ptr<ImageNode> image = x;
    in = channels;
    bool exact = true;
    for (const PackedLayer& layer : layers) {
      ConvolutionDescriptor d(layer.kernel, layer.kernel, in, layer.outputs);
      d.stride_x = d.stride_y = layer.stride;
      d.dilation_x = d.dilation_y = layer.dilation;
      d.groups = layer.groups;
      // Integer biases keep every sum, and so the reference's, exact.
      std::vector<float> bias(layer.outputs);
      for (float& b : bias) b = static_cast<float>(pick({-2, 0, 1}));
      auto weights = std::make_shared<ArrayDataSource>("w", d, random_floats(d.weight_count(), rng),
                                                       std::move(bias));
      BinaryConvolutionTerms terms;
      if (layer.input_terms) {
        terms.input_bias = std::vector<float>(in, 0.5f);
        terms.input_scale = std::vector<float>(in, -2.0f);
      }
      auto node = std::make_shared<BinaryConvolutionNode>(
          image, weights, 1.0f, layer.type, BinaryConvolutionFlags{layer.beta}, terms);
      if (layer.same_padding) node->padding_policy = PaddingPolicy::same();
      exact = exact && !layer.beta;
      name += " -> " + std::string(layer.type == BinaryConvolutionType::xnor ? "xnor" : "and") +
              " k" + std::to_string(layer.kernel) + " s" + std::to_string(layer.stride) + " d" +
              std::to_string(layer.dilation) + " g" + std::to_string(layer.groups) + " o" +
              std::to_string(layer.outputs) + (layer.same_padding ? " same" : " valid") +
              (layer.beta ? " beta" : "") + (layer.input_terms ? " terms" : "");
      image = node->result_image();
      in = layer.outputs;
    }
    SCOPED_TRACE(name);
    const Image input = integer_image({batch, height, width, channels}, rng);
    GraphOptions options;
    if (trial % 4 == 3) options.precision = Precision::f16;
    const auto packed = run_packed_and_unpacked(image, input, layer_count - 1, options).to_floats();
    const auto reference = run_on(Device::cpu_reference(), image, {input}, options).to_floats();
    if (exact) {
      EXPECT_EQ(packed, reference);
    } else {
      EXPECT_LE(max_relative_error(packed, reference), 1e-5);
    }
  }
}

TEST(BitPackedImages, ABatchNormBetweenBinaryLayersFoldsIntoTheProducersOutputTerms) {
  std::mt19937 rng(89);
  const ConvolutionDescriptor d1(3, 3, 16, 70), d2(3, 3, 70, 8);
  auto x = std::make_shared<ImageNode>("x");
  auto first = std::make_shared<BinaryConvolutionNode>(
      x, std::make_shared<ArrayDataSource>("w1", d1, random_floats(d1.weight_count(), rng)), 1.0f,
      BinaryConvolutionType::xnor);
  first->label = "first";
  BatchNormalizationParameters p;
  // Means half-way between integers keep every normalized value well away from 0, where
  // the folded and the unfused arithmetic could round to different signs.
  for (int c = 0; c < 70; ++c) {
    p.mean.push_back(static_cast<float>(c % 5) - 2.5f);
    p.variance.push_back(1.0f + static_cast<float>(c % 3));
    p.gamma.push_back(c % 2 ? -1.5f : 0.75f);
    p.beta.push_back(0.0f);
  }
  auto bn = std::make_shared<BatchNormalizationNode>(first->result_image(), p);
  bn->label = "bn";
  auto second = std::make_shared<BinaryConvolutionNode>(
      bn->result_image(),
      std::make_shared<ArrayDataSource>("w2", d2, random_floats(d2.weight_count(), rng)), 1.0f,
      BinaryConvolutionType::xnor);
  for (auto* node : {first.get(), second.get()}) node->padding_policy = PaddingPolicy::same();
  const Image input = integer_image({2, 8, 8, 16}, rng);
  const Image packed = run_packed_and_unpacked(second->result_image(), input, 1);
  Graph graph(Device::cpu(), second->result_image());
  graph.run({input});
  EXPECT_NE(graph.describe().find("'first' + batch_normalization 'bn'"), std::string::npos)
      << graph.describe();
  // The reference folds the batch norm alike; its unfused arithmetic agrees in sign.
  EXPECT_EQ(packed.to_floats(),
            run_on(Device::cpu_reference(), second->result_image(), {input}).to_floats());
}

TEST(BitPackedImages, AnImageAnythingElseReadsStaysInFloats) {
  std::mt19937 rng(97);
  const ConvolutionDescriptor d(3, 3, 8, 8);
  const auto source = [&] {
    return std::make_shared<ArrayDataSource>("w", d, random_floats(d.weight_count(), rng));
  };
  const Image input = integer_image({1, 6, 6, 8}, rng);
  auto x = std::make_shared<ImageNode>("x");
  auto first =
      std::make_shared<BinaryConvolutionNode>(x, source(), 1.0f, BinaryConvolutionType::xnor);
  auto second = std::make_shared<BinaryConvolutionNode>(first->result_image(), source(), 1.0f,
                                                        BinaryConvolutionType::xnor);
  first->padding_policy = second->padding_policy = PaddingPolicy::same();
  // A relu also reads the first layer's result.
  auto relu =
      std::make_shared<NeuronNode>(first->result_image(), NeuronDescriptor::make(NeuronType::relu));
  auto sum = std::make_shared<AdditionNode>(second->result_image(), relu->result_image());
  run_packed_and_unpacked(sum->result_image(), input, 0);
  // Two binary readers that binarize differently (xnor: >= 0; and: > 0).
  auto other = std::make_shared<BinaryConvolutionNode>(first->result_image(), source(), 1.0f,
                                                       BinaryConvolutionType::and_);
  other->padding_policy = PaddingPolicy::same();
  auto both = std::make_shared<AdditionNode>(second->result_image(), other->result_image());
  run_packed_and_unpacked(both->result_image(), input, 0);
  // A result of the graph is handed to the caller in floats.
  Graph graph(Device::cpu(), {first->result_image(), second->result_image()}, {true, true});
  graph.run({input});
  EXPECT_EQ(graph.describe().find("bits_out"), std::string::npos);
}
