// Convolution on CUDA through cuDNN's graph API: the convolution with as much of bias and
// post-ops (residual sums, relu) fused into the same plan as cuDNN's runtime fusion
// accepts; what is left runs in our epilogue kernel. Problems no cuDNN engine takes (e.g.
// negative trailing padding) run in our direct kernel.
#include <cstdio>
#include <cstdlib>

#include "backends/cuda/cuda_kernels.hpp"
#include "backends/cuda/cudnn_graph.hpp"
#include "cnngraph/errors.hpp"

namespace cnngraph::detail::cuda {

namespace {

// Builds cuDNN plans for one convolution op, fusing bias and the first post-ops.
class ConvolutionPlanner {
 public:
  ConvolutionPlanner(const ConvolutionOp& op, Context& context, const GraphOptions& options)
      : op_(op), context_(context), options_(options) {}
  // Null when no engine takes this graph.
  std::shared_ptr<Plan> plan(bool fuse_bias, int fused_post_ops) const;
  // How many leading post-ops cuDNN's pointwise operations can express.
  int fusable_post_ops() const;

 private:
  // Names the cuDNN problem for the plan cache.
  std::string problem_key(bool fuse_bias, int fused_post_ops, cudnnDataType_t io,
                          cudnnDataType_t compute) const;

