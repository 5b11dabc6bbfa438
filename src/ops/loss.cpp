// Loss nodes: descriptor checks, labels, shape rule. The loss's result is its gradient.
#include <cmath>

#include "cnngraph/errors.hpp"
#include "cnngraph/loss.hpp"
#include "io/saved_node.hpp"
#include "ops/op.hpp"

namespace cnngraph {

std::string to_string(LossType type) {
  switch (type) {
    case LossType::mean_absolute_error:
      return "mean_absolute_error";
    case LossType::mean_squared_error:
      return "mean_squared_error";
    case LossType::softmax_cross_entropy:
      return "softmax_cross_entropy";
    case LossType::sigmoid_cross_entropy:
      return "sigmoid_cross_entropy";
    case LossType::categorical_cross_entropy:
      return "categorical_cross_entropy";
    case LossType::hinge:
      return "hinge";
    case LossType::huber:
      return "huber";
    case LossType::cosine_distance:
      return "cosine_distance";
    case LossType::log:
      return "log";
    case LossType::kullback_leibler_divergence:
      return "kullback_leibler_divergence";
  }
  return "unknown";
}

void LossDescriptor::validate(const std::string& where) const {
  const auto fail = [&](const std::string& field, float value, const std::string& rule) {
    throw InvalidArgument(where + ": LossDescriptor::" + field + " is " + std::to_string(value) +
                          "; " + rule);
  };
  if (!std::isfinite(weight)) fail("weight", weight, "it must be finite");
  if (!(label_smoothing >= 0.0f && label_smoothing <= 1.0f))
    fail("label_smoothing", label_smoothing, "it must be in [0, 1]");
  if (!(epsilon >= 0.0f && std::isfinite(epsilon))) fail("epsilon", epsilon, "it must be >= 0");
  if (!(delta > 0.0f && std::isfinite(delta))) fail("delta", delta, "it must be positive");
  if (type == LossType::cosine_distance && reduction != ReductionType::sum &&
      reduction != ReductionType::none) {
    throw InvalidArgument(where + ": cosine_distance supports reduction sum (or none) only");
  }
}

LossLabels::LossLabels(Image labels, Image weights)
    : labels_(std::move(labels)), weights_(std::move(weights)) {
  if (labels_.empty()) throw InvalidArgument("LossLabels: the labels image is empty");
  if (labels_.data_type() != DataType::f32) labels_ = labels_.converted_to(DataType::f32);
  if (!weights_.empty()) {
    if (weights_.shape() != labels_.shape()) {
      throw ShapeError("LossLabels: weights are " + to_string(weights_.shape()) +
                       " but labels are " + to_string(labels_.shape()));
    }
    if (weights_.data_type() != DataType::f32) weights_ = weights_.converted_to(DataType::f32);
  }
}

LossLabels LossLabels::from_classes(std::span<const int> classes, int number_of_classes) {
  if (number_of_classes <= 0) {
    throw InvalidArgument("LossLabels::from_classes: number_of_classes must be positive, got " +
                          std::to_string(number_of_classes));
  }
  if (classes.empty()) throw InvalidArgument("LossLabels::from_classes: no classes given");
  std::vector<float> one_hot(classes.size() * number_of_classes, 0.0f);
  for (std::size_t i = 0; i < classes.size(); ++i) {
    if (classes[i] < 0 || classes[i] >= number_of_classes) {
      throw InvalidArgument("LossLabels::from_classes: class " + std::to_string(classes[i]) +
                            " of image " + std::to_string(i) + " is outside [0, " +
                            std::to_string(number_of_classes) + ")");
    }
    one_hot[i * number_of_classes + classes[i]] = 1.0f;
  }
  const ImageShape shape{static_cast<int>(classes.size()), 1, 1, number_of_classes};
  return LossLabels(Image::from_floats(shape, one_hot));
}

LossNode::LossNode(std::shared_ptr<ImageNode> source, LossDescriptor descriptor)
    : FilterNode({std::move(source), std::make_shared<ImageNode>("labels"),
                  std::make_shared<ImageNode>("label_weights")},
                 PaddingPolicy::same()),
      descriptor_(descriptor) {
  descriptor_.validate(kind());
  source_images()[1]->is_labels_ = true;
  source_images()[2]->is_labels_ = true;
}

std::shared_ptr<ImageNode> LossNode::labels() const { return source_images()[1]; }
std::shared_ptr<ImageNode> LossNode::label_weights() const { return source_images()[2]; }

std::unique_ptr<detail::Op> LossNode::lower(detail::LoweringContext& context) const {
  detail::require_source_count(*this, context, 3);
  auto op = std::make_unique<detail::LossOp>();
  op->dst_shape = context.src_shapes[0];
  op->descriptor = descriptor_;
  return op;
}

namespace {
constexpr const char* kReductionNames[] = {"none", "sum", "mean", "sum_by_non_zero_weights"};
}  // namespace

void LossNode::list_attributes(AttributeVisitor& visitor) const {
  visitor.text("loss", to_string(descriptor_.type));
  visitor.text("reduction", kReductionNames[static_cast<int>(descriptor_.reduction)]);
  visitor.number("weight", descriptor_.weight);
  visitor.number("label_smoothing", descriptor_.label_smoothing);
  visitor.number("epsilon", descriptor_.epsilon);
  visitor.number("delta", descriptor_.delta);
}

namespace detail {

// A saved loss node lists its prediction only: its labels enter through Graph::run.
std::shared_ptr<FilterNode> build_loss(const SavedNode& saved) {
  saved.expect_sources(1);
  LossDescriptor descriptor(
      saved.choice<LossType>("loss", static_cast<int>(LossType::kullback_leibler_divergence) + 1,
                             [](LossType t) { return to_string(t); }),
      saved.choice<ReductionType>(
          "reduction", 4, [&](ReductionType r) { return kReductionNames[static_cast<int>(r)]; }));
  descriptor.weight = saved.real("weight");
  descriptor.label_smoothing = saved.real("label_smoothing");
  descriptor.epsilon = saved.real("epsilon");
  descriptor.delta = saved.real("delta");
  return std::make_shared<LossNode>(saved.sources[0], descriptor);
}
}  // namespace detail

}  // namespace cnngraph
