// ConvolutionNode: hand-computed cases, every descriptor variant on oneDNN against the
// reference on random shapes, accumulator precision, quantized and 16-bit weights.
#include <cmath>

#include "support.hpp"

using namespace cnngraph;
using namespace cnngraph::testing;

namespace {

// f32 tolerance: oneDNN sums in f32 in a different order than the double reference.
constexpr double kF32Tolerance = 2e-5;
// bf16 inputs and weights carry 8 bits of mantissa; sums of up to a few hundred terms.
constexpr double kBf16Tolerance = 3e-2;

std::shared_ptr<ImageNode> conv_of(std::shared_ptr<ImageNode> src,
                                   std::shared_ptr<ConvolutionDataSource> source,
                                   PaddingPolicy padding = PaddingPolicy::same()) {
  auto conv = std::make_shared<ConvolutionNode>(std::move(src), std::move(source));
  conv->padding_policy = std::move(padding);
  return conv->result_image();
}

}  // namespace

TEST(ConvolutionNode, HandComputedThreeByThreeSamePadding) {
  // 1 channel 3x3 input 1..9, all-ones 3x3 kernel, bias 0.5: each output is the sum of the
  // in-image neighbourhood plus 0.5.
  auto src = std::make_shared<ImageNode>("x");
  auto weights =
      std::make_shared<ArrayDataSource>("ones", ConvolutionDescriptor(3, 3, 1, 1),
                                        std::vector<float>(9, 1.0f), std::vector<float>{0.5f});
  auto result = conv_of(src, weights);
  const std::vector<float> input = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  const std::vector<float> expected = {12.5f, 21.5f, 16.5f, 27.5f, 45.5f,
                                       33.5f, 24.5f, 39.5f, 28.5f};
  for (Device device : {Device::cpu_reference(), Device::cpu()}) {
    const Image out = run_on(device, result, {Image::from_floats({1, 3, 3, 1}, input)});
    EXPECT_EQ(out.to_floats(), expected) << device.name();
  }
}

TEST(ConvolutionNode, HandComputedStrideTwoValidWithTwoChannels) {
  // 2 input channels, weights [1, -1] at the single tap: out = a - b, every other pixel.
  auto src = std::make_shared<ImageNode>();
  ConvolutionDescriptor d(1, 1, 2, 1);
  d.stride_x = d.stride_y = 2;
  auto weights = std::make_shared<ArrayDataSource>("diff", d, std::vector<float>{1.0f, -1.0f});
  auto result = conv_of(src, weights, PaddingPolicy::valid());
  std::vector<float> input;
  for (int i = 0; i < 9; ++i) input.insert(input.end(), {float(i), float(2 * i)});
  for (Device device : {Device::cpu_reference(), Device::cpu()}) {
    const Image out = run_on(device, result, {Image::from_floats({1, 3, 3, 2}, input)});
    EXPECT_EQ(out.shape(), (ImageShape{1, 2, 2, 1}));
    EXPECT_EQ(out.to_floats(), (std::vector<float>{-0.0f, -2.0f, -6.0f, -8.0f})) << device.name();
  }
}

TEST(ConvolutionNode, DefaultPaddingIsSameCenteredMatchingSymmetricPaddingForOddKernels) {
  auto src = std::make_shared<ImageNode>();
  auto conv = std::make_shared<ConvolutionNode>(
      src, std::make_shared<ArrayDataSource>("w", ConvolutionDescriptor(5, 5, 1, 1),
                                             std::vector<float>(25, 1.0f)));
  EXPECT_EQ(conv->padding_policy.size, PaddingSize::same);
  EXPECT_EQ(conv->padding_policy.alignment, PaddingAlignment::centered);
  EXPECT_EQ(conv->padding_policy.remainder, PaddingRemainder::top_left);
  Graph graph(Device::cpu_reference(), conv->result_image());
  const Image out = graph.run({Image::from_floats({1, 5, 5, 1}, std::vector<float>(25, 1.0f))})[0];
  // Corner sees a 3x3 part of the window (PyTorch padding = 2), centre all 25.
  EXPECT_EQ(out.to_floats()[0], 9.0f);
  EXPECT_EQ(out.to_floats()[12], 25.0f);
}

