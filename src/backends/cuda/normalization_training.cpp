// Batch normalization in training mode on CUDA, forward and gradient (channel_reduction.cu
// has the kernels). Gamma and beta come from the host's TrainableNormalization before each
// run, and the batch statistics and gamma/beta gradients go back to it after, each through
// pinned memory and a host function on the stream, so that a recorded CUDA graph moves each
// run's values; the data source's update (running averages, gamma/beta's optimizer) then
// runs on the host, as on the CPU devices.
#include <cstring>

#include "backends/cuda/cuda_kernels.hpp"
#include "cnngraph/errors.hpp"

namespace cnngraph::detail::cuda {

namespace {

// One trained batch normalization's buffers: f32 per channel on the device, in the order
// gamma, beta, mean, variance, gamma gradient, beta gradient, and a pinned copy of all six.
struct DeviceNormalization {
  int channels = 0;
  bool forward_runs = false;  // a forward kernel records the statistics the gradient reads
  std::shared_ptr<std::byte[]> device;
  float* pinned = nullptr;
  ~DeviceNormalization() {
    if (pinned) cudaFreeHost(pinned);
  }
  float* on_device(int k) const { return reinterpret_cast<float*>(device.get()) + k * channels; }
  float* on_host(int k) const { return pinned + k * channels; }
};
enum Slot { kGamma = 0, kBeta, kMean, kVariance, kGammaGradient, kBetaGradient, kSlots };

std::shared_ptr<DeviceNormalization> device_normalization(TrainableNormalization& t, int channels,
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
    check(cudaMallocHost(&d->pinned, bytes), name + ": pinned memory");
    slot = d;
  }
  return std::static_pointer_cast<DeviceNormalization>(slot);
}

// What the host functions of one kernel need.
struct HostTransfer {
  TrainableNormalization* trainable = nullptr;
  DeviceNormalization* buffers = nullptr;
  std::int64_t count = 0;  // values per channel
};

// On the stream, before the gamma/beta upload: the current parameters into pinned memory.
void CUDART_CB stage_parameters(void* data) {
  const auto& h = *static_cast<HostTransfer*>(data);
  const std::size_t bytes = std::size_t(h.buffers->channels) * sizeof(float);
  std::memcpy(h.buffers->on_host(kGamma), h.trainable->parameters.gamma.data(), bytes);
  std::memcpy(h.buffers->on_host(kBeta), h.trainable->parameters.beta.data(), bytes);
}

void copy_out(const DeviceNormalization& b, int slot, std::vector<float>& to) {
  to.assign(b.on_host(slot), b.on_host(slot) + b.channels);
}

// On the stream, after the download: the statistics (and gradients) into the host state.
void CUDART_CB report_statistics(void* data) {
  const auto& h = *static_cast<HostTransfer*>(data);
  BatchNormalizationGradientState& g = h.trainable->gradient;
  g.count = h.count;
  copy_out(*h.buffers, kMean, g.batch_mean);
  copy_out(*h.buffers, kVariance, g.batch_variance);
}
void CUDART_CB report_gradients(void* data) {
  report_statistics(data);
  const auto& h = *static_cast<HostTransfer*>(data);
  copy_out(*h.buffers, kGammaGradient, h.trainable->gradient.gamma_gradient);
  copy_out(*h.buffers, kBetaGradient, h.trainable->gradient.beta_gradient);
}

class NormalizationKernel : public Kernel {
 public:
  NormalizationKernel(const Op& op, TrainableNormalization* trainable, Context& context,
                      bool gradient)
      : op_(op), context_(context), gradient_(gradient) {
    if (!trainable) throw InvalidArgument(op.name + ": no training state");
    const int C = op.dst_shape.channels;
    buffers_ = device_normalization(*trainable, C, context, op.name);
    if (!gradient) buffers_->forward_runs = true;
    pixels_ = op.dst_shape.elements() / C;
    transfer_ = {trainable, buffers_.get(), static_cast<std::int64_t>(pixels_)};
    scratch_ = context.memory->allocate(channel_reduction_scratch_bytes(pixels_, C),
                                        op.name + " scratch");
  }

  void run(const KernelArgs& args) override {
    const int C = op_.dst_shape.channels;
    const std::size_t bytes = std::size_t(C) * sizeof(float);
    const DeviceNormalization& b = *buffers_;
    const float epsilon = transfer_.trainable->parameters.epsilon;
    const void* x = gradient_ ? args.srcs[1] : args.srcs[0];
    auto* scratch = reinterpret_cast<float*>(scratch_.get());
    // The forward kernel brings gamma and beta and records the statistics; a gradient
    // without its forward in the graph does both itself.
    const bool own_statistics = !gradient_ || !b.forward_runs;
    if (own_statistics) {
      check(cudaLaunchHostFunc(context_.stream, stage_parameters, &transfer_), op_.name);
      check(cudaMemcpyAsync(b.on_device(kGamma), b.on_host(kGamma), 2 * bytes,
                            cudaMemcpyHostToDevice, context_.stream),
            op_.name + ": gamma and beta");
      batch_statistics(context_.storage, x, pixels_, C, b.on_device(kMean), b.on_device(kVariance),
                       scratch, context_.stream);
    }
    if (!gradient_) {
      batch_normalize(context_.storage, x, b.on_device(kMean), b.on_device(kVariance),
                      b.on_device(kGamma), b.on_device(kBeta), epsilon, args.dst, pixels_, C,
                      scratch, context_.stream);
    } else {
      batch_normalization_gradient(context_.storage, args.srcs[0], x, b.on_device(kMean),
                                   b.on_device(kVariance), b.on_device(kGamma), epsilon, args.dst,
                                   b.on_device(kGammaGradient), b.on_device(kBetaGradient),
                                   pixels_, C, scratch, context_.stream);
    }
    // Statistics from whichever kernel computed them; gradients from the gradient kernel.
    const int first = own_statistics ? kMean : kGammaGradient;
    const int last = gradient_ ? kBetaGradient : kVariance;
    check(cudaMemcpyAsync(b.on_host(first), b.on_device(first), (last - first + 1) * bytes,
                          cudaMemcpyDeviceToHost, context_.stream),
          op_.name + ": the statistics to the host");
    if (own_statistics) {
      check(cudaLaunchHostFunc(context_.stream, gradient_ ? report_gradients : report_statistics,
                               &transfer_),
            op_.name);
    } else {
      check(cudaLaunchHostFunc(context_.stream, report_only_gradients, &transfer_), op_.name);
    }
  }

  std::string implementation() const override {
    return gradient_ ? "cuda:batch_normalization_gradient" : "cuda:batch_normalization_training";
  }

 private:
  static void CUDART_CB report_only_gradients(void* data) {
    const auto& h = *static_cast<HostTransfer*>(data);
    copy_out(*h.buffers, kGammaGradient, h.trainable->gradient.gamma_gradient);
    copy_out(*h.buffers, kBetaGradient, h.trainable->gradient.beta_gradient);
  }

  const Op& op_;
  Context& context_;
  bool gradient_;
  std::shared_ptr<DeviceNormalization> buffers_;
  std::size_t pixels_ = 0;
  HostTransfer transfer_;
  std::shared_ptr<std::byte[]> scratch_;
};

}  // namespace

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
