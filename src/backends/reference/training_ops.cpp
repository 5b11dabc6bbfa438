// Reference kernels of the training ops other than the convolution: neuron, pooling and
// soft-max gradients, the channel slice of a concatenation's gradient, dropout, and losses.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "backends/reference/reference_backend.hpp"
#include "kernels/dropout_mask.hpp"
#include "ops/loss_math.hpp"
#include "ops/neuron_math.hpp"
#include "ops/pooling_math.hpp"

namespace cnngraph::detail {

namespace {

std::size_t at(const ImageShape& s, int n, int y, int x, int c) {
  return ((static_cast<std::size_t>(n) * s.height + y) * s.width + x) * s.channels + c;
}

void neuron_gradient(const NeuronGradientOp& op, const KernelArgs& args) {
  const std::size_t count = op.dst_shape.elements();
  const int C = op.dst_shape.channels;
  for (std::size_t i = 0; i < count; ++i) {
    const int channel = static_cast<int>(i % C);
    args.dst[i] = static_cast<float>(
        args.srcs[0][i] * neuron_derivative<double>(op.neuron, args.srcs[1][i], channel));
  }
}

void pooling_gradient(const PoolingGradientOp& op, const KernelArgs& args) {
  const ImageShape& in = op.dst_shape;
  const ImageShape& out = op.src_shapes[0];
  const int C = in.channels;
  std::fill(args.dst, args.dst + in.elements(), 0.0f);
  for (int n = 0; n < out.batch; ++n)
    for (int p = 0; p < out.height; ++p)
      for (int q = 0; q < out.width; ++q)
        for (int c = 0; c < C; ++c) {
          const float g = args.srcs[0][at(out, n, p, q, c)];
          int count = 0;
          std::size_t best = 0;
          float best_value = -std::numeric_limits<float>::infinity();
          for (int r = 0; r < op.y.kernel_size; ++r) {
            const int iy = p * op.y.stride - op.y.pad_before + r;
            if (iy < 0 || iy >= in.height) continue;
            for (int s = 0; s < op.x.kernel_size; ++s) {
              const int ix = q * op.x.stride - op.x.pad_before + s;
              if (ix < 0 || ix >= in.width) continue;
              const std::size_t i = at(in, n, iy, ix, c);
              if (count == 0 || args.srcs[1][i] > best_value) {
                best = i;
                best_value = args.srcs[1][i];
              }
              ++count;
            }
          }
          if (count == 0) continue;
          if (op.type == PoolingType::max) {
            args.dst[best] += g;
            continue;
          }
          if (op.divisor.counts_padding) {
            count = padded_divisor(op.divisor, op.x, op.y, in.height, in.width, p, q);
          }
          for (int r = 0; r < op.y.kernel_size; ++r) {
            const int iy = p * op.y.stride - op.y.pad_before + r;
            if (iy < 0 || iy >= in.height) continue;
            for (int s = 0; s < op.x.kernel_size; ++s) {
              const int ix = q * op.x.stride - op.x.pad_before + s;
              if (ix >= 0 && ix < in.width) args.dst[at(in, n, iy, ix, c)] += g / count;
            }
          }
        }
  // Fused with the gradient of the relu whose result src is: nothing where src is not > 0.
  if (op.kind == OpKind::fused_max_pooling_relu_gradient) {
    for (std::size_t i = 0; i < in.elements(); ++i) {
      if (!(args.srcs[1][i] > 0.0f)) args.dst[i] *= 0.0f;
    }
  }
}

void softmax_gradient(const SoftMaxGradientOp& op, const KernelArgs& args) {
  const std::size_t C = op.dst_shape.channels;
  const std::size_t pixels = op.dst_shape.elements() / C;
  for (std::size_t p = 0; p < pixels; ++p) {
    const float* dy = args.srcs[0] + p * C;
    const float* y = args.srcs[1] + p * C;
    float* dx = args.dst + p * C;
    double sum = 0.0;
    for (std::size_t c = 0; c < C; ++c) sum += op.logarithmic ? dy[c] : double(dy[c]) * y[c];
    for (std::size_t c = 0; c < C; ++c) {
      dx[c] = static_cast<float>(op.logarithmic ? dy[c] - std::exp(double(y[c])) * sum
                                                : y[c] * (dy[c] - sum));
    }
  }
}

void channel_slice(const ChannelSliceOp& op, const KernelArgs& args) {
  const std::size_t from_channels = op.src_shapes[0].channels;
  const std::size_t channels = op.dst_shape.channels;
  const std::size_t pixels = op.dst_shape.elements() / channels;
  for (std::size_t p = 0; p < pixels; ++p) {
    std::copy_n(args.srcs[0] + p * from_channels + op.first_channel, channels,
                args.dst + p * channels);
  }
}

void dropout(const DropoutOp& op, const KernelArgs& args) {
  const std::size_t count = op.dst_shape.elements();
  const float scale = 1.0f / op.keep_probability;
  for (std::size_t i = 0; i < count; ++i) {
    args.dst[i] =
        dropout_keeps(op.seed, args.batch, i, op.keep_probability) ? args.srcs[0][i] * scale : 0.0f;
  }
}

// Per-channel mean and biased variance over the batch's N*H*W values (double sums).
void batch_statistics(const float* x, std::size_t pixels, std::size_t C, std::vector<double>& mean,
                      std::vector<double>& variance) {
  mean.assign(C, 0.0);
  variance.assign(C, 0.0);
  for (std::size_t p = 0; p < pixels; ++p)
    for (std::size_t c = 0; c < C; ++c) mean[c] += x[p * C + c];
  for (std::size_t c = 0; c < C; ++c) mean[c] /= static_cast<double>(pixels);
  for (std::size_t p = 0; p < pixels; ++p)
    for (std::size_t c = 0; c < C; ++c) {
      const double d = x[p * C + c] - mean[c];
      variance[c] += d * d;
    }
  for (std::size_t c = 0; c < C; ++c) variance[c] /= static_cast<double>(pixels);
}

void batch_normalization_training(const BatchNormalizationTrainingOp& op, const KernelArgs& args) {
  const std::size_t C = op.dst_shape.channels;
  const std::size_t pixels = op.dst_shape.elements() / C;
  TrainedNormalization& t = *op.trainable;
  std::vector<double> mean, variance;
  batch_statistics(args.srcs[0], pixels, C, mean, variance);
  t.gradient.count = static_cast<std::int64_t>(pixels);
  t.gradient.batch_mean.assign(mean.begin(), mean.end());
  t.gradient.batch_variance.assign(variance.begin(), variance.end());
  const BatchNormalizationParameters& p = t.parameters;
  for (std::size_t c = 0; c < C; ++c) {
    const double scale = p.gamma[c] / std::sqrt(variance[c] + p.epsilon);
    const double shift = p.beta[c] - scale * mean[c];
    for (std::size_t i = 0; i < pixels; ++i)
      args.dst[i * C + c] = static_cast<float>(args.srcs[0][i * C + c] * scale + shift);
  }
  if (op.kind == OpKind::fused_batch_normalization_relu) {
    for (std::size_t i = 0; i < pixels * C; ++i)
      args.dst[i] = fused_relu(args.dst[i], op.relu_ceiling);
  }
}

// A sum of batch norms' results (each as batch_normalization_training writes it) and other
// sources, then the relu: the unfused steps' formulas in turn.
void batch_normalization_addition_relu(const AdditionOp& op, const KernelArgs& args) {
  const std::size_t count = op.dst_shape.elements();
  std::array<std::vector<float>, 2> normalized;
  std::array<const float*, 2> sources{args.srcs[0], args.srcs[1]};
  for (std::size_t s = 0; s < 2; ++s) {
    if (!op.normalized[s]) continue;
    BatchNormalizationTrainingOp bn;
    bn.dst_shape = op.dst_shape;
    bn.trainable = op.normalized[s];
    normalized[s].resize(count);
    batch_normalization_training(bn, KernelArgs{{sources[s]}, normalized[s].data()});
    sources[s] = normalized[s].data();
  }
  for (std::size_t i = 0; i < count; ++i) {
    const auto sum = static_cast<float>(static_cast<double>(sources[0][i]) + sources[1][i]);
    args.dst[i] = sum >= 0.0f ? sum : 0.0f * sum;  // relu as neuron_math.hpp writes it
  }
}

// The relu gradient of a sum: (a + b) where the mask is > 0, else 0.
void addition_relu_gradient(const NeuronGradientOp& op, const KernelArgs& args) {
  const std::size_t count = op.dst_shape.elements();
  for (std::size_t i = 0; i < count; ++i) {
    const auto sum = static_cast<float>(static_cast<double>(args.srcs[0][i]) + args.srcs[1][i]);
    args.dst[i] = sum * (args.srcs[2][i] > 0.0f ? 1.0f : 0.0f);
  }
}

void batch_normalization_gradient(const BatchNormalizationGradientOp& op, const KernelArgs& args) {
  const std::size_t C = op.dst_shape.channels;
  const std::size_t pixels = op.dst_shape.elements() / C;
  const float* x = args.srcs[1];
  // Fused with a relu's gradient: dy where the relu passes its mask, else 0.
  std::vector<float> masked;
  if (op.kind == OpKind::fused_relu_batch_normalization_gradient) {
    masked.resize(op.dst_shape.elements());
    for (std::size_t i = 0; i < masked.size(); ++i)
      masked[i] =
          args.srcs[0][i] * (fused_relu_passes(args.srcs[2][i], op.relu_ceiling) ? 1.0f : 0.0f);
  }
  const float* dy = masked.empty() ? args.srcs[0] : masked.data();
  TrainedNormalization& t = *op.trainable;
  std::vector<double> mean, variance;
  batch_statistics(x, pixels, C, mean, variance);
  // Recorded here too, for a graph that holds the gradient without the forward node.
  t.gradient.count = static_cast<std::int64_t>(pixels);
  t.gradient.batch_mean.assign(mean.begin(), mean.end());
  t.gradient.batch_variance.assign(variance.begin(), variance.end());
  t.gradient.gamma_gradient.assign(C, 0.0f);
  t.gradient.beta_gradient.assign(C, 0.0f);
  const double M = static_cast<double>(pixels);
  for (std::size_t c = 0; c < C; ++c) {
    const double inv_std = 1.0 / std::sqrt(variance[c] + t.parameters.epsilon);
    double dbeta = 0.0, dgamma = 0.0;
    for (std::size_t i = 0; i < pixels; ++i) {
      dbeta += dy[i * C + c];
      dgamma += dy[i * C + c] * (x[i * C + c] - mean[c]) * inv_std;
    }
    t.gradient.gamma_gradient[c] = static_cast<float>(dgamma);
    t.gradient.beta_gradient[c] = static_cast<float>(dbeta);
    const double scale = t.parameters.gamma[c] * inv_std;
    for (std::size_t i = 0; i < pixels; ++i) {
      const double xhat = (x[i * C + c] - mean[c]) * inv_std;
      args.dst[i * C + c] =
          static_cast<float>(scale * (dy[i * C + c] - dbeta / M - xhat * dgamma / M));
    }
  }
}

void loss(const LossOp& op, const KernelArgs& args) {
  const LossDescriptor& d = op.descriptor;
  const float* y = args.srcs[0];
  const float* t = args.srcs[1];
  const float* w = args.srcs[2];
  const std::size_t C = op.dst_shape.channels;
  const std::size_t count = op.dst_shape.elements();
  const bool per_pixel = per_pixel_loss(d.type);
  double total = 0.0;
  std::vector<double> gradient(count);
  if (per_pixel) {
    for (std::size_t p = 0; p < count / C; ++p) {
      const std::size_t base = p * C;
      if (d.type == LossType::cosine_distance) {
        double dot = 0.0;
        for (std::size_t c = 0; c < C; ++c) {
          dot += double(w[base + c]) * y[base + c] * t[base + c];
          gradient[base + c] = -double(w[base + c]) * t[base + c];
        }
        total += 1.0 - dot;
        continue;
      }
      const double max = *std::max_element(y + base, y + base + C);
      double sum = 0.0;
      for (std::size_t c = 0; c < C; ++c) sum += std::exp(y[base + c] - max);
      const double log_sum = max + std::log(sum);
      double weighted_labels = 0.0;
      for (std::size_t c = 0; c < C; ++c) {
        const double label = t[base + c] * (1.0 - d.label_smoothing) + d.label_smoothing / C;
        const double wl = double(w[base + c]) * label;
        total -= wl * (y[base + c] - log_sum);
        weighted_labels += wl;
        gradient[base + c] = -wl;
      }
      for (std::size_t c = 0; c < C; ++c)
        gradient[base + c] += std::exp(y[base + c] - log_sum) * weighted_labels;
    }
  } else {
    for (std::size_t i = 0; i < count; ++i) {
      const LossElement<double> e = element_loss<double>(d, y[i], t[i]);
      total += w[i] * e.loss;
      gradient[i] = w[i] * e.gradient;
    }
  }
  std::size_t non_zero = 0;
  for (std::size_t i = 0; i < count; ++i) non_zero += w[i] != 0.0f;
  const double divisor = loss_divisor(d.reduction, per_pixel, count, C, non_zero);
  const double scale = d.weight / divisor;
  op.value = total * scale;
  for (std::size_t i = 0; i < count; ++i) args.dst[i] = static_cast<float>(gradient[i] * scale);
}

}  // namespace

std::unique_ptr<Kernel> make_reference_neuron_gradient(const Op& op, const GraphOptions&) {
  return function_kernel<NeuronGradientOp>(op, "reference:neuron_gradient", neuron_gradient);
}
std::unique_ptr<Kernel> make_reference_pooling_gradient(const Op& op, const GraphOptions&) {
  return function_kernel<PoolingGradientOp>(op, "reference:pooling_gradient", pooling_gradient);
}
std::unique_ptr<Kernel> make_reference_softmax_gradient(const Op& op, const GraphOptions&) {
  return function_kernel<SoftMaxGradientOp>(op, "reference:softmax_gradient", softmax_gradient);
}
std::unique_ptr<Kernel> make_reference_channel_slice(const Op& op, const GraphOptions&) {
  return function_kernel<ChannelSliceOp>(op, "reference:channel_slice", channel_slice);
}
std::unique_ptr<Kernel> make_reference_dropout(const Op& op, const GraphOptions&) {
  return function_kernel<DropoutOp>(op, "reference:dropout", dropout);
}
std::unique_ptr<Kernel> make_reference_batch_normalization_training(const Op& op,
                                                                    const GraphOptions&) {
  return function_kernel<BatchNormalizationTrainingOp>(op, "reference:batch_normalization_training",
                                                       batch_normalization_training);
}
std::unique_ptr<Kernel> make_reference_batch_normalization_gradient(const Op& op,
                                                                    const GraphOptions&) {
  return function_kernel<BatchNormalizationGradientOp>(op, "reference:batch_normalization_gradient",
                                                       batch_normalization_gradient);
}
std::unique_ptr<Kernel> make_reference_fused_batch_normalization_relu(const Op& op,
                                                                      const GraphOptions&) {
  return function_kernel<BatchNormalizationTrainingOp>(op, "reference:batch_normalization_relu",
                                                       batch_normalization_training);
}
std::unique_ptr<Kernel> make_reference_fused_relu_batch_normalization_gradient(
    const Op& op, const GraphOptions&) {
  return function_kernel<BatchNormalizationGradientOp>(
      op, "reference:relu_batch_normalization_gradient", batch_normalization_gradient);
}
std::unique_ptr<Kernel> make_reference_fused_addition_relu_gradient(const Op& op,
                                                                    const GraphOptions&) {
  return function_kernel<NeuronGradientOp>(op, "reference:addition_relu_gradient",
                                           addition_relu_gradient);
}
std::unique_ptr<Kernel> make_reference_fused_batch_normalization_addition_relu(
    const Op& op, const GraphOptions&) {
  return function_kernel<AdditionOp>(op, "reference:batch_normalization_addition_relu",
                                     batch_normalization_addition_relu);
}
std::unique_ptr<Kernel> make_reference_fused_max_pooling_relu_gradient(const Op& op,
                                                                       const GraphOptions&) {
  return function_kernel<PoolingGradientOp>(op, "reference:max_pooling_relu_gradient",
                                            pooling_gradient);
}
std::unique_ptr<Kernel> make_reference_loss(const Op& op, const GraphOptions&) {
  return function_kernel<LossOp>(op, "reference:loss", loss);
}

}  // namespace cnngraph::detail
