// Element-wise arithmetic (src/ops/arithmetic.cpp): addition, subtraction, multiplication and
// division with broadcasting; hand-computed results, the shape rule and its errors, the
// gradients against finite differences, and a broadcast addition after a convolution (which
// must not become a fused residual sum). Every backend against the reference: op_cases.cpp.
#include <cmath>
#include <functional>

#include "gradient_support.hpp"

using namespace cnngraph;
using namespace cnngraph::testing;

namespace {

using Sources = std::vector<std::shared_ptr<ImageNode>>;
using Make = std::function<std::shared_ptr<FilterNode>(std::shared_ptr<ImageNode>,
                                                       std::shared_ptr<ImageNode>)>;

struct Operation {
  const char* kind;
  Make make;
  double (*apply)(double, double);
};

const std::vector<Operation>& operations() {
  static const std::vector<Operation> all = {
      {"addition", [](auto a, auto b) { return std::make_shared<AdditionNode>(a, b); },
       [](double a, double b) { return a + b; }},
      {"subtraction", [](auto a, auto b) { return std::make_shared<SubtractionNode>(a, b); },
       [](double a, double b) { return a - b; }},
      {"multiplication", [](auto a, auto b) { return std::make_shared<MultiplicationNode>(a, b); },
       [](double a, double b) { return a * b; }},
      {"division", [](auto a, auto b) { return std::make_shared<DivisionNode>(a, b); },
       [](double a, double b) { return a / b; }},
  };
  return all;
}

// Element (n, y, x, c) of an image of `shape`, broadcast: size-1 dimensions read index 0.
float at(const std::vector<float>& v, const ImageShape& shape, int n, int y, int x, int c) {
  n = shape.batch == 1 ? 0 : n;
  y = shape.height == 1 ? 0 : y;
  x = shape.width == 1 ? 0 : x;
  c = shape.channels == 1 ? 0 : c;
  return v[((static_cast<std::size_t>(n) * shape.height + y) * shape.width + x) * shape.channels +
           c];
}

// Positive secondaries keep the quotients tame.
Image operand(const ImageShape& shape, std::mt19937& rng, bool positive) {
  return Image::from_floats(
      shape, random_floats(shape.elements(), rng, positive ? 0.5f : -1.0f, positive ? 2.0f : 1.0f));
}

}  // namespace

TEST(ArithmeticNode, KindsAndSourceNamesAreMpss) {
  auto a = std::make_shared<ImageNode>("a"), b = std::make_shared<ImageNode>("b");
  for (const Operation& op : operations()) {
    const auto node = op.make(a, b);
    EXPECT_EQ(node->kind(), op.kind);
    EXPECT_EQ(node->source_name(0), "primary");
    EXPECT_EQ(node->source_name(1), "secondary");
  }
  EXPECT_EQ(DivisionNode(a, b).operation(), ArithmeticOperation::division);
}

TEST(ArithmeticNode, ComputesEachOperationWithBroadcasting) {
  std::mt19937 rng(11);
  const ImageShape full{2, 3, 4, 5};
  struct Pair {
    ImageShape a, b, result;
  };
  const Pair pairs[] = {
      {full, full, full},
      {full, {2, 1, 1, 5}, full},                  // squeeze-and-excitation: per image and channel
      {{1, 3, 4, 5}, {1, 1, 1, 5}, {1, 3, 4, 5}},  // per channel
      {full, {2, 3, 4, 1}, full},                  // per pixel
      {{2, 1, 1, 5}, full, full},                  // the primary broadcast
      {{2, 3, 1, 5}, {2, 1, 4, 1}, full},          // both broadcast
  };
  for (const Pair& p : pairs) {
    for (const Operation& op : operations()) {
      SCOPED_TRACE(std::string(op.kind) + " of " + to_string(p.a) + " and " + to_string(p.b));
      const Image a = operand(p.a, rng, false), b = operand(p.b, rng, true);
      auto node = op.make(std::make_shared<ImageNode>("a"), std::make_shared<ImageNode>("b"));
      const Image got = run_on(Device::cpu_reference(), node->result_image(), {a, b});
      ASSERT_EQ(got.shape(), p.result);
      const auto va = a.to_floats(), vb = b.to_floats(), out = got.to_floats();
      std::size_t i = 0;
      for (int n = 0; n < p.result.batch; ++n)
        for (int y = 0; y < p.result.height; ++y)
          for (int x = 0; x < p.result.width; ++x)
            for (int c = 0; c < p.result.channels; ++c, ++i)
              ASSERT_FLOAT_EQ(out[i], static_cast<float>(op.apply(at(va, p.a, n, y, x, c),
                                                                  at(vb, p.b, n, y, x, c))))
                  << "element " << i;
      // The oneDNN backend (its binary primitive, or the reference loop where it has none).
      EXPECT_LE(max_relative_error(run_on(Device::cpu(), node->result_image(), {a, b}), got), 1e-6);
    }
  }
}