  const ConvolutionOp& op_;
  Context& context_;
  const GraphOptions& options_;
};

enum Uid : std::int64_t { kX = 1, kW = 2, kY = 3, kBias = 4, kResidual = 5, kVirtual = 100 };

// Whether cuDNN's pointwise operations express this post-op exactly.
bool fusable(const PostOp& post) {
  if (post.kind == PostOp::Kind::sum) return true;
  const NeuronDescriptor& n = post.neuron;
  return n.type == NeuronType::relu || (n.type == NeuronType::relu_n && n.a == 0.0f);
}

DescriptorPtr pointwise(cudnnPointwiseMode_t mode, const DescriptorPtr& x, const DescriptorPtr& b,
                        const DescriptorPtr& y, const NeuronDescriptor* neuron) {
  Descriptor math(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
  const cudnnDataType_t precision = CUDNN_DATA_FLOAT;
  math.set(CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, &mode)
      .set(CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, &precision);
  if (neuron && neuron->type == NeuronType::relu && neuron->a != 0.0f) {
    const float slope = neuron->a;
    math.set(CUDNN_ATTR_POINTWISE_RELU_LOWER_CLIP_SLOPE, CUDNN_TYPE_FLOAT, &slope);
  }
  if (neuron && neuron->type == NeuronType::relu_n) {
    const float upper = neuron->b;
    math.set(CUDNN_ATTR_POINTWISE_RELU_UPPER_CLIP, CUDNN_TYPE_FLOAT, &upper);
  }
  math.finalize("pointwise descriptor");
  auto op = std::make_shared<Descriptor>(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
  cudnnBackendDescriptor_t m = math.get(), xh = x->get(), yh = y->get();
  op->set(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR, &m)
      .set(CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, &xh)
      .set(CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, &yh);
  if (b) {
    cudnnBackendDescriptor_t bh = b->get();
    op->set(CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, &bh);
  }
  if (!op->try_finalize()) return nullptr;
  return op;
}

}  // namespace

DescriptorPtr convolution_descriptor(const ConvolutionOp& op, cudnnDataType_t compute) {
  auto conv = std::make_shared<Descriptor>(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
  const std::int64_t dims = 2;
  const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  const std::int64_t pre[2] = {op.y.pad_before, op.x.pad_before};
  // cuDNN takes no negative padding. A window that stops short of the end (PyTorch's
  // 1x1 stride-2 shortcut over an even size) is zero padding whenever cuDNN's size rule,
  // (in + pre + post - window) / stride + 1, still gives the planned result.
  const std::int64_t post[2] = {std::max(0, op.y.pad_after), std::max(0, op.x.pad_after)};
  const std::int64_t strides[2] = {op.y.stride, op.x.stride};
  const std::int64_t dilations[2] = {op.dilation_y, op.dilation_x};
  const auto cudnn_size = [&](const AxisGeometry& axis, int i) {
    return (axis.source_size + pre[i] + post[i] - axis.kernel_size) / axis.stride + 1;
  };
  if (pre[0] < 0 || pre[1] < 0 || cudnn_size(op.y, 0) != op.y.result_size ||
      cudnn_size(op.x, 1) != op.x.result_size) {
    return nullptr;
  }
  conv->set(CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, &dims)
      .set(CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, &compute)
      .set(CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, &mode)
      .set(CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, pre, 2)
      .set(CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, post, 2)
      .set(CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, strides, 2)
      .set(CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, dilations, 2);
  if (!conv->try_finalize()) return nullptr;
  return conv;
}

std::string convolution_problem(const ConvolutionOp& op, cudnnDataType_t io,
                                cudnnDataType_t compute, const std::string& layout) {
  const ImageShape& in = op.src_shapes[0];
  return layout + " x=" + to_string(in) + " k=" + std::to_string(op.output_channels) + "x" +
         std::to_string(op.kernel_height) + "x" + std::to_string(op.kernel_width) +
         " g=" + std::to_string(op.groups) + " pad=" + std::to_string(op.y.pad_before) + "," +
         std::to_string(op.x.pad_before) + "," + std::to_string(op.y.pad_after) + "," +
         std::to_string(op.x.pad_after) + " s=" + std::to_string(op.y.stride) + "," +
         std::to_string(op.x.stride) + " d=" + std::to_string(op.dilation_y) + "," +
         std::to_string(op.dilation_x) + " io=" + std::to_string(io) +
         " acc=" + std::to_string(compute);
}

namespace {

std::shared_ptr<Plan> ConvolutionPlanner::plan(bool fuse_bias, int fused_post_ops) const {
  const ImageShape& in = op_.src_shapes[0];
  const ImageShape out = op_.convolution_shape();
  const cudnnDataType_t io = cudnn_type(context_.storage);
  const bool half_accumulator =
      context_.storage == DataType::f16 && op_.accumulator == AccumulatorPrecision::half;
  const cudnnDataType_t compute = half_accumulator ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
  const int groups = op_.groups;
  const bool chained = fuse_bias || fused_post_ops > 0;
  std::int64_t next_virtual = kVirtual;

  auto x = make_tensor(kX, io, in.batch, in.channels, in.height, in.width);
  auto w = make_tensor(kW, io, op_.output_channels, op_.input_channels / groups, op_.kernel_height,
                       op_.kernel_width);
  auto y = chained ? make_tensor(next_virtual++, CUDNN_DATA_FLOAT, out.batch, out.channels,
                                 out.height, out.width, true)
                   : make_tensor(kY, io, out.batch, out.channels, out.height, out.width);

  auto conv = convolution_descriptor(op_, compute);
  if (!conv) return nullptr;

  auto forward =
      std::make_shared<Descriptor>(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR);
  cudnnBackendDescriptor_t xh = x->get(), wh = w->get(), yh = y->get(), ch = conv->get();
  const float alpha = 1.0f, beta = 0.0f;
  forward->set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, CUDNN_TYPE_BACKEND_DESCRIPTOR, &xh)
      .set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, CUDNN_TYPE_BACKEND_DESCRIPTOR, &wh)
      .set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, CUDNN_TYPE_BACKEND_DESCRIPTOR, &yh)
      .set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, &ch)
      .set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, &alpha)
      .set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, &beta);
  if (!forward->try_finalize()) return nullptr;

  std::vector<DescriptorPtr> operations{forward};
  std::vector<DescriptorPtr> keep{x, w, y, conv};
  DescriptorPtr current = y;
  const int stages = (fuse_bias ? 1 : 0) + fused_post_ops;
  int stage = 0;
  const auto next_tensor = [&]() {
    ++stage;
    return stage == stages ? make_tensor(kY, io, out.batch, out.channels, out.height, out.width)
                           : make_tensor(next_virtual++, CUDNN_DATA_FLOAT, out.batch, out.channels,
                                         out.height, out.width, true);
  };
  if (fuse_bias) {
    auto bias = make_tensor(kBias, io, 1, out.channels, 1, 1);
    auto result = next_tensor();
    auto op = pointwise(CUDNN_POINTWISE_ADD, current, bias, result, nullptr);
    if (!op) return nullptr;
    operations.push_back(op);
    keep.insert(keep.end(), {bias, result});
    current = result;
  }
  for (int i = 0; i < fused_post_ops; ++i) {
    const PostOp& post = op_.post_ops[static_cast<std::size_t>(i)];
    auto result = next_tensor();
    DescriptorPtr op;
    if (post.kind == PostOp::Kind::sum) {
      auto residual = make_tensor(kResidual, io, out.batch, out.channels, out.height, out.width);
      keep.push_back(residual);
      op = pointwise(CUDNN_POINTWISE_ADD, current, residual, result, nullptr);
    } else {
      op = pointwise(CUDNN_POINTWISE_RELU_FWD, current, nullptr, result, &post.neuron);
    }
    if (!op) return nullptr;
    operations.push_back(op);
    keep.push_back(result);
    current = result;
  }
  const std::string problem = problem_key(fuse_bias, fused_post_ops, io, compute);
  // Autotuning runs the candidates on scratch images of the right sizes and the real
  // weights.
  PlanTimer timer;
  std::vector<std::shared_ptr<std::byte[]>> scratch;
  std::vector<std::int64_t> uids{kX, kW, kY};
  std::vector<void*> pointers;
  if (options_.autotune) {
    const std::size_t element = size_of(context_.storage);
    for (std::size_t elements : {in.elements(), out.elements(), out.elements()}) {
      scratch.push_back(context_.memory->allocate(elements * element, "autotuning"));
      // Not zeros: every byte 0x3C (about 1.06 in fp16, 0.011 in bf16 and f32), so that the
      // tensor cores run at the power and clocks of real data.
      check(cudaMemsetAsync(scratch.back().get(), 0x3C, elements * element, context_.stream),
            "cudaMemsetAsync");
    }
    auto weights = device_weights(*op_.weights, context_);
    pointers = {scratch[0].get(), weights->weights.get(), scratch[1].get()};
    if (fuse_bias) {
      uids.push_back(kBias);
      pointers.push_back(weights->bias.get());
    }
    for (int i = 0; i < fused_post_ops; ++i) {
      if (op_.post_ops[static_cast<std::size_t>(i)].kind != PostOp::Kind::sum) continue;
      uids.push_back(kResidual);
      pointers.push_back(scratch[2].get());
      break;
    }
    timer = [&](const Plan& candidate, double best_ms) {
      return time_plan(candidate, context_.cudnn, context_.stream, *context_.memory, uids, pointers,
                       best_ms);
    };
  }
  auto found = find_plan(context_.cudnn, operations, io == CUDNN_DATA_FLOAT, options_, problem,
                         options_.autotune ? &timer : nullptr);
  if (found) found->keep.insert(found->keep.end(), keep.begin(), keep.end());
  return found;
}

