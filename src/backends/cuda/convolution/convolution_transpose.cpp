// The transposed convolution on CUDA: cuDNN's backward data of its adjoint convolution
// (convolution_backward.cpp), then the transpose's own bias in our epilogue kernel. The
// adjoint's weights are the transpose's, rearranged once on the host
// (ops/convolution_transpose.cpp) and uploaded like any convolution's.
#include "backends/candidates.hpp"
#include "backends/cuda/convolution/convolution_backward.hpp"
#include "backends/cuda/cudnn/cudnn_graph.hpp"
#include "backends/cuda/kernels/elementwise.hpp"

namespace cnngraph::detail::cuda {

namespace {

class CudnnConvolutionTranspose : public Kernel {
 public:
  CudnnConvolutionTranspose(const ConvolutionTransposeOp& op, Context& context,
                            std::shared_ptr<Plan> plan, std::shared_ptr<DeviceWeights> weights)
      : op_(op), context_(context), plan_(std::move(plan)), weights_(std::move(weights)) {
    const PreparedWeights& own = *op.weights->source;
    if (own.has_bias) {
      bias_ = context.upload_as_storage(own.bias, own.source_label + " bias");
      epilogue_.bias = bias_.get();
    }
  }

  void run(const KernelArgs& args) override {
    run_backward_data(*plan_, context_, *weights_, args.srcs[0], args.dst, pointers_);
    if (bias_) {
      epilogue(context_.storage, epilogue_, args.dst, op_.dst_shape.elements(),
               op_.dst_shape.channels, context_.stream);
    }
  }

  std::string implementation() const override {
    return "cudnn:backward_data:" + plan_->engine + (bias_ ? " +bias" : "");
  }

 private:
  const ConvolutionTransposeOp& op_;
  Context& context_;
  std::shared_ptr<Plan> plan_;
  std::shared_ptr<DeviceWeights> weights_;
  std::shared_ptr<std::byte[]> bias_;
  DeviceEpilogue epilogue_;
  std::vector<void*> pointers_;
};

}  // namespace

std::unique_ptr<Kernel> make_cudnn_convolution_transpose(const Op& base,
                                                         const GraphOptions& options,
                                                         Context& context) {
  const auto& op = static_cast<const ConvolutionTransposeOp&>(base);
  const ConvolutionOp& adjoint = op.inner.forward;
  auto weights = device_weights(*adjoint.weights, context);
  auto plan = backward_data_plan(adjoint, options, context, *weights);
  if (!plan) return decline("no cuDNN engine for backward data");
  return std::make_unique<CudnnConvolutionTranspose>(op, context, plan, weights);
}

}  // namespace cnngraph::detail::cuda
