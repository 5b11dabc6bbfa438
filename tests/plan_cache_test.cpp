// The CUDA backend's plan cache file (src/backends/cuda/plan_cache.*): plain C++ with no GPU
// calls, so it is tested wherever the CUDA backend is built, CI included.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "backends/cuda/cudnn/cudnn_graph.hpp"
#include "backends/cuda/cudnn/plan_cache.hpp"
#include "cnngraph/errors.hpp"

using namespace cnngraph;
using namespace cnngraph::detail::cuda;

namespace {

std::string temporary(const std::string& name) {
  const std::string path = ::testing::TempDir() + name;
  std::remove(path.c_str());
  return path;
}

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

TEST(PlanCache, EntriesRoundTripThroughTheFile) {
  const std::string path = temporary("plan_cache_round_trip.json");
  PlanRecord record;
  record.engine = 41;
  record.heuristics_mode = 1;
  record.position = 3;
  record.json = "{\"plan\": \"text with \\\"quotes\\\"\"}";
  record.milliseconds = 0.25;
  record.autotuned = true;
  store_plan("round trip key", record);
  save_plan_cache(path);
  const std::string text = read(path);
  EXPECT_NE(text.find("cnngraph cuda plan cache 2"), std::string::npos) << text;
  EXPECT_NE(text.find("round trip key"), std::string::npos) << text;

  // Another process would read it back: here, a key written by hand into a copy.
  const std::string copy = temporary("plan_cache_copy.json");
  std::string edited = text;
  edited.replace(edited.find("round trip key"), std::string("round trip key").size(),
                 "key from the file");
  std::ofstream(copy) << edited;
  load_plan_cache(copy);
  const auto loaded = cached_plan("key from the file");
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->engine, 41);
  EXPECT_EQ(loaded->heuristics_mode, 1);
  EXPECT_EQ(loaded->position, 3);
  EXPECT_EQ(loaded->json, record.json);
  EXPECT_DOUBLE_EQ(loaded->milliseconds, 0.25);
  EXPECT_TRUE(loaded->autotuned);
  EXPECT_FALSE(cached_plan("a key nobody stored").has_value());
  std::remove(path.c_str());
  std::remove(copy.c_str());
}

TEST(PlanCache, AMissingFileIsNoErrorAndAForeignOneIsRefusedByName) {
  EXPECT_NO_THROW(load_plan_cache(temporary("plan_cache_missing.json")));
  const std::string foreign = temporary("plan_cache_foreign.json");
  std::ofstream(foreign) << "{\"format\": \"some other cache\", \"plans\": {}}";
  try {
    load_plan_cache(foreign);
    ADD_FAILURE() << "a foreign file was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(foreign), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("some other cache"), std::string::npos) << e.what();
  }
  const std::string broken = temporary("plan_cache_broken.json");
  std::ofstream(broken) << "{\"format\": \"cnngraph cuda plan cache 2\", \"plans\": {\"k\": 1";
  EXPECT_THROW(load_plan_cache(broken), InvalidArgument);
  std::remove(foreign.c_str());
  std::remove(broken.c_str());
}

TEST(PlanCache, AnUnwritableFileIsADeviceError) {
  store_plan("unwritable key", PlanRecord{});
  EXPECT_THROW(save_plan_cache("/nonexistent-directory/plans.json"), DeviceError);
}

// A plan's key (convolution_problem) says where CNNGRAPH_CUDA_SYMMETRIC_PADDING gave cuDNN
// another padding than the layer's: only with the knob on, and only where no window reaches
// the rows it adds.
TEST(PlanCache, TheProblemKeyNamesASymmetricPadding) {
  const auto stride2 = [](int size) {
    detail::ConvolutionOp op;
    op.src_shapes = {ImageShape{1, size, size, 8}};
    op.output_channels = 8;
    op.kernel_height = op.kernel_width = 3;
    // "same" at stride 2: (size + 1 - 3) / 2 + 1 results, the odd padding row at the top;
    // pad_after is how far the last window reaches past the end.
    const int results = (size + 1 - 3) / 2 + 1;
    const AxisGeometry axis{size, results, 3, 2, 1, (results - 1) * 2 + 3 - 1 - size};
    op.y = op.x = axis;
    return op;
  };
  const auto key = [](const detail::ConvolutionOp& op) {
    return convolution_problem(op, CUDNN_DATA_HALF, CUDNN_DATA_FLOAT);
  };
  const auto symmetric = [&](const detail::ConvolutionOp& op) {
    return key(op).find(" symmetric") != std::string::npos;
  };
  unsetenv("CNNGRAPH_CUDA_SYMMETRIC_PADDING");
  EXPECT_FALSE(symmetric(stride2(112))) << key(stride2(112));
  setenv("CNNGRAPH_CUDA_SYMMETRIC_PADDING", "on", 1);
  EXPECT_TRUE(symmetric(stride2(112))) << key(stride2(112));
  // 113 rows: a bottom padding row would give a 57th result, so the layer keeps its own.
  EXPECT_FALSE(symmetric(stride2(113))) << key(stride2(113));
  unsetenv("CNNGRAPH_CUDA_SYMMETRIC_PADDING");
}
