// Reference local response normalization (cross-channel and spatial): the formula evaluated
// directly, in double.
#include <cmath>

#include "backends/reference/reference_backend.hpp"
#include "ops/cross_channel_normalization.hpp"

namespace cnngraph::detail {

namespace {

// Calls visit(index) for each element whose square enters the denominator of element
// (n, y, x, c): its channel window, or its spatial window in channel c.
template <typename Visit>
void for_each_in_window(const CrossChannelNormalizationOp& op, const ImageShape& s, int n, int y,
                        int x, int c, Visit visit) {
  const auto at = [&](int yy, int xx, int cc) {
    return ((static_cast<std::size_t>(n) * s.height + yy) * s.width + xx) * s.channels + cc;
  };
  if (!op.spatial) {
    const ChannelWindow w = normalization_window(c, op.kernel_size, s.channels);
    for (int q = w.first; q <= w.last; ++q) visit(at(y, x, q));
    return;
  }
  const ChannelWindow rows = normalization_window(y, op.kernel_height, s.height);
  const ChannelWindow columns = normalization_window(x, op.kernel_width, s.width);
  for (int yy = rows.first; yy <= rows.last; ++yy)
    for (int xx = columns.first; xx <= columns.last; ++xx) visit(at(yy, xx, c));
}

// d = delta + alpha / N * sum(x^2 over the window), for every element.
std::vector<double> denominators(const CrossChannelNormalizationOp& op, const float* x) {
  const ImageShape& s = op.dst_shape;
  std::vector<double> d(s.elements());
  const double a = double(op.alpha) / op.window_size();
  std::size_t e = 0;
  for (int n = 0; n < s.batch; ++n)
    for (int y = 0; y < s.height; ++y)
      for (int xx = 0; xx < s.width; ++xx)
        for (int c = 0; c < s.channels; ++c, ++e) {
          double sum = 0.0;
          for_each_in_window(op, s, n, y, xx, c,
                             [&](std::size_t q) { sum += double(x[q]) * x[q]; });
          d[e] = op.delta + a * sum;
        }
  return d;
}

void forward(const CrossChannelNormalizationOp& op, const KernelArgs& args) {
  const std::vector<double> d = denominators(op, args.srcs[0]);
  for (std::size_t e = 0; e < d.size(); ++e)
    args.dst[e] = static_cast<float>(args.srcs[0][e] * std::pow(d[e], -double(op.beta)));
}

// dx[j] = dy[j] d[j]^-beta - 2 beta alpha / N x[j] sum over e whose window holds j of
//         dy[e] x[e] d[e]^(-beta - 1).
void gradient(const CrossChannelNormalizationOp& op, const KernelArgs& args) {
  const ImageShape& s = op.dst_shape;
  const float* dy = args.srcs[0];
  const float* x = args.srcs[1];
  const std::vector<double> d = denominators(op, x);
  const double beta = op.beta, a = double(op.alpha) / op.window_size();
  std::vector<double> through_others(d.size(), 0.0);
  std::size_t e = 0;
  for (int n = 0; n < s.batch; ++n)
    for (int y = 0; y < s.height; ++y)
      for (int xx = 0; xx < s.width; ++xx)
        for (int c = 0; c < s.channels; ++c, ++e) {
          const double t = dy[e] * double(x[e]) * std::pow(d[e], -beta - 1.0);
          for_each_in_window(op, s, n, y, xx, c, [&](std::size_t q) { through_others[q] += t; });
        }
  for (std::size_t j = 0; j < d.size(); ++j) {
    args.dst[j] = static_cast<float>(dy[j] * std::pow(d[j], -beta) -
                                     2.0 * beta * a * x[j] * through_others[j]);
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
