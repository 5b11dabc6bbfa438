// oneDNN convolution and fully connected (inner product), with fused post-ops. Weights are
// reordered into the primitive's preferred layout once and cached beside the prepared
// weights, so every plan of a graph (one per batch size) shares them.
#include <algorithm>
#include <cstring>

#include "backends/candidates.hpp"
#include "backends/cpu/onednn_common.hpp"
#include "backends/reference/reference_backend.hpp"
#include "ops/neuron_math.hpp"

namespace cnngraph::detail::onednn {

namespace {

using dnnl::memory;
using dt = memory::data_type;

// oneDNN post-ops for the op's post-op list, or nothing when one has no exact equivalent.
// oneDNN 2.6's convolution kernels give wrong results for a post-op chain holding the same
// eltwise algorithm twice (two linear steps came out as the first one applied twice). So
// adjacent linear steps are composed into one, and a chain that still repeats an algorithm
// is left to our loop (nullopt).
std::optional<dnnl::post_ops> make_post_ops(const ConvolutionOp& op) {
  struct Step {
    bool sum = false;
    Eltwise eltwise;
  };
  std::vector<Step> steps;
  for (const PostOp& p : op.post_ops) {
    if (p.kind == PostOp::Kind::sum) {
      steps.push_back({true, {}});
      continue;
    }
    auto chain = eltwise_chain(p.neuron);
    if (!chain) return std::nullopt;
    for (const Eltwise& e : *chain) {
      Step* last = steps.empty() ? nullptr : &steps.back();
      if (last && !last->sum && last->eltwise.algorithm == dnnl::algorithm::eltwise_linear &&
          e.algorithm == dnnl::algorithm::eltwise_linear && last->eltwise.scale == 1.0f &&
          e.scale == 1.0f) {
        // e(last(x)) = e.alpha * (last.alpha * x + last.beta) + e.beta
        last->eltwise.beta = e.alpha * last->eltwise.beta + e.beta;
        last->eltwise.alpha *= e.alpha;
        continue;
      }
      steps.push_back({false, e});
    }
  }
  dnnl::post_ops post_ops;
  std::vector<dnnl::algorithm> seen;
  for (const Step& step : steps) {
    if (step.sum) {
      post_ops.append_sum(1.0f);
      continue;
    }
    const Eltwise& e = step.eltwise;
    if (std::find(seen.begin(), seen.end(), e.algorithm) != seen.end()) return std::nullopt;
    seen.push_back(e.algorithm);
    post_ops.append_eltwise(e.scale, e.algorithm, e.alpha, e.beta);
  }
  return post_ops;
}

class OnednnConvolution : public Kernel {
 public:
  // Declines when oneDNN cannot take this op as planned (the next candidate runs it).
  static std::unique_ptr<Kernel> make(const ConvolutionOp& op, bool bf16) {
    const int pad_limit = -std::min(op.x.stride, op.y.stride);
    if (op.x.pad_after <= pad_limit || op.y.pad_after <= pad_limit)
      return decline("a crop (negative pad_after) of a whole stride or more");
    auto post_ops = make_post_ops(op);
    dnnl::primitive_attr attr;
    if (post_ops) attr.set_post_ops(*post_ops);
    auto kernel = std::unique_ptr<OnednnConvolution>(new OnednnConvolution(op));
    kernel->loop_post_ops_ = !post_ops;
    for (const PostOp& p : op.post_ops)
      kernel->sum_in_primitive_ |= post_ops && p.kind == PostOp::Kind::sum;
    const dt compute = bf16 ? dt::bf16 : dt::f32;
    const ImageShape& src = op.src_shapes[0];
    const ImageShape conv = op.convolution_shape();
    const memory::desc src_md = nhwc_desc(src, compute);
    const memory::desc dst_md = nhwc_desc(conv);
    const memory::desc bias_md({op.output_channels}, dt::f32, memory::format_tag::x);
    const memory::dim G = op.groups, O = op.output_channels, I = op.input_channels;
    const memory::dim KH = op.kernel_height, KW = op.kernel_width;
    memory::desc user_weights_md, weights_any;
    try {
      if (op.fully_connected && op.groups == 1) {
        user_weights_md = memory::desc({O, I, KH, KW}, dt::f32, memory::format_tag::ohwi);
        weights_any = memory::desc({O, I, KH, KW}, compute, memory::format_tag::any);
        const memory::desc fc_dst({conv.batch, O}, dt::f32, memory::format_tag::nc);
        dnnl::inner_product_forward::desc desc(dnnl::prop_kind::forward_inference, src_md,
                                               weights_any, bias_md, fc_dst);
        dnnl::inner_product_forward::primitive_desc pd(desc, attr, cpu_engine());
        if (!kernel->accept(pd, bf16)) return kernel->decline_reference();
        kernel->primitive_ = dnnl::inner_product_forward(pd);
        kernel->bind(pd.weights_desc(), user_weights_md, fc_dst, src, bf16);
      } else {
        if (G == 1) {
          user_weights_md = memory::desc({O, I, KH, KW}, dt::f32, memory::format_tag::ohwi);
          weights_any = memory::desc({O, I, KH, KW}, compute, memory::format_tag::any);
        } else {
          user_weights_md =
              memory::desc({G, O / G, I / G, KH, KW}, dt::f32, memory::format_tag::gohwi);
          weights_any = memory::desc({G, O / G, I / G, KH, KW}, compute, memory::format_tag::any);
        }
        dnnl::convolution_forward::desc desc(
            dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_md,
            weights_any, bias_md, dst_md, {op.y.stride, op.x.stride},
            {op.dilation_y - 1, op.dilation_x - 1}, {op.y.pad_before, op.x.pad_before},
            {std::max(0, op.y.pad_after), std::max(0, op.x.pad_after)});
        dnnl::convolution_forward::primitive_desc pd(desc, attr, cpu_engine());
        if (!kernel->accept(pd, bf16)) return kernel->decline_reference();
        kernel->primitive_ = dnnl::convolution_forward(pd);
        kernel->bind(pd.weights_desc(), user_weights_md, dst_md, src, bf16);
      }
    } catch (const dnnl::error& e) {
      return decline(std::string("no oneDNN primitive: ") + e.what());
    }
    kernel->bias_ = memory(bias_md, cpu_engine(), const_cast<float*>(op.weights->bias.data()));
    kernel->wanted_weights_ = kernel->weights_.get_desc();
    kernel->user_weights_ = user_weights_md;
    return kernel;
  }

