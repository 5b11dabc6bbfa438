// Inference batch normalization: parameters folded to a per-channel scale and shift.
#include <cmath>

#include "cnngraph/errors.hpp"
#include "ops/batch_normalization.hpp"
#include "ops/op.hpp"

namespace cnngraph {

namespace detail {
void fold_batch_normalization(const BatchNormalizationParameters& p, std::vector<float>& scale,
                              std::vector<float>& shift) {
  scale.resize(p.mean.size());
  shift.resize(p.mean.size());
  for (std::size_t c = 0; c < p.mean.size(); ++c) {
    const double s = p.gamma[c] / std::sqrt(static_cast<double>(p.variance[c]) + p.epsilon);
    scale[c] = static_cast<float>(s);
    shift[c] = static_cast<float>(p.beta[c] - s * p.mean[c]);
  }
}

void validate_batch_normalization(const BatchNormalizationParameters& p,
                                  const std::string& context) {
  const std::size_t n = p.mean.size();
  if (n == 0 || p.variance.size() != n || p.gamma.size() != n || p.beta.size() != n) {
    throw InvalidArgument(context +
                          ": mean, variance, gamma and beta need the same, non-zero "
                          "number of entries (got " +
                          std::to_string(p.mean.size()) + ", " + std::to_string(p.variance.size()) +
                          ", " + std::to_string(p.gamma.size()) + ", " +
                          std::to_string(p.beta.size()) + ")");
  }
  for (std::size_t c = 0; c < n; ++c) {
    if (!(static_cast<double>(p.variance[c]) + p.epsilon > 0.0) || !std::isfinite(p.mean[c]) ||
        !std::isfinite(p.gamma[c]) || !std::isfinite(p.beta[c])) {
      throw InvalidArgument(context + ": channel " + std::to_string(c) +
                            " has variance + epsilon <= 0 or a non-finite parameter");
    }
  }
}
}  // namespace detail

BatchNormalizationNode::BatchNormalizationNode(std::shared_ptr<ImageNode> source,
                                               BatchNormalizationParameters parameters)
    : FilterNode({std::move(source)}, PaddingPolicy::same()), parameters_(std::move(parameters)) {
  detail::validate_batch_normalization(parameters_, kind());
}

std::unique_ptr<detail::Op> BatchNormalizationNode::lower(detail::LoweringContext& context) const {
  detail::require_source_count(*this, context, 1);
  const ImageShape& src = context.src_shapes[0];
  if (static_cast<std::size_t>(src.channels) != parameters_.mean.size()) {
    detail::throw_shape_error(*this,
                              "has parameters for " + std::to_string(parameters_.mean.size()) +
                                  " channels, the source has " + std::to_string(src.channels));
  }
  auto op = std::make_unique<detail::BatchNormalizationOp>();
  op->name = display_name();
  op->src_shapes = context.src_shapes;
  op->dst_shape = src;
  detail::fold_batch_normalization(parameters_, op->scale, op->shift);
  return op;
}

}  // namespace cnngraph
