// Fast CPU kernels of the training ops oneDNN has no fitting primitive for: ReLU and pooling
// gradients (oneDNN's max-pooling backward needs a workspace that our inference-style
// forward does not keep) and dropout. NHWC loops with the channel innermost, so they
// vectorize, spread over the OpenMP threads oneDNN uses too. Same results as the reference
// kernels (same first-maximum rule, same order of additions per pixel).
#include <algorithm>
#include <vector>

#include "backends/onednn/onednn_common.hpp"
#include "kernels/dropout_mask.hpp"
#include "ops/neuron_math.hpp"

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
          const int count = std::max(0, wy.end - wy.begin) * std::max(0, wx.end - wx.begin);
          if (count == 0) continue;
          if (!max) {
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

}  // namespace

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