std::string ConvolutionPlanner::problem_key(bool fuse_bias, int fused_post_ops, cudnnDataType_t io,
                                            cudnnDataType_t compute) const {
  std::string key = "conv_fwd " + convolution_problem(op_, io, compute);
  if (fuse_bias) key += " +bias";
  for (int i = 0; i < fused_post_ops; ++i) {
    const PostOp& post = op_.post_ops[static_cast<std::size_t>(i)];
    key += post.kind == PostOp::Kind::sum
               ? std::string(" +sum")
               : " +" + to_string(post.neuron.type) + "(" + std::to_string(post.neuron.a) + "," +
                     std::to_string(post.neuron.b) + ")";
  }
  return key;
}

int ConvolutionPlanner::fusable_post_ops() const {
  int count = 0;
  while (count < static_cast<int>(op_.post_ops.size()) && count < 3 &&
         fusable(op_.post_ops[static_cast<std::size_t>(count)])) {
    ++count;
  }
  return count;
}

class CudnnConvolution : public Kernel {
 public:
  CudnnConvolution(const ConvolutionOp& op, Context& context, std::shared_ptr<Plan> plan,
                   bool bias_fused, int fused_post_ops, std::shared_ptr<DeviceWeights> weights)
      : op_(op),
        context_(context),
        plan_(std::move(plan)),
        bias_fused_(bias_fused),
        fused_(fused_post_ops),
        weights_(std::move(weights)) {
    has_epilogue_ =
        make_epilogue(op, context, *weights_, !bias_fused, fused_post_ops, epilogue_, keep_);
    for (int i = 0; i < fused_; ++i)
      fused_sum_ |= op.post_ops[static_cast<std::size_t>(i)].kind == PostOp::Kind::sum;
    context.reserve_workspace(static_cast<std::size_t>(plan_->workspace_bytes));
    if (op.sub_pixel > 1) {
      scratch_ = context.memory->allocate(
          op.convolution_shape().elements() * size_of(context.storage), op.name + " scratch");
    }
  }

