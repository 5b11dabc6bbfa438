// Batch normalization in training mode on CUDA, forward and gradient (channel_reduction.cu
// has the kernels). Gamma and beta come from the host's TrainedNormalization before each
// run, and the batch statistics and gamma/beta gradients go back to it after, each through
// pinned memory (Kernel::before_run and after_run stage and read it; the copies to and from
// it are on the stream), so that a recorded CUDA graph moves each run's values; the data
// source's update (running averages, gamma/beta's optimizer) then runs on the host, as on
// the CPU devices. (Host functions on the stream did the staging once: at about 50 us of
// stall each, they made a quarter of a ResNet-50 training step.)
#include <cstring>

#include "backends/cuda/cuda_kernels.hpp"
#include "backends/cuda/kernels/channel_reduction.hpp"
#include "cnngraph/errors.hpp"

namespace cnngraph::detail::cuda {

namespace {

// One trained batch normalization's buffers: f32 per channel on the device, in the order
// gamma, beta, mean, variance, gamma gradient, beta gradient, and a pinned copy of all six.
struct DeviceNormalization {
  int channels = 0;
  bool forward_runs = false;  // a forward kernel records the statistics the gradient reads
  std::shared_ptr<std::byte[]> device;
  std::shared_ptr<std::byte[]> pinned_block;
  float* pinned = nullptr;
  float* on_device(int k) const { return reinterpret_cast<float*>(device.get()) + k * channels; }
  float* on_host(int k) const { return pinned + k * channels; }
};
enum Slot { kGamma = 0, kBeta, kMean, kVariance, kGammaGradient, kBetaGradient, kSlots };

std::shared_ptr<DeviceNormalization> device_normalization(TrainedNormalization& t, int channels,
                                                          Context& context,
                                                          const std::string& name) {
  const std::string key = "cuda" + std::to_string(context.device);
  std::lock_guard lock(t.cache_mutex);
  auto& slot = t.backend_cache[key];
  if (!slot) {
    auto d = std::make_shared<DeviceNormalization>();
    d->channels = channels;
    const std::size_t bytes = std::size_t(kSlots) * channels * sizeof(float);
    d->device = context.memory->allocate(bytes, name + " parameters");
    d->pinned_block = allocate_pinned(bytes, name);
    d->pinned = reinterpret_cast<float*>(d->pinned_block.get());
    slot = d;
  }
  return std::static_pointer_cast<DeviceNormalization>(slot);
}

void copy_out(const DeviceNormalization& b, int slot, std::vector<float>& to) {
  to.assign(b.on_host(slot), b.on_host(slot) + b.channels);
}

// This run's gamma and beta into pinned memory (the previous run has finished).
void stage_parameters(const TrainedNormalization& t, DeviceNormalization& b) {
  const std::size_t bytes = std::size_t(b.channels) * sizeof(float);
  std::memcpy(b.on_host(kGamma), t.parameters.gamma.data(), bytes);
  std::memcpy(b.on_host(kBeta), t.parameters.beta.data(), bytes);
}

// On the stream: gamma and beta to the device, then the batch's statistics of x.
void compute_statistics(const DeviceNormalization& b, DataType storage, const void* x,
                        std::size_t pixels, float* scratch, cudaStream_t stream,
                        const std::string& name) {
  check(
      cudaMemcpyAsync(b.on_device(kGamma), b.on_host(kGamma),
                      2 * std::size_t(b.channels) * sizeof(float), cudaMemcpyHostToDevice, stream),
      name + ": gamma and beta");
  batch_statistics(storage, x, pixels, b.channels, b.on_device(kMean), b.on_device(kVariance),
                   scratch, stream);
}

// After the run: the statistics, as the host's update of the batch norm reads them.
void record_statistics(const DeviceNormalization& b, std::size_t pixels,
                       BatchNormalizationGradientState& g) {
  g.count = static_cast<std::int64_t>(pixels);
  copy_out(b, kMean, g.batch_mean);
  copy_out(b, kVariance, g.batch_variance);
}

class NormalizationKernel : public Kernel {
 public:
  NormalizationKernel(const Op& op, TrainedNormalization* trainable, Context& context,
                      bool gradient)
      : op_(op), context_(context), gradient_(gradient) {
    if (!trainable) throw InvalidArgument(op.name + ": no training state");
    const int C = op.dst_shape.channels;
    buffers_ = device_normalization(*trainable, C, context, op.name);
    if (!gradient) buffers_->forward_runs = true;
    pixels_ = op.dst_shape.elements() / C;
    trainable_ = trainable;
    scratch_ =
        context.memory->allocate(channel_reduction_scratch_bytes(pixels_, C), op.name + " scratch");
  }

