// Reference cross-channel normalization: the formula evaluated directly, in double.
#include <cmath>

#include "backends/reference/reference_backend.hpp"
#include "ops/cross_channel_normalization.hpp"

namespace cnngraph::detail {

namespace {

// d[k] = delta + alpha / N * sum(x^2 over k's window), for one pixel's channels.
std::vector<double> denominators(const CrossChannelNormalizationOp& op, const float* x, int C) {
  std::vector<double> d(C);
  for (int k = 0; k < C; ++k) {
    const ChannelWindow w = normalization_window(k, op.kernel_size, C);
    double sum = 0.0;
    for (int q = w.first; q <= w.last; ++q) sum += double(x[q]) * x[q];
    d[k] = op.delta + double(op.alpha) / op.kernel_size * sum;
  }
  return d;
}

void forward(const CrossChannelNormalizationOp& op, const KernelArgs& args) {
  const int C = op.dst_shape.channels;
  const std::size_t pixels = op.dst_shape.elements() / C;
  for (std::size_t p = 0; p < pixels; ++p) {
    const float* x = args.srcs[0] + p * C;
    const std::vector<double> d = denominators(op, x, C);
    for (int k = 0; k < C; ++k)
      args.dst[p * C + k] = static_cast<float>(x[k] * std::pow(d[k], -double(op.beta)));
  }
}

void gradient(const CrossChannelNormalizationOp& op, const KernelArgs& args) {
  const int C = op.dst_shape.channels;
  const std::size_t pixels = op.dst_shape.elements() / C;
  const double beta = op.beta, a = double(op.alpha) / op.kernel_size;
  for (std::size_t p = 0; p < pixels; ++p) {
    const float* dy = args.srcs[0] + p * C;
    const float* x = args.srcs[1] + p * C;
    const std::vector<double> d = denominators(op, x, C);
    for (int j = 0; j < C; ++j) {
      double through_others = 0.0;
      for (int k = 0; k < C; ++k) {
        const ChannelWindow w = normalization_window(k, op.kernel_size, C);
        if (j < w.first || j > w.last) continue;
        through_others += dy[k] * double(x[k]) * std::pow(d[k], -beta - 1.0);
      }
      args.dst[p * C + j] = static_cast<float>(dy[j] * std::pow(d[j], -beta) -
                                               2.0 * beta * a * x[j] * through_others);
    }
  }
}

}  // namespace

std::unique_ptr<Kernel> make_reference_cross_channel_normalization(const Op& op,
                                                                   const GraphOptions&) {
  return function_kernel<CrossChannelNormalizationOp>(op, "reference:cross_channel_normalization",
                                                      forward);
}
std::unique_ptr<Kernel> make_reference_cross_channel_normalization_gradient(const Op& op,
                                                                            const GraphOptions&) {
  return function_kernel<CrossChannelNormalizationOp>(
      op, "reference:cross_channel_normalization_gradient", gradient);
}

}  // namespace cnngraph::detail
