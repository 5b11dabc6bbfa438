// The other inference nodes: each against its formula or a hand computation on the reference
// (and pooling's edges on both CPU devices). Every backend against the reference: the op cases
// of backend_ops_test.
#include <cmath>

#include "support.hpp"

using namespace cnngraph;
using namespace cnngraph::testing;

namespace {

std::vector<NeuronDescriptor> every_neuron(int channels) {
  std::vector<NeuronDescriptor> all;
  for (int t = 0; t <= static_cast<int>(NeuronType::silu); ++t) {
    const auto type = static_cast<NeuronType>(t);
    if (type == NeuronType::prelu) {
      std::vector<float> slopes(channels);
      for (int c = 0; c < channels; ++c) slopes[c] = 0.1f * (c + 1);
      all.push_back(NeuronDescriptor::make_prelu(slopes));
    } else if (type == NeuronType::power || type == NeuronType::logarithm) {
      all.push_back(NeuronDescriptor::make(type, 1.0f, 3.0f, 2.0f));  // keep the base positive
    } else {
      all.push_back(NeuronDescriptor::make(type));
    }
  }
  all.push_back(NeuronDescriptor::make(NeuronType::relu, 0.2f));  // leaky
  all.push_back(NeuronDescriptor::make(NeuronType::tanh, 1.7f, 0.6f));
  all.push_back(NeuronDescriptor::make(NeuronType::soft_plus, 2.0f, 0.5f));
  all.push_back(NeuronDescriptor::make(NeuronType::exponential, 1.0f, 0.5f, 3.0f));
  return all;
}

double expected_neuron(const NeuronDescriptor& n, double x, int c) {
  switch (n.type) {
    case NeuronType::none:
      return x;
    case NeuronType::relu:
      return x >= 0 ? x : n.a * x;
    case NeuronType::linear:
      return n.a * x + n.b;
    case NeuronType::sigmoid:
      return 1 / (1 + std::exp(-x));
    case NeuronType::hard_sigmoid:
      return std::clamp(n.a * x + n.b, 0.0, 1.0);
    case NeuronType::tanh:
      return n.a * std::tanh(n.b * x);
    case NeuronType::absolute:
      return std::fabs(x);
    case NeuronType::soft_plus:
      return n.a * std::log(1 + std::exp(n.b * x));
    case NeuronType::soft_sign:
      return x / (1 + std::fabs(x));
    case NeuronType::elu:
      return x >= 0 ? x : n.a * (std::exp(x) - 1);
    case NeuronType::prelu:
      return x >= 0 ? x : n.prelu_slopes[c] * x;
    case NeuronType::relu_n:
      return std::min(x >= 0 ? x : n.a * x, static_cast<double>(n.b));
    case NeuronType::power:
      return std::pow(n.a * x + n.b, n.c);
    case NeuronType::exponential:
      return std::pow(n.c > 0 ? n.c : M_E, n.a * x + n.b);
    case NeuronType::logarithm:
      return std::log(n.a * x + n.b) / (n.c > 0 ? std::log(n.c) : 1.0);
    case NeuronType::gelu:
      return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
    case NeuronType::silu:
      return x / (1 + std::exp(-x));
  }
  return NAN;
}
}  // namespace

TEST(NeuronNode, EveryTypeMatchesItsFormula) {
  std::mt19937 rng(1);
  const ImageShape shape{2, 3, 5, 4};
  const Image input = random_image(shape, rng);
  const auto x = input.to_floats();
  for (const NeuronDescriptor& n : every_neuron(shape.channels)) {
    SCOPED_TRACE(to_string(n.type));
    auto node = std::make_shared<NeuronNode>(std::make_shared<ImageNode>(), n);
    const auto y = run_on(Device::cpu_reference(), node->result_image(), {input}).to_floats();
    for (std::size_t i = 0; i < x.size(); ++i) {
      EXPECT_NEAR(y[i], expected_neuron(n, x[i], static_cast<int>(i % shape.channels)), 1e-6);
    }
  }
}

