// The weights file: the reader holds files to the safetensors rules, the writer replaces a
// file atomically and reports every failed write, Tensor checks its own fields.
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "support.hpp"

using namespace cnngraph;
using namespace cnngraph::testing;
namespace fs = std::filesystem;

namespace {

fs::path test_folder() { return fresh_test_folder("weights_file_test"); }

// A file of the given header text followed by `data_size` zero bytes.
void write_raw(const fs::path& path, const std::string& header, std::size_t data_size) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) {
    bytes[static_cast<std::size_t>(i)] = static_cast<char>(std::uint64_t{header.size()} >> (8 * i));
  }
  bytes += header;
  bytes.append(data_size, '\0');
  std::ofstream(path, std::ios::binary) << bytes;
}

// Reading `header` (with `data_size` data bytes) fails with a DataSourceError whose message
// contains every one of `parts`.
void expect_refused(const std::string& header, std::size_t data_size,
                    std::initializer_list<std::string> parts) {
  const fs::path path = test_folder() / "bad.safetensors";
  write_raw(path, header, data_size);
  try {
    read_weights_file(path);
    ADD_FAILURE() << "accepted " << header;
  } catch (const DataSourceError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    for (const auto& part : parts) {
      EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
    }
  }
}

std::map<std::string, Tensor> some_tensors(float value, std::size_t count = 6) {
  return {{"a", Tensor::from_floats({static_cast<std::int64_t>(count)},
                                    std::vector<float>(count, value))},
          {"b", Tensor::from_floats({2}, {value, -value})}};
}

std::vector<std::string> temporaries(const fs::path& folder) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    if (name.find(".partial-") != std::string::npos) names.push_back(name);
  }
  return names;
}

}  // namespace

TEST(WeightsFileReading, AcceptsWhatTheFormatAllows) {
  // Tensors listed out of offset order, an empty tensor, metadata, an unknown field, padding.
  const fs::path path = test_folder() / "good.safetensors";
  write_raw(path,
            R"({"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[1],)"
            R"("data_offsets":[4,8]},"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4],)"
            R"("extra":[1]},"e":{"dtype":"F16","shape":[0,3],"data_offsets":[8,8]}}   )",
            8);
  const auto tensors = read_weights_file(path);
  ASSERT_EQ(tensors.size(), 3u);
  EXPECT_EQ(tensors.at("a").bytes.size(), 4u);
  EXPECT_EQ(tensors.at("b").to_floats(), std::vector<float>{0.0f});
  EXPECT_EQ(tensors.at("e").elements(), 0u);
}

TEST(WeightsFileReading, HugeOrFractionalOrNegativeNumbersAreRefused) {
  const std::string tail = R"(,"data_offsets":[0,4]}})";
  expect_refused(R"({"t":{"dtype":"F32","shape":[9223372036854775808])" + tail, 4,
                 {"tensor 't'", "shape[0]", "2^63"});
  expect_refused(R"({"t":{"dtype":"F32","shape":[18446744073709551616])" + tail, 4,
                 {"tensor 't'", "shape[0]", "non-negative integer"});
  expect_refused(R"({"t":{"dtype":"F32","shape":[1.5])" + tail, 4, {"tensor 't'", "1.5"});
  expect_refused(R"({"t":{"dtype":"F32","shape":[1.0])" + tail, 4, {"tensor 't'", "shape[0]"});
  expect_refused(R"({"t":{"dtype":"F32","shape":[-1])" + tail, 4, {"tensor 't'", "-1"});
  expect_refused(R"({"t":{"dtype":"F32","shape":["1"])" + tail, 4, {"tensor 't'", "shape[0]"});
  expect_refused(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,1e30]}})", 4,
                 {"tensor 't'", "data_offsets[1]"});
  expect_refused(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551615,3]}})", 4,
                 {"tensor 't'", "end before they begin"});
}

TEST(WeightsFileReading, OverflowingShapeProductsAreRefused) {
  expect_refused(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296,2],"data_offsets":[0,4]}})",
                 4, {"tensor 't'", "64 bits"});
  // The element count fits, the byte count does not.
  expect_refused(R"({"t":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,4]}})", 4,
                 {"tensor 't'", "64 bits"});
}

