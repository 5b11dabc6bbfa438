// The convolution's family: cross-channel normalization (forward against the formula
// evaluated here, oneDNN-backend loops against the reference, gradients against finite
// differences, bad parameters).
#include <cmath>

#include "gradient_support.hpp"

using namespace cnngraph;
using namespace cnngraph::testing;

namespace {

// MPS's formula, y = x / (delta + alpha / N * sum of x^2 over the channel window)^beta,
// written out independently of the library's window helper.
std::vector<float> normalization_by_formula(const Image& image, int N, float alpha, float beta,
                                            float delta) {
  const auto x = image.to_floats();
  const int D = image.shape().channels;
  std::vector<float> y(x.size());
  for (std::size_t p = 0; p < x.size() / D; ++p) {
    for (int k = 0; k < D; ++k) {
      double sum = 0.0;
      const int lo = std::max(0, k - static_cast<int>(std::floor(N / 2.0)));
      const int hi = std::min(D - 1, k + static_cast<int>(std::floor((N - 1) / 2.0)));
      for (int q = lo; q <= hi; ++q) sum += double(x[p * D + q]) * x[p * D + q];
      y[p * D + k] = static_cast<float>(x[p * D + k] / std::pow(delta + alpha / N * sum, beta));
    }
  }
  return y;
}

std::shared_ptr<CrossChannelNormalizationNode> normalization(std::shared_ptr<ImageNode> x, int N,
                                                             float alpha, float beta, float delta) {
  auto node = std::make_shared<CrossChannelNormalizationNode>(std::move(x), N);
  node->alpha = alpha;
  node->beta = beta;
  node->delta = delta;
  return node;
}

struct NormalizationCase {
  ImageShape shape;
  int N;
  float alpha, beta, delta;
};

const NormalizationCase kCases[] = {
    {{2, 3, 4, 7}, 5, 1.0f, 5.0f, 1.0f},     // MPS defaults
    {{3, 5, 2, 16}, 4, 0.5f, 0.75f, 2.0f},   // even window
    {{1, 2, 3, 3}, 9, 2.0f, 1.5f, 1.0f},     // window wider than the channels
    {{2, 1, 1, 1}, 1, 1.0f, 0.5f, 1.0f},     // one channel
    {{4, 7, 9, 33}, 5, 1e-4f, 0.75f, 1.0f},  // PyTorch's defaults, odd sizes
    {{8, 20, 20, 12}, 3, 0.3f, 2.0f, 0.5f},  // large enough to split over threads
};

}  // namespace

TEST(CrossChannelNormalization, MatchesTheFormulaOnBothBackends) {
  std::mt19937 rng(51);
  for (const NormalizationCase& c : kCases) {
    SCOPED_TRACE("N " + std::to_string(c.N) + ", " + std::to_string(c.shape.channels) +
                 " channels");
    auto x = std::make_shared<ImageNode>("x");
    auto node = normalization(x, c.N, c.alpha, c.beta, c.delta);
    const Image input = random_image(c.shape, rng);
    const auto expected = normalization_by_formula(input, c.N, c.alpha, c.beta, c.delta);
    EXPECT_LE(
        max_relative_error(
            run_on(Device::cpu_reference(), node->result_image(), {input}).to_floats(), expected),
        1e-6);
    EXPECT_LE(max_relative_error(run_on(Device::cpu(), node->result_image(), {input}).to_floats(),
                                 expected),
              1e-5);
  }
}