  void run(const KernelArgs& args) override {
    void* out = scratch_ ? scratch_.get() : static_cast<void*>(args.dst);
    uids_ = {kX, kW, kY};
    pointers_ = {const_cast<float*>(args.srcs[0]), weights_->weights.get(), out};
    if (bias_fused_) {
      uids_.push_back(kBias);
      pointers_.push_back(weights_->bias.get());
    }
    if (fused_sum_) {
      uids_.push_back(kResidual);
      pointers_.push_back(const_cast<float*>(args.srcs[1]));
    }
    plan_->execute(context_.cudnn, uids_, pointers_, context_.workspace.get());
    const ImageShape conv = op_.convolution_shape();
    if (has_epilogue_) {
      epilogue_.residual = args.srcs.size() > 1 ? args.srcs[1] : nullptr;
      epilogue(context_.storage, epilogue_, out, conv.elements(), conv.channels, context_.stream);
    }
    if (scratch_)
      sub_pixel_shuffle(context_.storage, out, conv, op_.sub_pixel, args.dst, context_.stream);
  }

  std::string implementation() const override {
    std::string name = "cudnn:" + plan_->engine;
    if (bias_fused_) name += "+bias";
    for (int i = 0; i < fused_; ++i) {
      const PostOp& post = op_.post_ops[static_cast<std::size_t>(i)];
      name += post.kind == PostOp::Kind::sum ? "+sum" : "+" + to_string(post.neuron.type);
    }
    if (has_epilogue_) name += " +epilogue";
    return name;
  }

 private:
  const ConvolutionOp& op_;
  Context& context_;
  std::shared_ptr<Plan> plan_;
  bool bias_fused_;
  int fused_;
  bool fused_sum_ = false;
  std::shared_ptr<DeviceWeights> weights_;
  bool has_epilogue_ = false;
  DeviceEpilogue epilogue_;
  std::vector<std::shared_ptr<std::byte[]>> keep_;
  std::shared_ptr<std::byte[]> scratch_;
  std::vector<std::int64_t> uids_;
  std::vector<void*> pointers_;
};

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
      depthwise_convolution(context_.storage, op_, args.srcs[0], hwc_weights_.get(), epilogue_, out,
                            context_.stream);
    } else {
      direct_convolution(context_.storage, op_, args.srcs[0], weights_->weights.get(), epilogue_,
                         out, context_.stream);
    }
    if (scratch_) {
      sub_pixel_shuffle(context_.storage, out, op_.convolution_shape(), op_.sub_pixel, args.dst,
                        context_.stream);
    }
  }
  std::string implementation() const override {
    return depthwise_ ? "cuda:depthwise_convolution" : "cuda:direct_convolution";
  }

 private:
  const ConvolutionOp& op_;
  Context& context_;
  bool depthwise_;
  std::shared_ptr<DeviceWeights> weights_;
  std::shared_ptr<std::byte[]> hwc_weights_;
  DeviceEpilogue epilogue_;
  std::vector<std::shared_ptr<std::byte[]>> keep_;
  std::shared_ptr<std::byte[]> scratch_;
};

}  // namespace

bool make_epilogue(const ConvolutionOp& op, Context& context, const DeviceWeights& weights,
                   bool with_bias, std::size_t first, DeviceEpilogue& e,
                   std::vector<std::shared_ptr<std::byte[]>>& keep) {
  e = DeviceEpilogue{};
  if (with_bias && op.weights->has_bias) e.bias = weights.bias.get();
  if (op.post_ops.size() - first > static_cast<std::size_t>(kMaxPostOps)) {
    throw Unsupported(op.name + ": more than " + std::to_string(kMaxPostOps) +
                      " post-operations on CUDA");
  }
  for (std::size_t i = first; i < op.post_ops.size(); ++i) {
    const PostOp& post = op.post_ops[i];
    const int k = e.count++;
    e.is_sum[k] = post.kind == PostOp::Kind::sum;
    if (e.is_sum[k]) continue;
    const NeuronDescriptor& n = post.neuron;
    e.neuron[k] = {n.type, n.a, n.b, n.c, nullptr};
    if (!n.prelu_slopes.empty()) {
      keep.push_back(context.upload(n.prelu_slopes.data(), n.prelu_slopes.size() * sizeof(float),
                                    op.name + " prelu slopes"));
      e.neuron[k].slopes = reinterpret_cast<const float*>(keep.back().get());
    }
  }
  return e.bias || e.count > 0;
}

