// Local response normalization, across channels and spatial
// (src/ops/cross_channel_normalization.cpp): forward against the formula evaluated here on both CPU
// devices, gradients against finite differences, bad parameters. The CPU and CUDA backends against
// the reference: the lrn and spatial_lrn cases of backend_ops_test.
#include <cmath>

#include "gradient_support.hpp"

using namespace cnngraph;
using namespace cnngraph::testing;

namespace {

// MPS's formula, y = x / (delta + alpha / N * sum of x^2 over the channel window)^beta,
// written out independently of the library's window helper.
std::vector<float> normalization_by_formula(const Image& image, int N, float alpha, float beta,
                                            float delta) {
  const auto x = image.to_floats();
  const int D = image.shape().channels;
  std::vector<float> y(x.size());
  for (std::size_t p = 0; p < x.size() / D; ++p) {
    for (int k = 0; k < D; ++k) {
      double sum = 0.0;
      const int lo = std::max(0, k - static_cast<int>(std::floor(N / 2.0)));
      const int hi = std::min(D - 1, k + static_cast<int>(std::floor((N - 1) / 2.0)));
      for (int q = lo; q <= hi; ++q) sum += double(x[p * D + q]) * x[p * D + q];
      y[p * D + k] = static_cast<float>(x[p * D + k] / std::pow(delta + alpha / N * sum, beta));
    }
  }
  return y;
}

std::shared_ptr<CrossChannelNormalizationNode> normalization(std::shared_ptr<ImageNode> x, int N,
                                                             float alpha, float beta, float delta) {
  auto node = std::make_shared<CrossChannelNormalizationNode>(std::move(x), N);
  node->alpha = alpha;
  node->beta = beta;
  node->delta = delta;
  return node;
}

struct NormalizationCase {
  ImageShape shape;
  int N;
  float alpha, beta, delta;
};

const NormalizationCase kCases[] = {
    {{2, 3, 4, 7}, 5, 1.0f, 5.0f, 1.0f},     // MPS defaults
    {{3, 5, 2, 16}, 4, 0.5f, 0.75f, 2.0f},   // even window
    {{1, 2, 3, 3}, 9, 2.0f, 1.5f, 1.0f},     // window wider than the channels
    {{2, 1, 1, 1}, 1, 1.0f, 0.5f, 1.0f},     // one channel
    {{4, 7, 9, 33}, 5, 1e-4f, 0.75f, 1.0f},  // PyTorch's defaults, odd sizes
    {{8, 20, 20, 12}, 3, 0.3f, 2.0f, 0.5f},  // large enough to split over threads
};

}  // namespace

TEST(CrossChannelNormalization, MatchesTheFormulaOnBothBackends) {
  std::mt19937 rng(51);
  for (const NormalizationCase& c : kCases) {
    SCOPED_TRACE("N " + std::to_string(c.N) + ", " + std::to_string(c.shape.channels) +
                 " channels");
    auto x = std::make_shared<ImageNode>("x");
    auto node = normalization(x, c.N, c.alpha, c.beta, c.delta);
    const Image input = random_image(c.shape, rng);
    const auto expected = normalization_by_formula(input, c.N, c.alpha, c.beta, c.delta);
    EXPECT_LE(
        max_relative_error(
            run_on(Device::cpu_reference(), node->result_image(), {input}).to_floats(), expected),
        1e-6);
    EXPECT_LE(max_relative_error(run_on(Device::cpu(), node->result_image(), {input}).to_floats(),
                                 expected),
              1e-5);
  }
}

