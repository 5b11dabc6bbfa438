// The reference backend's kernel table: one plain implementation per op.
#include "backends/reference/reference_backend.hpp"

#include "backends/candidates.hpp"

namespace cnngraph::detail {

namespace {

std::unique_ptr<Kernel> compile_reference(const Op& op, const GraphOptions& options);

std::unique_ptr<Kernel> make_convolution_transpose(const Op& op, const GraphOptions& options) {
  return make_composite_convolution_transpose(op, options, compile_reference);
}
std::unique_ptr<Kernel> make_convolution_transpose_gradient(const Op& op,
                                                            const GraphOptions& options) {
  return make_composite_convolution_transpose_gradient(op, options, compile_reference);
}

const KernelCandidate<> reference_kernels[] = {
    {OpKind::convolution, "reference:direct", make_reference_convolution},
    {OpKind::neuron, "reference:neuron", make_reference_neuron},
    {OpKind::pooling, "reference:pooling", make_reference_pooling},
    {OpKind::addition, "reference:add", make_reference_addition},
    {OpKind::arithmetic, "reference:arithmetic", make_reference_arithmetic},
    {OpKind::arithmetic_gradient, "reference:arithmetic_gradient",
     make_reference_arithmetic_gradient},
    {OpKind::concatenation, "reference:concat", make_reference_concatenation},
    {OpKind::softmax, "reference:softmax", make_reference_softmax},
    {OpKind::batch_normalization, "reference:batch_norm", make_reference_batch_normalization},
    {OpKind::reshape, "reference:copy", make_reference_reshape},
    {OpKind::padding, "reference:padding", make_reference_padding},
    {OpKind::convolution_gradient, "reference:direct_gradient",
     make_reference_convolution_gradient},
    {OpKind::neuron_gradient, "reference:neuron_gradient", make_reference_neuron_gradient},
    {OpKind::pooling_gradient, "reference:pooling_gradient", make_reference_pooling_gradient},
    {OpKind::softmax_gradient, "reference:softmax_gradient", make_reference_softmax_gradient},
    {OpKind::channel_slice, "reference:channel_slice", make_reference_channel_slice},
    {OpKind::dropout, "reference:dropout", make_reference_dropout},
    {OpKind::loss, "reference:loss", make_reference_loss},
    {OpKind::binary_convolution_gradient, "reference:binary_convolution_gradient",
     make_reference_binary_convolution_gradient},
    {OpKind::binary_convolution, "reference:binary_convolution", make_reference_binary_convolution},
    {OpKind::cross_channel_normalization, "reference:cross_channel_normalization",
     make_reference_cross_channel_normalization},
    {OpKind::cross_channel_normalization_gradient, "reference:cross_channel_normalization_gradient",
     make_reference_cross_channel_normalization_gradient},
    {OpKind::batch_normalization_training, "reference:batch_normalization_training",
     make_reference_batch_normalization_training},
    {OpKind::batch_normalization_gradient, "reference:batch_normalization_gradient",
     make_reference_batch_normalization_gradient},
    {OpKind::fused_batch_normalization_relu, "reference:batch_normalization_relu",
     make_reference_fused_batch_normalization_relu},
    {OpKind::fused_relu_batch_normalization_gradient, "reference:relu_batch_normalization_gradient",
     make_reference_fused_relu_batch_normalization_gradient},
    {OpKind::fused_addition_relu, "reference:add_relu", make_reference_fused_addition_relu},
    {OpKind::fused_addition_relu_gradient, "reference:addition_relu_gradient",
     make_reference_fused_addition_relu_gradient},
    {OpKind::fused_max_pooling_relu_gradient, "reference:max_pooling_relu_gradient",
     make_reference_fused_max_pooling_relu_gradient},
    {OpKind::fused_batch_normalization_addition_relu, "reference:batch_normalization_addition_relu",
     make_reference_fused_batch_normalization_addition_relu},
    {OpKind::convolution_transpose, "reference:convolution_transpose", make_convolution_transpose},
    {OpKind::convolution_transpose_gradient, "reference:convolution_transpose_gradient",
     make_convolution_transpose_gradient},
};

// The reference backend takes every op kind.
const UnsupportedOpKind reference_unsupported[1] = {};
constexpr std::span<const UnsupportedOpKind> no_gaps(reference_unsupported, 0);

std::unique_ptr<Kernel> compile_reference(const Op& op, const GraphOptions& options) {
  return pick_kernel<>(reference_kernels, no_gaps, op, options, "reference", {});
}

class ReferenceBackend : public Backend {
 public:
  std::string name() const override { return "reference"; }
  std::unique_ptr<Kernel> compile(const Op& op, const GraphOptions& options) const override {
    return compile_reference(op, options);
  }
  bool fuses_training_steps() const override { return true; }
};

}  // namespace

DispatchTable reference_dispatch_table() {
  return describe_table<>("reference", reference_kernels, no_gaps);
}

std::unique_ptr<Backend> make_reference_backend() { return std::make_unique<ReferenceBackend>(); }

}  // namespace cnngraph::detail