TEST(CrossChannelNormalization, GradientMatchesFiniteDifferencesAndOnednnMatchesReference) {
  for (const NormalizationCase& c : kCases) {
    SCOPED_TRACE("N " + std::to_string(c.N) + ", " + std::to_string(c.shape.channels) +
                 " channels");
    if (c.shape.elements() < 2000) {
      check_input_gradients(
          [&](std::vector<std::shared_ptr<ImageNode>> x) {
            return normalization(x[0], c.N, c.alpha, c.beta, c.delta);
          },
          {c.shape}, 52);
    }
    std::mt19937 rng(53);
    auto x = std::make_shared<ImageNode>("x");
    auto dy = std::make_shared<ImageNode>("dy");
    auto node = normalization(x, c.N, c.alpha, c.beta, c.delta);
    const auto gradient = node->gradient_filter(dy)->result_image();
    Graph reference(Device::cpu_reference(), gradient), fast(Device::cpu(), gradient);
    const std::map<std::string, Image> inputs{{"x", random_image(c.shape, rng)},
                                              {"dy", random_image(c.shape, rng)}};
    EXPECT_LE(max_relative_error(run_named(fast, inputs).to_floats(),
                                 run_named(reference, inputs).to_floats()),
              1e-5);
  }
}

TEST(CrossChannelNormalization, BadParametersAreClearErrors) {
  auto x = std::make_shared<ImageNode>("x");
  EXPECT_THROW(CrossChannelNormalizationNode(x, 0), InvalidArgument);
  EXPECT_THROW(CrossChannelNormalizationNode(x, -3), InvalidArgument);
  std::mt19937 rng(54);
  const Image input = random_image({1, 2, 2, 4}, rng);
  for (const auto& [alpha, beta, delta] :
       {std::tuple{-1.0f, 5.0f, 1.0f}, std::tuple{1.0f, NAN, 1.0f}, std::tuple{1.0f, 5.0f, 0.0f}}) {
    auto node = normalization(x, 3, alpha, beta, delta);
    node->label = "lrn1";
    try {
      run_on(Device::cpu(), node->result_image(), {input});
      FAIL() << "expected InvalidArgument";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("lrn1"), std::string::npos) << e.what();
    }
  }
}

// Binary convolution.
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

// Transposed convolution.
namespace {

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double sum = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) sum += double(a[i]) * b[i];
  return sum;
}

// conv_w[i][r][s][o] = w[o][r][s][i] per group: the forward convolution a transpose undoes.
std::vector<float> adjoint_of(const std::vector<float>& w, const ConvolutionDescriptor& t) {
  const int G = t.groups, Og = t.output_feature_channels / G, Ig = t.input_feature_channels / G;
  const int taps = t.kernel_width * t.kernel_height;
  std::vector<float> out(w.size());
  for (int g = 0; g < G; ++g)
    for (int o = 0; o < Og; ++o)
      for (int k = 0; k < taps; ++k)
        for (int i = 0; i < Ig; ++i)
          out[((g * Ig + i) * taps + k) * Og + o] = w[((g * Og + o) * taps + k) * Ig + i];
  return out;
}

}  // namespace

TEST(ConvolutionTranspose, IsTheAdjointAndTakesTheForwardSourceSizeFromTheGradientState) {
  std::mt19937 rng(71);
  int checked = 0;
  for (const ConvCase& c : random_convolution_cases(40, 72)) {
    SCOPED_TRACE(c.name());
    // The forward convolution: c.in_channels -> c.out_channels.
    const ConvolutionDescriptor fd = c.descriptor();
    const auto fw = random_floats(fd.weight_count(), rng);
    auto forward_source = std::make_shared<ArrayDataSource>("forward", fd, fw);
    // The transpose reads out_channels and makes in_channels, with the adjoint's weights.
    ConvolutionDescriptor td = fd;
    td.input_feature_channels = fd.output_feature_channels;
    td.output_feature_channels = fd.input_feature_channels;
    auto transpose_source = std::make_shared<ArrayDataSource>("transpose", td, adjoint_of(fw, fd));
    // adjoint_of(w, fd) maps forward weights to transpose weights: w_t[o=i][k][j] = w[j][k][i].
    auto x_node = std::make_shared<ImageNode>("x");
    auto conv = std::make_shared<ConvolutionNode>(x_node, forward_source);
    conv->padding_policy = c.padding;
    auto y_node = std::make_shared<ImageNode>("y");
    auto transpose = std::make_shared<ConvolutionTransposeNode>(
        y_node, conv->convolution_gradient_state(), transpose_source);
    const Image x = random_image({c.batch, c.height, c.width, c.in_channels}, rng);
    Image conv_x;
    try {
      conv_x = run_on(Device::cpu_reference(), conv->result_image(), {x});
    } catch (const ShapeError&) {
      continue;  // an empty forward result: nothing to transpose
    }
    const Image y = random_image(conv_x.shape(), rng);
    for (const Device device : {Device::cpu_reference(), Device::cpu()}) {
      Graph graph(device, transpose->result_image());
      const Image t = run_named(graph, {{"x", x}, {"y", y}});
      ASSERT_EQ(t.shape(), x.shape()) << device.name();
      const double lhs = dot(conv_x.to_floats(), y.to_floats());
      const double rhs = dot(x.to_floats(), t.to_floats());
      EXPECT_NEAR(lhs, rhs, 1e-4 * (1 + std::fabs(lhs))) << device.name();
    }
    ++checked;
  }
  EXPECT_GE(checked, 30);
}

