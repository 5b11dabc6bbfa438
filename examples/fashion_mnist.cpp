#include "fashion_mnist.hpp"

#include <zlib.h>

#include <stdexcept>

namespace examples {

namespace {

std::vector<std::uint8_t> read_gzip(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) {
    throw std::runtime_error(path.string() +
                             " not found: install Debian's dataset-fashion-mnist "
                             "package (apt-get install dataset-fashion-mnist) or pass --data-dir");
  }
  gzFile file = gzopen(path.c_str(), "rb");
  if (!file) throw std::runtime_error("cannot open " + path.string());
  std::vector<std::uint8_t> data;
  std::uint8_t buffer[1 << 16];
  int n;
  while ((n = gzread(file, buffer, sizeof buffer)) > 0) data.insert(data.end(), buffer, buffer + n);
  const bool failed = n < 0;
  gzclose(file);
  if (failed) throw std::runtime_error("corrupt gzip data in " + path.string());
  return data;
}

std::uint32_t big_endian(const std::vector<std::uint8_t>& d, std::size_t at) {
  return (std::uint32_t{d[at]} << 24) | (std::uint32_t{d[at + 1]} << 16) |
         (std::uint32_t{d[at + 2]} << 8) | d[at + 3];
}

}  // namespace

Dataset load_fashion_mnist(const std::filesystem::path& dir, const std::string& split) {
  const auto images_path = dir / (split + "-images-idx3-ubyte.gz");
  const auto labels_path = dir / (split + "-labels-idx1-ubyte.gz");
  const auto images = read_gzip(images_path);
  const auto labels = read_gzip(labels_path);
  if (images.size() < 16 || big_endian(images, 0) != 0x803) {
    throw std::runtime_error(images_path.string() + " is not an idx3 image file");
  }
  if (labels.size() < 8 || big_endian(labels, 0) != 0x801) {
    throw std::runtime_error(labels_path.string() + " is not an idx1 label file");
  }
  Dataset d;
  d.count = static_cast<int>(big_endian(images, 4));
  d.rows = static_cast<int>(big_endian(images, 8));
  d.columns = static_cast<int>(big_endian(images, 12));
  const std::size_t pixels = static_cast<std::size_t>(d.count) * d.rows * d.columns;
  if (images.size() != 16 + pixels || labels.size() != 8 + static_cast<std::size_t>(d.count) ||
      big_endian(labels, 4) != static_cast<std::uint32_t>(d.count)) {
    throw std::runtime_error("Fashion-MNIST " + split +
                             " files are truncated or disagree in count");
  }
  d.pixels.assign(images.begin() + 16, images.end());
  d.labels.assign(labels.begin() + 8, labels.end());
  return d;
}

}  // namespace examples
