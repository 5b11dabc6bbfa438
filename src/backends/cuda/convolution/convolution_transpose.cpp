// The transposed convolution on CUDA: cuDNN's backward data of its adjoint convolution
// (convolution_backward.cpp), then the transpose's own bias in our epilogue kernel. The
// adjoint's weights are the transpose's, rearranged once on the host
// (ops/convolution_transpose.cpp) and uploaded like any convolution's. Trained weights
// change on the device between runs: the adjoint's copy is then re-derived there from the
// trained copy before each run, and the bias read from the trained copy.
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
    if (own.trained) trained_ = device_training_buffers(own, context);
    if (own.has_bias) {
      if (trained_) {
        epilogue_.bias = trained_->kernel_copy->bias.get();
      } else {
        bias_ = context.upload_as_storage(own.bias, own.source_label + " bias");
        epilogue_.bias = bias_.get();
      }
    }
  }

  void run(const KernelArgs& args) override {
    if (trained_) {
      const ConvolutionDescriptor& d = op_.weights->source->descriptor;
      const int G = d.groups;
      swap_weight_channels(context_.storage, trained_->kernel_copy->weights.get(), context_.storage,
                           weights_->weights.get(), G, d.input_feature_channels / G,
                           d.output_feature_channels / G, d.kernel_height * d.kernel_width,
                           context_.stream);
    }
    run_backward_data(*plan_, context_, *weights_, args.srcs[0], args.dst, pointers_);
    if (epilogue_.bias) {
      epilogue(context_.storage, epilogue_, args.dst, op_.dst_shape.elements(),
               op_.dst_shape.channels, context_.stream);
    }
  }

  std::string implementation() const override {
    return "cudnn:backward_data:" + plan_->engine + (epilogue_.bias ? " +bias" : "");
  }

 private:
  const ConvolutionTransposeOp& op_;
  Context& context_;
  std::shared_ptr<Plan> plan_;
  std::shared_ptr<DeviceWeights> weights_;
  std::shared_ptr<DeviceTrainingBuffers> trained_;
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
