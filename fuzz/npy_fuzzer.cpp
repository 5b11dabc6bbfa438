// libFuzzer target of the .npy reader of the cnngraph program (tools/cli/npy.hpp): any input
// either reads, from memory and from a file alike, as an array whose values match its shape
// and that survives a write and a second read unchanged, or fails with a cnngraph::Error.
// Anything else (a crash, a sanitizer report, another exception, a hang) is a bug.
// Built and run by fuzz/run.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <vector>

#include "cnngraph/errors.hpp"
#include "fuzz_support.hpp"
#include "npy.hpp"

namespace {

namespace fs = std::filesystem;
constexpr const char* kTarget = "npy_fuzzer";

const fs::path& folder() { return fuzz_support::folder(kTarget); }
void check(bool condition, const char* what) { fuzz_support::check(condition, kTarget, what); }

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using cnngraph::cli::NpyArray;
  std::optional<NpyArray> in_memory;
  try {
    in_memory = cnngraph::cli::parse_npy({data, size}, "input");
  } catch (const cnngraph::Error&) {
  }
  const fs::path input = folder() / "input.npy";
  fuzz_support::write_input(input, data, size, kTarget);
  std::optional<NpyArray> from_file;
  try {
    from_file = cnngraph::cli::read_npy(input);
  } catch (const cnngraph::Error&) {
  }
  check(in_memory.has_value() == from_file.has_value(), "memory and file readers disagree");
  if (!in_memory) return 0;
  check(in_memory->shape == from_file->shape && same_bits(in_memory->values, from_file->values),
        "memory and file readers read different arrays");
  std::size_t elements = 1;
  for (const auto d : in_memory->shape) elements *= static_cast<std::size_t>(d);
  check(elements == in_memory->values.size(), "element count");
  // float32 holds every value read (float16 and float64 were converted to it).
  const fs::path copy = folder() / "copy.npy";
  cnngraph::cli::write_npy(copy, in_memory->shape, in_memory->values);
  const NpyArray again = cnngraph::cli::read_npy(copy);
  check(again.shape == in_memory->shape && same_bits(again.values, in_memory->values),
        "round trip: the array changed");
  return 0;
}
