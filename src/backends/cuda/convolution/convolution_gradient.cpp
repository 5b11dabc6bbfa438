// The gradient of a convolution (or fully connected) node on CUDA, through cuDNN's graph
// API: the input gradient by the backward-data operation, the weight gradient by the
// backward-filter operation (both autotuned and cached like the forward), and the bias
// gradient by our per-channel sums. The f32 weight and bias gradients land in the node's
// DeviceTrainingBuffers, where an optimizer step or the host (TrainingStyle::cpu) reads them.
// A fused neuron (the descriptor's) is differentiated first: the forward convolution is run
// again without it to recover the neuron's input. A sub-pixel convolution's dy is first
// shuffled back into the convolution's own result shape (space to depth), after which it is
// the gradient of a plain convolution.
#include "backends/candidates.hpp"
#include "backends/cuda/convolution/convolution_backward.hpp"
#include "backends/cuda/cuda_common.hpp"
#include "backends/cuda/cudnn/cudnn_graph.hpp"
#include "backends/cuda/kernels/channel_reduction.hpp"
#include "backends/cuda/kernels/elementwise.hpp"
#include "backends/cuda/kernels/pooling_softmax.hpp"
#include "backends/cuda/kernels/training_ops.hpp"
#include "cnngraph/errors.hpp"

namespace cnngraph::detail::cuda {

namespace {

// cuDNN's backward filter for `forward` (dw in the storage type). Where the padding reaches
// past the window's extent (a window wholly in the padding), cuDNN's f32 engines gave wrong
// sums (H100, cuDNN 9): there the source is first padded with zeros into scratch, over
// exactly the rows and columns the windows cover, and the plan is the same convolution
// without padding, whose sums are the same.
class FilterGradient {
 public:
  // False when no cuDNN engine takes it.
  bool build(const ConvolutionOp& forward, const GraphOptions& options, Context& context) {
    const auto beyond = [](const AxisGeometry& axis) {
      return axis.pad_before >= axis.kernel_size || axis.pad_after >= axis.kernel_size;
    };
    if (!beyond(forward.y) && !beyond(forward.x)) {
      plan_ = backward_filter_plan(forward, options, context);
      return plan_ != nullptr;
    }
    ConvolutionOp unpadded = forward;
    unpadded.post_ops.clear();
    const auto cover = [](AxisGeometry& axis) {
      axis.source_size = (axis.result_size - 1) * axis.stride + axis.kernel_size;
      axis.pad_before = axis.pad_after = 0;
    };
    cover(unpadded.y);
    cover(unpadded.x);
    const ImageShape& in = forward.src_shapes[0];
    const ImageShape padded{in.batch, unpadded.y.source_size, unpadded.x.source_size, in.channels};
    unpadded.src_shapes = {padded};
    pad_.name = forward.name;
    pad_.src_shapes = {in};
    pad_.dst_shape = padded;
    pad_.top = forward.y.pad_before;
    pad_.left = forward.x.pad_before;
    padded_source_ = context.memory->allocate(padded.elements() * size_of(context.storage),
                                              forward.name + " zero-padded source");
    plan_ = backward_filter_plan(unpadded, options, context);
    return plan_ != nullptr;
  }

  void run(Context& context, const void* x, void* dw, const void* dy) {
    if (padded_source_) {
      padding(context.storage, pad_, x, padded_source_.get(), context.stream);
      x = padded_source_.get();
    }
    run_backward_filter(*plan_, context, x, dw, dy, pointers_);
  }

  std::string implementation() const {
    return (padded_source_ ? "cuda:padding + " : "") + ("cudnn:backward_filter:" + plan_->engine);
  }

 private:
  std::shared_ptr<Plan> plan_;
  PaddingOp pad_;
  std::shared_ptr<std::byte[]> padded_source_;
  std::vector<void*> pointers_;
};

class CudnnConvolutionGradient : public Kernel {
 public:
  CudnnConvolutionGradient(const ConvolutionGradientOp& op, Context& context)
      : op_(op), context_(context), weights_(device_weights(*op.forward.weights, context)) {}

