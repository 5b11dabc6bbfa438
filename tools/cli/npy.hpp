// NumPy .npy files (format versions 1.0, 2.0 and 3.0): the inputs and outputs of the
// cnngraph program (docs/cli.md). A .npy file is untrusted input: its header length, shape
// and element count are bounded with checked arithmetic and the file's size must be exactly
// what the header says; every refusal is a DataSourceError naming the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "cnngraph/image.hpp"

namespace cnngraph::cli {

// The largest header read (numpy's own writers stay far below it).
inline constexpr std::size_t kMaxNpyHeaderBytes = 65536;
// The most dimensions an array may have.
inline constexpr std::size_t kMaxNpyDimensions = 8;

struct NpyArray {
  std::vector<std::int64_t> shape;  // C order; empty for a scalar
  std::string descr;                // the element type as read: "<f4", "<f2" or "<f8"
  std::vector<float> values;        // every element, converted to float

  std::size_t elements() const { return values.size(); }
};

// Parses a whole .npy file held in memory; `name` names it in errors.
NpyArray parse_npy(std::span<const std::uint8_t> bytes, const std::string& name);
// Reads a .npy file. Little-endian float32, float16 and float64 in C order; anything else
// (another type, big-endian, Fortran order, a header that is not numpy's dictionary, a
// size that does not match) is refused.
NpyArray read_npy(const std::filesystem::path& path);

// Writes `values` (C order, `shape`) as a version 1.0 file of float32 or float16
// (DataType::f32 or f16; others are refused). Throws DataSourceError when it cannot write.
void write_npy(const std::filesystem::path& path, const std::vector<std::int64_t>& shape,
               std::span<const float> values, DataType type = DataType::f32);

}  // namespace cnngraph::cli
