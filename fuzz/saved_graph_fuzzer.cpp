// libFuzzer target of the saved-graph loader: any input either loads as a graph that saves
// and loads again with the same nodes, or fails with a cnngraph::Error. Anything else (a
// crash, a sanitizer report, another exception, a hang, an allocation past the limit) is a
// bug. Built and run by fuzz/run.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "cnngraph/errors.hpp"
#include "cnngraph/saved_graph.hpp"
#include "fuzz_support.hpp"

namespace {

namespace fs = std::filesystem;
constexpr const char* kTarget = "saved_graph_fuzzer";

const fs::path& folder() { return fuzz_support::folder(kTarget); }
void check(bool condition, const char* what) { fuzz_support::check(condition, kTarget, what); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const fs::path input = folder() / "input.safetensors";
  fuzz_support::write_input(input, data, size, kTarget);
  cnngraph::SavedGraph graph;
  try {
    graph = cnngraph::load_graph(input);
  } catch (const cnngraph::Error&) {
    return 0;  // a refused file: fine, as long as the refusal is one of ours
  }
  check(!graph.results.empty(), "a loaded graph without results");
  const fs::path copy = folder() / "copy.safetensors";
  try {
    cnngraph::save_graph(copy, graph.results);
  } catch (const cnngraph::InvalidArgument&) {
    return 0;  // e.g. a data source used by two nodes: loads, but checkpoints refuse it
  }
  const cnngraph::SavedGraph again = cnngraph::load_graph(copy);
  check(again.nodes.size() <= graph.nodes.size(), "round trip: more nodes");
  check(again.results.size() == graph.results.size(), "round trip: result count");
  for (std::size_t i = 0; i < again.nodes.size(); ++i) {
    check(
        again.nodes[i]->kind() == graph.nodes[i]->kind() || again.nodes.size() < graph.nodes.size(),
        "round trip: a node changed kind");
  }
  return 0;
}