// The randomized sweep (strides, dilation, groups, padding policies: random_convolution_cases),
// oneDNN against reference.
TEST(ConvolutionNode, OnednnMatchesReferenceOnRandomShapes) {
  std::mt19937 rng(42);
  for (const ConvCase& c : random_convolution_cases(60, 7)) {
    SCOPED_TRACE(c.name());
    const ConvolutionDescriptor d = c.descriptor();
    auto src = std::make_shared<ImageNode>();
    auto result = conv_of(src, random_source(d, rng), c.padding);
    expect_backends_agree(result, {random_image({c.batch, c.height, c.width, c.in_channels}, rng)},
                          kF32Tolerance);
  }
}

TEST(ConvolutionNode, AsymmetricStridesAndDilations) {
  std::mt19937 rng(3);
  ConvolutionDescriptor d(3, 2, 4, 6);
  d.stride_x = 3;
  d.stride_y = 1;
  d.dilation_x = 1;
  d.dilation_y = 2;
  auto result = conv_of(std::make_shared<ImageNode>(), random_source(d, rng));
  expect_backends_agree(result, {random_image({2, 11, 14, 4}, rng)}, kF32Tolerance);
}

TEST(ConvolutionNode, Bf16PrecisionStaysWithinBf16Tolerance) {
  std::mt19937 rng(5);
  ConvolutionDescriptor d(3, 3, 32, 16);
  auto result = conv_of(std::make_shared<ImageNode>(), random_source(d, rng));
  GraphOptions bf16;
  bf16.precision = Precision::bf16;
  expect_backends_agree(result, {random_image({2, 9, 9, 32}, rng)}, kBf16Tolerance, bf16);
}

TEST(ConvolutionNode, EveryFusedNeuronMatchesReference) {
  std::mt19937 rng(11);
  for (NeuronType type :
       {NeuronType::relu, NeuronType::linear, NeuronType::sigmoid, NeuronType::hard_sigmoid,
        NeuronType::tanh, NeuronType::absolute, NeuronType::soft_plus, NeuronType::soft_sign,
        NeuronType::elu, NeuronType::prelu, NeuronType::relu_n, NeuronType::power,
        NeuronType::exponential, NeuronType::logarithm, NeuronType::gelu, NeuronType::silu}) {
    SCOPED_TRACE(to_string(type));
    ConvolutionDescriptor d(3, 3, 3, 4);
    d.neuron = type == NeuronType::prelu ? NeuronDescriptor::make_prelu({0.1f, 0.2f, 0.3f, 0.4f})
                                         : NeuronDescriptor::make(type);
    if (type == NeuronType::relu) d.neuron.a = 0.1f;
    if (type == NeuronType::power) d.neuron = NeuronDescriptor::make(type, 1.0f, 10.0f, 2.0f);
    if (type == NeuronType::logarithm) d.neuron = NeuronDescriptor::make(type, 1.0f, 10.0f, 2.0f);
    if (type == NeuronType::exponential) d.neuron = NeuronDescriptor::make(type, 0.5f, 0.0f, 2.0f);
    auto result = conv_of(std::make_shared<ImageNode>(), random_source(d, rng));
    expect_backends_agree(result, {random_image({2, 6, 7, 3}, rng)}, 1e-4);
  }
}

TEST(ConvolutionNode, HalfAccumulationIsEmulatedByTheReference) {
  // 4096 products of 1 * 1: an fp16 running sum stalls at 2048, where its spacing is 2 and
  // 2048 + 1 rounds back to 2048 (ties to even); the double sum reaches 4096.
  ConvolutionDescriptor d(1, 1, 4096, 1);
  auto weights = std::make_shared<ArrayDataSource>("w", d, std::vector<float>(4096, 1.0f));
  auto src = std::make_shared<ImageNode>();
  auto single = std::make_shared<ConvolutionNode>(src, weights);
  auto half = std::make_shared<ConvolutionNode>(src, weights);
  half->accumulator_precision = AccumulatorPrecision::half;
  EXPECT_EQ(single->accumulator_precision, AccumulatorPrecision::single);
  const Image input = Image::from_floats({1, 1, 1, 4096}, std::vector<float>(4096, 1.0f));
  EXPECT_EQ(run_on(Device::cpu_reference(), single->result_image(), {input}).to_floats()[0],
            4096.0f);
  EXPECT_EQ(run_on(Device::cpu_reference(), half->result_image(), {input}).to_floats()[0], 2048.0f);
  // The oneDNN backend always accumulates in f32 (documented), so it gives the exact sum.
  EXPECT_EQ(run_on(Device::cpu(), half->result_image(), {input}).to_floats()[0], 4096.0f);
}