TEST(ArithmeticNode, SizesThatDoNotBroadcastAreAShapeErrorNamingTheNodeAndBothSizes) {
  std::mt19937 rng(12);
  for (const Operation& op : operations()) {
    auto node = op.make(std::make_shared<ImageNode>("a"), std::make_shared<ImageNode>("b"));
    node->label = "scale";
    Graph graph(Device::cpu_reference(), node->result_image());
    try {
      graph.run({random_image({1, 3, 4, 5}, rng), random_image({1, 3, 2, 5}, rng)});
      ADD_FAILURE() << "no exception";
    } catch (const ShapeError& e) {
      const std::string message = e.what();
      for (const std::string& part : {std::string(op.kind), std::string("'scale'"),
                                      std::string("n1h3w4c5"), std::string("n1h3w2c5")})
        EXPECT_NE(message.find(part), std::string::npos) << message;
    }
  }
}

TEST(ArithmeticNode, ADivisorOfZeroGivesIeeeInfinitiesAndNans) {
  auto node = std::make_shared<DivisionNode>(std::make_shared<ImageNode>("a"),
                                             std::make_shared<ImageNode>("b"));
  const std::vector<float> dividends{1.0f, -1.0f, 0.0f}, divisor{0.0f};
  const Image a = Image::from_floats({1, 1, 1, 3}, dividends);
  const Image b = Image::from_floats({1, 1, 1, 1}, divisor);
  for (const Device& device : {Device::cpu_reference(), Device::cpu()}) {
    const auto out = run_on(device, node->result_image(), {a, b}).to_floats();
    EXPECT_TRUE(std::isinf(out[0]) && out[0] > 0);
    EXPECT_TRUE(std::isinf(out[1]) && out[1] < 0);
    EXPECT_TRUE(std::isnan(out[2]));
  }
}

// The broadcast shapes of the brief: N x 1 x 1 x C, 1 x 1 x 1 x C and N x H x W x 1 against
// N x H x W x C, either way round, and two broadcast sources.
TEST(ArithmeticGradients, MatchFiniteDifferencesForEveryOperationAndBroadcast) {
  const std::vector<std::vector<ImageShape>> shapes = {
      {{2, 3, 3, 4}, {2, 3, 3, 4}}, {{2, 3, 3, 4}, {2, 1, 1, 4}}, {{1, 3, 3, 4}, {1, 1, 1, 4}},
      {{2, 3, 3, 4}, {2, 3, 3, 1}}, {{2, 1, 1, 4}, {2, 3, 3, 4}}, {{2, 3, 1, 4}, {2, 1, 3, 1}},
  };
  unsigned seed = 30;
  for (const Operation& op : operations()) {
    for (const auto& pair : shapes) {
      SCOPED_TRACE(std::string(op.kind) + " of " + to_string(pair[0]) + " and " +
                   to_string(pair[1]));
      // Division: sources in [0.5, 2] keep the quotient smooth over the differences.
      const bool divide = std::string(op.kind) == "division";
      check_input_gradients([&](Sources x) { return op.make(x[0], x[1]); }, pair, seed++,
                            divide ? 0.5f : -1.0f, divide ? 2.0f : 1.0f);
    }
  }
}

TEST(ArithmeticGradients, AnEqualSizeSumPassesTheGradientThroughUnchanged) {
  auto a = std::make_shared<ImageNode>("a"), b = std::make_shared<ImageNode>("b");
  auto dy = std::make_shared<ImageNode>("dy");
  auto sum = std::make_shared<AdditionNode>(a, b);
  Graph graph(Device::cpu(), sum->gradient_filter_for(1, dy)->result_image());
  std::mt19937 rng(40);
  const Image g = random_image({2, 3, 4, 5}, rng);
  const Image x = random_image({2, 3, 4, 5}, rng);
  EXPECT_EQ(run_named(graph, {{"a", x}, {"b", x}, {"dy", g}}).to_floats(), g.to_floats());
  // The identity (a reshape of the gradient alone), not the broadcasting gradient kernel.
  const std::string text = graph.describe();
  EXPECT_EQ(text.find("arithmetic"), std::string::npos) << text;
}

TEST(ArithmeticNode, ABroadcastAdditionAfterAConvolutionIsNotFusedAsAResidual) {
  std::mt19937 rng(41);
  auto x = std::make_shared<ImageNode>("x");
  auto bias = std::make_shared<ImageNode>("bias");
  auto conv =
      std::make_shared<ConvolutionNode>(x, random_source(ConvolutionDescriptor(3, 3, 3, 4), rng));
  auto add = std::make_shared<AdditionNode>(conv->result_image(), bias);
  auto relu =
      std::make_shared<NeuronNode>(add->result_image(), NeuronDescriptor::make(NeuronType::relu));
  const Image image = random_image({2, 6, 5, 3}, rng);
  // Equal sizes: fused; a per-channel bias image: the same graph, computed correctly.
  expect_backends_agree(relu->result_image(), {image, random_image({2, 6, 5, 4}, rng)}, 2e-5);
  expect_backends_agree(relu->result_image(), {image, random_image({2, 1, 1, 4}, rng)}, 2e-5);
  Graph graph(Device::cpu(), relu->result_image());
  graph.run({image, random_image({2, 1, 1, 4}, rng)});
  graph.run({image, random_image({2, 6, 5, 4}, rng)});
}