  // Builds the parts; returns which one has no cuDNN engine, empty when all were built.
  std::string build(const GraphOptions& options) {
    const std::size_t element = size_of(context_.storage);
    if (op_.forward.sub_pixel > 1) {
      unshuffled_ = std::make_unique<ConvolutionOp>(op_.forward);
      unshuffled_->dst_shape = op_.forward.convolution_shape();
      unshuffled_->sub_pixel = 1;
      unshuffled_dy_ = context_.memory->allocate(unshuffled_->dst_shape.elements() * element,
                                                 op_.name + " dy before the sub-pixel shuffle");
      forward_ = unshuffled_.get();
    }
    const ConvolutionOp& forward = *forward_;
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
      if (!filter_.build(forward, options, context_)) return "no cuDNN engine for backward filter";
      trains_ = true;
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
    const ConvolutionOp& forward = *forward_;
    const void* dy = args.srcs[0];
    const void* x = args.srcs[1];
    const std::size_t dy_elements = forward.dst_shape.elements();
    if (unshuffled_dy_) {
      sub_pixel_unshuffle(context_.storage, dy, forward.dst_shape, op_.forward.sub_pixel,
                          op_.forward.sub_pixel_order, unshuffled_dy_.get(), context_.stream);
      dy = unshuffled_dy_.get();
    }
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
    if (trains_) {
      void* dw = storage_dw_ ? storage_dw_.get() : trained_->weights_gradient.get();
      filter_.run(context_, x, dw, dy);
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
    const auto then = [&name](const std::string& part) {
      name += (name.empty() ? "" : " + ") + part;
    };
    if (unshuffled_dy_) then("cuda:sub_pixel_unshuffle");
    if (pre_activation_kernel_) then("recompute:" + pre_activation_kernel_->implementation());
    if (data_plan_) then("cudnn:backward_data:" + data_plan_->engine);
    if (trains_) {
      then(filter_.implementation());
      if (reduction_scratch_) then("cuda:channel_sums");
    }
    return name;
  }

 private:
  const ConvolutionGradientOp& op_;
  Context& context_;
  std::shared_ptr<DeviceWeights> weights_;
  // The forward as differentiated: op_.forward, or its copy without the sub-pixel shuffle.
  const ConvolutionOp* forward_ = &op_.forward;
  std::unique_ptr<ConvolutionOp> unshuffled_;
  std::shared_ptr<std::byte[]> unshuffled_dy_;
  std::unique_ptr<ConvolutionOp> bare_;
  std::unique_ptr<Kernel> pre_activation_kernel_;
  DeviceNeuron neuron_;
  std::vector<std::shared_ptr<std::byte[]>> keep_;
  std::shared_ptr<std::byte[]> pre_activation_, scaled_dy_;
  std::shared_ptr<Plan> data_plan_;
  FilterGradient filter_;
  bool trains_ = false;
  std::shared_ptr<DeviceTrainingBuffers> trained_;
  std::shared_ptr<std::byte[]> storage_dw_, reduction_scratch_;
  std::vector<void*> data_pointers_;
};

// The gradient of a transposed convolution: the input gradient by the adjoint convolution
// (a forward convolution kernel) and, when trained, the weight gradient as the adjoint's
// (backward filter with dz as its source and y as its dy), its channel axes swapped back
// into the transpose's layout in f32, and the bias gradient as dz's per-channel sums. Where
// the weights are trained, the adjoint's device copy is re-derived from the trained copy
// on the device before each run, so that it follows every update without a host copy.
class TransposeGradient : public Kernel {
 public:
  TransposeGradient(const ConvolutionTransposeGradientOp& op, Context& context,
                    std::unique_ptr<Kernel> input)
      : op_(op), context_(context), input_(std::move(input)) {}

