// libFuzzer target of the saved-graph loader: any input either loads as a graph that saves
// and loads again with the same nodes, or fails with a cnngraph::Error. Anything else (a
// crash, a sanitizer report, another exception, a hang, an allocation past the limit) is a
// bug. Built and run by fuzz/run.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "cnngraph/errors.hpp"
#include "cnngraph/saved_graph.hpp"

namespace {

namespace fs = std::filesystem;

// A private folder for the input file, on tmpfs where there is one.
const fs::path& folder() {
  static const fs::path path = [] {
    std::string base = "/tmp";
    if (const char* dir = std::getenv("CNNGRAPH_FUZZ_TMP")) {
      base = dir;
    } else if (::access("/dev/shm", W_OK) == 0) {
      base = "/dev/shm";
    }
    std::string name = base + "/saved_graph_fuzzer.XXXXXX";
    if (!::mkdtemp(name.data())) {
      std::perror("mkdtemp");
      std::abort();
    }
    std::atexit([] { fs::remove_all(folder()); });
    return fs::path(name);
  }();
  return path;
}

void check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "saved_graph_fuzzer: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const fs::path input = folder() / "input.safetensors";
  {
    std::ofstream out(input, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    check(static_cast<bool>(out.flush()), "cannot write the input file");
  }
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
