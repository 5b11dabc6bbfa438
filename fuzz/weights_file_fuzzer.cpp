// libFuzzer target of the weights-file reader: any input either reads as tensors that are
// consistent and survive a write and a second read unchanged, or fails with a cnngraph::Error.
// Anything else (a crash, a sanitizer report, another exception, a hang) is a bug.
// Built and run by fuzz/run.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "cnngraph/errors.hpp"
#include "cnngraph/weights_file.hpp"
#include "fuzz_support.hpp"

namespace {

namespace fs = std::filesystem;
constexpr const char* kTarget = "weights_file_fuzzer";

const fs::path& folder() { return fuzz_support::folder(kTarget); }
void check(bool condition, const char* what) { fuzz_support::check(condition, kTarget, what); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const fs::path input = folder() / "input.safetensors";
  fuzz_support::write_input(input, data, size, kTarget);
  std::map<std::string, cnngraph::Tensor> tensors;
  try {
    tensors = cnngraph::read_weights_file(input);
  } catch (const cnngraph::Error&) {
    return 0;  // a refused file: fine, as long as the refusal is one of ours
  }
  for (const auto& [name, t] : tensors) {
    check(t.bytes.size() == t.elements() * cnngraph::size_of(t.type), "byte count");
    check(t.to_floats().size() == t.elements(), "to_floats");
  }
  const fs::path copy = folder() / "copy.safetensors";
  cnngraph::write_weights_file(copy, tensors);
  const auto again = cnngraph::read_weights_file(copy);
  check(again.size() == tensors.size(), "round trip: tensor count");
  for (const auto& [name, t] : tensors) {
    const auto found = again.find(name);
    check(found != again.end(), "round trip: a tensor is missing");
    check(found->second.type == t.type && found->second.shape == t.shape &&
              found->second.bytes == t.bytes,
          "round trip: a tensor changed");
  }
  return 0;
}
