// Image storage and the element-type conversions.
#include <cmath>

#include "support.hpp"

using namespace cnngraph;
using namespace cnngraph::testing;

TEST(Image, HalfConversionRoundsToNearestEven) {
  EXPECT_EQ(float_to_half(1.0f), 0x3c00);
  EXPECT_EQ(float_to_half(65504.0f), 0x7bff);
  EXPECT_EQ(float_to_half(1e6f), 0x7c00);
  EXPECT_EQ(float_to_half(1.0f + 1.0f / 2048.0f), 0x3c00);  // halfway, rounds to even
  EXPECT_EQ(float_to_half(1.0f + 3.0f / 2048.0f), 0x3c02);  // halfway, rounds to even (up)
  EXPECT_EQ(half_to_float(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_TRUE(std::isnan(half_to_float(float_to_half(NAN))));
  for (std::uint32_t h = 0; h < 0x7c00; ++h) {
    ASSERT_EQ(float_to_half(half_to_float(static_cast<std::uint16_t>(h))), h);
  }
}

TEST(Image, Bfloat16ConversionRoundsToNearestEven) {
  EXPECT_EQ(float_to_bfloat16(1.0f), 0x3f80);
  EXPECT_EQ(bfloat16_to_float(float_to_bfloat16(3.140625f)), 3.140625f);
  EXPECT_EQ(float_to_bfloat16(std::bit_cast<float>(0x3f808000u)), 0x3f80);  // tie to even
  EXPECT_EQ(float_to_bfloat16(std::bit_cast<float>(0x3f818000u)), 0x3f82);
}

TEST(Image, NchwRoundTripAndLayout) {
  const ImageShape shape{2, 2, 3, 4};
  std::vector<float> nchw(shape.elements());
  for (std::size_t i = 0; i < nchw.size(); ++i) nchw[i] = static_cast<float>(i);
  const Image image = Image::from_nchw(shape, nchw);
  // NHWC element (n=1, h=1, w=2, c=3) is NCHW element ((1*4+3)*2+1)*3+2.
  EXPECT_EQ(image.to_floats()[((1 * 2 + 1) * 3 + 2) * 4 + 3], nchw[((1 * 4 + 3) * 2 + 1) * 3 + 2]);
  EXPECT_EQ(image.to_nchw(), nchw);
}

TEST(Image, TypesConvertAtTheBoundary) {
  const Image image = Image::from_floats({1, 1, 2, 2}, std::vector<float>{0.0f, 0.5f, 1.0f, 2.0f});
  EXPECT_EQ(image.converted_to(DataType::u8).to_floats(),
            (std::vector<float>{0.0f, 128 / 255.0f, 1.0f, 1.0f}));  // unorm8 clamps to [0, 1]
  EXPECT_EQ(image.converted_to(DataType::f16).to_floats(), image.to_floats());
  EXPECT_EQ(image.converted_to(DataType::bf16).size_in_bytes(), 8u);
  EXPECT_THROW(Image::from_floats({1, 1, 1, 2}, std::vector<float>{1.0f}), InvalidArgument);
}

TEST(ImageWrap, AWrappedHostBufferIsTheImagesStorageAndAGraphReadsIt) {
  std::mt19937 rng(5);
  const ImageShape shape{2, 5, 4, 3};
  auto buffer = std::make_shared<std::vector<float>>(random_floats(shape.elements(), rng));
  const std::weak_ptr<std::vector<float>> watch = buffer;
  auto* data = reinterpret_cast<std::byte*>(buffer->data());
  std::shared_ptr<ImageNode> result;
  {
    const Image wrapped = Image::wrap(shape, DataType::f32, data, Device::cpu(), buffer);
    buffer.reset();
    EXPECT_EQ(wrapped.data(), data);  // no copy
    EXPECT_EQ(wrapped.device(), Device::cpu());
    const Image copy = wrapped;  // copies share the storage and the owner
    EXPECT_EQ(copy.data(), data);
    auto source = std::make_shared<ImageNode>();
    auto conv = std::make_shared<ConvolutionNode>(
        source, random_source(ConvolutionDescriptor(3, 3, 3, 4), rng));
    result = conv->result_image();
    const Image copied = Image::from_floats(shape, wrapped.to_floats());
    for (const Device& device : {Device::cpu_reference(), Device::cpu()}) {
      EXPECT_EQ(run_on(device, result, {wrapped}).to_floats(),
                run_on(device, result, {copied}).to_floats())
          << device.name();
    }
    EXPECT_FALSE(watch.expired());
  }
  EXPECT_TRUE(watch.expired());  // the last copy released the owner
}

TEST(ImageWrap, TheDeleterRunsOnceWhenTheLastCopyGoesOrWhenWrapRefuses) {
  int deleted = 0;
  std::vector<std::uint16_t> halves(8, float_to_half(1.5f));
  auto* data = reinterpret_cast<std::byte*>(halves.data());
  {
    const Image a = Image::wrap({1, 2, 2, 2}, DataType::f16, data, Device::cpu(),
                                [&](std::byte* p) { deleted += p == data; });
    const Image b = a;
    EXPECT_EQ(b.to_floats(), std::vector<float>(8, 1.5f));
  }
  EXPECT_EQ(deleted, 1);
  EXPECT_THROW(
      Image::wrap({0, 2, 2, 2}, DataType::f16, data, Device::cpu(), [&](std::byte*) { ++deleted; }),
      InvalidArgument);
  EXPECT_EQ(deleted, 2);
}

TEST(ImageWrap, NullOrMisalignedPointersAndBadShapesAreRefusedWithTheirReason) {
  alignas(16) std::byte bytes[64] = {};
  const auto message = [](auto&& call) {
    try {
      call();
    } catch (const InvalidArgument& e) {
      return std::string(e.what());
    }
    return std::string("no exception");
  };
  EXPECT_NE(message([] {
              Image::wrap({1, 1, 1, 4}, DataType::f32, nullptr, Device::cpu());
            }).find("null"),
            std::string::npos);
  EXPECT_NE(message([&] {
              Image::wrap({1, 1, 1, 4}, DataType::f32, bytes + 2, Device::cpu());
            }).find("aligned to the element size (4 bytes)"),
            std::string::npos);
  EXPECT_NE(message([&] {
              Image::wrap({1, -1, 1, 4}, DataType::f32, bytes, Device::cpu());
            }).find("positive"),
            std::string::npos);
  // u8 elements need no alignment; a null owner is the caller's promise of lifetime.
  const Image bytes_image = Image::wrap({1, 1, 3, 1}, DataType::u8, bytes + 1, Device::cpu());
  EXPECT_EQ(bytes_image.data(), bytes + 1);
  EXPECT_FALSE(bytes_image.empty());
}
