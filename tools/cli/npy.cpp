// The .npy reader and writer (npy.hpp). The header is numpy's Python dictionary literal
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 28, 28), }: parsed by a strict
// little parser that accepts those three keys and nothing else.
#include "npy.hpp"

#include <cstring>
#include <fstream>
#include <limits>
#include <optional>

#include "cnngraph/checked_math.hpp"
#include "cnngraph/errors.hpp"

namespace cnngraph::cli {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicBytes = 6;

[[noreturn]] void fail(const std::string& name, const std::string& what) {
  throw DataSourceError(name + ": not a usable .npy file: " + what);
}

struct Header {
  std::vector<std::int64_t> shape;
  std::string descr;
  std::size_t item_bytes = 0;
  std::size_t elements = 0;
  std::size_t data_offset = 0;  // the first data byte
  std::size_t data_bytes = 0;
};

class DictParser {
 public:
  DictParser(std::string_view text, const std::string& name) : text_(text), name_(name) {}

  Header parse() {
    Header header;
    bool have_descr = false, have_order = false, have_shape = false;
    skip_space();
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') break;
      const std::string key = string();
      skip_space();
      expect(':');
      skip_space();
      const auto once = [&](bool& seen) {
        if (seen) fail(name_, "the header names '" + key + "' twice");
        seen = true;
      };
      if (key == "descr") {
        once(have_descr);
        header.descr = string();
      } else if (key == "fortran_order") {
        once(have_order);
        if (boolean())
          fail(name_,
               "the array is in Fortran order; save it in C order (numpy.ascontiguousarray)");
      } else if (key == "shape") {
        once(have_shape);
        header.shape = tuple();
      } else {
        fail(name_, "the header has an unknown key '" + key + "'");
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != '}') fail(name_, "the header dictionary is malformed at byte " + where());
    }
    ++pos_;
    skip_space();
    if (pos_ != text_.size()) fail(name_, "the header has text after its dictionary");
    if (!have_descr || !have_order || !have_shape)
      fail(name_, "the header lacks one of 'descr', 'fortran_order' and 'shape'");
    return header;
  }

 private:
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  std::string where() const { return std::to_string(pos_); }
  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r'))
      ++pos_;
  }
  void expect(char c) {
    if (peek() != c)
      fail(name_, std::string("the header dictionary expects '") + c + "' at byte " + where());
    ++pos_;
  }
  std::string string() {
    const char quote = peek();
    if (quote != '\'' && quote != '"')
      fail(name_, "the header dictionary expects a string at byte " + where());
    const std::size_t begin = ++pos_;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      if (text_[pos_] == '\\') fail(name_, "the header has an escaped string");
      ++pos_;
    }
    if (pos_ == text_.size()) fail(name_, "the header has an unterminated string");
    return std::string(text_.substr(begin, pos_++ - begin));
  }
  bool boolean() {
    for (const auto& [word, value] : {std::pair{"True", true}, std::pair{"False", false}}) {
      const std::size_t n = std::strlen(word);
      if (text_.substr(pos_, n) == word) {
        pos_ += n;
        return value;
      }
    }
    fail(name_, "'fortran_order' is neither True nor False");
  }
  std::int64_t integer() {
    if (peek() == '-') fail(name_, "the shape has a negative dimension");
    if (peek() < '0' || peek() > '9') fail(name_, "the shape expects a number at byte " + where());
    std::int64_t value = 0;
    while (peek() >= '0' && peek() <= '9') {
      value = value * 10 + (peek() - '0');
      if (value > std::numeric_limits<int>::max())
        fail(name_,
             "a dimension of the shape exceeds " + std::to_string(std::numeric_limits<int>::max()));
      ++pos_;
    }
    return value;
  }
  std::vector<std::int64_t> tuple() {
    expect('(');
    std::vector<std::int64_t> dims;
    skip_space();
    while (peek() != ')') {
      if (dims.size() == kMaxNpyDimensions)
        fail(name_, "the shape has more than " + std::to_string(kMaxNpyDimensions) + " dimensions");
      dims.push_back(integer());
      skip_space();
      if (peek() == ',') {
        ++pos_;
        skip_space();
      } else if (peek() != ')') {
        fail(name_, "the shape is malformed at byte " + where());
      }
    }
    ++pos_;
    return dims;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
  const std::string& name_;
};

