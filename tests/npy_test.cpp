// The cnngraph program's .npy reader and writer (tools/cli/npy.hpp): numpy's versions and
// element types read, hostile files refused with errors naming the file.
#include "npy.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "cnngraph/errors.hpp"
#include "support.hpp"

using namespace cnngraph;
using namespace cnngraph::cli;
namespace fs = std::filesystem;

namespace {

fs::path folder() { return cnngraph::testing::fresh_test_folder("npy_test"); }

// A .npy file of `version` (1, 2 or 3) with this header text and data bytes.
std::string npy_bytes(int version, const std::string& header, const std::string& data) {
  std::string bytes = "\x93NUMPY";
  bytes += static_cast<char>(version);
  bytes += '\0';
  const std::size_t n = header.size();
  for (int i = 0; i < (version == 1 ? 2 : 4); ++i) bytes += static_cast<char>(n >> (8 * i) & 0xff);
  return bytes + header + data;
}

fs::path write_file(const std::string& name, const std::string& bytes) {
  const fs::path path = folder() / name;
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

std::string floats(std::initializer_list<float> values) {
  std::string out;
  for (float v : values) out.append(reinterpret_cast<const char*>(&v), 4);
  return out;
}

void expect_refused(const fs::path& path, const std::string& words) {
  try {
    read_npy(path);
    ADD_FAILURE() << "accepted " << path;
  } catch (const DataSourceError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path.string()), std::string::npos) << what;
    EXPECT_NE(what.find(words), std::string::npos) << what;
  }
}

}  // namespace

TEST(Npy, WritesFilesItReadsBackInFloat32AndFloat16) {
  const std::vector<float> values{0.0f, 1.5f, -2.25f, 3.0f, 1e-3f, 65504.0f};
  const fs::path f32 = folder() / "f32.npy", f16 = folder() / "f16.npy";
  write_npy(f32, {2, 3}, values);
  write_npy(f16, {1, 6}, values, DataType::f16);
  const NpyArray a = read_npy(f32), b = read_npy(f16);
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(a.descr, "<f4");
  EXPECT_EQ(a.values, values);
  EXPECT_EQ(b.descr, "<f2");
  ASSERT_EQ(b.values.size(), values.size());
  for (std::size_t i = 0; i < values.size(); ++i)
    EXPECT_EQ(b.values[i], half_to_float(float_to_half(values[i])));
  // numpy aligns the data to 64 bytes.
  EXPECT_EQ((fs::file_size(f32) - 24) % 64, 0u);
}

TEST(Npy, ReadsFormatVersions1To3AndFloat64) {
  const std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }\n";
  for (int version : {1, 2, 3}) {
    const NpyArray a = read_npy(write_file("v" + std::to_string(version) + ".npy",
                                           npy_bytes(version, header, floats({1.0f, -2.0f}))));
    EXPECT_EQ(a.values, (std::vector<float>{1.0f, -2.0f})) << version;
  }
  const double d[] = {0.5, 4.0};
  const NpyArray f64 = read_npy(write_file(
      "f64.npy", npy_bytes(1, "{\"descr\":\"<f8\",\"fortran_order\":False,\"shape\":(2,)}",
                           std::string(reinterpret_cast<const char*>(d), sizeof d))));
  EXPECT_EQ(f64.shape, (std::vector<std::int64_t>{2}));
  EXPECT_EQ(f64.values, (std::vector<float>{0.5f, 4.0f}));
}

TEST(Npy, RefusesTruncatedAndOverlongFilesNamingTheByteCounts) {
  const std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }\n";
  expect_refused(write_file("short.npy", npy_bytes(1, header, floats({1, 2, 3}))),
                 "need 16 data bytes");
  expect_refused(write_file("long.npy", npy_bytes(1, header, floats({1, 2, 3, 4, 5}))),
                 "need 16 data bytes");
  expect_refused(write_file("in_header.npy", npy_bytes(1, header, "").substr(0, 30)),
                 "ends inside its");
  expect_refused(write_file("preamble.npy", std::string("\x93NUMPY\x01", 7)), "magic");
  expect_refused(write_file("empty.npy", ""), "magic");
}

TEST(Npy, RefusesAHugeShapeBeforeAllocatingAnything) {
  expect_refused(
      write_file("huge.npy",
                 npy_bytes(1,
                           "{'descr': '<f4', 'fortran_order': False, 'shape': (2147483647, "
                           "2147483647, 2147483647, 2147483647), }",
                           floats({1}))),
      "too many elements");
  expect_refused(write_file("big_dim.npy", npy_bytes(1,
                                                     "{'descr': '<f4', 'fortran_order': False, "
                                                     "'shape': (99999999999,), }",
                                                     "")),
                 "exceeds");
  // A header length of 4 GiB is refused by its bound, not read.
  std::string bytes = npy_bytes(2, "{}", "");
  bytes[8] = bytes[9] = bytes[10] = bytes[11] = '\xff';
  expect_refused(write_file("header_length.npy", bytes), "at most 65536");
}

TEST(Npy, RefusesOtherElementTypesAndByteOrders) {
  for (const std::string type : {"<i4", ">f4", "|u1", "<c8", "f4"}) {
    expect_refused(write_file("type.npy", npy_bytes(1,
                                                    "{'descr': '" + type +
                                                        "', 'fortran_order': False, 'shape': "
                                                        "(1,), }",
                                                    floats({1}))),
                   "element type '" + type + "'");
  }
}

TEST(Npy, RefusesFortranOrderSayingHowToSaveInCOrder) {
  expect_refused(write_file("fortran.npy",
                            npy_bytes(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }",
                                      floats({1, 2}))),
                 "ascontiguousarray");
}

TEST(Npy, RefusesMalformedHeaders) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"{'descr': '<f4', 'shape': (1,), }", "lacks"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}", "unknown key"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", "twice"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", "negative"},
      {"{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }", "neither True nor False"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,2,3,4,5,6,7,8,9), }", "more than 8"},
      {"{'descr': '<f4, 'fortran_order': False, 'shape': (1,)}", "malformed"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x", "after its dictionary"},
      {"[1, 2]", "expects '{'"},
  };
  for (const auto& [header, words] : cases) {
    SCOPED_TRACE(header);
    expect_refused(write_file("header.npy", npy_bytes(1, header, floats({1}))), words);
  }
  std::string version = npy_bytes(1, "{}", "");
  version[6] = 4;
  expect_refused(write_file("version.npy", version), "format version 4.0");
}

TEST(Npy, AMissingFileIsADataSourceErrorNamingIt) {
  expect_refused(folder() / "absent.npy", "no such file");
}
