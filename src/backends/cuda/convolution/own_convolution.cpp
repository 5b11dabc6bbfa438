// Our own convolution kernels (the .cu launchers): the depthwise kernel, where cuDNN's
// grouped NHWC engines are slow, and the direct kernel for what no cuDNN engine takes
// (e.g. padding cuDNN cannot express). The sub-pixel shuffle follows where the op has one.
#include <cstdio>
#include <string>
#include <vector>

#include "backends/candidates.hpp"
#include "backends/cuda/cuda_kernels.hpp"
#include "backends/cuda/kernels/depthwise_convolution.hpp"
#include "backends/cuda/kernels/direct_convolution.hpp"
#include "backends/cuda/kernels/elementwise.hpp"
#include "env_knobs.hpp"

namespace cnngraph::detail::cuda {

namespace {

// Our own kernels: the direct convolution (weights OHWI) or the depthwise one (weights
// HWC), then the sub-pixel shuffle where the op has one.
class OwnConvolution : public Kernel {
 public:
  OwnConvolution(const ConvolutionOp& op, Context& context, bool depthwise)
      : op_(op), context_(context), depthwise_(depthwise) {
    weights_ = device_weights(*op.weights, context);
    if (depthwise) {
      // OHWI with one input channel per group is O x (HW); the kernel wants HW x O.
      const std::vector<float>& ohwi = op.weights->weights;
      const std::size_t taps = std::size_t(op.kernel_height) * op.kernel_width;
      std::vector<float> hwc(ohwi.size());
      for (std::size_t k = 0; k < std::size_t(op.output_channels); ++k) {
        for (std::size_t t = 0; t < taps; ++t) hwc[t * op.output_channels + k] = ohwi[k * taps + t];
      }
      hwc_weights_ = context.upload_as_storage(hwc, op.name + " depthwise weights");
    }
    make_epilogue(op, context, *weights_, true, 0, epilogue_, keep_);
    if (op.sub_pixel > 1) {
      scratch_ = context.memory->allocate(
          op.convolution_shape().elements() * size_of(context.storage), op.name + " scratch");
    }
  }
  void run(const KernelArgs& args) override {
    void* out = scratch_ ? scratch_.get() : static_cast<void*>(args.dst);
    epilogue_.residual = args.srcs.size() > 1 ? args.srcs[1] : nullptr;
    if (depthwise_) {
      depthwise_convolution(context_.storage, op_, variant_, args.srcs[0], hwc_weights_.get(),
                            epilogue_, out, context_.stream);
    } else {
      direct_convolution(context_.storage, op_, args.srcs[0], weights_->weights.get(), epilogue_,
                         out, context_.stream);
    }
    if (scratch_) {
      sub_pixel_shuffle(context_.storage, out, op_.convolution_shape(), op_.sub_pixel,
                        op_.sub_pixel_order, args.dst, context_.stream);
    }
  }
  std::string implementation() const override {
    return depthwise_ ? "cuda:depthwise_convolution " + variant_.name() : "cuda:direct_convolution";
  }
  void set_variant(const DepthwiseVariant& variant) { variant_ = variant; }

 private:
  const ConvolutionOp& op_;
  Context& context_;
  bool depthwise_;
  DepthwiseVariant variant_;
  std::shared_ptr<DeviceWeights> weights_;
  std::shared_ptr<std::byte[]> hwc_weights_;
  DeviceEpilogue epilogue_;
  std::vector<std::shared_ptr<std::byte[]>> keep_;
  std::shared_ptr<std::byte[]> scratch_;
};

}  // namespace

std::unique_ptr<Kernel> make_depthwise_convolution(const Op& base, const GraphOptions& options,
                                                   Context& context) {
  const auto& op = static_cast<const ConvolutionOp&>(base);
  const bool depthwise = op.groups > 1 && op.groups == op.input_channels &&
                         op.groups == op.output_channels && !op.fully_connected;
  // The kernel's index math is 32-bit; larger images go to cuDNN.
  const bool fits =
      op.src_shapes[0].elements() < (1u << 31) && op.convolution_shape().elements() < (1u << 31);
  if (!depthwise) return decline("not depthwise");
  if (!fits) return decline("2^31 elements or more (32-bit index math)");
  // Its weights are a rearranged copy, which training on the device would not update.
  if (op.weights->trained) return decline("trained weights");
  auto kernel = std::make_unique<OwnConvolution>(op, context, true);
  const std::vector<DepthwiseVariant> variants = depthwise_variants(context.storage, op);
  // CNNGRAPH_CUDA_DEPTHWISE=<variant name> forces a variant, for tests and experiments.
  if (const char* forced = knobs::read(knobs::cuda_depthwise)) {
    for (const DepthwiseVariant& v : variants) {
      if (v.name() == forced) {
        kernel->set_variant(v);
        return kernel;
      }
    }
    return decline(std::string("CNNGRAPH_CUDA_DEPTHWISE=") + forced + " does not take the layer");
  }
  DepthwiseVariant chosen = variants.front();
  // Autotuning times every variant on scratch images and keeps the fastest; else the first
  // (tiled, 4 rows a thread, 256 threads a block where it applies) runs.
  if (options.autotune && variants.size() > 1) {
    double best = -1;
    for (const DepthwiseVariant& v : variants) {
      kernel->set_variant(v);
      const double ms = time_kernel(*kernel, op, context);
      if (options.verbose) {
        std::fprintf(stderr, "cnngraph: cuda: %s: depthwise %s %.4f ms\n", op.name.c_str(),
                     v.name().c_str(), ms);
      }
      if (ms > 0 && (best < 0 || ms < best)) {
        best = ms;
        chosen = v;
      }
    }
  }
  kernel->set_variant(chosen);
  return kernel;
}

std::unique_ptr<Kernel> make_direct_convolution(const Op& base, const GraphOptions&,
                                                Context& context) {
  return std::make_unique<OwnConvolution>(static_cast<const ConvolutionOp&>(base), context, false);
}

}  // namespace cnngraph::detail::cuda
