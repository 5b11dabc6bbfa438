// The oneDNN backend's kernel table: per op, candidates in order of preference, the
// reference kernels last for what oneDNN cannot take (e.g. unusual custom padding).
#include "backends/candidates.hpp"
#include "backends/cpu/cpu_backend.hpp"
#include "backends/reference/reference_backend.hpp"

namespace cnngraph::detail {

namespace onednn {
std::unique_ptr<Kernel> make_convolution_bf16(const Op&, const GraphOptions&);
std::unique_ptr<Kernel> make_convolution(const Op&, const GraphOptions&);
std::unique_ptr<Kernel> make_neuron(const Op&, const GraphOptions&);
std::unique_ptr<Kernel> make_pooling(const Op&, const GraphOptions&);
std::unique_ptr<Kernel> make_addition(const Op&, const GraphOptions&);
std::unique_ptr<Kernel> make_arithmetic(const Op&, const GraphOptions&);
std::unique_ptr<Kernel> make_concatenation(const Op&, const GraphOptions&);
std::unique_ptr<Kernel> make_softmax(const Op&, const GraphOptions&);
std::unique_ptr<Kernel> make_batch_normalization(const Op&, const GraphOptions&);
std::unique_ptr<Kernel> make_reshape(const Op&, const GraphOptions&);
std::unique_ptr<Kernel> make_padding(const Op&, const GraphOptions&);
std::unique_ptr<Kernel> make_convolution_gradient(const Op&, const GraphOptions&);
std::unique_ptr<Kernel> make_neuron_gradient(const Op&, const GraphOptions&);
std::unique_ptr<Kernel> make_pooling_gradient(const Op&, const GraphOptions&);
std::unique_ptr<Kernel> make_dropout(const Op&, const GraphOptions&);
std::unique_ptr<Kernel> make_batch_normalization_training(const Op&, const GraphOptions&);
std::unique_ptr<Kernel> make_batch_normalization_gradient(const Op&, const GraphOptions&);
std::unique_ptr<Kernel> make_binary_convolution(const Op&, const GraphOptions&);
std::unique_ptr<Kernel> make_binary_convolution_gradient(const Op&, const GraphOptions&);
std::unique_ptr<Kernel> make_cross_channel_normalization(const Op&, const GraphOptions&);
std::unique_ptr<Kernel> make_cross_channel_normalization_gradient(const Op&, const GraphOptions&);
}  // namespace onednn

namespace {

std::unique_ptr<Kernel> compile_onednn(const Op& op, const GraphOptions& options);

// oneDNN has no transposed convolution of the library's form: a composite of this table's
// convolution kernels.
std::unique_ptr<Kernel> make_convolution_transpose(const Op& op, const GraphOptions& options) {
  return make_composite_convolution_transpose(op, options, compile_onednn);
}
std::unique_ptr<Kernel> make_convolution_transpose_gradient(const Op& op,
                                                            const GraphOptions& options) {
  return make_composite_convolution_transpose_gradient(op, options, compile_onednn);
}

const KernelCandidate<> onednn_kernels[] = {
    {OpKind::convolution, "onednn:convolution_bf16", onednn::make_convolution_bf16},
    {OpKind::convolution, "onednn:convolution", onednn::make_convolution},
    {OpKind::convolution, "reference:direct", make_reference_convolution},
    {OpKind::neuron, "onednn:eltwise", onednn::make_neuron},
    {OpKind::pooling, "onednn:pooling", onednn::make_pooling},
    {OpKind::pooling, "reference:pooling", make_reference_pooling},
    {OpKind::addition, "onednn:binary_add", onednn::make_addition},
    {OpKind::arithmetic, "onednn:binary", onednn::make_arithmetic},
    {OpKind::arithmetic, "reference:arithmetic", make_reference_arithmetic},
    {OpKind::arithmetic_gradient, "reference:arithmetic_gradient",
     make_reference_arithmetic_gradient},
    {OpKind::concatenation, "onednn:concat", onednn::make_concatenation},
    {OpKind::softmax, "onednn:softmax", onednn::make_softmax},
    {OpKind::batch_normalization, "onednn:affine_loop", onednn::make_batch_normalization},
    {OpKind::reshape, "onednn:copy", onednn::make_reshape},
    {OpKind::padding, "onednn:padding_loop", onednn::make_padding},
    {OpKind::convolution_gradient, "onednn:convolution_gradient",
     onednn::make_convolution_gradient},
    {OpKind::convolution_gradient, "reference:direct_gradient",
     make_reference_convolution_gradient},
    {OpKind::neuron_gradient, "onednn:neuron_gradient", onednn::make_neuron_gradient},
    {OpKind::pooling_gradient, "onednn:pooling_gradient", onednn::make_pooling_gradient},
    {OpKind::softmax_gradient, "reference:softmax_gradient", make_reference_softmax_gradient},
    {OpKind::channel_slice, "reference:channel_slice", make_reference_channel_slice},
    {OpKind::dropout, "onednn:dropout", onednn::make_dropout},
    {OpKind::loss, "reference:loss", make_reference_loss},
    {OpKind::binary_convolution_gradient, "onednn:binary_convolution_gradient",
     onednn::make_binary_convolution_gradient},
    {OpKind::binary_convolution_gradient, "reference:binary_convolution_gradient",
     make_reference_binary_convolution_gradient},
    {OpKind::binary_convolution, "onednn:binary_convolution", onednn::make_binary_convolution},
    {OpKind::binary_convolution, "reference:binary_convolution", make_reference_binary_convolution},
    {OpKind::cross_channel_normalization, "onednn:cross_channel_normalization",
     onednn::make_cross_channel_normalization},
    {OpKind::cross_channel_normalization_gradient, "onednn:cross_channel_normalization_gradient",
     onednn::make_cross_channel_normalization_gradient},
    {OpKind::cross_channel_normalization, "reference:cross_channel_normalization",
     make_reference_cross_channel_normalization},
    {OpKind::cross_channel_normalization_gradient, "reference:cross_channel_normalization_gradient",
     make_reference_cross_channel_normalization_gradient},
    {OpKind::batch_normalization_training, "onednn:batch_normalization_training",
     onednn::make_batch_normalization_training},
    {OpKind::batch_normalization_gradient, "onednn:batch_normalization_gradient",
     onednn::make_batch_normalization_gradient},
    {OpKind::convolution_transpose, "composite:convolution_transpose", make_convolution_transpose},
    {OpKind::convolution_transpose_gradient, "composite:convolution_transpose_gradient",
     make_convolution_transpose_gradient},
};

// Every op kind has a row (the reference kernels stand in where oneDNN has no primitive)
// but those of training fusion, which the compiler does not plan for this backend
// (fuses_training_steps): its primitives run each of those steps on its own.
constexpr const char* kRunsUnfused =
    "training fusion is not planned on the oneDNN backend (each step runs on its own)";
const UnsupportedOpKind onednn_unsupported[] = {
    {OpKind::fused_batch_normalization_relu, kRunsUnfused},
    {OpKind::fused_relu_batch_normalization_gradient, kRunsUnfused},
    {OpKind::fused_addition_relu, kRunsUnfused},
    {OpKind::fused_addition_relu_gradient, kRunsUnfused},
    {OpKind::fused_max_pooling_relu_gradient, kRunsUnfused},
    {OpKind::fused_batch_normalization_addition_relu, kRunsUnfused},
};
constexpr std::span<const UnsupportedOpKind> onednn_gaps(onednn_unsupported);

std::unique_ptr<Kernel> compile_onednn(const Op& op, const GraphOptions& options) {
  return pick_kernel<>(onednn_kernels, onednn_gaps, op, options, "onednn", {});
}

class OnednnBackend : public Backend {
 public:
  std::string name() const override { return "onednn"; }
  std::unique_ptr<Kernel> compile(const Op& op, const GraphOptions& options) const override {
    return compile_onednn(op, options);
  }
  // The bit-packed kernel takes every xnor and and layer (binary_convolution.cpp).
  bool packs_bits(const BinaryConvolutionOp& op) const override {
    return op.type != BinaryConvolutionType::binary_weights;
  }
};

}  // namespace

DispatchTable onednn_dispatch_table() {
  return describe_table<>("onednn", onednn_kernels, onednn_gaps);
}

std::unique_ptr<Backend> make_onednn_backend() { return std::make_unique<OnednnBackend>(); }

}  // namespace cnngraph::detail
