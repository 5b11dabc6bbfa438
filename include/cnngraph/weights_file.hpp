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

  // The product of the shape; InvalidArgument for a negative dimension or on overflow.
  std::size_t elements() const;
  // InvalidArgument when the shape does not hold values.size() elements.
  static Tensor from_floats(std::vector<std::int64_t> shape, const std::vector<float>& values);
  // InvalidArgument when `bytes` does not hold exactly the shape's elements of `type`.
  std::vector<float> to_floats() const;
};

// Reads a regular file that follows the safetensors rules exactly; throws DataSourceError
// naming the file, the tensor and the problem otherwise.
std::map<std::string, Tensor> read_weights_file(const std::filesystem::path& path);
// The tensors and the `__metadata__` strings (empty when the file has none), checked as
// read_weights_file checks them.
struct WeightsFileContents {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;
};
WeightsFileContents read_weights_file_with_metadata(const std::filesystem::path& path);
// Replaces `path` atomically (a temporary file beside it, fsync, rename, fsync of the
// folder): the file is always the old or the complete new one. Throws DataSourceError
// naming the file when any write, fsync, close or the rename fails, and InvalidArgument for
// an inconsistent tensor (then nothing is written).
void write_weights_file(const std::filesystem::path& path,
                        const std::map<std::string, Tensor>& tensors);
// The same with `metadata` as the header's `__metadata__` object of strings (left out when
// empty).
void write_weights_file(const std::filesystem::path& path,
                        const std::map<std::string, Tensor>& tensors,
                        const std::map<std::string, std::string>& metadata);

}  // namespace cnngraph
