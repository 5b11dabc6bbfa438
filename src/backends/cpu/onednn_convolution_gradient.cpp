// oneDNN convolution and inner-product gradients: backward data into diff_src, backward
// weights into the trained node's gradient state. Variants oneDNN has no primitive for (a
// descriptor's fused neuron, sub-pixel) fall through to the reference kernel.
#include "backends/candidates.hpp"
#include "backends/cpu/onednn_common.hpp"
#include "backends/reference/reference_backend.hpp"

namespace cnngraph::detail::onednn {

namespace {

using dnnl::memory;
using dt = memory::data_type;

class OnednnConvolutionGradient : public Kernel {
 public:
  static std::unique_ptr<Kernel> make(const ConvolutionGradientOp& op) {
    const ConvolutionOp& f = op.forward;
    if (!f.post_ops.empty()) return decline("a fused neuron");
    if (f.sub_pixel != 1) return decline("sub-pixel output");
    const int pad_limit = -std::min(f.x.stride, f.y.stride);
    if (f.x.pad_after <= pad_limit || f.y.pad_after <= pad_limit)
      return decline("a crop (negative pad_after) of a whole stride or more");
    auto kernel = std::unique_ptr<OnednnConvolutionGradient>(new OnednnConvolutionGradient(op));
    try {
      kernel->build();
    } catch (const dnnl::error& e) {
      return decline(std::string("no oneDNN primitive: ") + e.what());
    }
    return kernel;
  }

  std::string implementation() const override { return name_; }

  void run(const KernelArgs& args) override {
    diff_dst_.set_data_handle(const_cast<float*>(args.srcs[0]));
    if (op_.input_gradient) {
      weights_ = cached_weights(*op_.forward.weights, user_weights_, wanted_weights_);
      diff_src_.set_data_handle(args.dst);
      backward_data_.execute(cpu_stream(), {{DNNL_ARG_DIFF_DST, diff_dst_},
                                            {DNNL_ARG_WEIGHTS, weights_},
                                            {DNNL_ARG_DIFF_SRC, diff_src_}});
    }
    if (op_.parameters) {
      src_.set_data_handle(const_cast<float*>(args.srcs[1]));
      backward_weights_.execute(cpu_stream(), {{DNNL_ARG_SRC, src_},
                                               {DNNL_ARG_DIFF_DST, diff_dst_},
                                               {DNNL_ARG_DIFF_WEIGHTS, diff_weights_},
                                               {DNNL_ARG_DIFF_BIAS, diff_bias_}});
      if (diff_weights_reorder_) {
        diff_weights_reorder_->execute(cpu_stream(), diff_weights_, diff_weights_user_);
      }
    }
    cpu_stream().wait();
    if (op_.parameters && !op_.parameters->fold_scale.empty()) unfold_gradients();
  }

 private:
  explicit OnednnConvolutionGradient(const ConvolutionGradientOp& op) : op_(op) {}

