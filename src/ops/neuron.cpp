// NeuronNode: attributes, shape rule (the result has the source's size) and gradient.
#include "cnngraph/errors.hpp"
#include "io/saved_node.hpp"
#include "ops/op.hpp"

namespace cnngraph {

NeuronNode::NeuronNode(std::shared_ptr<ImageNode> source, NeuronDescriptor neuron)
    : FilterNode({std::move(source)}, PaddingPolicy::same()), neuron_(std::move(neuron)) {
  neuron_.validate(kind());
}

std::unique_ptr<detail::Op> NeuronNode::lower(detail::LoweringContext& context) const {
  detail::require_source_count(*this, context, 1);
  const ImageShape& src = context.src_shapes[0];
  if (neuron_.type == NeuronType::prelu &&
      static_cast<int>(neuron_.prelu_slopes.size()) != src.channels) {
    detail::throw_shape_error(*this, "prelu has " + std::to_string(neuron_.prelu_slopes.size()) +
                                         " slopes for a source of " + std::to_string(src.channels) +
                                         " channels");
  }
  auto op = std::make_unique<detail::NeuronOp>();
  op->dst_shape = src;
  op->neuron = neuron_;
  return op;
}

// Gradient: diff_src = diff_dst * f'(src).
std::shared_ptr<FilterNode> NeuronNode::gradient_filter_for(
    std::size_t index, std::shared_ptr<ImageNode> source_gradient) const {
  return detail::make_gradient_node(*this, index, {std::move(source_gradient), source_images()[0]});
}

std::unique_ptr<detail::Op> NeuronNode::lower_gradient(detail::LoweringContext& context,
                                                       const GradientNode&) const {
  auto forward = detail::lower_forward_for_gradient(*this, context, 1, 1);
  auto op = std::make_unique<detail::NeuronGradientOp>();
  op->neuron = neuron_;
  op->dst_shape = forward->src_shapes[0];
  return op;
}

void NeuronNode::list_attributes(AttributeVisitor& visitor) const {
  visitor.text("neuron", to_string(neuron_.type));
  visitor.number("a", neuron_.a);
  visitor.number("b", neuron_.b);
  visitor.number("c", neuron_.c);
  if (!neuron_.prelu_slopes.empty()) visitor.numbers("prelu_slopes", neuron_.prelu_slopes);
}

namespace detail {

std::shared_ptr<FilterNode> build_neuron(const SavedNode& saved) {
  saved.expect_sources(1);
  NeuronDescriptor neuron;
  neuron.type = saved.choice<NeuronType>("neuron", static_cast<int>(NeuronType::silu) + 1,
                                         [](NeuronType t) { return to_string(t); });
  neuron.a = saved.real("a");
  neuron.b = saved.real("b");
  neuron.c = saved.real("c");
  neuron.prelu_slopes = saved.numbers("prelu_slopes");
  return std::make_shared<NeuronNode>(saved.sources[0], std::move(neuron));
}
}  // namespace detail

}  // namespace cnngraph
