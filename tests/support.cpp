#include "support.hpp"

#include <cmath>

namespace cnngraph::testing {

std::vector<float> random_floats(std::size_t count, std::mt19937& rng, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(count);
  for (float& x : v) x = dist(rng);
  return v;
}

Image random_image(ImageShape shape, std::mt19937& rng) {
  return Image::from_floats(shape, random_floats(shape.elements(), rng));
}

std::shared_ptr<ArrayDataSource> random_source(const ConvolutionDescriptor& d, std::mt19937& rng,
                                               bool with_bias, const std::string& label) {
  const std::size_t count = static_cast<std::size_t>(d.output_feature_channels) * d.kernel_height *
                            d.kernel_width * (d.input_feature_channels / d.groups);
  return std::make_shared<ArrayDataSource>(
      label, d, random_floats(count, rng),
      with_bias ? random_floats(d.output_feature_channels, rng) : std::vector<float>{});
}

Image run_on(Device device, const std::shared_ptr<ImageNode>& result,
             const std::vector<Image>& sources, GraphOptions options) {
  Graph graph(device, result, true, options);
  return graph.run(sources)[0];
}

double max_relative_error(const Image& a, const Image& b) {
  EXPECT_EQ(a.shape(), b.shape());
  if (a.shape() != b.shape()) return INFINITY;
  const auto x = a.to_floats(), y = b.to_floats();
  double worst = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double e = std::fabs(static_cast<double>(x[i]) - y[i]) / (1.0 + std::fabs(y[i]));
    if (!(e <= worst)) worst = e;  // NaN propagates as a failure
  }
  return worst;
}

void expect_backends_agree(const std::shared_ptr<ImageNode>& result,
                           const std::vector<Image>& sources, double tolerance,
                           GraphOptions fast_options) {
  const Image expected = run_on(Device::cpu_reference(), result, sources);
  const Image actual = run_on(Device::cpu(), result, sources, fast_options);
  EXPECT_LE(max_relative_error(actual.converted_to(DataType::f32), expected), tolerance);
}

}  // namespace cnngraph::testing
