// Reading Fashion-MNIST's gzip-compressed idx files (Debian's dataset-fashion-mnist).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace examples {

inline const char* kDefaultFashionMnistDir = "/usr/share/datasets/fashion-mnist";

struct Dataset {
  int count = 0, rows = 0, columns = 0;
  std::vector<std::uint8_t> pixels;  // count * rows * columns, row-major
  std::vector<std::uint8_t> labels;  // count, 0..9
};

// split is "train" or "t10k". Throws std::runtime_error naming the file, and the Debian
// package to install when the directory is missing.
Dataset load_fashion_mnist(const std::filesystem::path& dir, const std::string& split);

}  // namespace examples