TEST(ConvolutionNode, SubPixelConvolutionShufflesDepthToSpace) {
  std::mt19937 rng(9);
  ConvolutionDescriptor d(3, 3, 2, 8);
  d.set_sub_pixel(2, SubPixelOrder::pixel_shuffle);  // the order checked below
  d.set_neuron(NeuronType::relu);
  auto result = conv_of(std::make_shared<ImageNode>(), random_source(d, rng));
  const Image input = random_image({2, 5, 4, 2}, rng);
  const Image out = run_on(Device::cpu_reference(), result, {input});
  EXPECT_EQ(out.shape(), (ImageShape{2, 10, 8, 2}));
  expect_backends_agree(result, {input}, kF32Tolerance);
  // The shuffle itself, against the same weights without sub-pixel scaling:
  // dst[n][y*2+i][x*2+j][c] == conv[n][y][x][c*4 + i*2 + j].
  ConvolutionDescriptor plain = d;
  plain.sub_pixel_scale_factor = 1;
  const auto w = random_floats(8 * 9 * 2, rng), bias = random_floats(8, rng);
  auto src = std::make_shared<ImageNode>();
  const auto p =
      run_on(Device::cpu_reference(),
             conv_of(src, std::make_shared<ArrayDataSource>("p", plain, w, bias)), {input})
          .to_floats();
  const auto s = run_on(Device::cpu_reference(),
                        conv_of(src, std::make_shared<ArrayDataSource>("s", d, w, bias)), {input})
                     .to_floats();
  for (int n = 0; n < 2; ++n)
    for (int y = 0; y < 5; ++y)
      for (int x = 0; x < 4; ++x)
        for (int c = 0; c < 2; ++c)
          for (int i = 0; i < 2; ++i)
            for (int j = 0; j < 2; ++j)
              ASSERT_EQ(s[((n * 10 + y * 2 + i) * 8 + x * 2 + j) * 2 + c],
                        p[((n * 5 + y) * 4 + x) * 8 + c * 4 + i * 2 + j]);
}

TEST(ConvolutionNode, DescriptorBatchNormalizationIsFoldedExactly) {
  std::mt19937 rng(13);
  ConvolutionDescriptor d(3, 3, 3, 2);
  auto plain = random_source(d, rng);
  ConvolutionDescriptor with_bn = d;
  with_bn.set_batch_normalization({0.5f, -1.0f}, {4.0f, 0.25f}, {2.0f, 1.0f}, {0.1f, 0.2f}, 0.0f);
  const auto* w = static_cast<const float*>(plain->weights());
  auto folded = std::make_shared<ArrayDataSource>(
      "bn", with_bn, std::vector<float>(w, w + 54),
      std::vector<float>(plain->bias_terms(), plain->bias_terms() + 2));
  auto src = std::make_shared<ImageNode>();
  const Image input = random_image({1, 4, 4, 3}, rng);
  const auto raw = run_on(Device::cpu_reference(), conv_of(src, plain), {input}).to_floats();
  const auto bn = run_on(Device::cpu_reference(), conv_of(src, folded), {input}).to_floats();
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const std::size_t c = i % 2;
    const float mean[] = {0.5f, -1.0f}, sd[] = {2.0f, 0.5f}, gamma[] = {2.0f, 1.0f},
                beta[] = {0.1f, 0.2f};
    EXPECT_NEAR(bn[i], gamma[c] * (raw[i] - mean[c]) / sd[c] + beta[c], 1e-5);
  }
  expect_backends_agree(conv_of(src, folded), {input}, kF32Tolerance);
}