std::shared_ptr<DeviceWeights> device_weights(const PreparedWeights& prepared, Context& context) {
  const std::string key =
      "cuda" + std::to_string(context.device) + ":" + to_string(context.storage);
  std::lock_guard lock(prepared.cache_mutex);
  auto& slot = prepared.backend_cache[key];
  if (!slot) {
    auto w = std::make_shared<DeviceWeights>();
    w->weights = context.upload_as_storage(prepared.weights, prepared.source_label + " weights");
    w->bias = context.upload_as_storage(prepared.bias, prepared.source_label + " bias");
    slot = w;
  }
  return std::static_pointer_cast<DeviceWeights>(slot);
}

namespace {

// A cuDNN kernel for a convolution and its measured milliseconds (-1: not measured).
struct CudnnChoice {
  std::unique_ptr<Kernel> kernel;
  double milliseconds = -1;
};

// One read and one write of `elements` (plus `extra_reads` more) at about 2.5 TB/s, and a
// launch: what an elementwise pass of ours costs, to weigh it against a measured plan.
double pass_ms(std::size_t elements, DataType type, double extra_reads = 0) {
  return double(elements) * size_of(type) * (2.0 + extra_reads) / 2.5e9 + 0.003;
}

// The NHWC cuDNN kernel: the most fused plan, or (autotuning) the bare convolution plus our
// epilogue kernel when that measures faster.
CudnnChoice nhwc_convolution(const ConvolutionOp& op, const GraphOptions& options,
                             Context& context) {
  const auto make = [&](std::shared_ptr<Plan> plan, bool bias_fused, int post_ops, double rest_ms) {
    const double ms = plan->milliseconds > 0 ? plan->milliseconds + rest_ms : -1;
    return CudnnChoice{
        std::make_unique<CudnnConvolution>(op, context, std::move(plan), bias_fused, post_ops,
                                           device_weights(*op.weights, context)),
        ms};
  };
  ConvolutionPlanner planner(op, context, options);
  const bool bias = op.weights->has_bias;
  // Most fused first; each step gives more work to the epilogue kernel.
  std::shared_ptr<Plan> fused;
  int fused_post_ops = 0;
  for (int post = planner.fusable_post_ops(); post >= 0 && !fused; --post) {
    fused = planner.plan(bias, post);
    fused_post_ops = post;
  }
  const bool fully_fused = fused && fused_post_ops == static_cast<int>(op.post_ops.size());
  const bool bare_is_other = fused && (bias || fused_post_ops > 0);
  const ImageShape out = op.convolution_shape();
  double sums = 0;
  for (const PostOp& post : op.post_ops) sums += post.kind == PostOp::Kind::sum ? 1.0 : 0.0;
  // The epilogue's cost where one is left to run (the fused plan's leftover post-ops).
  const double fused_rest_ms = fully_fused ? 0.0 : pass_ms(out.elements(), context.storage, sums);
  if (fused && !(options.autotune && bare_is_other))
    return make(fused, bias, fused_post_ops, fused_rest_ms);
  // The bare convolution, its bias and post-ops in our epilogue kernel: where fusion found
  // no engine, or, when autotuning, where it measures faster than the fused plan (a
  // fused graph only gets runtime-fusion engines, the bare one the precompiled kernels too).
  auto bare = planner.plan(false, 0);
  if (!bare) {
    if (!fused) return {};
    return make(fused, bias, fused_post_ops, fused_rest_ms);
  }
  const bool epilogue = bias || !op.post_ops.empty();
  const double bare_rest_ms = epilogue ? pass_ms(out.elements(), context.storage, sums) : 0.0;
  if (!fused) return make(bare, false, 0, bare_rest_ms);
  // Without both times measured, the fused plan stays.
  if (fused->milliseconds <= 0 || bare->milliseconds <= 0)
    return make(fused, bias, fused_post_ops, fused_rest_ms);
  if (options.verbose) {
    std::fprintf(stderr, "cnngraph: cuda: %s: fused %.4f ms, bare %.4f ms + epilogue\n",
                 op.name.c_str(), fused->milliseconds + fused_rest_ms,
                 bare->milliseconds + bare_rest_ms);
  }
  // The bare plan must win clearly (by 10%): on a near tie the fused plan stays, since a
  // bare plan measured alone has been seen to run several times slower in a whole program
  // (bf16 ResNet stem: 0.46 ms measured, 2.3 ms in the benchmark).
  if (fused->milliseconds + fused_rest_ms <= 1.1 * (bare->milliseconds + bare_rest_ms))
    return make(fused, bias, fused_post_ops, fused_rest_ms);
  return make(bare, false, 0, bare_rest_ms);
}

// Strict fp32 (no TF32) in NCHW: cuDNN's fp32 kernels without tensor cores are faster in
// NCHW than in NHWC, which can pay for transposing the source in and the result out. The
// result's transpose is followed by our epilogue kernel (bias, post-ops).
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
    transpose_batched(context_.storage, y_.get(), args.dst, out.batch, out.channels,
                      out.height * out.width, context_.stream);
    if (has_epilogue_) {
      epilogue_.residual = args.srcs.size() > 1 ? args.srcs[1] : nullptr;
      epilogue(context_.storage, epilogue_, args.dst, out.elements(), out.channels,
               context_.stream);
    }
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

CudnnChoice nchw_convolution(const ConvolutionOp& op, const GraphOptions& options,
                             Context& context) {
  const ImageShape& in = op.src_shapes[0];
  const ImageShape out = op.convolution_shape();
  const cudnnDataType_t io = CUDNN_DATA_FLOAT;
  auto conv = convolution_descriptor(op, CUDNN_DATA_FLOAT);
  if (!conv) return {};
  const int cg = op.input_channels / op.groups;
  auto x = make_tensor(1, io, in.batch, in.channels, in.height, in.width, false, true);
  auto w =
      make_tensor(2, io, op.output_channels, cg, op.kernel_height, op.kernel_width, false, true);
  auto y = make_tensor(3, io, out.batch, out.channels, out.height, out.width, false, true);
  auto forward =
      std::make_shared<Descriptor>(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR);
  cudnnBackendDescriptor_t xh = x->get(), wh = w->get(), yh = y->get(), ch = conv->get();
  const float alpha = 1.0f, beta = 0.0f;
  forward->set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, CUDNN_TYPE_BACKEND_DESCRIPTOR, &xh)
      .set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, CUDNN_TYPE_BACKEND_DESCRIPTOR, &wh)
      .set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, CUDNN_TYPE_BACKEND_DESCRIPTOR, &yh)
      .set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, &ch)
      .set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, &alpha)
      .set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, &beta);
  if (!forward->try_finalize()) return {};
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
  if (!plan) return {};
  plan->keep.insert(plan->keep.end(), {x, w, y, conv});
  double sums = 0;
  for (const PostOp& post : op.post_ops) sums += post.kind == PostOp::Kind::sum ? 1.0 : 0.0;
  const bool epilogue = op.weights->has_bias || !op.post_ops.empty();
  const double ms = plan->milliseconds > 0
                        ? plan->milliseconds + pass_ms(in.elements(), context.storage) +
                              pass_ms(out.elements(), context.storage) +
                              (epilogue ? pass_ms(out.elements(), context.storage, sums) : 0.0)
                        : -1;
  return {std::make_unique<NchwConvolution>(op, context, plan, weights), ms};
}

