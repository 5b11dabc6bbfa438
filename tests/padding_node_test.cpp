// PaddingNode (constant padding): hand-computed results and gradients on both CPU devices,
// and its errors. Every backend against the reference: the constpad op cases.
#include <limits>

#include "gradient_support.hpp"

using namespace cnngraph;
using namespace cnngraph::testing;

namespace {

const std::vector<Device> cpu_devices = {Device::cpu_reference(), Device::cpu()};

template <typename Body>
void expect_invalid_argument_naming(const std::string& name, Body body) {
  try {
    body();
    ADD_FAILURE() << "no InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(PaddingNode, SurroundsTheImageWithTheValue) {
  // 2x2 image, one channel; one row above, one column left and two right, fill 9.
  const Image x = Image::from_floats({1, 2, 2, 1}, std::vector<float>{1, 2, 3, 4});
  auto node = std::make_shared<PaddingNode>(std::make_shared<ImageNode>(),
                                            PaddingAmounts{.top = 1, .left = 1, .right = 2}, 9.0f);
  EXPECT_EQ(node->kind(), "padding");
  for (Device device : cpu_devices) {
    SCOPED_TRACE(device.name());
    const Image y = run_on(device, node->result_image(), {x});
    EXPECT_EQ(y.shape(), (ImageShape{1, 3, 5, 1}));
    EXPECT_EQ(y.to_floats(), (std::vector<float>{9, 9, 9, 9, 9,  //
                                                 9, 1, 2, 9, 9,  //
                                                 9, 3, 4, 9, 9}));
  }
}

TEST(PaddingNode, DefaultsToZeroAndPadsChannelsAfterTheLast) {
  const Image x = Image::from_floats({2, 1, 1, 2}, std::vector<float>{1, 2, 3, 4});
  auto node = std::make_shared<PaddingNode>(std::make_shared<ImageNode>(),
                                            PaddingAmounts{.bottom = 1, .channels_after = 1});
  for (Device device : cpu_devices) {
    SCOPED_TRACE(device.name());
    const Image y = run_on(device, node->result_image(), {x});
    EXPECT_EQ(y.shape(), (ImageShape{2, 2, 1, 3}));
    EXPECT_EQ(y.to_floats(), (std::vector<float>{1, 2, 0, 0, 0, 0, 3, 4, 0, 0, 0, 0}));
  }
}

TEST(PaddingNode, GradientCropsThePaddingOff) {
  auto src = std::make_shared<ImageNode>("x");
  auto dy_node = std::make_shared<ImageNode>("dy");
  auto node = std::make_shared<PaddingNode>(
      src, PaddingAmounts{.top = 1, .bottom = 0, .left = 0, .right = 1, .channels_after = 1}, 5.0f);
  const auto gradient = node->gradient_filter(dy_node)->result_image();
  const Image x = Image::from_floats({1, 1, 2, 1}, std::vector<float>{7, 8});
  // dy is 2x3x2: the source's pixels are row 1, columns 0 and 1, channel 0.
  std::vector<float> dy(12);
  for (int i = 0; i < 12; ++i) dy[i] = static_cast<float>(i);
  for (Device device : cpu_devices) {
    SCOPED_TRACE(device.name());
    Graph graph(device, gradient);
    EXPECT_EQ(
        run_named(graph, {{"x", x}, {"dy", Image::from_floats({1, 2, 3, 2}, dy)}}).to_floats(),
        (std::vector<float>{6, 8}));
  }
}

TEST(PaddingNode, RefusesNegativeAmountsNamingTheNode) {
  auto x = std::make_shared<ImageNode>();
  expect_invalid_argument_naming("padding", [&] { PaddingNode(x, PaddingAmounts{.left = -1}); });
  expect_invalid_argument_naming("channels_after -2",
                                 [&] { PaddingNode(x, PaddingAmounts{.channels_after = -2}); });
  expect_invalid_argument_naming("finite", [&] {
    PaddingNode(x, PaddingAmounts{.top = 1}, std::numeric_limits<float>::infinity());
  });
}

TEST(PaddingNode, ResultTooLargeIsAnInvalidArgumentNamingTheNode) {
  auto node = std::make_shared<PaddingNode>(
      std::make_shared<ImageNode>(), PaddingAmounts{.top = std::numeric_limits<int>::max(),
                                                    .bottom = std::numeric_limits<int>::max()});
  node->label = "huge pad";
  const Image x = Image::from_floats({1, 1, 1, 1}, std::vector<float>{1});
  expect_invalid_argument_naming(
      "huge pad", [&] { run_on(Device::cpu_reference(), node->result_image(), {x}); });
}

TEST(PaddingNode, ListsItsAmountsAndValue) {
  auto node = std::make_shared<PaddingNode>(
      std::make_shared<ImageNode>(),
      PaddingAmounts{.top = 1, .bottom = 2, .left = 3, .right = 4, .channels_after = 5}, 0.5f);
  EXPECT_EQ(node->amounts().top, 1);
  EXPECT_EQ(node->amounts().right, 4);
  EXPECT_EQ(node->amounts().channels_after, 5);
  EXPECT_EQ(node->value(), 0.5f);
}