  void run(const KernelArgs& args) override {
    const int C = op_.dst_shape.channels;
    const std::size_t bytes = std::size_t(C) * sizeof(float);
    const DeviceNormalization& b = *buffers_;
    const float epsilon = trainable_->parameters.epsilon;
    const void* x = gradient_ ? args.srcs[1] : args.srcs[0];
    auto* scratch = reinterpret_cast<float*>(scratch_.get());
    const bool own_statistics = owns_statistics();
    if (own_statistics)
      compute_statistics(b, context_.storage, x, pixels_, scratch, context_.stream, op_.name);
    if (!gradient_) {
      batch_normalize(context_.storage, x, b.on_device(kMean), b.on_device(kVariance),
                      b.on_device(kGamma), b.on_device(kBeta), epsilon, args.dst, pixels_, C,
                      scratch, context_.stream, fused(), relu_ceiling());
    } else {
      // The relu's mask recomputed from x where it is this batch norm's own result, as this
      // step's forward kernel wrote it.
      const bool derived_mask =
          fused() && !own_statistics &&
          static_cast<const BatchNormalizationGradientOp&>(op_).mask_from_statistics;
      batch_normalization_gradient(context_.storage, args.srcs[0], x, b.on_device(kMean),
                                   b.on_device(kVariance), b.on_device(kGamma), epsilon, args.dst,
                                   b.on_device(kGammaGradient), b.on_device(kBetaGradient), pixels_,
                                   C, scratch, context_.stream, fused() ? args.srcs[2] : nullptr,
                                   derived_mask ? b.on_device(kBeta) : nullptr, relu_ceiling());
    }
    // Statistics from whichever kernel computed them; gradients from the gradient kernel.
    check(cudaMemcpyAsync(b.on_host(first_slot()), b.on_device(first_slot()),
                          (last_slot() - first_slot() + 1) * bytes, cudaMemcpyDeviceToHost,
                          context_.stream),
          op_.name + ": the statistics to the host");
  }

  // The parameters of this run into pinned memory (the previous run has finished).
  void before_run() override {
    if (owns_statistics()) stage_parameters(*trainable_, *buffers_);
  }

  void after_run() override {
    BatchNormalizationGradientState& g = trainable_->gradient;
    if (owns_statistics()) record_statistics(*buffers_, pixels_, g);
    if (gradient_) {
      copy_out(*buffers_, kGammaGradient, g.gamma_gradient);
      copy_out(*buffers_, kBetaGradient, g.beta_gradient);
    }
  }

  std::string implementation() const override {
    if (fused()) {
      return gradient_ ? "cuda:relu_batch_normalization_gradient" : "cuda:batch_normalization_relu";
    }
    return gradient_ ? "cuda:batch_normalization_gradient" : "cuda:batch_normalization_training";
  }

 private:
  // Training fusion: the relu after the forward, or the relu's gradient before the gradient.
  bool fused() const {
    return op_.kind == OpKind::fused_batch_normalization_relu ||
           op_.kind == OpKind::fused_relu_batch_normalization_gradient;
  }
  float relu_ceiling() const {
    return gradient_ ? static_cast<const BatchNormalizationGradientOp&>(op_).relu_ceiling
                     : static_cast<const BatchNormalizationTrainingOp&>(op_).relu_ceiling;
  }
  // The forward kernel brings gamma and beta and records the statistics; a gradient
  // without its forward in the graph does both itself.
  bool owns_statistics() const { return !gradient_ || !buffers_->forward_runs; }
  int first_slot() const { return owns_statistics() ? kMean : kGammaGradient; }
  int last_slot() const { return gradient_ ? kBetaGradient : kVariance; }

