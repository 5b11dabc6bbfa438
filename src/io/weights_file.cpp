// safetensors reading and writing: an 8-byte little-endian header length, a JSON header
// {"name": {"dtype", "shape", "data_offsets"}}, then the raw little-endian data.
//
// The reader follows the format's rules exactly (those of the reference implementation): the
// header is at most 100 MB and starts with '{', names are unique, shapes and offsets are
// unsigned integers whose products do not overflow, and the tensors, sorted by offset, tile
// the data [0, size) with neither holes nor overlaps. The writer replaces a file atomically:
// a temporary file in the same folder, fsync, rename over the target, fsync of the folder.
#include "cnngraph/weights_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <system_error>
#include <utility>

#include "cnngraph/errors.hpp"

namespace cnngraph {

namespace {

// The reference implementation's bound: larger headers are refused before parsing.
constexpr std::uint64_t kMaxHeaderSize = 100'000'000;
// No valid header nests deeper than 3 levels; unknown fields of an entry may hold any JSON,
// so allow some room, but refuse a header built to exhaust memory by nesting.
constexpr int kMaxHeaderDepth = 64;

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

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text;
  for (auto d : shape) text += (text.empty() ? "" : ",") + std::to_string(d);
  return "[" + text + "]";
}

std::string system_message(int error) { return std::generic_category().message(error); }

[[noreturn]] void fail(const std::string& where, const std::string& what, int error) {
  throw DataSourceError(where + ": " + what + " (" + system_message(error) + ")");
}

// The byte count of a tensor's shape and type; InvalidArgument when it does not fit.
std::size_t byte_count(const Tensor& t) {
  const std::size_t element_size = size_of(t.type);
  if (element_size == 0) {
    throw InvalidArgument("Tensor: unknown data type " + std::to_string(static_cast<int>(t.type)));
  }
  std::size_t bytes = 0;
  if (__builtin_mul_overflow(t.elements(), element_size, &bytes)) {
    throw InvalidArgument("Tensor: shape " + shape_text(t.shape) + " of " +
                          std::string(safetensors_dtype(t.type)) +
                          " holds more bytes than fit in 64 bits");
  }
  return bytes;
}

// A file descriptor that is closed on every path; close() reports its error where it matters.
class Descriptor {
 public:
  explicit Descriptor(int fd = -1) : fd_(fd) {}
  Descriptor(Descriptor&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Descriptor& operator=(Descriptor&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  ~Descriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // Closes now; returns 0 or the errno of close().
  int close() {
    const int fd = fd_;
    fd_ = -1;
    return ::close(fd) == 0 ? 0 : errno;
  }

 private:
  int fd_;
};

// Reads exactly `size` bytes at `offset`; false when the file ends first.
bool read_at(int fd, void* data, std::size_t size, std::uint64_t offset, const std::string& where) {
  auto* out = static_cast<char*>(data);
  while (size > 0) {
    const ssize_t n = ::pread(fd, out, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(where, "read failed", errno);
    }
    if (n == 0) return false;
    out += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return true;
}

void write_all(int fd, const void* data, std::size_t size, const std::string& where) {
  const auto* in = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, in, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(where, "write failed", errno);
    }
    if (n == 0) throw DataSourceError(where + ": write failed (no progress)");
    in += n;
    size -= static_cast<std::size_t>(n);
  }
}

// Parses the header, refusing duplicate names at any level (the JSON library would silently
// keep the last one) and absurd nesting.
nlohmann::json parse_header(const std::string& header, const std::string& where) {
  if (header.empty() || header.front() != '{') {
    throw DataSourceError(where + ": the header does not start with '{'");
  }
  std::vector<std::set<std::string>> keys;  // of every object being parsed
  int depth = 0;
  std::string entry;  // the last top-level name
  const auto callback = [&](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    switch (event) {
      case Event::object_start:
      case Event::array_start:
        if (++depth > kMaxHeaderDepth) {
          throw DataSourceError(where + ": the header nests deeper than " +
                                std::to_string(kMaxHeaderDepth) + " levels");
        }
        if (event == Event::object_start) keys.emplace_back();
        break;
      case Event::object_end:
      case Event::array_end:
        --depth;
        if (event == Event::object_end) keys.pop_back();
        break;
      case Event::key: {
        const auto& name = parsed.get_ref<const std::string&>();
        if (!keys.back().insert(name).second) {
          throw DataSourceError(where + (depth == 1 ? "" : ", tensor '" + entry + "'") +
                                ": the header names '" + name + "' twice");
        }
        if (depth == 1) entry = name;
        break;
      }
      case Event::value:
        break;
    }
    return true;
  };
  try {
    return nlohmann::json::parse(header, callback);
  } catch (const nlohmann::json::exception& e) {
    throw DataSourceError(where + ": header is not valid JSON (" + e.what() + ")");
  }
}

std::uint64_t unsigned_value(const nlohmann::json& value, const std::string& where,
                             const std::string& field) {
  if (!value.is_number_unsigned()) {
    throw DataSourceError(where + ": " + field +
                          " must be a non-negative integer below 2^64, got " + value.dump());
  }
  return value.get<std::uint64_t>();
}

struct Entry {
  std::string name;
  Tensor tensor;
  std::uint64_t begin = 0, end = 0;
};

Entry parse_entry(const std::string& name, const nlohmann::json& entry, const std::string& where) {
  const std::string tensor_where = where + ", tensor '" + name + "'";
  if (!entry.is_object()) throw DataSourceError(tensor_where + ": entry is not a JSON object");
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    if (!entry.contains(field)) throw DataSourceError(tensor_where + ": no '" + field + "'");
  }
  const auto& dtype = entry.at("dtype");
  const auto& shape = entry.at("shape");
  const auto& offsets = entry.at("data_offsets");
  if (!dtype.is_string()) throw DataSourceError(tensor_where + ": dtype is not a string");
  if (!shape.is_array()) throw DataSourceError(tensor_where + ": shape is not an array");
  if (!offsets.is_array() || offsets.size() != 2) {
    throw DataSourceError(tensor_where + ": data_offsets must be an array of two integers, got " +
                          offsets.dump());
  }
  Entry result;
  result.name = name;
  Tensor& t = result.tensor;
  t.type = parse_dtype(dtype.get<std::string>(), tensor_where);
  for (std::size_t i = 0; i < shape.size(); ++i) {
    const auto dim = unsigned_value(shape[i], tensor_where, "shape[" + std::to_string(i) + "]");
    if (dim > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      throw DataSourceError(tensor_where + ": shape[" + std::to_string(i) +
                            "] = " + std::to_string(dim) + " exceeds 2^63 - 1");
    }
    t.shape.push_back(static_cast<std::int64_t>(dim));
  }
  result.begin = unsigned_value(offsets[0], tensor_where, "data_offsets[0]");
  result.end = unsigned_value(offsets[1], tensor_where, "data_offsets[1]");
  std::size_t bytes = 0;
  try {
    bytes = byte_count(t);
  } catch (const InvalidArgument& e) {
    throw DataSourceError(tensor_where + ": " + e.what());
  }
  if (result.end < result.begin) {
    throw DataSourceError(tensor_where + ": data_offsets [" + std::to_string(result.begin) + ", " +
                          std::to_string(result.end) + ") end before they begin");
  }
  if (result.end - result.begin != bytes) {
    throw DataSourceError(tensor_where + ": data_offsets [" + std::to_string(result.begin) + ", " +
                          std::to_string(result.end) + ") hold " +
                          std::to_string(result.end - result.begin) + " bytes, shape " +
                          shape_text(t.shape) + " of " + dtype.get<std::string>() + " needs " +
                          std::to_string(bytes));
  }
  return result;
}

void check_metadata(const nlohmann::json& metadata, const std::string& where) {
  if (!metadata.is_object()) {
    throw DataSourceError(where + ": __metadata__ must be an object of strings, got " +
                          metadata.dump());
  }
  for (const auto& [key, value] : metadata.items()) {
    if (!value.is_string()) {
      throw DataSourceError(where + ": __metadata__ entry '" + key + "' is not a string");
    }
  }
}

// The tensors sorted by offset must tile [0, data_size) exactly.
void check_tiling(std::vector<Entry>& entries, std::uint64_t data_size, const std::string& where) {
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::uint64_t covered = 0;
  const Entry* previous = nullptr;
  for (const Entry& e : entries) {
    const std::string tensor_where = where + ", tensor '" + e.name + "'";
    const std::string after = previous ? " tensor '" + previous->name + "'" : " the data start";
    if (e.begin < covered) {
      throw DataSourceError(tensor_where + ": data_offsets [" + std::to_string(e.begin) + ", " +
                            std::to_string(e.end) + ") overlap" + after + ", which ends at " +
                            std::to_string(covered));
    }
    if (e.begin > covered) {
      throw DataSourceError(tensor_where + ": data_offsets [" + std::to_string(e.begin) + ", " +
                            std::to_string(e.end) + ") leave a hole of " +
                            std::to_string(e.begin - covered) + " bytes after" + after);
    }
    covered = e.end;
    previous = &e;
  }
  if (covered != data_size) {
    throw DataSourceError(where + ": the tensors cover " + std::to_string(covered) + " of its " +
                          std::to_string(data_size) + " data bytes" +
                          (previous ? " (the last is '" + previous->name + "')" : ""));
  }
}

// Opens a regular file for reading. Directories, devices and FIFOs are refused before they
// are opened: a FIFO would block the open, a device could be endless.
Descriptor open_regular_file(const std::filesystem::path& path, const std::string& where,
                             std::uint64_t& size) {
  const auto check = [&](const struct stat& st) {
    if (S_ISREG(st.st_mode)) return;
    const char* kind = S_ISDIR(st.st_mode)    ? "a directory"
                       : S_ISFIFO(st.st_mode) ? "a FIFO"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "not a regular file";
    throw DataSourceError(where + ": cannot read, it is " + std::string(kind) +
                          ", not a regular file");
  };
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) fail(where, "cannot open", errno);
  check(st);
  // O_NONBLOCK: should the path be swapped for a FIFO after the check, open must not hang.
  Descriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) fail(where, "cannot open", errno);
  if (::fstat(fd.get(), &st) != 0) fail(where, "cannot open", errno);
  check(st);
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
    fail(where, "cannot open", errno);
  }
  size = static_cast<std::uint64_t>(st.st_size);
  return fd;
}

}  // namespace

