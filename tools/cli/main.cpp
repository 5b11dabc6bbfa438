// The cnngraph program (docs/cli.md): run, bench, describe and convert models, in the
// spirit of trtexec and onnxruntime_perf_test. Exit codes: 0 success, 1 a failure (a file
// that is missing or malformed, a model or input the library refuses), 2 a usage error.
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>
#include <string>

#include "commands.hpp"
#include "model.hpp"

namespace {

constexpr const char* kUsage =
    "usage: cnngraph <command> [options]\n"
    "\n"
    "Runs CNN models with cnngraph: saved graphs (.safetensors, docs/saved-graphs.md) and\n"
    "ONNX files (told apart by their content).\n"
    "\n"
    "commands:\n"
    "  run MODEL        one batch (--input x.npy or seeded random), its output's shape and\n"
    "                   top-5; --output y.npy\n"
    "  bench MODEL      cold start, median latency and images/s\n"
    "  describe MODEL   the compiled graph: steps, shapes, fusion, memory\n"
    "  convert IN.onnx OUT.safetensors\n"
    "                   an ONNX model to a saved graph\n"
    "\n"
    "`cnngraph <command> --help` lists a command's options. Exit codes: 0 success,\n"
    "1 failure, 2 usage error.\n";

}  // namespace

int main(int argc, char** argv) {
  using namespace cnngraph::cli;
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string command = argv[1];
  if (command == "-h" || command == "--help" || command == "help") {
    std::fputs(kUsage, stdout);
    std::printf("\nONNX import: %s\n", onnx_available() ? "built" : "not built");
    return 0;
  }
  std::string name = "cnngraph " + command;
  argv[1] = name.data();
  try {
    if (command == "run") return run_command(argc - 1, argv + 1);
    if (command == "bench") return bench_command(argc - 1, argv + 1);
    if (command == "describe") return describe_command(argc - 1, argv + 1);
    if (command == "convert") return convert_command(argc - 1, argv + 1);
    std::fprintf(stderr, "cnngraph: unknown command '%s'\n\n%s", command.c_str(), kUsage);
    return 2;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "%s: %s (see %s --help)\n", name.c_str(), e.what(), name.c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", name.c_str(), e.what());
    return 1;
  }
}
