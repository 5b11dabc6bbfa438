// Every op case (tests/op_cases.cpp) on every backend of this build and machine, in every
// precision, against the reference backend: the result and, for cases with gradients, the
// gradient of each source (and the weight gradients of a `train` case). The finite-difference
// checks of the gradients themselves stay on the reference backend (gradient_test and the
// per-op tests). Test names: <backend>_<precision>_<problem string>.
#include <cctype>
#include <cstdint>

#include "cuda_support.hpp"
#include "gradient_support.hpp"
#include "op_cases.hpp"

using namespace cnngraph;
using namespace cnngraph::testing;

namespace {

struct BackendCase {
  DeviceKind device;
  Precision precision;
  std::size_t index;  // into op_cases()
};

const char* precision_name(Precision precision) {
  for (const PrecisionCase& p : kPrecisions)
    if (p.precision == precision) return p.name;
  return "?";
}

// The problem string as a test name: letters, digits and underscores only.
std::string test_name(const BackendCase& c) {
  std::string name = std::string(c.device == DeviceKind::cuda ? "cuda" : "cpu") + "_" +
                     precision_name(c.precision) + "_";
  for (const char ch : op_cases()[c.index].problem) {
    if (std::isalnum(static_cast<unsigned char>(ch)))
      name += ch;
    else if (ch == '+')
      name += "then_";
    else if (ch == '-')
      name += 'm';
    else if (ch == '.')
      name += 'p';
    else if (name.back() != '_')
      name += '_';
  }
  return name;
}

// The CPU (oneDNN) backend in f32, f16 and bf16; CUDA also with TF32 allowed.
std::vector<BackendCase> every_backend_case() {
  std::vector<BackendCase> all;
  for (std::size_t i = 0; i < op_cases().size(); ++i) {
    for (const Precision p : {Precision::f32, Precision::f16, Precision::bf16})
      all.push_back({DeviceKind::cpu, p, i});
    for (const Precision p :
         {Precision::f32, Precision::tf32_allowed, Precision::f16, Precision::bf16})
      all.push_back({DeviceKind::cuda, p, i});
  }
  return all;
}

// FNV-1a of the problem: each case draws the same data in every run and on every backend.
unsigned seed_of(const std::string& text) {
  std::uint32_t hash = 2166136261u;
  for (const char ch : text) hash = (hash ^ static_cast<unsigned char>(ch)) * 16777619u;
  return hash;
}

class BackendOps : public ::testing::TestWithParam<BackendCase> {};

}  // namespace

TEST_P(BackendOps, ResultAndGradientsMatchTheReference) {
  const BackendCase& param = GetParam();
  const OpCase& c = op_cases()[param.index];
  if (param.device == DeviceKind::cuda && Device::cuda_device_count() == 0)
    GTEST_SKIP() << "no CUDA GPU on this machine (or this build has no CUDA backend)";
  const Device device = param.device == DeviceKind::cuda ? Device::cuda() : Device::cpu();
  const GraphOptions options = options_for(param.precision);
  std::mt19937 rng(seed_of(c.problem));
  const OpGraph g = c.build(rng);
  // In 16-bit precisions the reference computes on the values the backend sees.
  std::map<std::string, Image> inputs;
  for (std::size_t i = 0; i < g.inputs.size(); ++i)
    inputs["x" + std::to_string(i)] = rounded_for(g.inputs[i], param.precision);

  Graph reference(Device::cpu_reference(), g.node->result_image());
  Graph tested(device, g.node->result_image(), true, options);
  const Image want = run_named(reference, inputs);
  const Image got = run_named(tested, inputs);
  if (param.device == DeviceKind::cuda) {
    EXPECT_FALSE(got.is_on_host());
  }
  EXPECT_LE(max_relative_error(got.converted_to(DataType::f32), want),
            c.tolerance(param.device, param.precision, false))
      << tested.describe();

  if (!c.has_gradient() || (param.device == DeviceKind::cuda && !c.cuda_gradient)) return;
  const double tolerance = c.tolerance(param.device, param.precision, true);
  auto dy = std::make_shared<ImageNode>("dy");
  inputs["dy"] = rounded_for(random_image(want.shape(), rng), param.precision);
  for (std::size_t i = 0; i < g.sources.size(); ++i) {
    SCOPED_TRACE("gradient of source " + std::to_string(i));
    const auto gradient = g.node->gradient_filter_for(i, dy)->result_image();
    Graph reference_gradient(Device::cpu_reference(), gradient);
    Graph tested_gradient(device, gradient, true, options);
    const Image want_dx = run_named(reference_gradient, inputs);
    const ConvolutionGradientState expected =
        g.recording ? g.recording->last_gradient : ConvolutionGradientState{};
    const Image got_dx = run_named(tested_gradient, inputs).converted_to(DataType::f32);
    EXPECT_LE(max_relative_error(got_dx, want_dx), tolerance) << tested_gradient.describe();
    if (g.recording && i == 0) {
      const ConvolutionGradientState& actual = g.recording->last_gradient;
      EXPECT_EQ(g.recording->updates, 2);
      EXPECT_LE(max_relative_error(actual.weights_gradient, expected.weights_gradient), tolerance)
          << "weight gradient";
      EXPECT_LE(max_relative_error(actual.bias_gradient, expected.bias_gradient), tolerance)
          << "bias gradient";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(EveryCase, BackendOps, ::testing::ValuesIn(every_backend_case()),
                         [](const ::testing::TestParamInfo<BackendCase>& info) {
                           return test_name(info.param);
                         });
