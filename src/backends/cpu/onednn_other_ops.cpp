// oneDNN kernels for the non-convolution ops: eltwise, pooling, binary arithmetic, concat,
// softmax; plain loops where a primitive would add nothing (affine batch norm, reshape) or
// where oneDNN has none (padding).
#include <algorithm>
#include <cstring>

#include "backends/candidates.hpp"
#include "backends/cpu/onednn_common.hpp"
#include "ops/neuron_math.hpp"

namespace cnngraph::detail::onednn {

using dnnl::algorithm;
using dnnl::memory;

namespace {

template <typename PrimitiveDesc, typename Primitive>
std::unique_ptr<Kernel> primitive_kernel(const PrimitiveDesc& pd,
                                         std::vector<memory::desc> src_descs,
                                         std::vector<int> src_args, const memory::desc& dst) {
  return std::make_unique<PrimitiveKernel>(Primitive(pd), std::move(src_descs), std::move(src_args),
                                           dst, implementation_name(pd));
}

}  // namespace

std::unique_ptr<Kernel> make_neuron(const Op& op, const GraphOptions&) {
  const auto& neuron = static_cast<const NeuronOp&>(op);
  auto chain = eltwise_chain(neuron.neuron);
  const memory::desc md = nhwc_desc(op.dst_shape);
  if (chain && chain->size() == 1 && chain->front().scale == 1.0f) {
    const Eltwise& e = chain->front();
    try {
      dnnl::eltwise_forward::desc desc(dnnl::prop_kind::forward_inference, e.algorithm, md, e.alpha,
                                       e.beta);
      dnnl::eltwise_forward::primitive_desc pd(desc, cpu_engine());
      return primitive_kernel<decltype(pd), dnnl::eltwise_forward>(pd, {md}, {DNNL_ARG_SRC}, md);
    } catch (const dnnl::error&) {
    }
  }
  // Chains and per-channel neurons: one pass of our own over the data.
  return function_kernel<NeuronOp>(
      op, "onednn:neuron_loop", [](const NeuronOp& o, const KernelArgs& a) {
        const std::size_t count = o.dst_shape.elements();
        const int C = o.dst_shape.channels;
        for (std::size_t i = 0; i < count; ++i) {
          a.dst[i] = apply_neuron<float>(o.neuron, a.srcs[0][i], static_cast<int>(i % C));
        }
      });
}

std::unique_ptr<Kernel> make_pooling(const Op& op, const GraphOptions&) {
  const auto& pool = static_cast<const PoolingOp&>(op);
  const int pad_limit = -std::min(pool.x.stride, pool.y.stride);
  if (pool.x.pad_after <= pad_limit || pool.y.pad_after <= pad_limit)
    return decline("a crop (negative pad_after) of a whole stride or more");
  // Out-of-image pixels are left out of both max and average (MPS's clamp edge mode), or
  // counted in average's divisor, which oneDNN then takes as the whole kernel.
  const AverageDivisor& divisor = pool.divisor;
  if (divisor.counts_padding &&
      (divisor.padded_after_x < pool.x.pad_after || divisor.padded_after_y < pool.y.pad_after))
    return decline("windows reach past the counted padding (ceil mode)");
  const algorithm alg = pool.type == PoolingType::max ? algorithm::pooling_max
                        : divisor.counts_padding      ? algorithm::pooling_avg_include_padding
                                                      : algorithm::pooling_avg_exclude_padding;
  const memory::desc src = nhwc_desc(op.src_shapes[0]), dst = nhwc_desc(op.dst_shape);
  try {
    dnnl::pooling_forward::desc desc(
        dnnl::prop_kind::forward_inference, alg, src, dst, {pool.y.stride, pool.x.stride},
        {pool.y.kernel_size, pool.x.kernel_size}, {pool.y.pad_before, pool.x.pad_before},
        {std::max(0, pool.y.pad_after), std::max(0, pool.x.pad_after)});
    dnnl::pooling_forward::primitive_desc pd(desc, cpu_engine());
    return primitive_kernel<decltype(pd), dnnl::pooling_forward>(pd, {src}, {DNNL_ARG_SRC}, dst);
  } catch (const dnnl::error& e) {
    return decline(std::string("no oneDNN primitive: ") + e.what());
  }
}

std::unique_ptr<Kernel> make_addition(const Op& op, const GraphOptions&) {
  const memory::desc md = nhwc_desc(op.dst_shape);
  dnnl::binary::desc desc(algorithm::binary_add, md, md, md);
  dnnl::binary::primitive_desc pd(desc, cpu_engine());
  return primitive_kernel<decltype(pd), dnnl::binary>(pd, {md, md},
                                                      {DNNL_ARG_SRC_0, DNNL_ARG_SRC_1}, md);
}

std::unique_ptr<Kernel> make_arithmetic(const Op& op, const GraphOptions&) {
  const auto& arithmetic = static_cast<const ArithmeticOp&>(op);
  const ArithmeticOperation operation = arithmetic.operation;
  // oneDNN 2.6 broadcasts src1 only (src0 has the result's size). A broadcast primary
  // becomes src1: a sum and a product are the same either way, and a difference is
  // -(secondary - primary), exactly (rounding is symmetric about zero).
  const bool swap = op.src_shapes[0] != op.dst_shape;
  if (swap && op.src_shapes[1] != op.dst_shape) return decline("both sources are broadcast");
  if (swap && operation == ArithmeticOperation::division)
    return decline("a broadcast dividend (oneDNN broadcasts src1 only)");
  algorithm alg = algorithm::binary_add;
  switch (operation) {
    case ArithmeticOperation::addition:
      alg = algorithm::binary_add;
      break;
    case ArithmeticOperation::subtraction:
      alg = algorithm::binary_sub;
      break;
    case ArithmeticOperation::multiplication:
      alg = algorithm::binary_mul;
      break;
    case ArithmeticOperation::division:
      alg = algorithm::binary_div;
      break;
  }
  const memory::desc a = nhwc_desc(op.src_shapes[0]), b = nhwc_desc(op.src_shapes[1]),
                     dst = nhwc_desc(op.dst_shape);
  dnnl::primitive_attr attributes;
  if (swap && operation == ArithmeticOperation::subtraction) {
    dnnl::post_ops negate;
    negate.append_eltwise(1.0f, algorithm::eltwise_linear, -1.0f, 0.0f);
    attributes.set_post_ops(negate);
  }
  try {
    dnnl::binary::desc desc(alg, swap ? b : a, swap ? a : b, dst);
    dnnl::binary::primitive_desc pd(desc, attributes, cpu_engine());
    return primitive_kernel<decltype(pd), dnnl::binary>(
        pd, {a, b},
        swap ? std::vector<int>{DNNL_ARG_SRC_1, DNNL_ARG_SRC_0}
             : std::vector<int>{DNNL_ARG_SRC_0, DNNL_ARG_SRC_1},
        dst);
  } catch (const dnnl::error& e) {
    return decline(std::string("no oneDNN primitive: ") + e.what());
  }
}

std::unique_ptr<Kernel> make_concatenation(const Op& op, const GraphOptions&) {
  std::vector<memory::desc> srcs;
  std::vector<int> args;
  for (std::size_t i = 0; i < op.src_shapes.size(); ++i) {
    srcs.push_back(nhwc_desc(op.src_shapes[i]));
    args.push_back(DNNL_ARG_MULTIPLE_SRC + static_cast<int>(i));
  }
  const memory::desc dst = nhwc_desc(op.dst_shape);
  dnnl::concat::primitive_desc pd(dst, 1, srcs, cpu_engine());
  return primitive_kernel<decltype(pd), dnnl::concat>(pd, srcs, args, dst);
}

std::unique_ptr<Kernel> make_softmax(const Op& op, const GraphOptions&) {
  const auto& softmax = static_cast<const SoftMaxOp&>(op);
  const memory::desc md = nhwc_desc(op.dst_shape);
  if (softmax.logarithmic) {
    dnnl::logsoftmax_forward::desc desc(dnnl::prop_kind::forward_inference, md, 1);
    dnnl::logsoftmax_forward::primitive_desc pd(desc, cpu_engine());
    return primitive_kernel<decltype(pd), dnnl::logsoftmax_forward>(pd, {md}, {DNNL_ARG_SRC}, md);
  }
  dnnl::softmax_forward::desc desc(dnnl::prop_kind::forward_inference, md, 1);
  dnnl::softmax_forward::primitive_desc pd(desc, cpu_engine());
  return primitive_kernel<decltype(pd), dnnl::softmax_forward>(pd, {md}, {DNNL_ARG_SRC}, md);
}

std::unique_ptr<Kernel> make_batch_normalization(const Op& op, const GraphOptions&) {
  return function_kernel<BatchNormalizationOp>(
      op, "onednn:affine_loop", [](const BatchNormalizationOp& o, const KernelArgs& a) {
        const std::size_t C = o.dst_shape.channels;
        const std::size_t pixels = o.dst_shape.elements() / C;
        for (std::size_t p = 0; p < pixels; ++p) {
          for (std::size_t c = 0; c < C; ++c) {
            a.dst[p * C + c] = a.srcs[0][p * C + c] * o.scale[c] + o.shift[c];
          }
        }
      });
}

std::unique_ptr<Kernel> make_reshape(const Op& op, const GraphOptions&) {
  return function_kernel<ReshapeOp>(op, "onednn:copy", [](const ReshapeOp& o, const KernelArgs& a) {
    std::memcpy(a.dst, a.srcs[0], o.dst_shape.elements() * sizeof(float));
  });
}

// Padding and its crop, oneDNN having no such primitive: per result row, the fill value
// around one copy of the source row's part that lands inside (whole rows of the fill value
// above and below). Images split over the threads.
std::unique_ptr<Kernel> make_padding(const Op& op, const GraphOptions&) {
  return function_kernel<PaddingOp>(
      op, "onednn:padding_loop", [](const PaddingOp& o, const KernelArgs& a) {
        const ImageShape& in = o.src_shapes[0];
        const ImageShape& out = o.dst_shape;
        const std::size_t in_c = in.channels, out_c = out.channels;
        const std::size_t copied_c = std::min(in_c, out_c);
        // The result columns [x0, x1) whose source column x - left lies inside the source.
        const int x0 = std::clamp(o.left, 0, out.width);
        const int x1 = std::clamp(o.left + in.width, x0, out.width);
        const std::size_t out_row = static_cast<std::size_t>(out.width) * out_c;
#pragma omp parallel for schedule(static) if (out.elements() > (1 << 15))
        for (int n = 0; n < out.batch; ++n) {
          for (int y = 0; y < out.height; ++y) {
            float* d = a.dst + (static_cast<std::size_t>(n) * out.height + y) * out_row;
            const int sy = y - o.top;
            if (sy < 0 || sy >= in.height || x0 == x1) {
              std::fill(d, d + out_row, o.value);
              continue;
            }
            std::fill(d, d + x0 * out_c, o.value);
            const float* s =
                a.srcs[0] +
                ((static_cast<std::size_t>(n) * in.height + sy) * in.width + (x0 - o.left)) * in_c;
            if (in_c == out_c) {
              std::memcpy(d + x0 * out_c, s,
                          static_cast<std::size_t>(x1 - x0) * out_c * sizeof(float));
            } else {
              for (int x = x0; x < x1; ++x, s += in_c) {
                float* p = d + x * out_c;
                std::copy_n(s, copied_c, p);
                std::fill(p + copied_c, p + out_c, o.value);
              }
            }
            std::fill(d + x1 * out_c, d + out_row, o.value);
          }
        }
      });
}

}  // namespace cnngraph::detail::onednn
