// Every op case (tests/op_cases.cpp) on every backend of this build and machine, in every
// precision, against the reference backend: the result and, for cases with gradients, the
// gradient of each source (and the weight gradients of a `train` case). The finite-difference
// checks of the gradients themselves stay on the reference backend (gradient_test and the
// per-op tests). Test names: <backend>_<precision>_<problem string>.
#include <cctype>
#include <cstdint>
#include <fstream>
#include <stdexcept>

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

  if (!c.has_gradient()) return;
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

TEST(ProblemString, ReadsALabelDimensionsOptionsFlagsAndFollowingNodes) {
  const ProblemString p =
      parse_problem("stem: conv n2 c5 h9 w7 k6 r3x5 s2 g1 pad=same/c/br relu=0.1 nobias +bn +add");
  EXPECT_EQ(p.label, "stem");
  EXPECT_EQ(p.op, "conv");
  EXPECT_EQ(p.dim('n'), 2);
  EXPECT_EQ(p.dim2('r', {1, 1}), (std::pair{3, 5}));
  EXPECT_EQ(p.dim2('s', {1, 1}), (std::pair{2, 2}));
  EXPECT_EQ(p.dim('d', 1), 1);
  EXPECT_EQ(p.option_or("pad", ""), "same/c/br");
  EXPECT_EQ(p.number_or("relu", 0), 0.1);
  EXPECT_TRUE(p.flag("nobias"));
  ASSERT_EQ(p.post.size(), 2u);
  EXPECT_EQ(p.post[1].first, "add");
  // A colon inside a value is no label.
  EXPECT_EQ(parse_problem("binconv n1 c3 h4 w4 k2 x=-1.5:1.5").label, "");
}

TEST(ProblemString, ReadsSizeOptionsInNhwcOrder) {
  const ProblemString p = parse_problem("mul n2 c8 h5 w3 src1=2x1x3x8");
  EXPECT_EQ(p.shape_option("src1"), (std::array<int, 4>{2, 1, 3, 8}));
  EXPECT_EQ(p.shape_option("src0"), std::nullopt);
  for (const char* bad : {"2x1x3", "2x1x3x8x1", "2x0x3x8", "2xx3x8", "2x1x3xc"})
    EXPECT_THROW(parse_problem(std::string("mul src1=") + bad).shape_option("src1"),
                 std::invalid_argument)
        << bad;
}

TEST(ProblemString, EveryCaseIsWrittenInCanonicalOrderAndBuilds) {
  for (const OpCase& c : op_cases()) {
    EXPECT_EQ(parse_problem(c.problem).text(), c.problem);
    std::mt19937 rng(1);
    EXPECT_NO_THROW(c.build(rng)) << c.problem;
  }
}

TEST(ProblemString, BadTokensAndUnknownOpsAreClearErrors) {
  for (const char* bad : {"", "label:", "conv n2 n3", "conv n2x", "conv =3", "conv +"}) {
    EXPECT_THROW(parse_problem(bad), std::invalid_argument) << bad;
  }
  std::mt19937 rng(1);
  try {
    build_problem(parse_problem("convolve n1 c1 h1 w1"), rng);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("convolve"), std::string::npos) << e.what();
  }
  EXPECT_THROW(build_problem(parse_problem("conv n1 c2 h3 w3 k2 pad=sideways"), rng),
               std::invalid_argument);
  EXPECT_THROW(parse_problem("neuron n1 h1 w1").dim('c'), std::invalid_argument);
}

TEST(ProblemString, TheBenchmarksCaseFilesAreLabelledProblems) {
  for (const char* name :
       {"conv_cpu_cases.txt", "conv_cuda_cases.txt", "conv_cuda_stem_cases.txt", "lrn_cases.txt"}) {
    std::ifstream in(std::string(CNNGRAPH_SOURCE_DIR) + "/bench/" + name);
    ASSERT_TRUE(in) << name;
    const auto problems = read_problem_lines(in);
    EXPECT_GE(problems.size(), 3u) << name;
    for (const ProblemString& p : problems) {
      EXPECT_FALSE(p.label.empty()) << name << ": " << p.text();
      EXPECT_EQ(p.op, std::string(name).rfind("lrn", 0) == 0 ? "lrn" : "conv") << name;
      for (const char dim : {'n', 'c', 'h', 'w'}) EXPECT_TRUE(p.has(dim)) << p.text();
    }
  }
}
