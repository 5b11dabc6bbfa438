// The op cases every backend runs against the reference backend (tests/backend_ops_test.cpp):
// each is a problem string (tests/problem_string.hpp, docs/testing.md) from which its graph
// is built, its tolerances per backend and precision, and whether its gradients are compared.
#pragma once

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gradient_support.hpp"
#include "problem_string.hpp"

namespace cnngraph::testing {

// A graph built from a problem: the node whose result is compared, its sources (handles
// "x0", "x1", ...) with their images, and the weights whose gradients are compared too (the
// `train` flag), if any.
struct OpGraph {
  std::shared_ptr<FilterNode> node;
  std::vector<std::shared_ptr<ImageNode>> sources;
  std::vector<Image> inputs;
  std::shared_ptr<RecordingSource> recording;
};

// Builds the graph of `problem` with weights and inputs drawn from `rng`; throws
// std::invalid_argument for an op or token it does not know.
OpGraph build_problem(const ProblemString& problem, std::mt19937& rng);

// The notation of a neuron: its type name, with =a[,b[,c]] unless it is `make(type)`, and
// prelu's slopes listed.
std::string neuron_token(const NeuronDescriptor& neuron);

struct OpCase {
  std::string problem;  // also the test's name
  // The CPU (oneDNN) backend's f32 tolerance, max |a - b| / (1 + |b|), for the result and
  // (when gradient_f32 >= 0) for every gradient; < 0: no gradients compared.
  double f32 = 2e-5;
  double gradient_f32 = -1.0;
  // CUDA's tolerances are cuda_support.hpp's per precision, times this.
  double cuda_scale = 1.0;

  bool has_gradient() const { return gradient_f32 >= 0.0; }
  // The tolerance on `device` (cpu or cuda) in `precision`, for the result or a gradient.
  double tolerance(DeviceKind device, Precision precision, bool gradient) const;
  OpGraph build(std::mt19937& rng) const { return build_problem(parse_problem(problem), rng); }
};

// Every case, each problem once.
const std::vector<OpCase>& op_cases();

}  // namespace cnngraph::testing
