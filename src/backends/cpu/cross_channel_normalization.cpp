// Fast cross-channel normalization (forward and gradient): one pass per pixel with prefix
// sums over the channels, so the cost does not grow with the window size; pixels split over
// the OpenMP threads. oneDNN's LRN centres even windows differently from MPS, so it is not
// used.
#include <cmath>
#include <vector>

#include "backends/candidates.hpp"
#include "backends/cpu/onednn_common.hpp"
#include "ops/cross_channel_normalization.hpp"

namespace cnngraph::detail::onednn {

namespace {

constexpr std::ptrdiff_t kParallelPixels = 256;

// d^-beta for a pixel's channels, without pow() for the common exponents: 0.75 (AlexNet,
// GoogLeNet, PyTorch's default) and small integers (MPS's default 5). d >= delta > 0.
void inverse_powers(const float* d, float* out, int C, float beta) {
  if (beta == 0.75f) {
#pragma omp simd
    for (int k = 0; k < C; ++k) {
      const float root = std::sqrt(d[k]);
      out[k] = 1.0f / (root * std::sqrt(root));
    }
    return;
  }
  if (beta >= 1.0f && beta <= 8.0f && beta == std::floor(beta)) {
    const int n = static_cast<int>(beta);
#pragma omp simd
    for (int k = 0; k < C; ++k) {
      float product = d[k];
      for (int i = 1; i < n; ++i) product *= d[k];
      out[k] = 1.0f / product;
    }
    return;
  }
  for (int k = 0; k < C; ++k) out[k] = std::pow(d[k], -beta);
}

// Per thread: prefix sums of squares (double: no cancellation between far-apart prefixes)
// and the denominators of one pixel.
struct Scratch {
  std::vector<double> prefix;
  std::vector<float> d;
  explicit Scratch(int C) : prefix(C + 1), d(C) {}

  void denominators(const CrossChannelNormalizationOp& op, const float* x, int C) {
    prefix[0] = 0.0;
    for (int c = 0; c < C; ++c) prefix[c + 1] = prefix[c] + double(x[c]) * x[c];
    const double a = double(op.alpha) / op.kernel_size;
    for (int k = 0; k < C; ++k) {
      const ChannelWindow w = normalization_window(k, op.kernel_size, C);
      d[k] = static_cast<float>(op.delta + a * (prefix[w.last + 1] - prefix[w.first]));
    }
  }
};

void forward(const CrossChannelNormalizationOp& op, const KernelArgs& args) {
  const int C = op.dst_shape.channels;
  const auto pixels = static_cast<std::ptrdiff_t>(op.dst_shape.elements() / C);
#pragma omp parallel if (pixels > kParallelPixels)
  {
    Scratch s(C);
    std::vector<float> power(C);  // d^-beta
#pragma omp for schedule(static)
    for (std::ptrdiff_t p = 0; p < pixels; ++p) {
      const float* x = args.srcs[0] + p * C;
      float* y = args.dst + p * C;
      s.denominators(op, x, C);
      inverse_powers(s.d.data(), power.data(), C, op.beta);
#pragma omp simd
      for (int k = 0; k < C; ++k) y[k] = x[k] * power[k];
    }
  }
}

void gradient(const CrossChannelNormalizationOp& op, const KernelArgs& args) {
  const int C = op.dst_shape.channels;
  const auto pixels = static_cast<std::ptrdiff_t>(op.dst_shape.elements() / C);
  const float scale = 2.0f * op.beta * op.alpha / static_cast<float>(op.kernel_size);
#pragma omp parallel if (pixels > kParallelPixels)
  {
    Scratch s(C);
    std::vector<double> t(C + 1);  // prefix sums of dy * x * d^(-beta - 1)
    std::vector<float> power(C);   // d^-beta
#pragma omp for schedule(static)
    for (std::ptrdiff_t p = 0; p < pixels; ++p) {
      const float* dy = args.srcs[0] + p * C;
      const float* x = args.srcs[1] + p * C;
      float* dx = args.dst + p * C;
      s.denominators(op, x, C);
      inverse_powers(s.d.data(), power.data(), C, op.beta);
      t[0] = 0.0;
      for (int k = 0; k < C; ++k) t[k + 1] = t[k] + double(dy[k]) * x[k] * power[k] / s.d[k];
      for (int j = 0; j < C; ++j) {
        const ChannelWindow r = normalization_readers(j, op.kernel_size, C);
        const double through_others = t[r.last + 1] - t[r.first];
        dx[j] = static_cast<float>(dy[j] * power[j] - scale * x[j] * through_others);
      }
    }
  }
}

}  // namespace

std::unique_ptr<Kernel> make_cross_channel_normalization(const Op& op, const GraphOptions&) {
  if (static_cast<const CrossChannelNormalizationOp&>(op).spatial)
    return decline("spatial normalization");
  return function_kernel<CrossChannelNormalizationOp>(op, "onednn:cross_channel_normalization_loop",
                                                      forward);
}
std::unique_ptr<Kernel> make_cross_channel_normalization_gradient(const Op& op,
                                                                  const GraphOptions&) {
  if (static_cast<const CrossChannelNormalizationOp&>(op).spatial)
    return decline("spatial normalization");
  return function_kernel<CrossChannelNormalizationOp>(
      op, "onednn:cross_channel_normalization_gradient_loop", gradient);
}

}  // namespace cnngraph::detail::onednn
