// Reference element-wise kernels: neuron, addition and the broadcasting arithmetic (with its
// gradient), batch normalization, reshape.
#include <algorithm>
#include <cstring>
#include <vector>

#include "backends/reference/reference_backend.hpp"
#include "ops/arithmetic_math.hpp"
#include "ops/neuron_math.hpp"

namespace cnngraph::detail {

std::unique_ptr<Kernel> make_reference_neuron(const Op& op, const GraphOptions&) {
  return function_kernel<NeuronOp>(
      op, "reference:neuron", [](const NeuronOp& o, const KernelArgs& a) {
        const std::size_t count = o.dst_shape.elements();
        const int C = o.dst_shape.channels;
        for (std::size_t i = 0; i < count; ++i) {
          a.dst[i] = static_cast<float>(
              apply_neuron<double>(o.neuron, a.srcs[0][i], static_cast<int>(i % C)));
        }
      });
}

std::unique_ptr<Kernel> make_reference_fused_addition_relu(const Op& op, const GraphOptions&) {
  return function_kernel<AdditionOp>(
      op, "reference:add_relu", [](const AdditionOp& o, const KernelArgs& a) {
        const std::size_t count = o.dst_shape.elements();
        for (std::size_t i = 0; i < count; ++i) {
          const auto sum = static_cast<float>(static_cast<double>(a.srcs[0][i]) + a.srcs[1][i]);
          a.dst[i] = sum >= 0.0f ? sum : 0.0f * sum;  // relu as neuron_math.hpp writes it
        }
      });
}

std::unique_ptr<Kernel> make_reference_addition(const Op& op, const GraphOptions&) {
  return function_kernel<AdditionOp>(
      op, "reference:add", [](const AdditionOp& o, const KernelArgs& a) {
        const std::size_t count = o.dst_shape.elements();
        for (std::size_t i = 0; i < count; ++i) {
          a.dst[i] = static_cast<float>(static_cast<double>(a.srcs[0][i]) + a.srcs[1][i]);
        }
      });
}

std::unique_ptr<Kernel> make_reference_arithmetic(const Op& op, const GraphOptions&) {
  return function_kernel<ArithmeticOp>(
      op, "reference:arithmetic", [](const ArithmeticOp& o, const KernelArgs& a) {
        const BroadcastIndex ia = broadcast_index(o.src_shapes[0], o.dst_shape);
        const BroadcastIndex ib = broadcast_index(o.src_shapes[1], o.dst_shape);
        const std::size_t count = o.dst_shape.elements();
        for (std::size_t i = 0; i < count; ++i) {
          a.dst[i] = static_cast<float>(apply_arithmetic<double>(
              o.operation, a.srcs[0][source_offset(ia, i)], a.srcs[1][source_offset(ib, i)]));
        }
      });
}

std::unique_ptr<Kernel> make_reference_arithmetic_gradient(const Op& op, const GraphOptions&) {
  return function_kernel<ArithmeticGradientOp>(
      op, "reference:arithmetic_gradient", [](const ArithmeticGradientOp& o, const KernelArgs& a) {
        const ImageShape& result = o.src_shapes[0];
        const BroadcastIndex ia = broadcast_index(o.primary, result);
        const BroadcastIndex ib = broadcast_index(o.secondary, result);
        const BroadcastIndex& own = o.source_index == 0 ? ia : ib;
        const bool reads_values = a.srcs.size() > 1;
        std::vector<double> sum(o.dst_shape.elements(), 0.0);
        const std::size_t count = result.elements();
        for (std::size_t i = 0; i < count; ++i) {
          const double x = reads_values ? a.srcs[1][source_offset(ia, i)] : 0.0;
          const double y = reads_values ? a.srcs[2][source_offset(ib, i)] : 0.0;
          sum[source_offset(own, i)] +=
              arithmetic_gradient_term<double>(o.operation, o.source_index, a.srcs[0][i], x, y);
        }
        for (std::size_t i = 0; i < sum.size(); ++i) a.dst[i] = static_cast<float>(sum[i]);
      });
}

std::unique_ptr<Kernel> make_reference_batch_normalization(const Op& op, const GraphOptions&) {
  return function_kernel<BatchNormalizationOp>(
      op, "reference:batch_norm", [](const BatchNormalizationOp& o, const KernelArgs& a) {
        const std::size_t count = o.dst_shape.elements();
        const std::size_t C = o.dst_shape.channels;
        for (std::size_t i = 0; i < count; ++i) {
          a.dst[i] = static_cast<float>(static_cast<double>(a.srcs[0][i]) * o.scale[i % C] +
                                        o.shift[i % C]);
        }
      });
}

std::unique_ptr<Kernel> make_reference_reshape(const Op& op, const GraphOptions&) {
  return function_kernel<ReshapeOp>(
      op, "reference:copy", [](const ReshapeOp& o, const KernelArgs& a) {
        std::memcpy(a.dst, a.srcs[0], o.dst_shape.elements() * sizeof(float));
      });
}

std::unique_ptr<Kernel> make_reference_concatenation(const Op& op, const GraphOptions&) {
  return function_kernel<ConcatenationOp>(
      op, "reference:concat", [](const ConcatenationOp& o, const KernelArgs& a) {
        const std::size_t pixels =
            static_cast<std::size_t>(o.dst_shape.batch) * o.dst_shape.height * o.dst_shape.width;
        const std::size_t C = o.dst_shape.channels;
        std::size_t offset = 0;
        for (std::size_t s = 0; s < o.src_shapes.size(); ++s) {
          const std::size_t Cs = o.src_shapes[s].channels;
          for (std::size_t p = 0; p < pixels; ++p) {
            std::memcpy(a.dst + p * C + offset, a.srcs[s] + p * Cs, Cs * sizeof(float));
          }
          offset += Cs;
        }
      });
}

}  // namespace cnngraph::detail
