// libFuzzer target of the ONNX importer: any input either imports as a model whose outputs
// are nodes of the graph, or fails with a cnngraph::Error. Anything else (a crash, a
// sanitizer report, another exception, a hang, an allocation past the limit) is a bug.
// Built and run by fuzz/run where the ONNX component is (libonnx-dev and protobuf).
#include <cstdint>
#include <filesystem>

#include "cnngraph/errors.hpp"
#include "cnngraph/onnx.hpp"
#include "fuzz_support.hpp"

namespace {

namespace fs = std::filesystem;
constexpr const char* kTarget = "onnx_import_fuzzer";

const fs::path& folder() { return fuzz_support::folder(kTarget); }
void check(bool condition, const char* what) { fuzz_support::check(condition, kTarget, what); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // External data resolves next to the model, inside this private folder.
  const fs::path input = folder() / "model.onnx";
  fuzz_support::write_input(input, data, size, kTarget);
  cnngraph::onnx::ImportedModel model;
  try {
    model = cnngraph::onnx::import(input);
  } catch (const cnngraph::Error&) {
    return 0;  // a refused model: fine, as long as the refusal is one of ours
  }
  check(model.inputs.size() == model.input_shapes.size(), "an input without its shape");
  check(model.outputs.size() == model.output_names.size(), "an output without its name");
  for (const auto& output : model.outputs) check(output != nullptr, "a null output");
  for (const auto& [name, source] : model.weights) check(source != nullptr, "a null source");
  return 0;
}
