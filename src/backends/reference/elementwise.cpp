// Reference element-wise kernels: neuron, addition, batch normalization, reshape.
#include <cstring>

#include "backends/reference/reference_backend.hpp"
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

std::unique_ptr<Kernel> make_reference_addition(const Op& op, const GraphOptions&) {
  return function_kernel<AdditionOp>(
      op, "reference:add", [](const AdditionOp& o, const KernelArgs& a) {
        const std::size_t count = o.dst_shape.elements();
        for (std::size_t i = 0; i < count; ++i) {
          a.dst[i] = static_cast<float>(static_cast<double>(a.srcs[0][i]) + a.srcs[1][i]);
        }
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
