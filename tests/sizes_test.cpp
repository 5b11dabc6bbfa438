// Sizes that overflow their types: every product of sizes is checked, and a shape, a
// descriptor or a geometry that does not fit is an InvalidArgument naming the field, never a
// wrapped-around count (a 0-byte image, a negative square, a wrong convolution).
#include <climits>

#include "support.hpp"

using namespace cnngraph;
using namespace cnngraph::testing;

namespace {

// The message of the InvalidArgument `f` throws ("" if it throws none).
template <typename F>
std::string invalid_argument_of(F f) {
  try {
    f();
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST(CheckedSizes, ProductsReportOverflowInsteadOfWrapping) {
  EXPECT_EQ(detail::checked_size_product({3, 4, 5}), 60u);
  EXPECT_EQ(detail::checked_size_product({1LL << 32, 1LL << 32}), std::nullopt);
  EXPECT_EQ(detail::checked_size_product({2, -1}), std::nullopt);
  EXPECT_EQ(detail::checked_multiply<int>(1 << 16, 1 << 15), std::nullopt);
  EXPECT_EQ(detail::checked_add<int>(INT_MAX, 1), std::nullopt);
  EXPECT_EQ(detail::fits_int(1LL << 31), std::nullopt);
  EXPECT_EQ(detail::fits_int(-5), -5);
}

TEST(ImageSizes, ElementCountsThatDoNotFitAreAnInvalidArgumentNotZeroBytes) {
  const ImageShape wraps{1 << 30, 1 << 17, 1 << 17, 1};  // 2^64 elements: used to give 0
  EXPECT_THROW((void)wraps.elements(), InvalidArgument);
  EXPECT_THROW((void)(ImageShape{1, 1 << 30, 1 << 30, 1 << 10}.elements_per_image()),
               InvalidArgument);
  const std::string message = invalid_argument_of([&] { Image image(wraps); });
  EXPECT_TRUE(contains(message, "n1073741824h131072w131072c1")) << message;
  // 2^62 elements fit size_t, but not their 4-byte f32 size.
  EXPECT_THROW(Image(ImageShape{1 << 30, 1 << 16, 1 << 16, 1}), InvalidArgument);
  EXPECT_THROW((void)(ImageShape{1, -2, 3, 4}.elements()), InvalidArgument);
  EXPECT_EQ((ImageShape{2, 3, 4, 5}.elements()), 120u);
  EXPECT_EQ(ImageShape{}.elements(), 0u);
}

TEST(ImageSizes, AGraphRefusesSourceShapesWhoseSizeDoesNotFit) {
  auto src = std::make_shared<ImageNode>();
  auto relu = std::make_shared<NeuronNode>(src, NeuronDescriptor::make(NeuronType::relu));
  for (const Device& device : {Device::cpu_reference(), Device::cpu()}) {
    Graph graph(device, relu->result_image());
    EXPECT_THROW(graph.compile({ImageShape{1 << 30, 1 << 17, 1 << 17, 1}}), InvalidArgument);
    EXPECT_THROW(graph.compile({ImageShape{1 << 30, 1 << 16, 1 << 16, 1}}), InvalidArgument);
  }
}

TEST(DescriptorSizes, WeightCountOverflowIsAnInvalidArgument) {
  ConvolutionDescriptor d(65536, 65536, 65536, 65536);  // 2^64 weights: used to give 0
  EXPECT_THROW((void)d.weight_count(), InvalidArgument);
  const std::string message = invalid_argument_of([&] { d.validate("conv"); });
  EXPECT_TRUE(contains(message, "conv")) << message;
  EXPECT_TRUE(contains(message, "weight_count")) << message;
  EXPECT_EQ(ConvolutionDescriptor(3, 3, 4, 8).weight_count(), 3u * 3 * 4 * 8);
  EXPECT_THROW(ConvolutionDescriptor::depthwise(3, 3, 1 << 16, 1 << 16), InvalidArgument);
  ConvolutionDescriptor binary(3, 3, 64, 1 << 30);
  binary.kernel_width = binary.kernel_height = 1 << 30;
  EXPECT_THROW((void)bit_packed_word_count(binary), InvalidArgument);
}

TEST(DescriptorSizes, SubPixelSquareAndDilatedKernelThatDoNotFitAreNamed) {
  ConvolutionDescriptor sub(3, 3, 4, 8);
  sub.sub_pixel_scale_factor = 50000;  // 50000^2 overflows int: used to go negative
  std::string message = invalid_argument_of([&] { sub.validate("up"); });
  EXPECT_TRUE(contains(message, "sub_pixel_scale_factor 50000")) << message;
  ConvolutionDescriptor dilated(3, 3, 1, 1);
  dilated.dilation_x = 1 << 30;  // (3 - 1) * 2^30 + 1 > INT_MAX
  message = invalid_argument_of([&] { dilated.validate("wide"); });
  EXPECT_TRUE(contains(message, "dilation_x 1073741824")) << message;
  EXPECT_TRUE(contains(message, "2147483649")) << message;
}

TEST(PaddingSizes, GeometryIsComputedWithoutWrapping) {
  // A stride near INT_MAX: one window, not a misleading "smaller than the window".
  for (const PaddingSize size : {PaddingSize::valid, PaddingSize::same, PaddingSize::full}) {
    const AxisGeometry g = forward_axis_geometry(
        10, 3, INT_MAX - 1, 1, size, PaddingAlignment::centered, PaddingRemainder::top_left);
    EXPECT_EQ(g.result_size, 1);
  }
  // A dilated window wider than an int, and a full result past INT_MAX.
  EXPECT_THROW(forward_axis_geometry(5, 3, 1, 1 << 30, PaddingSize::same,
                                     PaddingAlignment::centered, PaddingRemainder::top_left),
               InvalidArgument);
  EXPECT_THROW(forward_axis_geometry(INT_MAX - 1, 5, 1, 1, PaddingSize::full,
                                     PaddingAlignment::centered, PaddingRemainder::top_left),
               InvalidArgument);
}

TEST(PaddingSizes, AHugeDilationIsRefusedNotComputedWrongOnEveryCpuDevice) {
  // A window wider than an int is refused with the descriptor.
  ConvolutionDescriptor d(3, 3, 1, 1);
  d.dilation_x = d.dilation_y = 1 << 30;
  std::string message =
      invalid_argument_of([&] { ArrayDataSource("wide", d, std::vector<float>(9, 1.0f)); });
  EXPECT_TRUE(contains(message, "dilation_x")) << message;
  // Just inside int: the windows' span (result - 1) * stride + window must fit as well.
  d.dilation_x = d.dilation_y = (1 << 30) - 1;
  auto conv = std::make_shared<ConvolutionNode>(
      std::make_shared<ImageNode>(),
      std::make_shared<ArrayDataSource>("w", d, std::vector<float>(9, 1.0f)));
  conv->label = "dilated";
  std::mt19937 rng(1);
  for (const Device& device : {Device::cpu_reference(), Device::cpu()}) {
    message = invalid_argument_of([&] {
      run_on(device, conv->result_image(), {random_image({1, 4, 4, 1}, rng)});
    });
    EXPECT_TRUE(contains(message, "dilated")) << message;
    EXPECT_TRUE(contains(message, "does not fit an int")) << message;
  }
}

TEST(OpSizes, ResultSizesThatDoNotFitAreNamedAtCompile) {
  std::mt19937 rng(2);
  auto src = std::make_shared<ImageNode>();
  // A transposed convolution whose stride makes the result wider than an int.
  ConvolutionDescriptor t(1, 1, 1, 1);
  t.stride_x = 1 << 30;
  auto transpose = std::make_shared<ConvolutionTransposeNode>(
      src, nullptr, std::make_shared<ArrayDataSource>("t", t, std::vector<float>{1.0f}));
  transpose->training_style = TrainingStyle::none;
  transpose->label = "up";
  std::string message = invalid_argument_of([&] {
    Graph(Device::cpu_reference(), transpose->result_image()).compile({{1, 2, 4, 1}});
  });
  EXPECT_TRUE(contains(message, "up")) << message;
  // A sub-pixel result of more elements than an image may hold.
  ConvolutionDescriptor sub(1, 1, 1, 1 << 20);
  sub.set_sub_pixel(1 << 10);
  auto big = std::make_shared<ConvolutionNode>(
      src, std::make_shared<ArrayDataSource>("s", sub, std::vector<float>(1 << 20, 0.0f)));
  big->label = "big";
  message = invalid_argument_of([&] {
    Graph(Device::cpu_reference(), big->result_image()).compile({{1 << 20, 1 << 10, 1 << 10, 1}});
  });
  EXPECT_TRUE(contains(message, "big")) << message;
  // A concatenation with more channels than an int holds.
  auto other = std::make_shared<ImageNode>();
  auto concat = std::make_shared<ConcatenationNode>(std::vector{src, other});
  concat->label = "join";
  message = invalid_argument_of([&] {
    Graph(Device::cpu_reference(), concat->result_image())
        .compile({{1, 1, 1, INT_MAX - 1}, {1, 1, 1, 5}});
  });
  EXPECT_TRUE(contains(message, "join")) << message;
  EXPECT_THROW(SpatialNormalizationNode(src, 1 << 16, 1 << 16), InvalidArgument);
}
