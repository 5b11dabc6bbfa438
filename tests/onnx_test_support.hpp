// What the ONNX tests share: reading the .npy files their Python generators write, and the
// devices to run on.
#pragma once

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cnngraph/device.hpp"
#include "cnngraph/errors.hpp"

namespace cnngraph {

// A float32, C-order .npy file (what make_models.py writes).
inline std::vector<float> read_npy(const std::filesystem::path& path, std::vector<int>& shape) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() < 10 || bytes.compare(1, 5, "NUMPY") != 0) throw std::runtime_error("npy");
  const std::size_t header_length =
      static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
  const std::string header = bytes.substr(10, header_length);
  if (header.find("'<f4'") == std::string::npos || header.find("False") == std::string::npos)
    throw std::runtime_error("npy: not float32 C order");
  shape.clear();
  std::istringstream dims(header.substr(header.find('(') + 1));
  for (int d; dims >> d;) {
    shape.push_back(d);
    if (dims.peek() == ',') dims.get();
  }
  std::vector<float> values((bytes.size() - 10 - header_length) / sizeof(float));
  std::memcpy(values.data(), bytes.data() + 10 + header_length, values.size() * sizeof(float));
  return values;
}

// Every device this build and machine have: the reference, the CPU backend where oneDNN is
// built, and the first GPU where there is one.
inline std::vector<Device> devices() {
  std::vector<Device> all{Device::cpu_reference()};
  try {
    all.push_back(Device::cpu());
  } catch (const DeviceError&) {
  }
  if (Device::cuda_device_count() > 0) all.push_back(Device::cuda());
  return all;
}

}  // namespace cnngraph
