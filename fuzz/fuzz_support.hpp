// What every fuzz target of fuzz/ shares: a private scratch folder for the input file and the
// check that turns a broken invariant into a crash libFuzzer reports.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace fuzz_support {

namespace fs = std::filesystem;

// A private folder, on tmpfs where there is one (every round trip fsyncs), removed at exit.
// CNNGRAPH_FUZZ_TMP chooses another base.
inline const fs::path& folder(const char* target) {
  static const fs::path path = [target] {
    std::string base = "/tmp";
    if (const char* dir = std::getenv("CNNGRAPH_FUZZ_TMP")) {
      base = dir;
    } else if (::access("/dev/shm", W_OK) == 0) {
      base = "/dev/shm";
    }
    std::string name = base + "/" + target + ".XXXXXX";
    if (!::mkdtemp(name.data())) {
      std::perror("mkdtemp");
      std::abort();
    }
    return fs::path(name);
  }();
  static const bool cleanup = [] { return std::atexit([] { fs::remove_all(path); }) == 0; }();
  (void)cleanup;
  return path;
}

inline void check(bool condition, const char* target, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "%s: %s\n", target, what);
    std::abort();
  }
}

// Writes the fuzzer's input to `path`.
inline void write_input(const fs::path& path, const std::uint8_t* data, std::size_t size,
                        const char* target) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  check(static_cast<bool>(out.flush()), target, "cannot write the input file");
}

}  // namespace fuzz_support