  std::string implementation() const override { return name_; }

  void run(const KernelArgs& args) override {
    const ImageShape conv = op_.convolution_shape();
    float* out = op_.sub_pixel > 1 ? shuffle_buffer_.data() : args.dst;
    if (src_reorder_) {
      src_f32_.set_data_handle(const_cast<float*>(args.srcs[0]));
      src_reorder_->execute(cpu_stream(), src_f32_, src_);
    } else {
      src_.set_data_handle(const_cast<float*>(args.srcs[0]));
    }
    dst_.set_data_handle(out);
    // oneDNN's sum post-op adds what dst holds; the residual comes in srcs[1] (the one
    // contract of every kernel, KernelArgs), so it is copied there first. Here, not as a
    // step of its own: only this kernel needs it, and the loop post-ops read srcs[1].
    if (sum_in_primitive_ && out != args.srcs[1])
      std::memcpy(out, args.srcs[1], conv.elements() * sizeof(float));
    // A training graph rewrites the weights between batches; the cache re-reorders them.
    weights_ = cached_weights(*op_.weights, user_weights_, wanted_weights_);
    primitive_.execute(cpu_stream(), {{DNNL_ARG_SRC, src_},
                                      {DNNL_ARG_WEIGHTS, weights_},
                                      {DNNL_ARG_BIAS, bias_},
                                      {DNNL_ARG_DST, dst_}});
    cpu_stream().wait();
    if (loop_post_ops_) apply_post_ops_in_loop(out, args, conv);
    if (op_.sub_pixel > 1)
      sub_pixel_shuffle(out, conv, op_.sub_pixel, op_.sub_pixel_order, args.dst);
  }

 private:
  explicit OnednnConvolution(const ConvolutionOp& op) : op_(op) {}

  // bf16 is only worth it where the CPU runs it natively, not through oneDNN's ref code.
  bool accept(const dnnl::primitive_desc_base& pd, bool bf16) {
    name_ = implementation_name(pd) + (bf16 ? " bf16" : "");
    return !bf16 || name_.find("ref") == std::string::npos;
  }
  std::unique_ptr<Kernel> decline_reference() const {
    return decline("bf16 only through oneDNN's reference code (" + name_ + ")");
  }

  void bind(const memory::desc& wanted_weights, const memory::desc& user_weights,
            const memory::desc& dst_md, const ImageShape& src, bool bf16) {
    weights_ = cached_weights(*op_.weights, user_weights, wanted_weights);
    dst_ = memory(dst_md, cpu_engine(), nullptr);
    if (bf16) {
      src_f32_ = memory(nhwc_desc(src), cpu_engine(), nullptr);
      src_ = memory(nhwc_desc(src, dt::bf16), cpu_engine());
      src_reorder_ = dnnl::reorder(src_f32_, src_);
    } else {
      src_ = memory(nhwc_desc(src), cpu_engine(), nullptr);
    }
    if (op_.sub_pixel > 1) shuffle_buffer_.resize(op_.convolution_shape().elements());
  }

  void apply_post_ops_in_loop(float* out, const KernelArgs& args, const ImageShape& conv) const {
    const std::size_t count = conv.elements();
    const int K = conv.channels;
    for (const PostOp& p : op_.post_ops) {
      if (p.kind == PostOp::Kind::sum) {
        for (std::size_t i = 0; i < count; ++i) out[i] += args.srcs[1][i];
      } else {
        for (std::size_t i = 0; i < count; ++i) {
          out[i] = apply_neuron<float>(p.neuron, out[i], static_cast<int>(i % K));
        }
      }
    }
  }

  const ConvolutionOp& op_;
  dnnl::primitive primitive_;
  memory src_, src_f32_, weights_, bias_, dst_;
  memory::desc user_weights_, wanted_weights_;
  std::optional<dnnl::reorder> src_reorder_;
  bool loop_post_ops_ = false;
  bool sum_in_primitive_ = false;  // a sum post-op in oneDNN's post-ops: dst holds the residual
  std::vector<float> shuffle_buffer_;
  std::string name_;
};

}  // namespace

std::unique_ptr<Kernel> make_convolution_bf16(const Op& op, const GraphOptions& options) {
  if (options.precision != Precision::bf16) return decline("precision is not bf16");
  return OnednnConvolution::make(static_cast<const ConvolutionOp&>(op), true);
}

std::unique_ptr<Kernel> make_convolution(const Op& op, const GraphOptions&) {
  return OnednnConvolution::make(static_cast<const ConvolutionOp&>(op), false);
}

}  // namespace cnngraph::detail::onednn
