// The reference backend: plain loops with double accumulation, written to be obviously
// right. Its kernels are also the last candidates in the fast backends' tables.
#pragma once

#include <memory>
#include <vector>

#include "backends/backend.hpp"

namespace cnngraph::detail {

std::unique_ptr<Backend> make_reference_backend();

std::unique_ptr<Kernel> make_reference_convolution(const Op& op, const GraphOptions& options);
std::unique_ptr<Kernel> make_reference_neuron(const Op& op, const GraphOptions& options);
std::unique_ptr<Kernel> make_reference_pooling(const Op& op, const GraphOptions& options);
std::unique_ptr<Kernel> make_reference_addition(const Op& op, const GraphOptions& options);
std::unique_ptr<Kernel> make_reference_arithmetic(const Op& op, const GraphOptions& options);
std::unique_ptr<Kernel> make_reference_arithmetic_gradient(const Op& op,
                                                           const GraphOptions& options);
std::unique_ptr<Kernel> make_reference_concatenation(const Op& op, const GraphOptions& options);
std::unique_ptr<Kernel> make_reference_softmax(const Op& op, const GraphOptions& options);
std::unique_ptr<Kernel> make_reference_batch_normalization(const Op& op,
                                                           const GraphOptions& options);
std::unique_ptr<Kernel> make_reference_reshape(const Op& op, const GraphOptions& options);
std::unique_ptr<Kernel> make_reference_padding(const Op& op, const GraphOptions& options);

// Training kernels.
std::unique_ptr<Kernel> make_reference_convolution_gradient(const Op& op,
                                                            const GraphOptions& options);
std::unique_ptr<Kernel> make_reference_neuron_gradient(const Op& op, const GraphOptions& options);
std::unique_ptr<Kernel> make_reference_pooling_gradient(const Op& op, const GraphOptions& options);
// Training fusion (op.hpp's fused kinds): the unfused formulas in one loop.
std::unique_ptr<Kernel> make_reference_fused_batch_normalization_relu(const Op& op,
                                                                      const GraphOptions& options);
std::unique_ptr<Kernel> make_reference_fused_relu_batch_normalization_gradient(
    const Op& op, const GraphOptions& options);
std::unique_ptr<Kernel> make_reference_fused_addition_relu(const Op& op,
                                                           const GraphOptions& options);
std::unique_ptr<Kernel> make_reference_fused_addition_relu_gradient(const Op& op,
                                                                    const GraphOptions& options);
std::unique_ptr<Kernel> make_reference_fused_max_pooling_relu_gradient(const Op& op,
                                                                       const GraphOptions& options);
std::unique_ptr<Kernel> make_reference_fused_batch_normalization_addition_relu(
    const Op& op, const GraphOptions& options);
std::unique_ptr<Kernel> make_reference_softmax_gradient(const Op& op, const GraphOptions& options);
std::unique_ptr<Kernel> make_reference_channel_slice(const Op& op, const GraphOptions& options);
std::unique_ptr<Kernel> make_reference_dropout(const Op& op, const GraphOptions& options);
std::unique_ptr<Kernel> make_reference_loss(const Op& op, const GraphOptions& options);
std::unique_ptr<Kernel> make_reference_binary_convolution(const Op& op,
                                                          const GraphOptions& options);
std::unique_ptr<Kernel> make_reference_binary_convolution_gradient(const Op& op,
                                                                   const GraphOptions& options);
std::unique_ptr<Kernel> make_reference_cross_channel_normalization(const Op& op,
                                                                   const GraphOptions& options);
std::unique_ptr<Kernel> make_reference_cross_channel_normalization_gradient(
    const Op& op, const GraphOptions& options);
std::unique_ptr<Kernel> make_reference_batch_normalization_training(const Op& op,
                                                                    const GraphOptions& options);
std::unique_ptr<Kernel> make_reference_batch_normalization_gradient(const Op& op,
                                                                    const GraphOptions& options);

// A transposed convolution (and its gradient) on a backend without a kernel of its own for
// it: composites of the kernels `compile` picks for the adjoint convolution ops.
using CompileFunction = std::unique_ptr<Kernel> (*)(const Op& op, const GraphOptions& options);
std::unique_ptr<Kernel> make_composite_convolution_transpose(const Op& op,
                                                             const GraphOptions& options,
                                                             CompileFunction compile);
std::unique_ptr<Kernel> make_composite_convolution_transpose_gradient(const Op& op,
                                                                      const GraphOptions& options,
                                                                      CompileFunction compile);

// The reference backend's table, for the dispatch test.
struct DispatchTable;
DispatchTable reference_dispatch_table();

// Writes the gradients with respect to the prepared (folded) weights into `parameters`,
// scaled back to the data source's own weights where a batch norm was folded in.
void store_weight_gradients(TrainedWeights& parameters, const std::vector<double>& diff_weights,
                            const std::vector<double>& diff_bias);

// The inverse of sub_pixel_shuffle: `dst` (n, h*s, w*s, c) back into `conv` (n, h, w, c*s*s).
void sub_pixel_unshuffle(const float* dst, const ImageShape& conv_shape, int s, SubPixelOrder order,
                         float* conv);

// Rearranges `conv` (n, h, w, c*s*s) into `dst` (n, h*s, w*s, c):
// dst[y*s+i][x*s+j][c] = conv[y][x][sub_pixel_source_channel(order, c, i, j, s, c)].
void sub_pixel_shuffle(const float* conv, const ImageShape& conv_shape, int s, SubPixelOrder order,
                       float* dst);

}  // namespace cnngraph::detail
