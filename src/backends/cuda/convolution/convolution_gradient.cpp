// The gradient of a convolution (or fully connected) node on CUDA, through cuDNN's graph
// API: the input gradient by the backward-data operation, the weight gradient by the
// backward-filter operation (both autotuned and cached like the forward), and the bias
// gradient by our per-channel sums. The f32 weight and bias gradients land in the node's
// DeviceTrainingBuffers, where an optimizer step or the host (TrainingStyle::cpu) reads them.
// A fused neuron (the descriptor's) is differentiated first: the forward convolution is run
// again without it to recover the neuron's input.
#include "backends/candidates.hpp"
#include "backends/cuda/convolution/convolution_backward.hpp"
#include "backends/cuda/cudnn/cudnn_graph.hpp"
#include "backends/cuda/kernels/channel_reduction.hpp"
#include "backends/cuda/kernels/elementwise.hpp"
#include "backends/cuda/kernels/training_ops.hpp"
#include "cnngraph/errors.hpp"

namespace cnngraph::detail::cuda {

namespace {

class CudnnConvolutionGradient : public Kernel {
 public:
  CudnnConvolutionGradient(const ConvolutionGradientOp& op, Context& context)
      : op_(op), context_(context), weights_(device_weights(*op.forward.weights, context)) {}

  // Builds the parts; returns which one has no cuDNN engine, empty when all were built.
  std::string build(const GraphOptions& options) {
    const ConvolutionOp& forward = op_.forward;
    const std::size_t element = size_of(context_.storage);
    const std::size_t dy_elements = forward.dst_shape.elements();
    if (!forward.post_ops.empty()) {
      bare_ = std::make_unique<ConvolutionOp>(forward);
      bare_->post_ops.clear();
      bare_->name = forward.name + " (without its neuron, for the gradient)";
      pre_activation_kernel_ = nhwc_convolution(*bare_, options, context_);
      if (!pre_activation_kernel_) return "the forward recomputed without its neuron";
      neuron_ = device_neuron(forward.post_ops[0].neuron, context_, op_.name, keep_);
      pre_activation_ = context_.memory->allocate(dy_elements * element, op_.name + " scratch");
      scaled_dy_ = context_.memory->allocate(dy_elements * element, op_.name + " scratch");
    }
    if (op_.input_gradient) {
      data_plan_ = backward_data_plan(forward, options, context_, *weights_);
      if (!data_plan_) return "no cuDNN engine for backward data";
    }
    if (op_.parameters) {
      filter_plan_ = backward_filter_plan(forward, options, context_);
      if (!filter_plan_) return "no cuDNN engine for backward filter";
      trained_ = device_training_buffers(*forward.weights, context_);
      if (context_.storage != DataType::f32) {
        storage_dw_ = context_.memory->allocate(trained_->weight_count * element,
                                                op_.name + " weight gradient");
      }
      if (forward.weights->has_bias) {  // no bias, no bias gradient (a pass over dy less)
        const std::size_t pixels = dy_elements / forward.output_channels;
        reduction_scratch_ = context_.memory->allocate(
            channel_reduction_scratch_bytes(pixels, forward.output_channels),
            op_.name + " bias gradient");
      }
    }
    return {};
  }

  void run(const KernelArgs& args) override {
    const ConvolutionOp& forward = op_.forward;
    const void* dy = args.srcs[0];
    const void* x = args.srcs[1];
    const std::size_t dy_elements = forward.dst_shape.elements();
    if (pre_activation_kernel_) {
      KernelArgs again;
      again.srcs = {args.srcs[1]};
      again.dst = reinterpret_cast<float*>(pre_activation_.get());
      pre_activation_kernel_->run(again);
      neuron_gradient(context_.storage, neuron_, dy, pre_activation_.get(), scaled_dy_.get(),
                      dy_elements, forward.output_channels, context_.stream);
      dy = scaled_dy_.get();
    }
    if (data_plan_)
      run_backward_data(*data_plan_, context_, *weights_, dy, args.dst, data_pointers_);
    if (filter_plan_) {
      void* dw = storage_dw_ ? storage_dw_.get() : trained_->weights_gradient.get();
      run_backward_filter(*filter_plan_, context_, x, dw, dy, filter_pointers_);
      if (storage_dw_) {
        convert(storage_dw_.get(), context_.storage, trained_->weights_gradient.get(),
                DataType::f32, trained_->weight_count, context_.stream);
      }
      if (reduction_scratch_) {
        channel_sums(context_.storage, dy, dy_elements / forward.output_channels,
                     forward.output_channels, 1.0f, trained_->bias_gradient_f32(),
                     reinterpret_cast<float*>(reduction_scratch_.get()), context_.stream);
      }
    }
  }

