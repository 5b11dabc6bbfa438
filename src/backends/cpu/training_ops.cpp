// Fast CPU kernels of the training ops oneDNN has no fitting primitive for: ReLU and pooling
// gradients (oneDNN's max-pooling backward needs a workspace that our inference-style
// forward does not keep) and dropout. NHWC loops with the channel innermost, so they
// vectorize, spread over the OpenMP threads oneDNN uses too. Same results as the reference
// kernels (same first-maximum rule, same order of additions per pixel).
#include <algorithm>
#include <cmath>
#include <vector>

#include "backends/cpu/onednn_common.hpp"
#include "kernels/dropout_mask.hpp"
#include "ops/neuron_math.hpp"
#include "ops/pooling_math.hpp"

namespace cnngraph::detail::onednn {

namespace {

// Element loops above this size are split over the threads; below, the fork costs more.
constexpr std::ptrdiff_t kParallelElements = 1 << 15;

void relu_gradient(const NeuronGradientOp& op, const KernelArgs& args) {
  const float slope = op.neuron.a;
  const float* dy = args.srcs[0];
  const float* x = args.srcs[1];
  float* dx = args.dst;
  const auto count = static_cast<std::ptrdiff_t>(op.dst_shape.elements());
#pragma omp parallel for simd schedule(static) if (count > kParallelElements)
  for (std::ptrdiff_t i = 0; i < count; ++i) dx[i] = x[i] > 0.0f ? dy[i] : slope * dy[i];
}

void neuron_gradient(const NeuronGradientOp& op, const KernelArgs& args) {
  const auto count = static_cast<std::ptrdiff_t>(op.dst_shape.elements());
  const int C = op.dst_shape.channels;
#pragma omp parallel for schedule(static) if (count > kParallelElements)
  for (std::ptrdiff_t i = 0; i < count; ++i) {
    args.dst[i] =
        static_cast<float>(args.srcs[0][i] * neuron_derivative<double>(op.neuron, args.srcs[1][i],
                                                                       static_cast<int>(i % C)));
  }
}

// The in-image part of one pooling window along an axis.
struct Window {
  int begin, end;
};
Window window(const AxisGeometry& axis, int output_index, int input_size) {
  const int start = output_index * axis.stride - axis.pad_before;
  return {std::max(start, 0), std::min(start + axis.kernel_size, input_size)};
}

void pooling_gradient(const PoolingGradientOp& op, const KernelArgs& args) {
  const ImageShape& in = op.dst_shape;
  const ImageShape& out = op.src_shapes[0];
  const std::size_t C = in.channels;
  const std::size_t in_image = static_cast<std::size_t>(in.height) * in.width * C;
  const std::size_t out_image = static_cast<std::size_t>(out.height) * out.width * C;
  const bool max = op.type == PoolingType::max;
  // Images are independent (each writes only its own gradient), so they split over threads.
#pragma omp parallel if (out.batch > 1 && out.batch * out_image > kParallelElements)
  {
    std::vector<float> best_value(C);
    std::vector<std::size_t> best_pixel(C);
#pragma omp for schedule(static)
    for (int n = 0; n < out.batch; ++n) {
      const float* x = args.srcs[1] + n * in_image;
      float* dx = args.dst + n * in_image;
      std::fill(dx, dx + in_image, 0.0f);
      const float* dy = args.srcs[0] + n * out_image;
      for (int p = 0; p < out.height; ++p) {
        const Window wy = window(op.y, p, in.height);
        for (int q = 0; q < out.width; ++q, dy += C) {
          const Window wx = window(op.x, q, in.width);
          int count = std::max(0, wy.end - wy.begin) * std::max(0, wx.end - wx.begin);
          if (count == 0) continue;
          if (!max) {
            if (op.divisor.counts_padding)
              count = padded_divisor(op.divisor, op.x, op.y, in.height, in.width, p, q);
            for (int iy = wy.begin; iy < wy.end; ++iy)
              for (int ix = wx.begin; ix < wx.end; ++ix) {
                float* d = dx + (static_cast<std::size_t>(iy) * in.width + ix) * C;
#pragma omp simd
                for (std::size_t c = 0; c < C; ++c) d[c] += dy[c] / count;
              }
            continue;
          }
          // The first maximum of the window, per channel, in row-major window order.
          const std::size_t first = static_cast<std::size_t>(wy.begin) * in.width + wx.begin;
          std::copy_n(x + first * C, C, best_value.begin());
          std::fill(best_pixel.begin(), best_pixel.end(), first);
          for (int iy = wy.begin; iy < wy.end; ++iy)
            for (int ix = wx.begin; ix < wx.end; ++ix) {
              const std::size_t pixel = static_cast<std::size_t>(iy) * in.width + ix;
              const float* v = x + pixel * C;
#pragma omp simd
              for (std::size_t c = 0; c < C; ++c) {
                const bool better = v[c] > best_value[c];
                best_value[c] = better ? v[c] : best_value[c];
                best_pixel[c] = better ? pixel : best_pixel[c];
              }
            }
          for (std::size_t c = 0; c < C; ++c) dx[best_pixel[c] * C + c] += dy[c];
        }
      }
    }
  }
}

void dropout(const DropoutOp& op, const KernelArgs& args) {
  const auto count = static_cast<std::ptrdiff_t>(op.dst_shape.elements());
  const float scale = 1.0f / op.keep_probability;
#pragma omp parallel for schedule(static) if (count > kParallelElements)
  for (std::ptrdiff_t i = 0; i < count; ++i) {
    args.dst[i] =
        dropout_keeps(op.seed, args.batch, static_cast<std::size_t>(i), op.keep_probability)
            ? args.srcs[0][i] * scale
            : 0.0f;
  }
}

// Per-channel sums over all pixels of f(pixel, channel), in double, with a partial sum per
// thread (NHWC: each pixel's channels are contiguous, so the inner loop vectorizes).
template <typename Term>
std::vector<double> channel_sums(std::ptrdiff_t pixels, int C, Term term) {
  std::vector<double> total(C, 0.0);
#pragma omp parallel if (pixels * C > kParallelElements)
  {
    std::vector<double> partial(C, 0.0);
#pragma omp for schedule(static) nowait
    for (std::ptrdiff_t p = 0; p < pixels; ++p)
      for (int c = 0; c < C; ++c) partial[c] += term(p, c);
#pragma omp critical
    for (int c = 0; c < C; ++c) total[c] += partial[c];
  }
  return total;
}

// The batch's mean and biased variance per channel (two passes, as the reference).
void batch_statistics(const float* x, std::ptrdiff_t pixels, int C, std::vector<double>& mean,
                      std::vector<double>& variance) {
  mean = channel_sums(pixels, C, [&](std::ptrdiff_t p, int c) { return double(x[p * C + c]); });
  for (double& m : mean) m /= static_cast<double>(pixels);
  variance = channel_sums(pixels, C, [&](std::ptrdiff_t p, int c) {
    const double d = x[p * C + c] - mean[c];
    return d * d;
  });
  for (double& v : variance) v /= static_cast<double>(pixels);
}

void record_statistics(TrainedNormalization& t, std::ptrdiff_t pixels,
                       const std::vector<double>& mean, const std::vector<double>& variance) {
  t.gradient.count = static_cast<std::int64_t>(pixels);
  t.gradient.batch_mean.assign(mean.begin(), mean.end());
  t.gradient.batch_variance.assign(variance.begin(), variance.end());
}

void batch_normalization_training(const BatchNormalizationTrainingOp& op, const KernelArgs& args) {
  const int C = op.dst_shape.channels;
  const auto pixels = static_cast<std::ptrdiff_t>(op.dst_shape.elements() / C);
  TrainedNormalization& t = *op.trainable;
  const float* x = args.srcs[0];
  std::vector<double> mean, variance;
  batch_statistics(x, pixels, C, mean, variance);
  record_statistics(t, pixels, mean, variance);
  std::vector<float> scale(C), shift(C);
  for (int c = 0; c < C; ++c) {
    const double s = t.parameters.gamma[c] / std::sqrt(variance[c] + t.parameters.epsilon);
    scale[c] = static_cast<float>(s);
    shift[c] = static_cast<float>(t.parameters.beta[c] - s * mean[c]);
  }
#pragma omp parallel for schedule(static) if (pixels * C > kParallelElements)
  for (std::ptrdiff_t p = 0; p < pixels; ++p)
#pragma omp simd
    for (int c = 0; c < C; ++c) args.dst[p * C + c] = x[p * C + c] * scale[c] + shift[c];
}

void batch_normalization_gradient(const BatchNormalizationGradientOp& op, const KernelArgs& args) {
  const int C = op.dst_shape.channels;
  const auto pixels = static_cast<std::ptrdiff_t>(op.dst_shape.elements() / C);
  const float* dy = args.srcs[0];
  const float* x = args.srcs[1];
  TrainedNormalization& t = *op.trainable;
  std::vector<double> mean, variance;
  batch_statistics(x, pixels, C, mean, variance);
  record_statistics(t, pixels, mean, variance);
  std::vector<double> inv_std(C);
  for (int c = 0; c < C; ++c) inv_std[c] = 1.0 / std::sqrt(variance[c] + t.parameters.epsilon);
  const auto dbeta =
      channel_sums(pixels, C, [&](std::ptrdiff_t p, int c) { return double(dy[p * C + c]); });
  const auto dgamma = channel_sums(pixels, C, [&](std::ptrdiff_t p, int c) {
    return dy[p * C + c] * (x[p * C + c] - mean[c]) * inv_std[c];
  });
  t.gradient.gamma_gradient.assign(dgamma.begin(), dgamma.end());
  t.gradient.beta_gradient.assign(dbeta.begin(), dbeta.end());
  // dx = gamma / sqrt(var + eps) * (dy - dbeta / M - xhat * dgamma / M)
  const double M = static_cast<double>(pixels);
  std::vector<float> a(C), b(C), mean_f(C), inv_f(C);
  for (int c = 0; c < C; ++c) {
    a[c] = static_cast<float>(t.parameters.gamma[c] * inv_std[c]);
    b[c] = static_cast<float>(dbeta[c] / M);
    mean_f[c] = static_cast<float>(mean[c]);
    inv_f[c] = static_cast<float>(inv_std[c] * dgamma[c] / M);
  }
#pragma omp parallel for schedule(static) if (pixels * C > kParallelElements)
  for (std::ptrdiff_t p = 0; p < pixels; ++p)
#pragma omp simd
    for (int c = 0; c < C; ++c) {
      const float centred = x[p * C + c] - mean_f[c];
      args.dst[p * C + c] = a[c] * (dy[p * C + c] - b[c] - centred * inv_f[c]);
    }
}

}  // namespace

std::unique_ptr<Kernel> make_batch_normalization_training(const Op& op, const GraphOptions&) {
  return function_kernel<BatchNormalizationTrainingOp>(
      op, "onednn:batch_normalization_training_loop", batch_normalization_training);
}

std::unique_ptr<Kernel> make_batch_normalization_gradient(const Op& op, const GraphOptions&) {
  return function_kernel<BatchNormalizationGradientOp>(
      op, "onednn:batch_normalization_gradient_loop", batch_normalization_gradient);
}

std::unique_ptr<Kernel> make_neuron_gradient(const Op& op, const GraphOptions&) {
  const auto& gradient = static_cast<const NeuronGradientOp&>(op);
  if (gradient.neuron.type == NeuronType::relu)
    return function_kernel<NeuronGradientOp>(op, "onednn:relu_gradient_loop", relu_gradient);
  return function_kernel<NeuronGradientOp>(op, "onednn:neuron_gradient_loop", neuron_gradient);
}

std::unique_ptr<Kernel> make_pooling_gradient(const Op& op, const GraphOptions&) {
  return function_kernel<PoolingGradientOp>(op, "onednn:pooling_gradient_loop", pooling_gradient);
}

std::unique_ptr<Kernel> make_dropout(const Op& op, const GraphOptions&) {
  return function_kernel<DropoutOp>(op, "onednn:dropout_loop", dropout);
}

}  // namespace cnngraph::detail::onednn