std::size_t Tensor::elements() const {
  std::size_t count = 1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) {
      throw InvalidArgument("Tensor: shape " + shape_text(shape) + " has a negative dimension " +
                            std::to_string(i) + " (" + std::to_string(shape[i]) + ")");
    }
    if (__builtin_mul_overflow(count, static_cast<std::size_t>(shape[i]), &count)) {
      throw InvalidArgument("Tensor: shape " + shape_text(shape) +
                            " holds more elements than fit in 64 bits");
    }
  }
  return count;
}

Tensor Tensor::from_floats(std::vector<std::int64_t> shape, const std::vector<float>& values) {
  Tensor t;
  t.shape = std::move(shape);
  std::size_t count = 0;
  try {
    count = t.elements();
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(std::string("Tensor::from_floats: ") + e.what());
  }
  if (count != values.size()) {
    throw InvalidArgument("Tensor::from_floats: shape " + shape_text(t.shape) + " holds " +
                          std::to_string(count) + " elements, got " +
                          std::to_string(values.size()));
  }
  t.bytes.resize(values.size() * sizeof(float));
  std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

std::vector<float> Tensor::to_floats() const {
  std::size_t bytes_needed = 0;
  try {
    bytes_needed = byte_count(*this);
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(std::string("Tensor::to_floats: ") + e.what());
  }
  if (bytes.size() != bytes_needed) {
    throw InvalidArgument("Tensor::to_floats: shape " + shape_text(shape) + " of " +
                          safetensors_dtype(type) + " needs " + std::to_string(bytes_needed) +
                          " bytes, the tensor holds " + std::to_string(bytes.size()));
  }
  std::vector<float> out(bytes_needed / size_of(type));
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
  return read_weights_file_with_metadata(path).tensors;
}

WeightsFileContents read_weights_file_with_metadata(const std::filesystem::path& path) {
  const std::string where = "weights file " + path.string();
  std::uint64_t file_size = 0;
  const Descriptor fd = open_regular_file(path, where, file_size);
  unsigned char length_bytes[8];
  if (file_size < 8 || !read_at(fd.get(), length_bytes, 8, 0, where)) {
    throw DataSourceError(where + ": " + std::to_string(file_size) +
                          " bytes, too short for a safetensors header");
  }
  std::uint64_t header_length = 0;
  for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | length_bytes[i];
  if (header_length > kMaxHeaderSize) {
    throw DataSourceError(where + ": header length " + std::to_string(header_length) +
                          " exceeds the format's limit of " + std::to_string(kMaxHeaderSize) +
                          " bytes");
  }
  if (header_length > file_size - 8) {
    throw DataSourceError(where + ": header length " + std::to_string(header_length) +
                          " exceeds the file size " + std::to_string(file_size));
  }
  std::string header(header_length, '\0');
  if (!read_at(fd.get(), header.data(), header.size(), 8, where)) {
    throw DataSourceError(where + ": the file ended inside the header");
  }
  const std::uint64_t data_start = 8 + header_length;
  const std::uint64_t data_size = file_size - data_start;

  const nlohmann::json json = parse_header(header, where);
  if (!json.is_object()) throw DataSourceError(where + ": header is not a JSON object");
  std::vector<Entry> entries;
  WeightsFileContents contents;
  for (const auto& [name, entry] : json.items()) {
    if (name == "__metadata__") {
      check_metadata(entry, where);
      for (const auto& [key, value] : entry.items()) {
        contents.metadata.emplace(key, value.get<std::string>());
      }
      continue;
    }
    entries.push_back(parse_entry(name, entry, where));
  }
  check_tiling(entries, data_size, where);

  std::map<std::string, Tensor>& tensors = contents.tensors;
  for (Entry& e : entries) {
    Tensor& t = e.tensor;
    t.bytes.resize(e.end - e.begin);
    if (!read_at(fd.get(), t.bytes.data(), t.bytes.size(), data_start + e.begin, where)) {
      throw DataSourceError(where + ", tensor '" + e.name + "': the file ended early");
    }
    tensors.emplace(std::move(e.name), std::move(t));
  }
  return contents;
}

namespace {

// Writes the whole file to an open descriptor.
void write_contents(int fd, const std::string& prefix, const std::map<std::string, Tensor>& tensors,
                    const std::string& where) {
  write_all(fd, prefix.data(), prefix.size(), where);
  for (const auto& [name, t] : tensors) write_all(fd, t.bytes.data(), t.bytes.size(), where);
}

constexpr const char* kPartial = ".partial-";

// A name of 16 hex digits after ".<target>.partial-": the temporary files of this writer.
bool is_temporary_of(const std::string& candidate, const std::string& target) {
  const std::string head = "." + target + kPartial;
  if (candidate.size() != head.size() + 16 || candidate.compare(0, head.size(), head) != 0) {
    return false;
  }
  return std::all_of(candidate.begin() + static_cast<std::ptrdiff_t>(head.size()), candidate.end(),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
}

// Removes what a writer killed between creating its temporary file and the rename left.
void remove_stale_temporaries(const std::filesystem::path& folder, const std::string& target) {
  std::error_code error;
  for (std::filesystem::directory_iterator it(folder, error), end; !error && it != end;
       it.increment(error)) {
    if (is_temporary_of(it->path().filename().string(), target)) {
      std::filesystem::remove(it->path(), error);
      error.clear();
    }
  }
}

void sync_folder(const std::filesystem::path& folder, const std::string& where) {
  Descriptor fd(::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) fail(where, "renamed, but cannot open its folder to sync it", errno);
  // Some file systems cannot sync a directory; there is nothing more to do on them.
  if (::fsync(fd.get()) != 0 && errno != EINVAL && errno != ENOTSUP) {
    fail(where, "renamed, but syncing its folder failed", errno);
  }
}

}  // namespace

void write_weights_file(const std::filesystem::path& path,
                        const std::map<std::string, Tensor>& tensors) {
  write_weights_file(path, tensors, {});
}

void write_weights_file(const std::filesystem::path& path,
                        const std::map<std::string, Tensor>& tensors,
                        const std::map<std::string, std::string>& metadata) {
  const std::string where = "weights file " + path.string();
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__") {
      throw InvalidArgument(
          "write_weights_file: '__metadata__' is reserved by the format, not a "
          "tensor name");
    }
    std::size_t bytes = 0;
    try {
      bytes = byte_count(t);
    } catch (const InvalidArgument& e) {
      throw InvalidArgument("write_weights_file: tensor '" + name + "': " + e.what());
    }
    if (t.bytes.size() != bytes) {
      throw InvalidArgument("write_weights_file: tensor '" + name + "' holds " +
                            std::to_string(t.bytes.size()) + " bytes, its shape " +
                            shape_text(t.shape) + " needs " + std::to_string(bytes));
    }
    header[name] = {{"dtype", safetensors_dtype(t.type)},
                    {"shape", t.shape},
                    {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string prefix(8, '\0');
  prefix += header.dump();
  prefix.append((8 - prefix.size() % 8) % 8, ' ');  // keep the data 8-byte aligned
  const std::uint64_t length = prefix.size() - 8;
  for (int i = 0; i < 8; ++i)
    prefix[static_cast<std::size_t>(i)] = static_cast<char>(length >> (8 * i));

  std::filesystem::path target = path;
  struct stat st {};
  const bool exists = ::stat(path.c_str(), &st) == 0;
  if (!exists && errno != ENOENT) fail(where, "cannot create", errno);
  if (exists && S_ISDIR(st.st_mode)) {
    throw DataSourceError(where + ": cannot create, it is a directory");
  }
  if (exists && !S_ISREG(st.st_mode)) {
    // A device or a FIFO: there is no file to replace; write into it, checking every step.
    // Opened without blocking (a FIFO nobody reads is an error, not a hang), then written
    // blocking.
    Descriptor fd(::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
    if (fd.get() < 0) fail(where, "cannot open for writing", errno);
    const int flags = ::fcntl(fd.get(), F_GETFL);
    if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
      fail(where, "cannot open for writing", errno);
    }
    write_contents(fd.get(), prefix, tensors, where);
    if (const int error = fd.close()) fail(where, "write failed", error);
    return;
  }
  if (exists) {
    // Replace the file a symbolic link names, not the link.
    std::error_code error;
    auto resolved = std::filesystem::canonical(path, error);
    if (!error) target = std::move(resolved);
  }
  const std::filesystem::path folder =
      target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
  const std::string name = target.filename().string();
  remove_stale_temporaries(folder, name);

  std::random_device random;
  std::filesystem::path temporary;
  Descriptor fd;
  for (int attempt = 0; attempt < 16 && fd.get() < 0; ++attempt) {
    char suffix[17];
    std::snprintf(suffix, sizeof suffix, "%08x%08x", random(), random());
    temporary = folder / ("." + name + kPartial + suffix);
    // 0666 as for any new file (less the umask); a replaced file keeps its own mode below.
    fd = Descriptor(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666));
    if (fd.get() < 0 && errno != EEXIST) fail(where, "cannot create " + temporary.string(), errno);
  }
  if (fd.get() < 0) fail(where, "cannot create a temporary file beside it", EEXIST);
  try {
    if (exists && ::fchmod(fd.get(), st.st_mode & 07777) != 0) {
      fail(where, "cannot keep the mode of the file it replaces", errno);
    }
    write_contents(fd.get(), prefix, tensors, where);
    if (::fsync(fd.get()) != 0) fail(where, "write failed (fsync)", errno);
    if (const int error = fd.close()) fail(where, "write failed (close)", error);
    if (::rename(temporary.c_str(), target.c_str()) != 0) {
      fail(where, "cannot rename " + temporary.string() + " over it", errno);
    }
  } catch (...) {
    ::unlink(temporary.c_str());
    throw;
  }
  sync_folder(folder, where);
}

}  // namespace cnngraph