  std::string implementation() const override {
    std::string name;
    if (pre_activation_kernel_) name += "recompute:" + pre_activation_kernel_->implementation();
    if (data_plan_)
      name += (name.empty() ? "" : " + ") + ("cudnn:backward_data:" + data_plan_->engine);
    if (filter_plan_) {
      name += (name.empty() ? "" : " + ") + ("cudnn:backward_filter:" + filter_plan_->engine);
      if (reduction_scratch_) name += " + cuda:channel_sums";
    }
    return name;
  }

 private:
  const ConvolutionGradientOp& op_;
  Context& context_;
  std::shared_ptr<DeviceWeights> weights_;
  std::unique_ptr<ConvolutionOp> bare_;
  std::unique_ptr<Kernel> pre_activation_kernel_;
  DeviceNeuron neuron_;
  std::vector<std::shared_ptr<std::byte[]>> keep_;
  std::shared_ptr<std::byte[]> pre_activation_, scaled_dy_;
  std::shared_ptr<Plan> data_plan_, filter_plan_;
  std::shared_ptr<DeviceTrainingBuffers> trained_;
  std::shared_ptr<std::byte[]> storage_dw_, reduction_scratch_;
  std::vector<void*> data_pointers_, filter_pointers_;
};

}  // namespace

std::unique_ptr<Kernel> make_cudnn_convolution_gradient(const Op& base, const GraphOptions& options,
                                                        Context& context) {
  const auto& op = static_cast<const ConvolutionGradientOp&>(base);
  const ConvolutionOp& forward = op.forward;
  if (forward.sub_pixel != 1) {
    throw Unsupported(op.name +
                      ": the gradient of a sub-pixel convolution is not built on CUDA (it runs "
                      "on the CPU devices)");
  }
  // The descriptor's neuron is the only post-op a gradient's forward carries.
  if (forward.post_ops.size() > 1 ||
      (!forward.post_ops.empty() && forward.post_ops[0].kind != PostOp::Kind::neuron)) {
    return decline("post-ops besides the descriptor's neuron");
  }
  // cuDNN's backward-filter engines were seen wrong (f32, H100, cuDNN 9) where a window
  // lies wholly in the padding (padding past the kernel's extent): refused, not guessed.
  const auto beyond = [](const AxisGeometry& axis, int dilation) {
    const int extent = (axis.kernel_size - 1) * dilation + 1;
    return axis.pad_before >= extent || axis.pad_after >= extent;
  };
  if (op.parameters &&
      (beyond(forward.y, forward.dilation_y) || beyond(forward.x, forward.dilation_x))) {
    throw Unsupported(op.name +
                      ": its weight gradient on CUDA: the padding reaches past the kernel's "
                      "extent (a window wholly in the padding), which cuDNN's engines get wrong; "
                      "train this node on a CPU device or with less padding");
  }
  auto kernel = std::make_unique<CudnnConvolutionGradient>(op, context);
  if (std::string missing = kernel->build(options); !missing.empty()) return decline(missing);
  return kernel;
}

std::unique_ptr<Kernel> make_cudnn_convolution_transpose_gradient(const Op& base,
                                                                  const GraphOptions& options,
                                                                  Context& context) {
  const auto& op = static_cast<const ConvolutionTransposeGradientOp&>(base);
  if (op.parameters) {
    throw Unsupported(op.name +
                      ": training a transposed convolution's weights is not built on CUDA (its "
                      "input gradient is; train it on a CPU device, or set training_style none)");
  }
  // The input gradient of a transposed convolution is its adjoint convolution on dz
  // (srcs[0]); the forward convolution's kernels run it.
  return nhwc_convolution(op.input_gradient, options, context);
}

}  // namespace cnngraph::detail::cuda
