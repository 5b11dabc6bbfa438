// Reading and writing safetensors files, the weights format of cnngraph (the format
// PyTorch and NumPy users write with the `safetensors` package). See docs/weights-format.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "cnngraph/image.hpp"

namespace cnngraph {

struct Tensor {
  DataType type = DataType::f32;
  std::vector<std::int64_t> shape;
  std::vector<std::byte> bytes;  // little-endian elements, row-major

  std::size_t elements() const;
  static Tensor from_floats(std::vector<std::int64_t> shape, const std::vector<float>& values);
  std::vector<float> to_floats() const;
};

// Throws DataSourceError naming the file on any I/O or format problem.
std::map<std::string, Tensor> read_weights_file(const std::filesystem::path& path);
void write_weights_file(const std::filesystem::path& path,
                        const std::map<std::string, Tensor>& tensors);

}  // namespace cnngraph