TEST(ConvolutionTranspose, WithoutAStateFollowsTheReverseFilterRule) {
  std::mt19937 rng(73);
  for (const auto& [policy, style] :
       {std::pair{PaddingPolicy::valid(), -1}, std::pair{PaddingPolicy::same(), 0},
        std::pair{PaddingPolicy::full(), 1}}) {
    for (const int stride : {1, 2, 3}) {
      for (const int kernel : {1, 3, 4}) {
        ConvolutionDescriptor td(kernel, kernel, 5, 3);
        td.stride_x = td.stride_y = stride;
        auto source = std::make_shared<ArrayDataSource>(
            "t", td, random_floats(td.weight_count(), rng), random_floats(3, rng));
        auto y_node = std::make_shared<ImageNode>("y");
        auto transpose = std::make_shared<ConvolutionTransposeNode>(y_node, nullptr, source);
        transpose->padding_policy = policy;
        const int in = 6;
        const int expected = (in - 1) * stride + 1 + style * (kernel - 1);
        const Image y = random_image({2, in, in + 1, 5}, rng);
        const Image t = run_on(Device::cpu(), transpose->result_image(), {y});
        EXPECT_EQ(t.shape(),
                  (ImageShape{2, expected, (in + 1 - 1) * stride + 1 + style * (kernel - 1), 3}))
            << "style " << style << " stride " << stride << " kernel " << kernel;
        // oneDNN against the reference (bias included).
        EXPECT_LE(max_relative_error(
                      t.to_floats(),
                      run_on(Device::cpu_reference(), transpose->result_image(), {y}).to_floats()),
                  1e-5);
      }
    }
  }
}

TEST(ConvolutionTranspose, InputGradientMatchesFiniteDifferences) {
  std::mt19937 rng(74);
  ConvolutionDescriptor td(3, 3, 4, 2);
  td.stride_x = td.stride_y = 2;
  auto source = std::make_shared<ArrayDataSource>("t", td, random_floats(td.weight_count(), rng),
                                                  random_floats(2, rng));
  check_input_gradients(
      [&](std::vector<std::shared_ptr<ImageNode>> x) {
        auto node = std::make_shared<ConvolutionTransposeNode>(x[0], nullptr, source);
        node->training_style = TrainingStyle::none;  // an ArrayDataSource is not trainable
        return node;
      },
      {{2, 3, 4, 4}}, 75);
}