  void build() {
    const ConvolutionOp& f = op_.forward;
    const ImageShape& src = f.src_shapes[0];
    const ImageShape dst = f.convolution_shape();
    const memory::desc src_md = nhwc_desc(src);
    const memory::desc bias_md({f.output_channels}, dt::f32, memory::format_tag::x);
    user_weights_ =
        f.fully_connected && f.groups == 1
            ? memory::desc({f.output_channels, f.input_channels, f.kernel_height, f.kernel_width},
                           dt::f32, memory::format_tag::ohwi)
            : user_weights_desc(f);
    const memory::desc weights_any(user_weights_.dims(), dt::f32, memory::format_tag::any);
    memory::desc diff_weights_desc, dst_md;
    if (f.fully_connected && f.groups == 1) {
      dst_md = memory::desc({dst.batch, f.output_channels}, dt::f32, memory::format_tag::nc);
      using fwd = dnnl::inner_product_forward;
      fwd::primitive_desc hint(
          fwd::desc(dnnl::prop_kind::forward_training, src_md, weights_any, bias_md, dst_md),
          cpu_engine());
      if (op_.input_gradient) {
        using bwd = dnnl::inner_product_backward_data;
        bwd::primitive_desc pd(bwd::desc(src_md, weights_any, dst_md), cpu_engine(), hint);
        backward_data_ = bwd(pd);
        wanted_weights_ = pd.weights_desc();
        name_ = implementation_name(pd);
      }
      if (op_.parameters) {
        using bwd = dnnl::inner_product_backward_weights;
        bwd::primitive_desc pd(bwd::desc(src_md, weights_any, bias_md, dst_md), cpu_engine(), hint);
        backward_weights_ = bwd(pd);
        diff_weights_desc = pd.diff_weights_desc();
        name_ += (name_.empty() ? "" : "+") + implementation_name(pd);
      }
    } else {
      dst_md = nhwc_desc(dst);
      const memory::dims strides{f.y.stride, f.x.stride};
      const memory::dims dilation{f.dilation_y - 1, f.dilation_x - 1};
      const memory::dims pad_before{f.y.pad_before, f.x.pad_before};
      const memory::dims pad_after{std::max(0, f.y.pad_after), std::max(0, f.x.pad_after)};
      const auto algorithm = dnnl::algorithm::convolution_direct;
      using fwd = dnnl::convolution_forward;
      fwd::primitive_desc hint(
          fwd::desc(dnnl::prop_kind::forward_training, algorithm, src_md, weights_any, bias_md,
                    dst_md, strides, dilation, pad_before, pad_after),
          cpu_engine());
      if (op_.input_gradient) {
        using bwd = dnnl::convolution_backward_data;
        bwd::primitive_desc pd(bwd::desc(algorithm, src_md, weights_any, dst_md, strides, dilation,
                                         pad_before, pad_after),
                               cpu_engine(), hint);
        backward_data_ = bwd(pd);
        wanted_weights_ = pd.weights_desc();
        name_ = implementation_name(pd);
      }
      if (op_.parameters) {
        using bwd = dnnl::convolution_backward_weights;
        bwd::primitive_desc pd(bwd::desc(algorithm, src_md, weights_any, bias_md, dst_md, strides,
                                         dilation, pad_before, pad_after),
                               cpu_engine(), hint);
        backward_weights_ = bwd(pd);
        diff_weights_desc = pd.diff_weights_desc();
        name_ += (name_.empty() ? "" : "+") + implementation_name(pd);
      }
    }
    diff_dst_ = memory(dst_md, cpu_engine(), nullptr);
    diff_src_ = memory(src_md, cpu_engine(), nullptr);
    src_ = memory(src_md, cpu_engine(), nullptr);
    if (op_.parameters) {
      ConvolutionGradientState& g = op_.parameters->gradient;
      diff_bias_ = memory(bias_md, cpu_engine(), g.bias_gradient.data());
      diff_weights_user_ = memory(user_weights_, cpu_engine(), g.weights_gradient.data());
      if (diff_weights_desc == user_weights_) {
        diff_weights_ = diff_weights_user_;
      } else {
        diff_weights_ = memory(diff_weights_desc, cpu_engine());
        diff_weights_reorder_ = dnnl::reorder(diff_weights_, diff_weights_user_);
      }
    }
    name_ = name_ + " gradient";
  }

  // The descriptor's folded batch norm scales the prepared weights; the data source's own
  // weights get the gradient times that scale.
  void unfold_gradients() {
    ConvolutionGradientState& g = op_.parameters->gradient;
    const std::vector<float>& scale = op_.parameters->fold_scale;
    const std::size_t per_output = g.weights_gradient.size() / scale.size();
    for (std::size_t i = 0; i < g.weights_gradient.size(); ++i)
      g.weights_gradient[i] *= scale[i / per_output];
    for (std::size_t k = 0; k < scale.size(); ++k) g.bias_gradient[k] *= scale[k];
  }

  const ConvolutionGradientOp& op_;
  dnnl::primitive backward_data_, backward_weights_;
  memory::desc user_weights_, wanted_weights_;
  memory weights_, diff_dst_, diff_src_, src_, diff_weights_, diff_weights_user_, diff_bias_;
  std::optional<dnnl::reorder> diff_weights_reorder_;
  std::string name_;
};

}  // namespace

std::unique_ptr<Kernel> make_convolution_gradient(const Op& op, const GraphOptions&) {
  return OnednnConvolutionGradient::make(static_cast<const ConvolutionGradientOp&>(op));
}

}  // namespace cnngraph::detail::onednn
