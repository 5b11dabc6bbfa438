// Output sizes and offsets of the padding policies, against MPS's published formulas.
#include "support.hpp"

using namespace cnngraph;

namespace {
AxisGeometry axis(int in, int k, int s, int d, PaddingSize size,
                  PaddingAlignment a = PaddingAlignment::centered,
                  PaddingRemainder r = PaddingRemainder::top_left) {
  return forward_axis_geometry(in, k, s, d, size, a, r);
}
}  // namespace

TEST(Padding, OutputSizeTable) {
  struct Row {
    int in, kernel, stride, dilation, valid, same, full;
  };
  // valid = ceil((in - K + 1) / s), same = ceil(in / s), full = ceil((in + K - 1) / s).
  const Row table[] = {
      {28, 5, 1, 1, 24, 28, 32},     {28, 5, 2, 1, 12, 14, 16}, {7, 3, 2, 1, 3, 4, 5},
      {5, 2, 2, 1, 2, 3, 3},         {10, 3, 3, 2, 2, 4, 5},    {1, 1, 1, 1, 1, 1, 1},
      {224, 7, 2, 1, 109, 112, 115}, {13, 4, 3, 1, 4, 5, 6},
  };
  for (const Row& r : table) {
    SCOPED_TRACE("in " + std::to_string(r.in) + " k " + std::to_string(r.kernel) + " s " +
                 std::to_string(r.stride) + " d " + std::to_string(r.dilation));
    EXPECT_EQ(axis(r.in, r.kernel, r.stride, r.dilation, PaddingSize::valid).result_size, r.valid);
    EXPECT_EQ(axis(r.in, r.kernel, r.stride, r.dilation, PaddingSize::same).result_size, r.same);
    EXPECT_EQ(axis(r.in, r.kernel, r.stride, r.dilation, PaddingSize::full).result_size, r.full);
  }
}

TEST(Padding, MpsOffsetExamples) {
  // K=3, s=1, same: one pixel each side.
  auto g = axis(10, 3, 1, 1, PaddingSize::same);
  EXPECT_EQ(g.pad_before, 1);
  EXPECT_EQ(g.pad_after, 1);
  // K=2, s=2, same, src=5: dest 3, extra 1; top-left remainder puts it before, TF after.
  g = axis(5, 2, 2, 1, PaddingSize::same);
  EXPECT_EQ(g.result_size, 3);
  EXPECT_EQ(g.pad_before, 1);
  g = axis(5, 2, 2, 1, PaddingSize::same, PaddingAlignment::centered,
           PaddingRemainder::bottom_right);
  EXPECT_EQ(g.pad_before, 0);
  EXPECT_EQ(g.pad_after, 1);
}

TEST(Padding, AlignmentPutsAllPaddingOnOneSide) {
  auto g = axis(8, 5, 1, 1, PaddingSize::same, PaddingAlignment::top_left);
  EXPECT_EQ(g.pad_before, 4);
  EXPECT_EQ(g.pad_after, 0);
  g = axis(8, 5, 1, 1, PaddingSize::same, PaddingAlignment::bottom_right);
  EXPECT_EQ(g.pad_before, 0);
  EXPECT_EQ(g.pad_after, 4);
}

TEST(Padding, DilatedWindowAndFullPadding) {
  auto g = axis(10, 3, 1, 2, PaddingSize::full);  // window 5
  EXPECT_EQ(g.kernel_size, 5);
  EXPECT_EQ(g.result_size, 14);
  EXPECT_EQ(g.pad_before, 4);
  EXPECT_EQ(g.pad_after, 4);
}

TEST(Padding, ValidWithUnusedTailStartsAtTheFirstPixel) {
  auto g = axis(8, 3, 2, 1, PaddingSize::valid);  // windows at 0, 2, 4; pixel 7 unused
  EXPECT_EQ(g.result_size, 3);
  EXPECT_EQ(g.pad_before, 0);
  EXPECT_EQ(g.pad_after, -1);
}

TEST(Padding, EmptyValidResultIsAShapeError) {
  EXPECT_THROW(axis(3, 5, 1, 1, PaddingSize::valid), ShapeError);
}

// ONNX's and PyTorch's windows: floor((in + before + after - K) / s) + 1; ceil_mode rounds
// up but drops a last window that would start in the trailing padding.
TEST(Padding, ExplicitPadsGiveOnnxResultSizes) {
  EXPECT_EQ(explicit_result_size(224, 7, 2, 3, 3, false), 112);  // ResNet's stem
  EXPECT_EQ(explicit_result_size(112, 3, 2, 1, 1, false), 56);   // its max pool
  EXPECT_EQ(explicit_result_size(6, 3, 2, 0, 0, false), 2);
  EXPECT_EQ(explicit_result_size(6, 3, 2, 0, 0, true), 3);
  EXPECT_EQ(explicit_result_size(5, 2, 2, 1, 1, true), 3);  // the last window starts at 4
  EXPECT_EQ(explicit_result_size(4, 2, 2, 0, 1, true), 2);  // one at 4 would be all padding
  EXPECT_EQ(explicit_result_size(2, 5, 1, 1, 1, false), 0);
}

namespace {
ImageShape result_of(Graph& graph, ImageShape source) {
  return graph.run({Image::from_floats(source, std::vector<float>(source.elements()))})[0].shape();
}
}  // namespace

TEST(Padding, ExplicitPadsPlaceTheWindowsOfANode) {
  auto x = std::make_shared<ImageNode>("x");
  auto pool = std::make_shared<MaxPoolingNode>(x, 3, 3, 2, 2);
  pool->padding_policy = PaddingPolicy::explicit_padding(1, 0, 0, 2, true);
  Graph graph(Device::cpu_reference(), pool->result_image());
  // y: (9 + 1 - 3) / 2 rounded up + 1 = 5; x: (8 + 2 - 3) / 2 rounded up + 1 = 5, and its
  // last window would start at 8, in the padding: 4.
  EXPECT_EQ(result_of(graph, ImageShape{1, 9, 8, 1}), (ImageShape{1, 5, 4, 1}));
}

TEST(Padding, NegativeOrOversizedExplicitPadsAreRefusedNamingTheNode) {
  auto x = std::make_shared<ImageNode>("x");
  auto pool = std::make_shared<MaxPoolingNode>(x, 3, 3, 1, 1);
  pool->label = "padded pool";
  pool->padding_policy = PaddingPolicy::explicit_padding(-1, 0, 0, 0);
  Graph graph(Device::cpu_reference(), pool->result_image());
  try {
    result_of(graph, ImageShape{1, 5, 5, 1});
    ADD_FAILURE() << "a negative pad was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("padded pool"), std::string::npos) << e.what();
  }
  pool->padding_policy = PaddingPolicy::explicit_padding(3, 0, 0, 0);  // a window of padding
  Graph oversized(Device::cpu_reference(), pool->result_image());
  EXPECT_THROW(result_of(oversized, ImageShape{1, 5, 5, 1}), InvalidArgument);
}