TEST(NeuronNode, MpsDefaultsForParameters) {
  EXPECT_EQ(NeuronDescriptor::make(NeuronType::hard_sigmoid).a, 0.2f);
  EXPECT_EQ(NeuronDescriptor::make(NeuronType::hard_sigmoid).b, 0.5f);
  EXPECT_EQ(NeuronDescriptor::make(NeuronType::linear).a, 1.0f);
  EXPECT_EQ(NeuronDescriptor::make(NeuronType::relu_n).b, 6.0f);
}

TEST(PoolingNode, MaxAndAverageLeaveOutPixelsOutsideTheImage) {
  // 3x3 image 1..9, 2x2 windows at stride 2, same padding: the right and bottom windows are
  // cut by the edge; average divides by the pixels inside only.
  const Image input =
      Image::from_floats({1, 3, 3, 1}, std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, 9});
  auto src = std::make_shared<ImageNode>();
  auto max = std::make_shared<MaxPoolingNode>(src, 2);
  auto avg = std::make_shared<AveragePoolingNode>(src, 2);
  for (Device device : {Device::cpu_reference(), Device::cpu()}) {
    SCOPED_TRACE(device.name());
    // Remainder top-left: the odd padding pixel goes before, so windows are rows {-1,0}, {1,2}.
    EXPECT_EQ(run_on(device, max->result_image(), {input}).to_floats(),
              (std::vector<float>{1, 3, 7, 9}));
    EXPECT_EQ(run_on(device, avg->result_image(), {input}).to_floats(),
              (std::vector<float>{1, 2.5f, 5.5f, 7}));
  }
}

TEST(PoolingNode, AverageCountingPaddingDividesByTheWholeWindow) {
  // As above, counting padding (ONNX count_include_pad = 1): every window divides by 4.
  const Image input =
      Image::from_floats({1, 3, 3, 1}, std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, 9});
  auto avg = std::make_shared<AveragePoolingNode>(std::make_shared<ImageNode>(), 2);
  avg->set_counts_padding(true);
  EXPECT_TRUE(avg->counts_padding());
  for (Device device : {Device::cpu_reference(), Device::cpu()}) {
    SCOPED_TRACE(device.name());
    EXPECT_EQ(run_on(device, avg->result_image(), {input}).to_floats(),
              (std::vector<float>{0.25f, 1.25f, 2.75f, 7}));
  }
  // oneDNN's include-padding average takes it (no window reaches past the padded image).
  Graph graph(Device::cpu(), avg->result_image());
  graph.compile({ImageShape{1, 3, 3, 1}});
  EXPECT_NE(graph.describe().find("via onednn:"), std::string::npos) << graph.describe();
}

TEST(PoolingNode, AverageCountingPaddingLeavesOutPixelsPastThePaddedEndAsOnnxCeilMode) {
  // ONNX AveragePool 2x2, stride 2, pads 0, ceil_mode 1, count_include_pad 1 on 1..9: the
  // second window of each axis reaches one pixel past the (unpadded) image, which is not
  // counted: [12/4, 9/2, 15/2, 9/1]. Without the declared end every window divides by 4.
  const Image input =
      Image::from_floats({1, 3, 3, 1}, std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, 9});
  auto avg = std::make_shared<AveragePoolingNode>(std::make_shared<ImageNode>(), 2);
  avg->padding_policy = PaddingPolicy::make_custom([](AxisGeometry& x, AxisGeometry& y) {
    x.result_size = y.result_size = 2;
    x.pad_before = y.pad_before = 0;
  });
  avg->set_counts_padding(true);
  for (Device device : {Device::cpu_reference(), Device::cpu()}) {
    SCOPED_TRACE(device.name());
    EXPECT_EQ(run_on(device, avg->result_image(), {input}).to_floats(),
              (std::vector<float>{3, 2.25f, 3.75f, 2.25f}));
  }
  avg->set_counted_padding_end(0, 0);
  EXPECT_EQ(avg->counted_padding_bottom(), 0);
  for (Device device : {Device::cpu_reference(), Device::cpu()}) {
    SCOPED_TRACE(device.name());
    EXPECT_EQ(run_on(device, avg->result_image(), {input}).to_floats(),
              (std::vector<float>{3, 4.5f, 7.5f, 9}));
  }
}