std::uint32_t little_endian(const std::uint8_t* bytes, int count) {
  std::uint32_t value = 0;
  for (int i = count - 1; i >= 0; --i) value = value << 8 | bytes[i];
  return value;
}

// Reads the magic, the version and the header from the file's first bytes (`prefix`, all
// of the file or at least its first 12 + kMaxNpyHeaderBytes), checking every size against
// `file_size`.
Header parse_header(std::span<const std::uint8_t> prefix, std::uint64_t file_size,
                    const std::string& name) {
  if (prefix.size() < 10 || std::memcmp(prefix.data(), kMagic, kMagicBytes) != 0)
    fail(name, "it does not start with numpy's magic bytes \\x93NUMPY");
  const int major = prefix[6], minor = prefix[7];
  if (major < 1 || major > 3 || minor != 0)
    fail(name, "format version " + std::to_string(major) + "." + std::to_string(minor) +
                   " (1.0, 2.0 and 3.0 are read)");
  const std::size_t length_bytes = major == 1 ? 2 : 4;
  if (prefix.size() < 8 + length_bytes) fail(name, "the file ends inside its preamble");
  const std::size_t header_bytes = little_endian(prefix.data() + 8, static_cast<int>(length_bytes));
  if (header_bytes > kMaxNpyHeaderBytes)
    fail(name, "its header claims " + std::to_string(header_bytes) + " bytes (at most " +
                   std::to_string(kMaxNpyHeaderBytes) + " are read)");
  const std::size_t header_begin = 8 + length_bytes;
  if (header_begin + header_bytes > prefix.size())
    fail(name, "the file ends inside its " + std::to_string(header_bytes) + "-byte header");
  const auto* text = reinterpret_cast<const char*>(prefix.data() + header_begin);
  for (std::size_t i = 0; i < header_bytes; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == 0 || c >= 0x80) fail(name, "the header is not ASCII text");
  }
  Header header = DictParser(std::string_view(text, header_bytes), name).parse();

  if (header.descr == "<f4") {
    header.item_bytes = 4;
  } else if (header.descr == "<f2") {
    header.item_bytes = 2;
  } else if (header.descr == "<f8") {
    header.item_bytes = 8;
  } else {
    fail(name, "the element type '" + header.descr +
                   "' is not read (little-endian float32 '<f4', float16 '<f2' or float64 '<f8')");
  }
  std::size_t elements = 1;
  for (const std::int64_t d : header.shape) {
    const auto next = detail::checked_multiply(elements, static_cast<std::size_t>(d));
    if (!next || *next > ImageShape::max_elements) fail(name, "the shape has too many elements");
    elements = *next;
  }
  header.elements = elements;
  const auto data_bytes = detail::checked_multiply(elements, header.item_bytes);
  if (!data_bytes) fail(name, "the shape has too many elements");
  header.data_bytes = *data_bytes;
  header.data_offset = header_begin + header_bytes;
  const auto expected = detail::checked_add<std::uint64_t>(header.data_offset, header.data_bytes);
  if (!expected || *expected != file_size)
    fail(name, "the header's shape and type need " + std::to_string(header.data_bytes) +
                   " data bytes after the " + std::to_string(header.data_offset) +
                   "-byte header, the file has " +
                   (file_size >= header.data_offset ? std::to_string(file_size - header.data_offset)
                                                    : std::string("fewer")));
  return header;
}