// Milliseconds per run of a convolution kernel on scratch images (bytes 0x3C): one
// warm-up run, then the mean of three; -1 when it fails.
double time_kernel(Kernel& kernel, const ConvolutionOp& op, Context& context) {
  const std::size_t element = size_of(context.storage);
  std::vector<std::shared_ptr<std::byte[]>> blocks;
  for (std::size_t elements :
       {op.src_shapes[0].elements(), op.dst_shape.elements(), op.dst_shape.elements()}) {
    blocks.push_back(context.memory->allocate(elements * element, "autotuning"));
    check(cudaMemsetAsync(blocks.back().get(), 0x3C, elements * element, context.stream),
          "cudaMemsetAsync");
  }
  KernelArgs args;
  args.srcs = {reinterpret_cast<const float*>(blocks[0].get())};
  for (const PostOp& post : op.post_ops) {
    if (post.kind == PostOp::Kind::sum) {
      args.srcs.push_back(reinterpret_cast<const float*>(blocks[2].get()));
      break;
    }
  }
  args.dst = reinterpret_cast<float*>(blocks[1].get());
  cudaEvent_t start = nullptr, stop = nullptr;
  double ms = -1;
  try {
    check(cudaEventCreate(&start), "cudaEventCreate");
    check(cudaEventCreate(&stop), "cudaEventCreate");
    kernel.run(args);
    check(cudaEventRecord(start, context.stream), "cudaEventRecord");
    for (int i = 0; i < 3; ++i) kernel.run(args);
    check(cudaEventRecord(stop, context.stream), "cudaEventRecord");
    check(cudaEventSynchronize(stop), "timing a convolution kernel");
    float elapsed = 0;
    check(cudaEventElapsedTime(&elapsed, start, stop), "cudaEventElapsedTime");
    ms = elapsed / 3;
  } catch (const DeviceError&) {
    cudaStreamSynchronize(context.stream);
    cudaGetLastError();
  }
  if (start) cudaEventDestroy(start);
  if (stop) cudaEventDestroy(stop);
  return ms;
}

}  // namespace