TEST(ConvolutionNode, QuantizedLinearWeightsDequantizeExactly) {
  ConvolutionDescriptor d(1, 1, 3, 2);
  const std::vector<std::uint8_t> q = {0, 128, 255, 10, 20, 30};
  const std::vector<float> ranges = {-1.0f, 1.0f, 0.0f, 2.0f};
  auto source = ArrayDataSource::quantized_linear("q", d, q, ranges);
  auto result = conv_of(std::make_shared<ImageNode>(), source);
  // One-hot inputs read out each weight.
  for (int channel = 0; channel < 3; ++channel) {
    std::vector<float> input(3, 0.0f);
    input[channel] = 1.0f;
    const auto out =
        run_on(Device::cpu_reference(), result, {Image::from_floats({1, 1, 1, 3}, input)})
            .to_floats();
    for (int o = 0; o < 2; ++o) {
      const float lo = ranges[2 * o], hi = ranges[2 * o + 1];
      EXPECT_EQ(out[o], lo + (hi - lo) * (q[o * 3 + channel] / 255.0f));
    }
  }
}

TEST(ConvolutionNode, QuantizedLookupTableWeightsDequantizeExactly) {
  ConvolutionDescriptor d(1, 1, 2, 1);
  std::array<float, 256> table{};
  for (int i = 0; i < 256; ++i) table[i] = static_cast<float>(i) * 0.25f - 3.0f;
  auto source = ArrayDataSource::quantized_lookup_table("lut", d, {7, 200}, table);
  auto result = conv_of(std::make_shared<ImageNode>(), source);
  const auto out = run_on(Device::cpu(), result,
                          {Image::from_floats({1, 1, 1, 2}, std::vector<float>{1.0f, 0.0f})})
                       .to_floats();
  EXPECT_EQ(out[0], table[7]);
}

TEST(ConvolutionNode, HalfAndBfloat16WeightsAreWidenedExactly) {
  ConvolutionDescriptor d(1, 1, 1, 1);
  for (DataType type : {DataType::f16, DataType::bf16}) {
    const float value = 0.3330078125f;  // representable in both
    const std::uint16_t bits =
        type == DataType::f16 ? float_to_half(value) : float_to_bfloat16(value);
    auto source = ArrayDataSource::from_16bit("w16", d, type, {bits});
    auto result = conv_of(std::make_shared<ImageNode>(), source);
    const auto out =
        run_on(Device::cpu(), result, {Image::from_floats({1, 1, 1, 1}, std::vector<float>{1.0f})})
            .to_floats();
    EXPECT_EQ(out[0], type == DataType::f16 ? half_to_float(bits) : bfloat16_to_float(bits));
  }
}

TEST(ConvolutionNode, CustomPaddingCallbackControlsSizeAndOffset) {
  auto src = std::make_shared<ImageNode>();
  auto conv = std::make_shared<ConvolutionNode>(
      src, std::make_shared<ArrayDataSource>("w", ConvolutionDescriptor(3, 3, 1, 1),
                                             std::vector<float>(9, 1.0f)));
  conv->padding_policy = PaddingPolicy::make_custom([](AxisGeometry& x, AxisGeometry& y) {
    x.result_size = x.source_size - 2;  // valid along x
    x.pad_before = 0;
    y.pad_before = 2;  // window starts two pixels above: every output sees one row less
  });
  const Image input = Image::from_floats({1, 4, 4, 1}, std::vector<float>(16, 1.0f));
  const Image out = run_on(Device::cpu_reference(), conv->result_image(), {input});
  EXPECT_EQ(out.shape(), (ImageShape{1, 4, 2, 1}));
  EXPECT_EQ(out.to_floats()[0], 3.0f);  // row -2..0: only row 0 inside, 3 columns
  expect_backends_agree(conv->result_image(), {input}, kF32Tolerance);
}

TEST(ConvolutionNode, GradientStateAndTrainingStyleArePresent) {
  auto conv = std::make_shared<ConvolutionNode>(
      std::make_shared<ImageNode>(),
      std::make_shared<ArrayDataSource>("w", ConvolutionDescriptor(1, 1, 1, 1),
                                        std::vector<float>{1.0f}));
  EXPECT_EQ(conv->training_style, TrainingStyle::device);
  auto state = conv->convolution_gradient_state();
  ASSERT_NE(state, nullptr);
  EXPECT_EQ(state->producer(), conv.get());
  EXPECT_EQ(conv->convolution_gradient_state(), state);
}
