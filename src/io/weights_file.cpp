// safetensors reading and writing: an 8-byte little-endian header length, a JSON header
// {"name": {"dtype", "shape", "data_offsets"}}, then the raw little-endian data.
#include "cnngraph/weights_file.hpp"

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cnngraph/errors.hpp"

namespace cnngraph {

namespace {

const char* safetensors_dtype(DataType type) {
  switch (type) {
    case DataType::f32:
      return "F32";
    case DataType::f16:
      return "F16";
    case DataType::bf16:
      return "BF16";
    case DataType::u8:
      return "U8";
  }
  return "?";
}

DataType parse_dtype(const std::string& name, const std::string& where) {
  if (name == "F32") return DataType::f32;
  if (name == "F16") return DataType::f16;
  if (name == "BF16") return DataType::bf16;
  if (name == "U8") return DataType::u8;
  throw DataSourceError(where + ": dtype " + name + " is not supported (F32, F16, BF16, U8)");
}

}  // namespace

std::size_t Tensor::elements() const {
  std::size_t count = 1;
  for (auto d : shape) count *= static_cast<std::size_t>(d);
  return count;
}

Tensor Tensor::from_floats(std::vector<std::int64_t> shape, const std::vector<float>& values) {
  Tensor t;
  t.shape = std::move(shape);
  if (t.elements() != values.size()) {
    throw InvalidArgument("Tensor::from_floats: shape holds " + std::to_string(t.elements()) +
                          " elements, got " + std::to_string(values.size()));
  }
  t.bytes.resize(values.size() * sizeof(float));
  std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

std::vector<float> Tensor::to_floats() const {
  std::vector<float> out(elements());
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::uint16_t h = 0;
    switch (type) {
      case DataType::f32:
        std::memcpy(&out[i], bytes.data() + 4 * i, 4);
        break;
      case DataType::f16:
        std::memcpy(&h, bytes.data() + 2 * i, 2);
        out[i] = half_to_float(h);
        break;
      case DataType::bf16:
        std::memcpy(&h, bytes.data() + 2 * i, 2);
        out[i] = bfloat16_to_float(h);
        break;
      case DataType::u8:
        out[i] = static_cast<float>(std::to_integer<int>(bytes[i]));
        break;
    }
  }
  return out;
}

std::map<std::string, Tensor> read_weights_file(const std::filesystem::path& path) {
  const std::string where = "weights file " + path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataSourceError(where + ": cannot open");
  const auto file_size = static_cast<std::uint64_t>(std::filesystem::file_size(path));
  unsigned char length_bytes[8];
  if (!in.read(reinterpret_cast<char*>(length_bytes), 8)) {
    throw DataSourceError(where + ": too short for a safetensors header");
  }
  std::uint64_t header_length = 0;
  for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | length_bytes[i];
  if (header_length > file_size - 8) {
    throw DataSourceError(where + ": header length " + std::to_string(header_length) +
                          " exceeds the file size");
  }
  std::string header(header_length, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_length));
  const std::uint64_t data_size = file_size - 8 - header_length;

  nlohmann::json json;
  try {
    json = nlohmann::json::parse(header);
  } catch (const nlohmann::json::exception& e) {
    throw DataSourceError(where + ": header is not valid JSON (" + e.what() + ")");
  }
  if (!json.is_object()) throw DataSourceError(where + ": header is not a JSON object");

  std::map<std::string, Tensor> tensors;
  for (const auto& [name, entry] : json.items()) {
    if (name == "__metadata__") continue;
    const std::string tensor_where = where + ", tensor '" + name + "'";
    try {
      Tensor t;
      t.type = parse_dtype(entry.at("dtype").get<std::string>(), tensor_where);
      for (const auto& d : entry.at("shape")) {
        const auto dim = d.get<std::int64_t>();
        if (dim < 0) throw DataSourceError(tensor_where + ": negative dimension");
        t.shape.push_back(dim);
      }
      const auto begin = entry.at("data_offsets").at(0).get<std::uint64_t>();
      const auto end = entry.at("data_offsets").at(1).get<std::uint64_t>();
      if (begin > end || end > data_size || end - begin != t.elements() * size_of(t.type)) {
        throw DataSourceError(tensor_where + ": data_offsets [" + std::to_string(begin) + ", " +
                              std::to_string(end) + ") do not match its shape and the file");
      }
      t.bytes.resize(end - begin);
      in.seekg(static_cast<std::streamoff>(8 + header_length + begin));
      if (!in.read(reinterpret_cast<char*>(t.bytes.data()),
                   static_cast<std::streamsize>(t.bytes.size()))) {
        throw DataSourceError(tensor_where + ": read failed");
      }
      tensors.emplace(name, std::move(t));
    } catch (const nlohmann::json::exception& e) {
      throw DataSourceError(tensor_where + ": malformed entry (" + e.what() + ")");
    }
  }
  return tensors;
}

void write_weights_file(const std::filesystem::path& path,
                        const std::map<std::string, Tensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  std::uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (t.bytes.size() != t.elements() * size_of(t.type)) {
      throw InvalidArgument("write_weights_file: tensor '" + name +
                            "' has a byte count that does not match its shape");
    }
    header[name] = {{"dtype", safetensors_dtype(t.type)},
                    {"shape", t.shape},
                    {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keep the data 8-byte aligned
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw DataSourceError("weights file " + path.string() + ": cannot create");
  unsigned char length_bytes[8];
  std::uint64_t length = text.size();
  for (int i = 0; i < 8; ++i) length_bytes[i] = static_cast<unsigned char>(length >> (8 * i));
  out.write(reinterpret_cast<const char*>(length_bytes), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& [name, t] : tensors) {
    out.write(reinterpret_cast<const char*>(t.bytes.data()),
              static_cast<std::streamsize>(t.bytes.size()));
  }
  if (!out) throw DataSourceError("weights file " + path.string() + ": write failed");
}

}  // namespace cnngraph