TEST(CrossChannelNormalization, GradientMatchesFiniteDifferences) {
  for (const NormalizationCase& c : kCases) {
    SCOPED_TRACE("N " + std::to_string(c.N) + ", " + std::to_string(c.shape.channels) +
                 " channels");
    if (c.shape.elements() >= 2000) continue;
    check_input_gradients(
        [&](std::vector<std::shared_ptr<ImageNode>> x) {
          return normalization(x[0], c.N, c.alpha, c.beta, c.delta);
        },
        {c.shape}, 52);
  }
}
TEST(CrossChannelNormalization, BadParametersAreClearErrors) {
  auto x = std::make_shared<ImageNode>("x");
  EXPECT_THROW(CrossChannelNormalizationNode(x, 0), InvalidArgument);
  EXPECT_THROW(CrossChannelNormalizationNode(x, -3), InvalidArgument);
  std::mt19937 rng(54);
  const Image input = random_image({1, 2, 2, 4}, rng);
  for (const auto& [alpha, beta, delta] :
       {std::tuple{-1.0f, 5.0f, 1.0f}, std::tuple{1.0f, NAN, 1.0f}, std::tuple{1.0f, 5.0f, 0.0f}}) {
    auto node = normalization(x, 3, alpha, beta, delta);
    node->label = "lrn1";
    try {
      run_on(Device::cpu(), node->result_image(), {input});
      FAIL() << "expected InvalidArgument";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("lrn1"), std::string::npos) << e.what();
    }
  }
}

// Spatial normalization (MPSCNNSpatialNormalization).
TEST(SpatialNormalization, MatchesTheFormulaAndFiniteDifferences) {
  std::mt19937 rng(91);
  struct Case {
    ImageShape shape;
    int kw, kh;
    float alpha, beta, delta;
  };
  for (const Case& c :
       {Case{{2, 5, 6, 3}, 3, 3, 1.0f, 5.0f, 1.0f}, Case{{1, 4, 7, 2}, 2, 4, 0.5f, 0.75f, 2.0f},
        Case{{3, 3, 3, 1}, 5, 1, 2.0f, 1.5f, 1.0f}}) {
    SCOPED_TRACE(std::to_string(c.kw) + "x" + std::to_string(c.kh));
    const auto make = [&](std::shared_ptr<ImageNode> x) {
      auto node = std::make_shared<SpatialNormalizationNode>(std::move(x), c.kw, c.kh);
      node->alpha = c.alpha;
      node->beta = c.beta;
      node->delta = c.delta;
      return node;
    };
    const Image input = random_image(c.shape, rng);
    const auto x = input.to_floats();
    const ImageShape& s = c.shape;
    std::vector<float> expected(x.size());
    for (int n = 0; n < s.batch; ++n)
      for (int h = 0; h < s.height; ++h)
        for (int w = 0; w < s.width; ++w)
          for (int ch = 0; ch < s.channels; ++ch) {
            double sum = 0.0;
            for (int yy = std::max(0, h - c.kh / 2);
                 yy <= std::min(s.height - 1, h + (c.kh - 1) / 2); ++yy)
              for (int xx = std::max(0, w - c.kw / 2);
                   xx <= std::min(s.width - 1, w + (c.kw - 1) / 2); ++xx) {
                const float v = x[((n * s.height + yy) * s.width + xx) * s.channels + ch];
                sum += double(v) * v;
              }
            const std::size_t e = ((n * s.height + h) * s.width + w) * s.channels + ch;
            expected[e] = static_cast<float>(
                x[e] / std::pow(c.delta + c.alpha / (c.kw * c.kh) * sum, c.beta));
          }
    auto x_node = std::make_shared<ImageNode>("x");
    for (const Device device : {Device::cpu_reference(), Device::cpu()}) {
      EXPECT_LE(max_relative_error(
                    run_on(device, make(x_node)->result_image(), {input}).to_floats(), expected),
                1e-6)
          << device.name();
    }
    check_input_gradients([&](std::vector<std::shared_ptr<ImageNode>> xs) { return make(xs[0]); },
                          {c.shape}, 92);
  }
  auto x = std::make_shared<ImageNode>("x");
  EXPECT_THROW(SpatialNormalizationNode(x, 0, 3), InvalidArgument);
  auto node = std::make_shared<SpatialNormalizationNode>(x, 3, 3);
  node->delta = -1.0f;
  EXPECT_THROW(run_on(Device::cpu(), node->result_image(), {random_image({1, 3, 3, 1}, rng)}),
               InvalidArgument);
}