NpyArray convert(const Header& header, const std::uint8_t* data) {
  NpyArray array;
  array.shape = header.shape;
  array.descr = header.descr;
  array.values.resize(header.elements);
  for (std::size_t i = 0; i < header.elements; ++i) {
    const std::uint8_t* item = data + i * header.item_bytes;
    if (header.item_bytes == 2) {
      array.values[i] = half_to_float(static_cast<std::uint16_t>(little_endian(item, 2)));
    } else if (header.item_bytes == 4) {
      const std::uint32_t bits = little_endian(item, 4);
      std::memcpy(&array.values[i], &bits, 4);
    } else {
      const std::uint64_t bits =
          static_cast<std::uint64_t>(little_endian(item + 4, 4)) << 32 | little_endian(item, 4);
      double value;
      std::memcpy(&value, &bits, 8);
      array.values[i] = static_cast<float>(value);
    }
  }
  return array;
}

}  // namespace

NpyArray parse_npy(std::span<const std::uint8_t> bytes, const std::string& name) {
  const Header header = parse_header(bytes, bytes.size(), name);
  return convert(header, bytes.data() + header.data_offset);
}

NpyArray read_npy(const std::filesystem::path& path) {
  const std::string name = path.string();
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error))
    throw DataSourceError(name + ": no such file (or not a regular file)");
  const std::uint64_t size = std::filesystem::file_size(path, error);
  if (error) throw DataSourceError(name + ": cannot read its size: " + error.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataSourceError(name + ": cannot open it");
  // The header first: nothing is allocated for the data before the sizes agree.
  std::vector<std::uint8_t> prefix(
      static_cast<std::size_t>(std::min<std::uint64_t>(size, 12 + kMaxNpyHeaderBytes)));
  in.read(reinterpret_cast<char*>(prefix.data()), static_cast<std::streamsize>(prefix.size()));
  if (!in) throw DataSourceError(name + ": cannot read it");
  const Header header = parse_header(prefix, size, name);
  std::vector<std::uint8_t> data(header.data_bytes);
  // parse_header checked that the header lies within the prefix.
  const std::size_t have = std::min(prefix.size() - header.data_offset, header.data_bytes);
  if (have) std::memcpy(data.data(), prefix.data() + header.data_offset, have);
  in.read(reinterpret_cast<char*>(data.data() + have),
          static_cast<std::streamsize>(header.data_bytes - have));
  if (!in && header.data_bytes > have) throw DataSourceError(name + ": cannot read its data");
  return convert(header, data.data());
}

void write_npy(const std::filesystem::path& path, const std::vector<std::int64_t>& shape,
               std::span<const float> values, DataType type) {
  const std::string name = path.string();
  if (type != DataType::f32 && type != DataType::f16)
    throw InvalidArgument(name + ": .npy files are written as float32 or float16, not " +
                          to_string(type));
  std::size_t elements = 1;
  std::string dims;  // "2, 3", or "5," for one dimension (a Python tuple)
  for (const std::int64_t d : shape) {
    const auto next =
        d < 0 ? std::nullopt : detail::checked_multiply(elements, static_cast<std::size_t>(d));
    if (!next) throw InvalidArgument(name + ": a negative or too large shape");
    elements = *next;
    dims += (dims.empty() ? "" : ", ") + std::to_string(d);
  }
  if (shape.size() == 1) dims += ',';
  if (elements != values.size())
    throw InvalidArgument(name + ": the shape has " + std::to_string(elements) +
                          " elements, the values " + std::to_string(values.size()));
  std::string header = std::string("{'descr': '") + (type == DataType::f32 ? "<f4" : "<f2") +
                       "', 'fortran_order': False, 'shape': (" + dims + "), }";
  // numpy pads the header with spaces to a multiple of 64 bytes, ending in a newline.
  const std::size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  if (header.size() > 65535) throw InvalidArgument(name + ": the shape's header is too long");
  std::string bytes(kMagic, kMagicBytes);
  bytes += '\x01';
  bytes += '\x00';
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>(header.size() >> 8);
  bytes += header;
  for (const float v : values) {
    std::uint32_t bits;
    int count = 4;
    if (type == DataType::f32) {
      std::memcpy(&bits, &v, 4);
    } else {
      bits = float_to_half(v);
      count = 2;
    }
    for (int i = 0; i < count; ++i) bytes += static_cast<char>(bits >> (8 * i) & 0xff);
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out.flush()) throw DataSourceError(name + ": cannot write it");
}

}  // namespace cnngraph::cli
