// Fast cross-channel normalization (forward and gradient): one pass per pixel with prefix
// sums over the channels, so the cost does not grow with the window size; pixels split over
// the OpenMP threads. oneDNN's LRN centres even windows differently from MPS, so it is not
// used.
#include <cmath>
#include <vector>

#include "backends/onednn/onednn_common.hpp"
#include "ops/cross_channel_normalization.hpp"

namespace cnngraph::detail::onednn {

namespace {

constexpr std::ptrdiff_t kParallelPixels = 256;

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
#pragma omp for schedule(static)
    for (std::ptrdiff_t p = 0; p < pixels; ++p) {
      const float* x = args.srcs[0] + p * C;
      float* y = args.dst + p * C;
      s.denominators(op, x, C);
      for (int k = 0; k < C; ++k) y[k] = x[k] * std::pow(s.d[k], -op.beta);
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
      t[0] = 0.0;
      for (int k = 0; k < C; ++k) {
        power[k] = std::pow(s.d[k], -op.beta);
        t[k + 1] = t[k] + double(dy[k]) * x[k] * power[k] / s.d[k];
      }
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
  return function_kernel<CrossChannelNormalizationOp>(op, "onednn:cross_channel_normalization_loop",
                                                      forward);
}
std::unique_ptr<Kernel> make_cross_channel_normalization_gradient(const Op& op,
                                                                  const GraphOptions&) {
  return function_kernel<CrossChannelNormalizationOp>(
      op, "onednn:cross_channel_normalization_gradient_loop", gradient);
}

}  // namespace cnngraph::detail::onednn