TEST(WeightsFileReading, OffsetsMustBeTwoIntegersThatTileTheData) {
  expect_refused(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})", 8,
                 {"tensor 't'", "two integers"});
  expect_refused(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4,
                 {"tensor 't'", "two integers"});
  expect_refused(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4,
                 {"tensor 't'", "needs 8"});
  // Overlap, hole, data not covered at the end or at all.
  expect_refused(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                 R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                 12, {"tensor 'b'", "overlap", "'a'"});
  expect_refused(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                 R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                 12, {"tensor 'b'", "hole of 4 bytes", "'a'"});
  expect_refused(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8,
                 {"tensor 'a'", "hole of 4 bytes", "data start"});
  expect_refused(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 8,
                 {"cover 4 of its 8 data bytes", "'a'"});
  expect_refused(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 0,
                 {"cover 4 of its 0 data bytes"});
  expect_refused("{}", 4, {"cover 0 of its 4"});
}

TEST(WeightsFileReading, DuplicateNamesAreRefused) {
  expect_refused(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                 R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                 8, {"'a' twice"});
  expect_refused(R"({"a":{"dtype":"F32","dtype":"U8","shape":[4],"data_offsets":[0,4]}})", 4,
                 {"tensor 'a'", "'dtype' twice"});
  expect_refused(R"({"__metadata__":{"k":"1","k":"2"}})", 0, {"'k' twice"});
}

TEST(WeightsFileReading, MetadataMustMapStringsToStrings) {
  expect_refused(R"({"__metadata__":{"k":1}})", 0, {"__metadata__", "'k'"});
  expect_refused(R"({"__metadata__":["k"]})", 0, {"__metadata__"});
  expect_refused(R"({"__metadata__":null})", 0, {"__metadata__"});
}

TEST(WeightsFileReading, EntriesNeedTheirThreeFields) {
  expect_refused(R"({"t":{"shape":[1],"data_offsets":[0,4]}})", 4, {"tensor 't'", "dtype"});
  expect_refused(R"({"t":{"dtype":"F32","data_offsets":[0,4]}})", 4, {"tensor 't'", "shape"});
  expect_refused(R"({"t":{"dtype":"F32","shape":[1]}})", 4, {"tensor 't'", "data_offsets"});
  expect_refused(R"({"t":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", 8,
                 {"tensor 't'", "F64"});
  expect_refused(R"({"t":[1]})", 0, {"tensor 't'", "not a JSON object"});
}

TEST(WeightsFileReading, TheHeaderIsBoundedAndStartsWithABrace) {
  expect_refused(R"( {})", 0, {"'{'"});
  expect_refused(R"([])", 0, {"'{'"});
  expect_refused("{", 0, {"not valid JSON"});
  expect_refused("{}x", 0, {"not valid JSON"});
  expect_refused(R"({"t":)" + std::string(100, '[') + std::string(100, ']') + "}", 0, {"deeper"});
  // A header length above the format's 100 MB bound, in a file that is not that long.
  const fs::path path = test_folder() / "huge_header.safetensors";
  std::string bytes(8, '\0');
  bytes[3] = 0x10;  // 0x10000000 = 268 MB
  bytes += "{}";
  std::ofstream(path, std::ios::binary) << bytes;
  try {
    read_weights_file(path);
    FAIL();
  } catch (const DataSourceError& e) {
    EXPECT_NE(std::string(e.what()).find("limit of 100000000"), std::string::npos) << e.what();
  }
  std::ofstream(path, std::ios::binary | std::ios::trunc) << "1234";
  EXPECT_THROW(read_weights_file(path), DataSourceError);
}

TEST(WeightsFileReading, DirectoriesDevicesAndFifosAreRefusedWithoutBlocking) {
  const fs::path folder = test_folder();
  for (const fs::path& path : {folder, fs::path("/dev/zero"), fs::path("/dev/null")}) {
    try {
      read_weights_file(path);
      ADD_FAILURE() << path;
    } catch (const DataSourceError& e) {
      EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos) << e.what();
    }
  }
  const fs::path fifo = folder / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  try {
    read_weights_file(fifo);
    ADD_FAILURE();
  } catch (const DataSourceError& e) {
    EXPECT_NE(std::string(e.what()).find("a FIFO"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_weights_file(folder / "missing.safetensors"), DataSourceError);
}

TEST(WeightsFileWriting, ReplacesTheFileAndLeavesNoTemporaryFile) {
  const fs::path folder = test_folder();
  const fs::path path = folder / "w.safetensors";
  write_weights_file(path, some_tensors(1.0f));
  ::chmod(path.c_str(), 0640);
  write_weights_file(path, some_tensors(2.0f));
  EXPECT_EQ(read_weights_file(path).at("b").to_floats(), (std::vector<float>{2.0f, -2.0f}));
  EXPECT_TRUE(temporaries(folder).empty());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u) << "a replaced file keeps its mode";
}