TEST(ConvolutionTranspose, BadInputIsAClearError) {
  std::mt19937 rng(76);
  const ConvolutionDescriptor td(3, 3, 4, 2);
  auto source = std::make_shared<ArrayDataSource>("t", td, random_floats(td.weight_count(), rng));
  auto y = std::make_shared<ImageNode>("y");
  EXPECT_THROW(ConvolutionTransposeNode(y, nullptr, nullptr), InvalidArgument);
  auto transpose = std::make_shared<ConvolutionTransposeNode>(y, nullptr, source);
  transpose->label = "up1";
  try {
    run_on(Device::cpu(), transpose->result_image(), {random_image({1, 3, 3, 5}, rng)});
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("up1"), std::string::npos) << e.what();
  }
  // A gradient state whose convolution has another stride.
  ConvolutionDescriptor fd(3, 3, 2, 4);
  fd.stride_x = fd.stride_y = 2;
  auto x = std::make_shared<ImageNode>("x");
  auto conv = std::make_shared<ConvolutionNode>(
      x, std::make_shared<ArrayDataSource>("f", fd, random_floats(fd.weight_count(), rng)));
  auto sized = std::make_shared<ConvolutionTransposeNode>(
      conv->result_image(), conv->convolution_gradient_state(), source);
  EXPECT_THROW(run_on(Device::cpu(), sized->result_image(), {random_image({1, 6, 6, 2}, rng)}),
               InvalidArgument);
}

TEST(ConvolutionTranspose, WeightAndBiasGradientsMatchFiniteDifferencesOnBothBackends) {
  std::mt19937 rng(77);
  for (const int groups : {1, 2}) {
    ConvolutionDescriptor td(3, 2, 4, 6);  // reads 4 channels, makes 6
    td.stride_x = 2;
    td.groups = groups;
    auto source = RecordingSource::random(td, rng);
    const auto build = [&](std::shared_ptr<ImageNode> y) {
      auto node = std::make_shared<ConvolutionTransposeNode>(std::move(y), nullptr, source);
      node->training_style = TrainingStyle::cpu;
      return node;
    };
    const Image y = random_image({2, 3, 4, 4}, rng);
    auto probe = build(std::make_shared<ImageNode>("y"));
    const Image z = run_on(Device::cpu_reference(), probe->result_image(), {y});
    const Image dz = random_image(z.shape(), rng);
    const auto objective = [&] {
      auto node = build(std::make_shared<ImageNode>("y"));
      return dot(run_on(Device::cpu_reference(), node->result_image(), {y}).to_floats(),
                 dz.to_floats());
    };
    for (const Device device : {Device::cpu_reference(), Device::cpu()}) {
      SCOPED_TRACE(device.name() + " groups " + std::to_string(groups));
      auto node = build(std::make_shared<ImageNode>("y"));
      auto dz_node = std::make_shared<ImageNode>("dz");
      Graph graph(device, node->gradient_filter(dz_node)->result_image());
      source->updates = 0;
      run_named(graph, {{"y", y}, {"dz", dz}});
      ASSERT_EQ(source->updates, 1);
      const ConvolutionGradientState g = source->last_gradient;
      for (std::size_t k = 0; k < g.weights_gradient.size(); k += 5) {
        const double numeric = central_difference(source->mutable_weights(), k, 1e-2f, objective);
        EXPECT_NEAR(g.weights_gradient[k], numeric, 5e-3 * (1 + std::fabs(numeric))) << "w" << k;
      }
      for (std::size_t k = 0; k < g.bias_gradient.size(); ++k) {
        const double numeric = central_difference(source->mutable_bias(), k, 1e-2f, objective);
        EXPECT_NEAR(g.bias_gradient[k], numeric, 5e-3 * (1 + std::fabs(numeric))) << "b" << k;
      }
    }
  }
}

