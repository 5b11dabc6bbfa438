// Strict fp32 convolutions in NCHW (see NchwConvolution), chosen over the NHWC kernel
// when forced or when they time faster.
#include <cstdio>
#include <cstdlib>

#include "backends/cuda/cuda_kernels.hpp"
#include "backends/cuda/cudnn/cudnn_graph.hpp"
#include "backends/cuda/kernels/elementwise.hpp"
#include "cnngraph/errors.hpp"
#include "env_knobs.hpp"

namespace cnngraph::detail::cuda {

namespace {

// Strict fp32 (no TF32) in NCHW: cuDNN's fp32 kernels without tensor cores are faster in
// NCHW than in NHWC, which can pay for transposing the source in and the result out. The
// result's transpose also applies the bias and post-ops.
class NchwConvolution : public Kernel {
 public:
  NchwConvolution(const ConvolutionOp& op, Context& context, std::shared_ptr<Plan> plan,
                  std::shared_ptr<std::byte[]> kcrs_weights)
      : op_(op), context_(context), plan_(std::move(plan)), weights_(std::move(kcrs_weights)) {
    context.reserve_workspace(static_cast<std::size_t>(plan_->workspace_bytes));
    has_epilogue_ = make_epilogue(op, context, *device_weights(*op.weights, context), true, 0,
                                  epilogue_, keep_);
    keep_.push_back(device_weights(*op.weights, context)->bias);
    const std::size_t element = size_of(context.storage);
    x_ = context.memory->allocate(op.src_shapes[0].elements() * element, op.name + " nchw source");
    y_ = context.memory->allocate(op.dst_shape.elements() * element, op.name + " nchw result");
  }
  void run(const KernelArgs& args) override {
    const ImageShape& in = op_.src_shapes[0];
    const ImageShape& out = op_.dst_shape;
    transpose_batched(context_.storage, args.srcs[0], x_.get(), in.batch, in.height * in.width,
                      in.channels, context_.stream);
    pointers_ = {x_.get(), weights_.get(), y_.get()};
    plan_->execute(context_.cudnn, {1, 2, 3}, pointers_, context_.workspace.get());
    // The result's transpose back to NHWC applies the bias and post-ops on the way.
    epilogue_.residual = args.srcs.size() > 1 ? args.srcs[1] : nullptr;
    transpose_batched(context_.storage, y_.get(), args.dst, out.batch, out.channels,
                      out.height * out.width, context_.stream,
                      has_epilogue_ ? &epilogue_ : nullptr);
  }
  std::string implementation() const override {
    return "cudnn:nchw:" + plan_->engine + (has_epilogue_ ? " +epilogue" : "");
  }

 private:
  const ConvolutionOp& op_;
  Context& context_;
  std::shared_ptr<Plan> plan_;
  std::shared_ptr<std::byte[]> weights_, x_, y_;
  bool has_epilogue_ = false;
  DeviceEpilogue epilogue_;
  std::vector<std::shared_ptr<std::byte[]>> keep_;
  std::vector<void*> pointers_;
};

// Null, without a reason, when no cuDNN engine takes the NCHW form: strict_f32_layout then
// keeps the NHWC kernel (and its decline, if that declined too).
std::unique_ptr<Kernel> nchw_convolution(const ConvolutionOp& op, const GraphOptions& options,
                                         Context& context) {
  const ImageShape& in = op.src_shapes[0];
  const ImageShape out = op.convolution_shape();
  const cudnnDataType_t io = CUDNN_DATA_FLOAT;
  auto conv = convolution_descriptor(op, CUDNN_DATA_FLOAT);
  if (!conv) return nullptr;
  const int cg = op.input_channels / op.groups;
  auto x = make_tensor(1, io, in.batch, in.channels, in.height, in.width, false, true);
  auto w =
      make_tensor(2, io, op.output_channels, cg, op.kernel_height, op.kernel_width, false, true);
  auto y = make_tensor(3, io, out.batch, out.channels, out.height, out.width, false, true);
  auto forward = convolution_forward(x, w, y, conv);
  if (!forward) return nullptr;
  // KCRS weights from the prepared OHWI ones.
  const std::vector<float>& ohwi = op.weights->weights;
  const std::size_t taps = std::size_t(op.kernel_height) * op.kernel_width;
  std::vector<float> kcrs(ohwi.size());
  for (std::size_t k = 0; k < std::size_t(op.output_channels); ++k)
    for (std::size_t t = 0; t < taps; ++t)
      for (std::size_t c = 0; c < std::size_t(cg); ++c)
        kcrs[(k * cg + c) * taps + t] = ohwi[(k * taps + t) * cg + c];
  auto weights = context.upload_as_storage(kcrs, op.name + " nchw weights");
  PlanTimer timer;
  std::vector<std::shared_ptr<std::byte[]>> scratch;
  std::vector<void*> pointers;
  if (options.autotune) {
    for (std::size_t elements : {in.elements(), out.elements()}) {
      scratch.push_back(context.memory->allocate(elements * sizeof(float), "autotuning"));
      check(cudaMemsetAsync(scratch.back().get(), 0x3C, elements * sizeof(float), context.stream),
            "cudaMemsetAsync");
    }
    pointers = {scratch[0].get(), weights.get(), scratch[1].get()};
    timer = [&](const Plan& candidate, double best_ms) {
      return time_plan(candidate, context.cudnn, context.stream, *context.memory, {1, 2, 3},
                       pointers, best_ms);
    };
  }
  auto plan = find_plan(context.cudnn, {forward}, true, options,
                        "conv_fwd " + convolution_problem(op, io, CUDNN_DATA_FLOAT, "nchw"),
                        options.autotune ? &timer : nullptr);
  if (!plan) return nullptr;
  plan->keep.insert(plan->keep.end(), {x, w, y, conv});
  return std::make_unique<NchwConvolution>(op, context, plan, weights);
}

}  // namespace

std::unique_ptr<Kernel> strict_f32_layout(const ConvolutionOp& op, const GraphOptions& options,
                                          Context& context, std::unique_ptr<Kernel> nhwc) {
  // CNNGRAPH_CUDA_F32_LAYOUT=nchw or nhwc forces one, for tests and experiments.
  const char* forced = knobs::read(knobs::cuda_f32_layout);
  const std::string layout = forced ? forced : "";
  const bool strict_f32 = options.precision == Precision::f32 && context.storage == DataType::f32 &&
                          op.sub_pixel == 1 && !op.fully_connected;
  if (!strict_f32 || !(layout == "nchw" || (options.autotune && layout != "nhwc"))) return nhwc;
  auto nchw = nchw_convolution(op, options, context);
  if (!nchw) return nhwc;
  if (layout == "nchw" || !nhwc) return nchw;
  // Both whole kernels are timed (transposes and epilogues included): an estimate of the
  // transposes misjudged small channel counts.
  const double nchw_ms = time_kernel(*nchw, op, context);
  const double nhwc_ms = time_kernel(*nhwc, op, context);
  if (options.verbose) {
    std::fprintf(stderr, "cnngraph: cuda: %s: nchw %.4f ms, nhwc %.4f ms\n", op.name.c_str(),
                 nchw_ms, nhwc_ms);
  }
  if (nchw_ms > 0 && (nhwc_ms <= 0 || nchw_ms < nhwc_ms)) return nchw;
  return nhwc;
}

}  // namespace cnngraph::detail::cuda