TEST(PoolingNode, CountingPaddingIsRefusedForMaxPoolingAndNegativeEnds) {
  auto x = std::make_shared<ImageNode>();
  auto max = std::make_shared<MaxPoolingNode>(x, 2);
  max->label = "the max";
  try {
    max->set_counts_padding(true);
    ADD_FAILURE() << "no InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("the max"), std::string::npos) << e.what();
  }
  max->set_counts_padding(false);  // the default: allowed
  auto avg = std::make_shared<AveragePoolingNode>(x, 2);
  EXPECT_FALSE(avg->counts_padding());
  EXPECT_THROW(avg->set_counted_padding_end(-1, 0), InvalidArgument);
  EXPECT_FALSE(avg->counted_padding_bottom().has_value());
}

TEST(GlobalAveragePoolingNode, AveragesEachChannel) {
  std::mt19937 rng(3);
  const Image input = random_image({2, 5, 3, 4}, rng);
  auto node = std::make_shared<GlobalAveragePoolingNode>(std::make_shared<ImageNode>());
  const Image out = run_on(Device::cpu_reference(), node->result_image(), {input});
  EXPECT_EQ(out.shape(), (ImageShape{2, 1, 1, 4}));
  const auto x = input.to_floats();
  double sum = 0;
  for (int p = 0; p < 15; ++p) sum += x[p * 4 + 1];
  EXPECT_NEAR(out.to_floats()[1], sum / 15, 1e-6);
}

TEST(GlobalMaxPoolingNode, TakesTheMaximumOfEachChannel) {
  std::mt19937 rng(3);
  const Image input = random_image({2, 5, 3, 4}, rng);
  auto node = std::make_shared<GlobalMaxPoolingNode>(std::make_shared<ImageNode>());
  EXPECT_EQ(node->kind(), "global_max_pooling");
  const auto x = input.to_floats();
  for (Device device : {Device::cpu_reference(), Device::cpu()}) {
    SCOPED_TRACE(device.name());
    const Image out = run_on(device, node->result_image(), {input});
    EXPECT_EQ(out.shape(), (ImageShape{2, 1, 1, 4}));
    for (int n = 0; n < 2; ++n)
      for (int c = 0; c < 4; ++c) {
        float max = x[n * 60 + c];
        for (int p = 0; p < 15; ++p) max = std::max(max, x[n * 60 + p * 4 + c]);
        EXPECT_EQ(out.to_floats()[n * 4 + c], max);
      }
  }
}

TEST(AdditionNode, AddsElementWise) {
  std::mt19937 rng(4);
  const Image a = random_image({3, 4, 5, 6}, rng), b = random_image({3, 4, 5, 6}, rng);
  auto node = std::make_shared<AdditionNode>(std::make_shared<ImageNode>("a"),
                                             std::make_shared<ImageNode>("b"));
  const auto out = run_on(Device::cpu_reference(), node->result_image(), {a, b}).to_floats();
  EXPECT_FLOAT_EQ(out[17], a.to_floats()[17] + b.to_floats()[17]);
}

