// Losses on CUDA: each element's (or, for soft-max cross entropy and cosine distance,
// each pixel's) loss and gradient by the shared formulas of ops/loss_math.hpp; the loss and
// the count of non-zero label weights summed in double by atomics; then the gradient
// scaled by weight / divisor. The sums reach the host through pinned memory, copied on the
// stream (so a recorded CUDA graph reports each run's loss too) and read after the run.
#include <string>

#include "backends/cuda/cuda_kernels.hpp"
#include "backends/cuda/kernels/device_math.cuh"
#include "cnngraph/errors.hpp"
#include "ops/loss_math.hpp"

namespace cnngraph::detail::cuda {

namespace {

constexpr unsigned kThreads = 256;

// The loss's numbers for device code.
struct DeviceLoss {
  LossType type;
  float label_smoothing, epsilon, delta;
};

struct Totals {
  double loss;
  unsigned long long non_zero_weights;
};

__device__ void add_totals(Totals* totals, double loss, unsigned non_zero) {
  for (int offset = 16; offset > 0; offset /= 2) {
    loss += __shfl_xor_sync(0xffffffffu, loss, offset);
    non_zero += __shfl_xor_sync(0xffffffffu, non_zero, offset);
  }
  if ((threadIdx.x & 31) == 0) {
    atomicAdd(&totals->loss, loss);
    atomicAdd(&totals->non_zero_weights, static_cast<unsigned long long>(non_zero));
  }
}

// The per-element types: one thread per element (whole warps stay in the loop, for the
// shuffles of add_totals).
template <typename T>
__global__ void element_loss_kernel(DeviceLoss d, const T* y, const T* t, const T* w,
                                    float* gradient, std::size_t count, Totals* totals) {
  const std::size_t stride = std::size_t(gridDim.x) * blockDim.x;
  for (std::size_t base = blockIdx.x * std::size_t(blockDim.x); base < count; base += stride) {
    const std::size_t i = base + threadIdx.x;
    double loss = 0.0;
    unsigned non_zero = 0;
    if (i < count) {
      const float weight = to_float(w[i]);
      const LossElement<float> e = element_loss<float>(d, to_float(y[i]), to_float(t[i]));
      loss = double(weight) * e.loss;
      gradient[i] = weight * e.gradient;
      non_zero = weight != 0.0f;
    }
    add_totals(totals, loss, non_zero);
  }
}

// Soft-max cross entropy and cosine distance: one warp per pixel, as the reference.
template <typename T>
__global__ void pixel_loss_kernel(DeviceLoss d, const T* y, const T* t, const T* w, float* gradient,
                                  std::size_t pixels, int C, Totals* totals) {
  const std::size_t warp = (blockIdx.x * std::size_t(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (warp >= pixels) return;  // whole warps leave together
  const std::size_t base = warp * C;
  double loss = 0.0;
  unsigned non_zero = 0;
  for (int c = lane; c < C; c += 32) non_zero += to_float(w[base + c]) != 0.0f;
  if (d.type == LossType::cosine_distance) {
    float dot = 0.0f;
    for (int c = lane; c < C; c += 32) {
      const float weight = to_float(w[base + c]), label = to_float(t[base + c]);
      dot += weight * to_float(y[base + c]) * label;
      gradient[base + c] = -weight * label;
    }
    for (int offset = 16; offset > 0; offset /= 2) dot += __shfl_xor_sync(0xffffffffu, dot, offset);
    loss = lane == 0 ? 1.0 - dot : 0.0;
  } else {
    float max = -INFINITY;
    for (int c = lane; c < C; c += 32) max = fmaxf(max, to_float(y[base + c]));
    for (int offset = 16; offset > 0; offset /= 2)
      max = fmaxf(max, __shfl_xor_sync(0xffffffffu, max, offset));
    float sum = 0.0f;
    for (int c = lane; c < C; c += 32) sum += expf(to_float(y[base + c]) - max);
    for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
    const float log_sum = max + logf(sum);
    float weighted_labels = 0.0f, part = 0.0f;
    for (int c = lane; c < C; c += 32) {
      const float label =
          to_float(t[base + c]) * (1.0f - d.label_smoothing) + d.label_smoothing / float(C);
      const float wl = to_float(w[base + c]) * label;
      part -= wl * (to_float(y[base + c]) - log_sum);
      weighted_labels += wl;
    }
    for (int offset = 16; offset > 0; offset /= 2)
      weighted_labels += __shfl_xor_sync(0xffffffffu, weighted_labels, offset);
    for (int c = lane; c < C; c += 32) {
      const float label =
          to_float(t[base + c]) * (1.0f - d.label_smoothing) + d.label_smoothing / float(C);
      gradient[base + c] =
          -to_float(w[base + c]) * label + expf(to_float(y[base + c]) - log_sum) * weighted_labels;
    }
    loss = part;
  }
  add_totals(totals, loss, non_zero);
}

// dst = gradient * weight / divisor * the loss scale.
template <typename T>
__global__ void scale_gradient_kernel(const float* gradient, T* dst, std::size_t count, int C,
                                      ReductionType reduction, bool per_pixel, float weight,
                                      const Totals* totals, const float* loss_scale) {
  const double divisor =
      loss_divisor(reduction, per_pixel, count, std::size_t(C), totals->non_zero_weights);
  const float scale = float(weight / divisor) * *loss_scale;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x) {
    dst[i] = from_float<T>(gradient[i] * scale);
  }
}

class CudaLoss : public Kernel {
 public:
  CudaLoss(const LossOp& op, Context& context) : op_(op), context_(context) {
    const LossDescriptor& d = op.descriptor;
    device_ = {d.type, d.label_smoothing, d.epsilon, d.delta};
    gradient_ =
        context.memory->allocate(op.dst_shape.elements() * sizeof(float), op.name + " gradient");
    totals_ = context.memory->allocate(sizeof(Totals), op.name + " sums");
    loss_scale_ = context.memory->allocate(sizeof(float), op.name + " loss scale");
    host_block_ = allocate_pinned(sizeof(Totals), op.name);
    host_totals_ = reinterpret_cast<Totals*>(host_block_.get());
  }

  void run(const KernelArgs& args) override {
    const std::size_t count = op_.dst_shape.elements();
    const int C = op_.dst_shape.channels;
    auto* totals = reinterpret_cast<Totals*>(totals_.get());
    auto* gradient = reinterpret_cast<float*>(gradient_.get());
    const bool per_pixel = per_pixel_loss(op_.descriptor.type);
    check(cudaMemsetAsync(totals, 0, sizeof(Totals), context_.stream), op_.name + ": loss");
    // Copied on the stream, so that a replayed recording uses each run's scale.
    check(cudaMemcpyAsync(loss_scale_.get(), context_.loss_scale, sizeof(float),
                          cudaMemcpyHostToDevice, context_.stream),
          op_.name + ": the loss scale");
    dispatch(context_.storage, [&](auto tag) {
      using T = decltype(tag);
      const T* y = reinterpret_cast<const T*>(args.srcs[0]);
      const T* t = reinterpret_cast<const T*>(args.srcs[1]);
      const T* w = reinterpret_cast<const T*>(args.srcs[2]);
      if (per_pixel) {
        const std::size_t pixels = count / C;
        const unsigned blocks = static_cast<unsigned>((pixels * 32 + kThreads - 1) / kThreads);
        pixel_loss_kernel<<<blocks, kThreads, 0, context_.stream>>>(device_, y, t, w, gradient,
                                                                    pixels, C, totals);
      } else {
        element_loss_kernel<<<blocks_for(count, kThreads), kThreads, 0, context_.stream>>>(
            device_, y, t, w, gradient, count, totals);
      }
      scale_gradient_kernel<<<blocks_for(count, kThreads), kThreads, 0, context_.stream>>>(
          gradient, reinterpret_cast<T*>(args.dst), count, C, op_.descriptor.reduction, per_pixel,
          op_.descriptor.weight, totals, reinterpret_cast<const float*>(loss_scale_.get()));
    });
    check_launch("loss");
    check(cudaMemcpyAsync(host_totals_, totals, sizeof(Totals), cudaMemcpyDeviceToHost,
                          context_.stream),
          op_.name + ": the loss to the host");
  }
  std::string implementation() const override { return "cuda:loss"; }

  // After the run: the reported loss, from the sums in pinned memory. (A host function on
  // the stream did this once; its stall was a tenth of a LeNet training step.)
  void after_run() override {
    const Totals& totals = *host_totals_;
    const std::size_t count = op_.dst_shape.elements();
    const double divisor =
        loss_divisor(op_.descriptor.reduction, per_pixel_loss(op_.descriptor.type), count,
                     op_.dst_shape.channels, totals.non_zero_weights);
    op_.value = totals.loss * op_.descriptor.weight / divisor;
  }

 private:
  const LossOp& op_;
  Context& context_;
  DeviceLoss device_{};
  std::shared_ptr<std::byte[]> gradient_, totals_, loss_scale_;
  Totals* host_totals_ = nullptr;
  std::shared_ptr<std::byte[]> host_block_;  // pinned
};

}  // namespace

std::unique_ptr<Kernel> make_loss(const Op& op, const GraphOptions&, Context& context) {
  return std::make_unique<CudaLoss>(static_cast<const LossOp&>(op), context);
}

}  // namespace cnngraph::detail::cuda