std::unique_ptr<Kernel> make_cudnn_convolution(const Op& base, const GraphOptions& options,
                                               Context& context) {
  const auto& op = static_cast<const ConvolutionOp&>(base);
  CudnnChoice nhwc = nhwc_convolution(op, options, context);
  // Strict fp32 also tries NCHW when autotuning (CNNGRAPH_CUDA_F32_LAYOUT=nchw or nhwc
  // forces one, for tests and experiments).
  const char* forced = std::getenv("CNNGRAPH_CUDA_F32_LAYOUT");
  const std::string layout = forced ? forced : "";
  const bool strict_f32 = options.precision == Precision::f32 && context.storage == DataType::f32 &&
                          op.sub_pixel == 1 && !op.fully_connected;
  if (strict_f32 && (layout == "nchw" || (options.autotune && layout != "nhwc"))) {
    CudnnChoice nchw = nchw_convolution(op, options, context);
    if (!nchw.kernel) return std::move(nhwc.kernel);
    if (layout == "nchw" || !nhwc.kernel) return std::move(nchw.kernel);
    // Both whole kernels are timed (transposes and epilogues included): an estimate of the
    // transposes misjudged small channel counts.
    const double nchw_ms = time_kernel(*nchw.kernel, op, context);
    const double nhwc_ms = time_kernel(*nhwc.kernel, op, context);
    if (options.verbose) {
      std::fprintf(stderr, "cnngraph: cuda: %s: nchw %.4f ms, nhwc %.4f ms\n", op.name.c_str(),
                   nchw_ms, nhwc_ms);
    }
    if (nchw_ms > 0 && (nhwc_ms <= 0 || nchw_ms < nhwc_ms)) return std::move(nchw.kernel);
  }
  return std::move(nhwc.kernel);
}

std::unique_ptr<Kernel> make_depthwise_convolution(const Op& base, const GraphOptions&,
                                                   Context& context) {
  const auto& op = static_cast<const ConvolutionOp&>(base);
  const bool depthwise = op.groups > 1 && op.groups == op.input_channels &&
                         op.groups == op.output_channels && !op.fully_connected;
  // The kernel's index math is 32-bit; larger images go to cuDNN.
  const bool fits =
      op.src_shapes[0].elements() < (1u << 31) && op.convolution_shape().elements() < (1u << 31);
  if (!depthwise || !fits) return nullptr;
  return std::make_unique<OwnConvolution>(op, context, true);
}

std::unique_ptr<Kernel> make_direct_convolution(const Op& base, const GraphOptions&,
                                                Context& context) {
  return std::make_unique<OwnConvolution>(static_cast<const ConvolutionOp&>(base), context, false);
}

}  // namespace cnngraph::detail::cuda