TEST(WeightsFileWriting, ASymbolicLinkStaysALinkToTheNewFile) {
  const fs::path folder = test_folder();
  write_weights_file(folder / "real.safetensors", some_tensors(1.0f));
  fs::create_symlink("real.safetensors", folder / "link.safetensors");
  write_weights_file(folder / "link.safetensors", some_tensors(3.0f));
  EXPECT_TRUE(fs::is_symlink(folder / "link.safetensors"));
  EXPECT_EQ(read_weights_file(folder / "real.safetensors").at("b").to_floats()[0], 3.0f);
}

TEST(WeightsFileWriting, TemporaryFilesOfAKilledWriterAreRemovedByTheNextSave) {
  const fs::path folder = test_folder();
  const fs::path stale = folder / ".w.safetensors.partial-0123456789abcdef";
  const fs::path other = folder / ".v.safetensors.partial-0123456789abcdef";
  std::ofstream(stale) << "half a checkpoint";
  std::ofstream(other) << "another file's";
  write_weights_file(folder / "w.safetensors", some_tensors(1.0f));
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(other));
}

TEST(WeightsFileWriting, AFullDeviceIsADataSourceError) {
  try {
    write_weights_file("/dev/full", some_tensors(1.0f));
    FAIL() << "a write to /dev/full reported success";
  } catch (const DataSourceError& e) {
    EXPECT_NE(std::string(e.what()).find("/dev/full"), std::string::npos) << e.what();
  }
  EXPECT_THROW(write_weights_file(test_folder(), some_tensors(1.0f)), DataSourceError);
  EXPECT_THROW(write_weights_file("/nonexistent-folder/w.safetensors", some_tensors(1.0f)),
               DataSourceError);
  // A FIFO that nobody reads is an error at once, not a write that waits for a reader.
  const fs::path fifo = test_folder() / "unread-fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THROW(write_weights_file(fifo, some_tensors(1.0f)), DataSourceError);
}

// RLIMIT_FSIZE stands for a full file system: writes past it fail with EFBIG.
TEST(WeightsFileWriting, AFullFileSystemIsADataSourceErrorAndKeepsTheOldFile) {
  const fs::path folder = test_folder();
  const fs::path path = folder / "w.safetensors";
  write_weights_file(path, some_tensors(1.0f));
  const std::string before = file_contents(path);
  for (const std::size_t limit : {std::size_t{0}, std::size_t{100}, std::size_t{1000}}) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::signal(SIGXFSZ, SIG_IGN);
      const rlimit small{limit, limit};
      ::setrlimit(RLIMIT_FSIZE, &small);
      int code = 1;
      try {
        write_weights_file(path, some_tensors(2.0f, 4096));
      } catch (const DataSourceError&) {
        code = 0;
      } catch (...) {
        code = 2;
      }
      ::_exit(code);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "limit " << limit << ": the write did not fail";
    EXPECT_EQ(file_contents(path), before);
    EXPECT_TRUE(temporaries(folder).empty());
  }
}

TEST(WeightsFileWriting, InconsistentTensorsAreInvalidArguments) {
  const fs::path path = test_folder() / "w.safetensors";
  Tensor t = Tensor::from_floats({2}, {1, 2});
  t.bytes.pop_back();
  EXPECT_THROW(write_weights_file(path, {{"t", t}}), InvalidArgument);
  t.shape = {-2, -1};
  t.bytes.resize(8);
  EXPECT_THROW(write_weights_file(path, {{"t", t}}), InvalidArgument);
  EXPECT_THROW(write_weights_file(path, {{"__metadata__", Tensor::from_floats({1}, {1})}}),
               InvalidArgument);
  EXPECT_FALSE(fs::exists(path));
}

TEST(Tensor, NegativeOrOverflowingShapesAreInvalidArguments) {
  EXPECT_THROW(Tensor::from_floats({-1, -1}, {1.0f}), InvalidArgument);
  Tensor t;
  t.shape = {1 << 30, 1 << 30, 1 << 30};
  EXPECT_THROW(t.elements(), InvalidArgument);
  t.shape = {3, -1};
  try {
    t.elements();
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("[3,-1]"), std::string::npos) << e.what();
  }
}

TEST(Tensor, ToFloatsChecksTheByteCount) {
  Tensor t = Tensor::from_floats({4}, {1, 2, 3, 4});
  t.shape = {1000};
  EXPECT_THROW(t.to_floats(), InvalidArgument);
  t.shape = {2, 2};
  EXPECT_EQ(t.to_floats(), (std::vector<float>{1, 2, 3, 4}));
  t.type = DataType::f16;
  EXPECT_THROW(t.to_floats(), InvalidArgument);
}
