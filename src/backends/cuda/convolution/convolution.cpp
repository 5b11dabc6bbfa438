// Convolution on CUDA through cuDNN's graph API: the convolution with as much of bias and
// post-ops (residual sums, relu) fused into the same plan as cuDNN's runtime fusion
// accepts; what is left runs in our epilogue kernel. Strict fp32 may run in NCHW
// (convolution_nchw.cpp); problems no cuDNN engine takes run in our direct kernel
// (own_convolution.cpp).
#include <cstdio>
#include <optional>

#include "backends/candidates.hpp"
#include "backends/cuda/cuda_kernels.hpp"
#include "backends/cuda/cudnn/cudnn_graph.hpp"
#include "backends/cuda/kernels/elementwise.hpp"
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

// The cuDNN pointwise mode that computes this neuron exactly, if there is one: ReLU (leaky
// through its lower clip slope, ReLU-N through its upper clip), SiLU (swish with beta 1, the
// 1x1 convolutions of EfficientNet's blocks) and the sigmoid (its squeeze-and-excitation
// gates).
std::optional<cudnnPointwiseMode_t> pointwise_mode(const NeuronDescriptor& n) {
  switch (n.type) {
    case NeuronType::relu:
      return CUDNN_POINTWISE_RELU_FWD;
    case NeuronType::relu_n:
      if (n.a == 0.0f) return CUDNN_POINTWISE_RELU_FWD;
      return std::nullopt;
    case NeuronType::silu:
      return CUDNN_POINTWISE_SWISH_FWD;
    case NeuronType::sigmoid:
      return CUDNN_POINTWISE_SIGMOID_FWD;
    default:
      return std::nullopt;
  }
}

// Whether cuDNN's pointwise operations express this post-op exactly.
bool fusable(const PostOp& post) {
  return post.kind == PostOp::Kind::sum || pointwise_mode(post.neuron).has_value();
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
  if (neuron && neuron->type == NeuronType::silu) {
    const float beta = 1.0f;
    math.set(CUDNN_ATTR_POINTWISE_SWISH_BETA, CUDNN_TYPE_FLOAT, &beta);
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

  auto forward = convolution_forward(x, w, y, conv);
  if (!forward) return nullptr;

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
      op = pointwise(*pointwise_mode(post.neuron), current, nullptr, result, &post.neuron);
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
      sub_pixel_shuffle(context_.storage, out, conv, op_.sub_pixel, op_.sub_pixel_order, args.dst,
                        context_.stream);
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

// One read and one write of `elements` (plus `extra_reads` more) at about 2.5 TB/s, and a
// launch: what an elementwise pass of ours costs, to weigh it against a measured plan.
double pass_ms(std::size_t elements, DataType type, double extra_reads = 0) {
  return double(elements) * size_of(type) * (2.0 + extra_reads) / 2.5e9 + 0.003;
}

}  // namespace

std::unique_ptr<Kernel> nhwc_convolution(const ConvolutionOp& op, const GraphOptions& options,
                                         Context& context) {
  const auto make = [&](std::shared_ptr<Plan> plan, bool bias_fused, int post_ops) {
    return std::make_unique<CudnnConvolution>(op, context, std::move(plan), bias_fused, post_ops,
                                              device_weights(*op.weights, context));
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
  if (fused && !(options.autotune && bare_is_other)) return make(fused, bias, fused_post_ops);
  // The bare convolution, its bias and post-ops in our epilogue kernel: where fusion found
  // no engine, or, when autotuning, where it measures faster than the fused plan (a
  // fused graph only gets runtime-fusion engines, the bare one the precompiled kernels too).
  auto bare = planner.plan(false, 0);
  if (!bare) {
    if (fused) return make(fused, bias, fused_post_ops);
    return decline("no cuDNN engine for the convolution");
  }
  const bool epilogue = bias || !op.post_ops.empty();
  const double bare_rest_ms = epilogue ? pass_ms(out.elements(), context.storage, sums) : 0.0;
  if (!fused) return make(bare, false, 0);
  // Without both times measured, the fused plan stays.
  if (fused->milliseconds <= 0 || bare->milliseconds <= 0) return make(fused, bias, fused_post_ops);
  if (options.verbose) {
    std::fprintf(stderr, "cnngraph: cuda: %s: fused %.4f ms, bare %.4f ms + epilogue\n",
                 op.name.c_str(), fused->milliseconds + fused_rest_ms,
                 bare->milliseconds + bare_rest_ms);
  }
  // The bare plan must win clearly (by 10%): the epilogue pass is estimated, not measured.
  // (It was once far off: the epilogue kernel copied its parameters to local memory in
  // every thread, and a bf16 stem chosen bare at 0.46 ms ran at 2.3 ms; see DeviceEpilogue.)
  if (fused->milliseconds + fused_rest_ms <= 1.1 * (bare->milliseconds + bare_rest_ms))
    return make(fused, bias, fused_post_ops);
  return make(bare, false, 0);
}

std::unique_ptr<Kernel> make_cudnn_convolution(const Op& base, const GraphOptions& options,
                                               Context& context) {
  const auto& op = static_cast<const ConvolutionOp&>(base);
  // A stem over 3 colours also tries 4 channels (convolution_padded.cpp), strict fp32 also
  // NCHW (convolution_nchw.cpp); both rearrange the weights, so not for trained ones.
  if (op.weights->trained) return nhwc_convolution(op, options, context);
  auto nhwc = few_channels_padded(op, options, context, nhwc_convolution(op, options, context));
  return strict_f32_layout(op, options, context, std::move(nhwc));
}

}  // namespace cnngraph::detail::cuda