  std::string build(const GraphOptions& options) {
    const PreparedWeights& own = *op_.weights->source;
    if (own.trained || op_.parameters) trained_ = device_training_buffers(own, context_);
    if (own.trained) adjoint_ = device_weights(*op_.weights->adjoint, context_);
    if (!op_.parameters) return {};
    if (!filter_.build(op_.weights_gradient.forward, options, context_))
      return "no cuDNN engine for backward filter";
    adjoint_dw_ = context_.memory->allocate(trained_->weight_count * size_of(context_.storage),
                                            op_.name + " weight gradient");
    if (own.has_bias) {
      const ImageShape& dz = op_.input_gradient.src_shapes[0];
      reduction_scratch_ = context_.memory->allocate(
          channel_reduction_scratch_bytes(dz.elements() / dz.channels, dz.channels),
          op_.name + " bias gradient");
    } else if (trained_->bias_count) {
      // No bias, no bias gradient: it reads as zeros, never as the block's old contents.
      check(cudaMemsetAsync(trained_->bias_gradient.get(), 0, trained_->bias_count * sizeof(float),
                            context_.stream),
            "cudaMemsetAsync");
    }
    return {};
  }

  void run(const KernelArgs& args) override {
    const ConvolutionDescriptor& d = op_.weights->source->descriptor;
    const int G = d.groups, Og = d.output_feature_channels / G, Ig = d.input_feature_channels / G;
    const int taps = d.kernel_height * d.kernel_width;
    if (adjoint_) {
      swap_weight_channels(context_.storage, trained_->kernel_copy->weights.get(), context_.storage,
                           adjoint_->weights.get(), G, Ig, Og, taps, context_.stream);
    }
    input_->run({{args.srcs[0]}, args.dst, args.batch});
    if (!op_.parameters) return;
    const void* dz = args.srcs[0];
    filter_.run(context_, dz, adjoint_dw_.get(), args.srcs[1]);
    swap_weight_channels(context_.storage, adjoint_dw_.get(), DataType::f32,
                         trained_->weights_gradient.get(), G, Og, Ig, taps, context_.stream);
    if (reduction_scratch_) {
      const ImageShape& shape = op_.input_gradient.src_shapes[0];
      channel_sums(context_.storage, dz, shape.elements() / shape.channels, shape.channels, 1.0f,
                   trained_->bias_gradient_f32(),
                   reinterpret_cast<float*>(reduction_scratch_.get()), context_.stream);
    }
  }

  std::string implementation() const override {
    std::string name = input_->implementation();
    if (op_.parameters) {
      name += " + " + filter_.implementation() + " + cuda:swap_weight_channels";
      if (reduction_scratch_) name += " + cuda:channel_sums";
    }
    return name;
  }

 private:
  const ConvolutionTransposeGradientOp& op_;
  Context& context_;
  std::unique_ptr<Kernel> input_;
  std::shared_ptr<DeviceTrainingBuffers> trained_;
  std::shared_ptr<DeviceWeights> adjoint_;
  FilterGradient filter_;
  std::shared_ptr<std::byte[]> adjoint_dw_, reduction_scratch_;
};

}  // namespace

std::unique_ptr<Kernel> make_cudnn_convolution_gradient(const Op& base, const GraphOptions& options,
                                                        Context& context) {
  const auto& op = static_cast<const ConvolutionGradientOp&>(base);
  const ConvolutionOp& forward = op.forward;
  // The descriptor's neuron is the only post-op a gradient's forward carries.
  if (forward.post_ops.size() > 1 ||
      (!forward.post_ops.empty() && forward.post_ops[0].kind != PostOp::Kind::neuron)) {
    return decline("post-ops besides the descriptor's neuron");
  }
  auto kernel = std::make_unique<CudnnConvolutionGradient>(op, context);
  if (std::string missing = kernel->build(options); !missing.empty()) return decline(missing);
  return kernel;
}

std::unique_ptr<Kernel> make_cudnn_convolution_transpose_gradient(const Op& base,
                                                                  const GraphOptions& options,
                                                                  Context& context) {
  const auto& op = static_cast<const ConvolutionTransposeGradientOp&>(base);
  // The input gradient of a transposed convolution is its adjoint convolution on dz
  // (srcs[0]); the forward convolution's kernels run it.
  auto input = nhwc_convolution(op.input_gradient, options, context);
  if (!input) return input;
  auto kernel = std::make_unique<TransposeGradient>(op, context, std::move(input));
  if (std::string missing = kernel->build(options); !missing.empty()) return decline(missing);
  return kernel;
}

}  // namespace cnngraph::detail::cuda
