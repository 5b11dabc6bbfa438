// Reference pooling (out-of-image pixels are left out of max and, unless it counts padding,
// of average's divisor) and soft-max over channels.
#include <algorithm>
#include <cmath>
#include <limits>

#include "backends/reference/reference_backend.hpp"
#include "ops/pooling_math.hpp"

namespace cnngraph::detail {

namespace {

class ReferencePooling : public Kernel {
 public:
  explicit ReferencePooling(const PoolingOp& op) : op_(op) {}
  std::string implementation() const override { return "reference:pooling"; }
  void run(const KernelArgs& args) override {
    const ImageShape& in = op_.src_shapes[0];
    const ImageShape& out = op_.dst_shape;
    const int C = in.channels;
    for (int n = 0; n < out.batch; ++n)
      for (int p = 0; p < out.height; ++p)
        for (int q = 0; q < out.width; ++q)
          for (int c = 0; c < C; ++c) {
            double max = -std::numeric_limits<double>::infinity(), sum = 0.0;
            int count = 0;
            for (int r = 0; r < op_.y.kernel_size; ++r) {
              const int iy = p * op_.y.stride - op_.y.pad_before + r;
              if (iy < 0 || iy >= in.height) continue;
              for (int s = 0; s < op_.x.kernel_size; ++s) {
                const int ix = q * op_.x.stride - op_.x.pad_before + s;
                if (ix < 0 || ix >= in.width) continue;
                const double v =
                    args.srcs[0]
                             [((static_cast<std::size_t>(n) * in.height + iy) * in.width + ix) * C +
                              c];
                max = std::max(max, v);
                sum += v;
                ++count;
              }
            }
            if (op_.divisor.counts_padding)
              count = padded_divisor(op_.divisor, op_.x, op_.y, in.height, in.width, p, q);
            const double value = op_.type == PoolingType::max ? max : sum / count;
            args.dst[((static_cast<std::size_t>(n) * out.height + p) * out.width + q) * C + c] =
                static_cast<float>(value);
          }
  }

 private:
  const PoolingOp& op_;
};

class ReferenceSoftMax : public Kernel {
 public:
  explicit ReferenceSoftMax(const SoftMaxOp& op) : op_(op) {}
  std::string implementation() const override { return "reference:softmax"; }
  void run(const KernelArgs& args) override {
    const std::size_t C = op_.dst_shape.channels;
    const std::size_t pixels = op_.dst_shape.elements() / C;
    for (std::size_t p = 0; p < pixels; ++p) {
      const float* x = args.srcs[0] + p * C;
      float* y = args.dst + p * C;
      const double max = *std::max_element(x, x + C);
      double sum = 0.0;
      for (std::size_t c = 0; c < C; ++c) sum += std::exp(x[c] - max);
      for (std::size_t c = 0; c < C; ++c) {
        y[c] = static_cast<float>(op_.logarithmic ? x[c] - max - std::log(sum)
                                                  : std::exp(x[c] - max) / sum);
      }
    }
  }

 private:
  const SoftMaxOp& op_;
};

}  // namespace

std::unique_ptr<Kernel> make_reference_pooling(const Op& op, const GraphOptions&) {
  return std::make_unique<ReferencePooling>(static_cast<const PoolingOp&>(op));
}

std::unique_ptr<Kernel> make_reference_softmax(const Op& op, const GraphOptions&) {
  return std::make_unique<ReferenceSoftMax>(static_cast<const SoftMaxOp&>(op));
}

}  // namespace cnngraph::detail