TEST(ConvolutionTranspose, AnAutoencoderTrains) {
  // conv 3x3 stride 2 (3 -> 8) -> relu -> transpose sized by the conv's gradient state
  // (8 -> 3), mean squared error against the input itself.
  auto adam = std::make_shared<AdamOptimizer>(OptimizerDescriptor{0.01f});
  ConvolutionDescriptor encoder_d(3, 3, 3, 8), decoder_d(3, 3, 8, 3);
  encoder_d.stride_x = encoder_d.stride_y = decoder_d.stride_x = decoder_d.stride_y = 2;
  auto encoder_source = TrainableDataSource::uniform("encoder", encoder_d, 0.3f, 0.0f, 1, adam);
  auto decoder_source = TrainableDataSource::uniform("decoder", decoder_d, 0.3f, 0.0f, 2, adam);
  auto input = std::make_shared<ImageNode>("image");
  auto encoder = std::make_shared<ConvolutionNode>(input, encoder_source);
  auto relu = std::make_shared<NeuronNode>(encoder->result_image(),
                                           NeuronDescriptor::make(NeuronType::relu));
  auto decoder = std::make_shared<ConvolutionTransposeNode>(
      relu->result_image(), encoder->convolution_gradient_state(), decoder_source);
  auto loss = std::make_shared<LossNode>(
      decoder->result_image(), LossDescriptor(LossType::mean_squared_error, ReductionType::mean));
  const auto terminals = loss->training_graph();
  Graph training(Device::cpu(), terminals, std::vector<bool>(terminals.size(), false));
  std::mt19937 rng(78);
  std::uniform_real_distribution<float> phase(0.0f, 6.3f);
  double first = 0, last = 0;
  for (int step = 0; step < 200; ++step) {
    // Smooth images (sums of two waves): an autoencoder can learn to reproduce them.
    const ImageShape shape{8, 9, 9, 3};  // odd size: the state resolves the ambiguity
    std::vector<float> pixels(shape.elements());
    for (int n = 0; n < shape.batch; ++n) {
      const float a = phase(rng), b = phase(rng);
      for (int h = 0; h < 9; ++h)
        for (int w = 0; w < 9; ++w)
          for (int c = 0; c < 3; ++c)
            pixels[((n * 9 + h) * 9 + w) * 3 + c] =
                0.5f * std::sin(a + 0.4f * h + c) + 0.5f * std::cos(b + 0.3f * w);
    }
    const Image images = Image::from_floats(shape, pixels);
    const float value = training.run({images}, {LossLabels(images)}).loss();
    if (step < 10) first += value / 10;
    if (step >= 190) last += value / 10;
  }
  EXPECT_LT(last * 4, first) << "first 10 steps " << first << ", last 10 " << last;
  EXPECT_EQ(decoder_source->update_count(), 200u);
  // The checkpoint holds the transpose's weights too, in its own (transpose) layout.
  const auto path = std::filesystem::temp_directory_path() / "autoencoder.safetensors";
  training.save_checkpoint(path);
  FileDataSource file(path, decoder_d, "decoder.");
  ASSERT_TRUE(file.load());
  const auto* w = static_cast<const float*>(file.weights());
  EXPECT_EQ(std::vector<float>(w, w + decoder_d.weight_count()), decoder_source->current_weights());
  std::filesystem::remove(path);
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

// Spatial normalization (MPSCNNSpatialNormalization).
TEST(SpatialNormalization, MatchesTheFormulaAndFiniteDifferences) {
  std::mt19937 rng(91);
  struct Case {
    ImageShape shape;
    int kw, kh;
    float alpha, beta, delta;
  };
  for (const Case& c :
       {Case{{2, 5, 6, 3}, 3, 3, 1.0f, 5.0f, 1.0f}, Case{{1, 4, 7, 2}, 2, 4, 0.5f, 0.75f, 2.0f},
        Case{{3, 3, 3, 1}, 5, 1, 2.0f, 1.5f, 1.0f}}) {
    SCOPED_TRACE(std::to_string(c.kw) + "x" + std::to_string(c.kh));
    const auto make = [&](std::shared_ptr<ImageNode> x) {
      auto node = std::make_shared<SpatialNormalizationNode>(std::move(x), c.kw, c.kh);
      node->alpha = c.alpha;
      node->beta = c.beta;
      node->delta = c.delta;
      return node;
    };
    const Image input = random_image(c.shape, rng);
    const auto x = input.to_floats();
    const ImageShape& s = c.shape;
    std::vector<float> expected(x.size());
    for (int n = 0; n < s.batch; ++n)
      for (int h = 0; h < s.height; ++h)
        for (int w = 0; w < s.width; ++w)
          for (int ch = 0; ch < s.channels; ++ch) {
            double sum = 0.0;
            for (int yy = std::max(0, h - c.kh / 2);
                 yy <= std::min(s.height - 1, h + (c.kh - 1) / 2); ++yy)
              for (int xx = std::max(0, w - c.kw / 2);
                   xx <= std::min(s.width - 1, w + (c.kw - 1) / 2); ++xx) {
                const float v = x[((n * s.height + yy) * s.width + xx) * s.channels + ch];
                sum += double(v) * v;
              }
            const std::size_t e = ((n * s.height + h) * s.width + w) * s.channels + ch;
            expected[e] = static_cast<float>(
                x[e] / std::pow(c.delta + c.alpha / (c.kw * c.kh) * sum, c.beta));
          }
    auto x_node = std::make_shared<ImageNode>("x");
    for (const Device device : {Device::cpu_reference(), Device::cpu()}) {
      EXPECT_LE(max_relative_error(
                    run_on(device, make(x_node)->result_image(), {input}).to_floats(), expected),
                1e-6)
          << device.name();
    }
    check_input_gradients([&](std::vector<std::shared_ptr<ImageNode>> xs) { return make(xs[0]); },
                          {c.shape}, 92);
  }
  auto x = std::make_shared<ImageNode>("x");
  EXPECT_THROW(SpatialNormalizationNode(x, 0, 3), InvalidArgument);
  auto node = std::make_shared<SpatialNormalizationNode>(x, 3, 3);
  node->delta = -1.0f;
  EXPECT_THROW(run_on(Device::cpu(), node->result_image(), {random_image({1, 3, 3, 1}, rng)}),
               InvalidArgument);
}

TEST(BinaryConvolutionTraining, FastGradientMatchesTheReference) {
  std::mt19937 rng(85);
  for (const BinaryCase& c : kBinaryCases) {
    const ConvolutionDescriptor d = binary_descriptor(c);
    for (const BinaryConvolutionType type :
         {BinaryConvolutionType::xnor, BinaryConvolutionType::and_,
          BinaryConvolutionType::binary_weights}) {
      for (const bool with_terms : {false, true}) {
        SCOPED_TRACE(describe_case(c, type, false, with_terms));
        // Weights and inputs spread over [-1.5, 1.5]: the pass-through masks cut some.
        auto source = std::make_shared<RecordingSource>(
            d, random_floats(d.weight_count(), rng, -1.5f, 1.5f), random_floats(c.outputs, rng));
        BinaryConvolutionTerms terms;
        if (with_terms) {
          terms.input_bias = random_floats(c.channels, rng, -0.5f, 0.5f);
          terms.input_scale = random_floats(c.channels, rng, 0.5f, 1.5f);
          terms.output_bias = random_floats(c.outputs, rng);
          terms.output_scale = random_floats(c.outputs, rng, 0.5f, 2.0f);
        }
        auto x_node = std::make_shared<ImageNode>("x");
        auto node = binary_node(x_node, source, c, type, false, terms);
        node->training_style = TrainingStyle::cpu;
        const ImageShape x_shape{c.batch, c.height, c.width, c.channels};
        const Image x =
            Image::from_floats(x_shape, random_floats(x_shape.elements(), rng, -1.5f, 1.5f));
        const Image y = run_on(Device::cpu_reference(), node->result_image(), {x});
        const Image dy = random_image(y.shape(), rng);
        auto dy_node = std::make_shared<ImageNode>("dy");
        const auto gradient = node->gradient_filter(dy_node)->result_image();
        std::vector<float> dx[2], dw[2], db[2];
        const Device devices[] = {Device::cpu_reference(), Device::cpu()};
        for (int k = 0; k < 2; ++k) {
          Graph graph(devices[k], gradient);
          dx[k] = run_named(graph, {{"x", x}, {"dy", dy}}).to_floats();
          dw[k] = source->last_gradient.weights_gradient;
          db[k] = source->last_gradient.bias_gradient;
        }
        EXPECT_LE(max_relative_error(dx[1], dx[0]), 1e-4);
        EXPECT_LE(max_relative_error(dw[1], dw[0]), 1e-4);
        EXPECT_LE(max_relative_error(db[1], db[0]), 1e-4);
      }
    }
  }
}