  const Op& op_;
  Context& context_;
  bool gradient_;
  std::shared_ptr<DeviceNormalization> buffers_;
  std::size_t pixels_ = 0;
  TrainedNormalization* trainable_ = nullptr;
  std::shared_ptr<std::byte[]> scratch_;
};

// A sum whose sources are batch norms' results (and other images), then a relu, in one pass
// (fused_batch_normalization_addition_relu): each batch norm's statistics first, recorded as
// its own forward kernel records them, so that its gradient kernel finds them.
class NormalizedSumKernel : public Kernel {
 public:
  NormalizedSumKernel(const AdditionOp& op, Context& context) : op_(op), context_(context) {
    const int C = op.dst_shape.channels;
    pixels_ = op.dst_shape.elements() / C;
    for (std::size_t s = 0; s < 2; ++s) {
      if (!op.normalized[s]) continue;
      buffers_[s] = device_normalization(*op.normalized[s], C, context, op.name);
      buffers_[s]->forward_runs = true;
    }
    scratch_ =
        context.memory->allocate(channel_reduction_scratch_bytes(pixels_, C), op.name + " scratch");
  }

  void run(const KernelArgs& args) override {
    auto* scratch = reinterpret_cast<float*>(scratch_.get());
    SummedSource sources[2];
    for (std::size_t s = 0; s < 2; ++s) {
      sources[s].src = args.srcs[s];
      if (!buffers_[s]) continue;
      const DeviceNormalization& b = *buffers_[s];
      compute_statistics(b, context_.storage, args.srcs[s], pixels_, scratch, context_.stream,
                         op_.name);
      sources[s] = {args.srcs[s],        b.on_device(kMean), b.on_device(kVariance),
                    b.on_device(kGamma), b.on_device(kBeta), op_.normalized[s]->parameters.epsilon};
    }
    normalized_sum_relu(context_.storage, sources[0], sources[1], args.dst, pixels_,
                        op_.dst_shape.channels, scratch, context_.stream);
    for (const auto& b : buffers_) {
      if (!b) continue;
      check(cudaMemcpyAsync(b->on_host(kMean), b->on_device(kMean),
                            2 * std::size_t(b->channels) * sizeof(float), cudaMemcpyDeviceToHost,
                            context_.stream),
            op_.name + ": the statistics to the host");
    }
  }

  void before_run() override {
    for (std::size_t s = 0; s < 2; ++s)
      if (buffers_[s]) stage_parameters(*op_.normalized[s], *buffers_[s]);
  }

  void after_run() override {
    for (std::size_t s = 0; s < 2; ++s)
      if (buffers_[s]) record_statistics(*buffers_[s], pixels_, op_.normalized[s]->gradient);
  }

  std::string implementation() const override { return "cuda:batch_normalization_addition_relu"; }

 private:
  const AdditionOp& op_;
  Context& context_;
  std::size_t pixels_ = 0;
  std::shared_ptr<DeviceNormalization> buffers_[2];
  std::shared_ptr<std::byte[]> scratch_;
};

}  // namespace

std::unique_ptr<Kernel> make_batch_normalization_addition_relu(const Op& base, const GraphOptions&,
                                                               Context& context) {
  return std::make_unique<NormalizedSumKernel>(static_cast<const AdditionOp&>(base), context);
}

std::unique_ptr<Kernel> make_batch_normalization_training(const Op& base, const GraphOptions&,
                                                          Context& context) {
  const auto& op = static_cast<const BatchNormalizationTrainingOp&>(base);
  return std::make_unique<NormalizationKernel>(op, op.trainable, context, false);
}

std::unique_ptr<Kernel> make_batch_normalization_gradient(const Op& base, const GraphOptions&,
                                                          Context& context) {
  const auto& op = static_cast<const BatchNormalizationGradientOp&>(base);
  return std::make_unique<NormalizationKernel>(op, op.trainable, context, true);
}

}  // namespace cnngraph::detail::cuda
