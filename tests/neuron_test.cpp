// Neurons: one set of defaults for every way of making one, and every type at extreme
// inputs (far past float's exp overflow) on the reference and the oneDNN devices, standalone,
// fused into a convolution, and differentiated.
#include <cmath>

#include "gradient_support.hpp"
#include "neuron_cases.hpp"

using namespace cnngraph;
using namespace cnngraph::testing;

namespace {

// exp and pow amplify the float rounding of their argument by its size: oneDNN's fused
// 2^(0.01 x) computes exp((0.01 ln 2) x), whose rounded coefficient costs ~70 ulps at x = 1e4.
constexpr double kTolerance = 1e-5;

Image row_image(const std::vector<float>& values) {
  return Image::from_floats({1, 1, static_cast<int>(values.size()), 1}, values);
}

// A 1x1 convolution with weight 1 and no bias, so the fused neuron sees x itself. Not
// trained: its gradient is the input gradient alone.
std::shared_ptr<ConvolutionNode> identity_convolution(const std::shared_ptr<ImageNode>& x,
                                                      const NeuronDescriptor& neuron) {
  ConvolutionDescriptor d(1, 1, 1, 1);
  d.neuron = neuron;
  auto node = std::make_shared<ConvolutionNode>(
      x, std::make_shared<ArrayDataSource>("identity", d, std::vector<float>{1.0f}));
  node->training_style = TrainingStyle::none;
  return node;
}

}  // namespace

TEST(NeuronDefaults, ConvolutionSetNeuronWithoutParametersUsesTheDescriptorDefaults) {
  for (int t = 0; t <= static_cast<int>(NeuronType::silu); ++t) {
    const auto type = static_cast<NeuronType>(t);
    SCOPED_TRACE(to_string(type));
    ConvolutionDescriptor d;
    d.set_neuron(type);
    const NeuronDescriptor expected = NeuronDescriptor::make(type);
    EXPECT_EQ(d.neuron.type, type);
    EXPECT_EQ(d.neuron.a, expected.a);
    EXPECT_EQ(d.neuron.b, expected.b);
    EXPECT_EQ(d.neuron.c, expected.c);
  }
  ConvolutionDescriptor d;
  d.set_neuron(NeuronType::tanh);
  EXPECT_EQ(d.neuron.a, 1.0f);
  EXPECT_EQ(d.neuron.b, 1.0f);
  d.set_neuron(NeuronType::hard_sigmoid);
  EXPECT_EQ(d.neuron.a, 0.2f);
  EXPECT_EQ(d.neuron.b, 0.5f);
  // Explicit parameters are taken as given.
  d.set_neuron(NeuronType::tanh, 2.0f, 0.5f);
  EXPECT_EQ(d.neuron.a, 2.0f);
  EXPECT_EQ(d.neuron.b, 0.5f);
  EXPECT_EQ(d.neuron.c, 0.0f);
}

TEST(NeuronExtremes, SoftPlusStaysFinitePastExpOverflowOnTheCpuDevice) {
  auto x = std::make_shared<ImageNode>();
  auto y = std::make_shared<NeuronNode>(x, NeuronDescriptor::make(NeuronType::soft_plus, 1, 1));
  const std::vector<float> out =
      run_on(Device::cpu(), y->result_image(), {row_image({20, 80, 88.8f, 100})}).to_floats();
  EXPECT_NEAR(out[0], 20.0f, 1e-5);
  EXPECT_NEAR(out[1], 80.0f, 1e-5);
  EXPECT_NEAR(out[2], 88.8f, 1e-5);
  EXPECT_NEAR(out[3], 100.0f, 1e-5);
}

TEST(NeuronExtremes, EveryTypeMatchesTheFormulaStandaloneAndFusedOnBothCpuDevices) {
  const std::vector<float> inputs = extreme_neuron_inputs();
  for (const NeuronDescriptor& neuron : extreme_neuron_cases()) {
    for (const Device& device : {Device::cpu_reference(), Device::cpu()}) {
      const std::string what = neuron_case_name(neuron) + " on " + device.name();
      const auto expected = [&](long double v) { return expected_neuron_value(neuron, v); };
      auto x = std::make_shared<ImageNode>();
      auto standalone = std::make_shared<NeuronNode>(x, neuron)->result_image();
      expect_matches_formula(run_on(device, standalone, {row_image(inputs)}).to_floats(), inputs,
                             expected, kTolerance, what + " standalone");
      expect_matches_formula(
          run_on(device, identity_convolution(x, neuron)->result_image(), {row_image(inputs)})
              .to_floats(),
          inputs, expected, kTolerance, what + " fused");
    }
  }
}

TEST(NeuronExtremes, EveryGradientMatchesTheDerivativeOnBothCpuDevices) {
  const std::vector<float> inputs = extreme_neuron_inputs();
  const std::vector<float> ones(inputs.size(), 1.0f);
  for (const NeuronDescriptor& neuron : extreme_neuron_cases()) {
    for (const Device& device : {Device::cpu_reference(), Device::cpu()}) {
      const std::string what = neuron_case_name(neuron) + " on " + device.name();
      auto x = std::make_shared<ImageNode>("x");
      auto dy = std::make_shared<ImageNode>("dy");
      for (const bool fused : {false, true}) {
        std::shared_ptr<FilterNode> forward =
            fused ? std::static_pointer_cast<FilterNode>(identity_convolution(x, neuron))
                  : std::make_shared<NeuronNode>(x, neuron);
        Graph graph(device, forward->gradient_filter(dy)->result_image());
        const std::vector<float> dx =
            run_named(graph, {{"x", row_image(inputs)}, {"dy", row_image(ones)}}).to_floats();
        expect_matches_formula(
            dx, inputs, [&](long double v) { return expected_neuron_derivative(neuron, v); },
            kTolerance, what + (fused ? " fused" : " standalone"));
      }
    }
  }
}
