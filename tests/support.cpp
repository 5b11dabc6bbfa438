#include "support.hpp"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>

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

Image integer_image(ImageShape shape, std::mt19937& rng) {
  std::uniform_int_distribution<int> level(-3, 3);
  std::vector<float> values(shape.elements());
  for (float& v : values) v = static_cast<float>(level(rng));
  return Image::from_floats(shape, values);
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
  return max_relative_error(a.to_floats(), b.to_floats());
}

double max_relative_error(const std::vector<float>& x, const std::vector<float>& y) {
  EXPECT_EQ(x.size(), y.size());
  if (x.size() != y.size()) return INFINITY;
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

std::string padding_token(const PaddingPolicy& policy) {
  const char* sizes[] = {"valid", "same", "full", "custom"};
  std::string text = "pad=" + std::string(sizes[static_cast<int>(policy.size)]);
  const char* alignments[] = {"c", "tl", "br"};
  if (policy.alignment != PaddingAlignment::centered ||
      policy.remainder != PaddingRemainder::top_left)
    text += "/" + std::string(alignments[static_cast<int>(policy.alignment)]);
  if (policy.remainder != PaddingRemainder::top_left) text += "/br";
  return text;
}

std::string ConvCase::name() const {
  return "conv n" + std::to_string(batch) + " c" + std::to_string(in_channels) + " h" +
         std::to_string(height) + " w" + std::to_string(width) + " k" +
         std::to_string(out_channels) + " r" + std::to_string(kernel_h) +
         (kernel_w == kernel_h ? "" : "x" + std::to_string(kernel_w)) + " s" +
         std::to_string(stride) + " d" + std::to_string(dilation) + " g" + std::to_string(groups) +
         " " + padding_token(padding);
}

std::vector<ConvCase> random_convolution_cases(int count, unsigned seed) {
  std::mt19937 rng(seed);
  const auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const std::vector<PaddingPolicy> policies = {PaddingPolicy::same(),
                                               PaddingPolicy::valid(),
                                               PaddingPolicy::full(),
                                               PaddingPolicy::tensorflow_same(),
                                               [] {
                                                 PaddingPolicy p;
                                                 p.alignment = PaddingAlignment::top_left;
                                                 return p;
                                               }(),
                                               [] {
                                                 PaddingPolicy p = PaddingPolicy::full();
                                                 p.alignment = PaddingAlignment::bottom_right;
                                                 return p;
                                               }()};
  std::vector<ConvCase> cases;
  while (static_cast<int>(cases.size()) < count) {
    ConvCase c;
    c.batch = pick(0, 2) == 0 ? 1 : pick(2, 3);
    c.height = pick(5, 13);
    c.width = pick(5, 13);
    c.kernel_w = pick(1, 5);
    c.kernel_h = pick(1, 5);
    c.stride = pick(1, 3);
    c.dilation = pick(1, 2);
    const int kind = pick(0, 2);  // 0 dense, 1 grouped, 2 depthwise
    if (kind == 2) {
      c.in_channels = pick(2, 9);
      c.groups = c.in_channels;
      c.out_channels = c.in_channels * pick(1, 2);
    } else {
      c.groups = kind == 1 ? pick(2, 3) : 1;
      c.in_channels = c.groups * pick(1, 5);
      c.out_channels = c.groups * pick(1, 5);
    }
    c.padding = policies[pick(0, static_cast<int>(policies.size()) - 1)];
    const int window_h = (c.kernel_h - 1) * c.dilation + 1,
              window_w = (c.kernel_w - 1) * c.dilation + 1;
    if (c.padding.size == PaddingSize::valid && (window_h > c.height || window_w > c.width))
      continue;
    cases.push_back(c);
  }
  return cases;
}

std::filesystem::path fresh_test_folder(const std::string& group) {
  const char* dir = std::getenv("CNNGRAPH_TEST_TMP");
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::filesystem::path folder = std::filesystem::path(dir ? dir : "/tmp") /
                                       (group + ".tmp") /
                                       (std::string(info->test_suite_name()) + "." + info->name());
  std::filesystem::remove_all(folder);
  std::filesystem::create_directories(folder);
  return folder;
}

std::string file_contents(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace cnngraph::testing
