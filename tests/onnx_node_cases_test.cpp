// ONNX's own backend node test cases (tests/onnx/make_node_cases.py, ctest fixture
// OnnxNodeCases) for every operator the importer converts: each case is imported and run on
// cpu_reference and cpu against ONNX's expected outputs. A case passes, or is skipped with a
// reason: by the generator (an input cnngraph has no image for, a data type it lacks) or by
// the importer refusing it (Unsupported, which names the reason). Anything else fails.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <iostream>
#include <map>

#include "cnngraph/cnngraph.hpp"
#include "cnngraph/onnx.hpp"
#include "onnx_test_support.hpp"

namespace cnngraph {
namespace {

std::filesystem::path cases() {
  const char* dir = std::getenv("CNNGRAPH_ONNX_NODE_CASES");
  return dir ? std::filesystem::path(dir) : std::filesystem::path(CNNGRAPH_ONNX_NODE_CASES_DIR);
}

Image image_of(const std::vector<float>& values, const std::vector<int>& shape) {
  if (shape.size() == 4)
    return Image::from_nchw(ImageShape{shape[0], shape[2], shape[3], shape[1]}, values);
  if (shape.size() == 2) return Image::from_nchw(ImageShape{shape[0], 1, 1, shape[1]}, values);
  throw std::runtime_error("an input of rank " + std::to_string(shape.size()));
}

// Empty when the case matches on every device, else what differs.
std::string run_case(const std::filesystem::path& folder) {
  const auto imported = onnx::import(folder / "model.onnx");
  std::map<const ImageNode*, Image> inputs;
  for (std::size_t i = 0; i < imported.inputs.size(); ++i) {
    std::vector<int> shape;
    const auto values = read_npy(folder / ("input_" + std::to_string(i) + ".npy"), shape);
    inputs.emplace(imported.inputs[i].get(), image_of(values, shape));
  }
  for (const Device& device : devices()) {
    Graph graph(device, imported.outputs, std::vector<bool>(imported.outputs.size(), true));
    std::vector<Image> sources;
    for (const auto& handle : graph.source_image_handles())
      sources.push_back(inputs.at(handle.get()));
    const auto results = graph.run(sources);
    for (std::size_t o = 0; o < imported.outputs.size(); ++o) {
      std::vector<int> shape;
      const auto want = read_npy(folder / ("output_" + std::to_string(o) + ".npy"), shape);
      const Image& result = results[o];
      const auto got = shape.size() == 4 ? result.to_nchw() : result.to_floats();
      if (got.size() != want.size())
        return device.name() + ": output " + std::to_string(o) + " has " +
               std::to_string(got.size()) + " elements, ONNX's " + std::to_string(want.size());
      for (std::size_t i = 0; i < got.size(); ++i) {
        const bool both_nan = std::isnan(got[i]) && std::isnan(want[i]);
        if (!both_nan && !(std::abs(got[i] - want[i]) <= 1e-5f + 1e-3f * std::abs(want[i])))
          return device.name() + ": output " + std::to_string(o) + " element " + std::to_string(i) +
                 " is " + std::to_string(got[i]) + ", ONNX's " + std::to_string(want[i]);
      }
    }
  }
  return {};
}

// The first line of an importer's refusal, without the file name: the reason of the skip.
std::string refusal_reason(const std::string& message) {
  const auto line = message.find("\n  ");
  std::string reason = line == std::string::npos ? message : message.substr(line + 3);
  const auto next = reason.find('\n');
  if (next != std::string::npos) reason = reason.substr(0, next) + " (and more)";
  return reason;
}

struct Tally {
  int passed = 0, total = 0;
  std::map<std::string, int> skipped;  // by reason
};

TEST(OnnxNodeCases, EveryCaseOfEverySupportedOperatorPassesOrIsSkippedWithAReason) {
  std::ifstream manifest(cases() / "manifest.tsv");
  ASSERT_TRUE(manifest) << "no manifest in " << cases();
  std::map<std::string, Tally> tallies;
  std::vector<std::string> failures;
  for (std::string line; std::getline(manifest, line);) {
    if (line.empty()) continue;
    std::vector<std::string> fields;
    std::istringstream in(line);
    for (std::string f; std::getline(in, f, '\t');) fields.push_back(f);
    ASSERT_GE(fields.size(), 3u) << line;
    Tally& tally = tallies[fields[0]];
    ++tally.total;
    if (fields[2] == "skip") {
      ASSERT_EQ(fields.size(), 4u) << "a skip without a reason: " << line;
      ++tally.skipped[fields[3]];
      continue;
    }
    try {
      const std::string difference = run_case(cases() / fields[1]);
      if (difference.empty())
        ++tally.passed;
      else
        failures.push_back(fields[1] + ": " + difference);
    } catch (const Unsupported& e) {
      ++tally.skipped["refused: " + refusal_reason(e.what())];
    } catch (const std::exception& e) {
      failures.push_back(fields[1] + ": " + e.what());
    }
  }
  int passed = 0, total = 0;
  for (const auto& [op, t] : tallies) {
    int skipped = 0;
    for (const auto& [reason, n] : t.skipped) skipped += n;
    std::cout << op << ": passed " << t.passed << " of " << t.total << ", skipped " << skipped;
    for (const auto& [reason, n] : t.skipped) std::cout << "\n    " << n << " x " << reason;
    std::cout << "\n";
    passed += t.passed;
    total += t.total;
  }
  std::cout << "all: passed " << passed << " of " << total << "\n";
  for (const auto& f : failures) ADD_FAILURE() << f;
}

}  // namespace
}  // namespace cnngraph