TEST(ConcatenationNode, JoinsChannelsInOrder) {
  std::mt19937 rng(5);
  const Image a = random_image({2, 3, 3, 2}, rng), b = random_image({2, 3, 3, 5}, rng),
              c = random_image({2, 3, 3, 1}, rng);
  auto node = std::make_shared<ConcatenationNode>(std::vector<std::shared_ptr<ImageNode>>{
      std::make_shared<ImageNode>(), std::make_shared<ImageNode>(), std::make_shared<ImageNode>()});
  const Image out = run_on(Device::cpu_reference(), node->result_image(), {a, b, c});
  EXPECT_EQ(out.shape().channels, 8);
  EXPECT_EQ(out.to_floats()[8 * 4 + 2], b.to_floats()[5 * 4 + 0]);
  EXPECT_EQ(out.to_floats()[8 * 4 + 7], c.to_floats()[4]);
}

TEST(SoftMaxNode, SumsToOneOverChannelsAndLogSoftMaxIsItsLog) {
  std::mt19937 rng(6);
  const Image input = random_image({2, 3, 2, 7}, rng);
  auto src = std::make_shared<ImageNode>();
  auto softmax = std::make_shared<SoftMaxNode>(src);
  auto log_softmax = std::make_shared<LogSoftMaxNode>(src);
  const auto p = run_on(Device::cpu_reference(), softmax->result_image(), {input}).to_floats();
  const auto lp = run_on(Device::cpu_reference(), log_softmax->result_image(), {input}).to_floats();
  double sum = 0;
  for (int c = 0; c < 7; ++c) sum += p[7 * 5 + c];
  EXPECT_NEAR(sum, 1.0, 1e-6);
  for (std::size_t i = 0; i < p.size(); ++i) EXPECT_NEAR(lp[i], std::log(p[i]), 1e-5);
}

TEST(BatchNormalizationNode, AppliesRunningStatistics) {
  std::mt19937 rng(7);
  const Image input = random_image({2, 3, 3, 2}, rng);
  BatchNormalizationParameters p{{0.5f, -0.5f}, {2.0f, 0.5f}, {1.5f, 0.7f}, {0.1f, -0.2f}, 1e-3f};
  auto node = std::make_shared<BatchNormalizationNode>(std::make_shared<ImageNode>(), p);
  const auto out = run_on(Device::cpu_reference(), node->result_image(), {input}).to_floats();
  const auto x = input.to_floats();
  for (std::size_t i = 0; i < x.size(); ++i) {
    const std::size_t c = i % 2;
    EXPECT_NEAR(out[i],
                p.gamma[c] * (x[i] - p.mean[c]) / std::sqrt(p.variance[c] + p.epsilon) + p.beta[c],
                1e-5);
  }
}

TEST(ReshapeNode, KeepsElementOrder) {
  std::mt19937 rng(8);
  const Image input = random_image({2, 4, 3, 2}, rng);
  auto node = std::make_shared<ReshapeNode>(std::make_shared<ImageNode>(), 1, 1, 24);
  const Image out = run_on(Device::cpu(), node->result_image(), {input});
  EXPECT_EQ(out.shape(), (ImageShape{2, 1, 1, 24}));
  EXPECT_EQ(out.to_floats(), input.to_floats());
}

TEST(FullyConnectedNode, EqualsADotProduct) {
  std::mt19937 rng(9);
  for (int batch : {1, 5}) {
    ConvolutionDescriptor d(3, 2, 4, 7);
    d.set_neuron(NeuronType::relu);
    auto weights = random_source(d, rng);
    auto fc = std::make_shared<FullyConnectedNode>(std::make_shared<ImageNode>(), weights);
    const Image input = random_image({batch, 2, 3, 4}, rng);
    const Image out = run_on(Device::cpu_reference(), fc->result_image(), {input});
    EXPECT_EQ(out.shape(), (ImageShape{batch, 1, 1, 7}));
    // Output 3 of image 0 by hand: OHWI weights against HWC pixels are the same order.
    const auto* w = static_cast<const float*>(weights->weights());
    const auto x = input.to_floats();
    double sum = weights->bias_terms()[3];
    for (int i = 0; i < 24; ++i) sum += w[3 * 24 + i] * x[i];
    EXPECT_NEAR(out.to_floats()[3], std::max(sum, 0.0), 1e-5);
  }
}
