// Image storage and the element-type conversions.
#include <cmath>

#include "support.hpp"

using namespace cnngraph;

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
