// cuDNN's backward operations of a convolution (convolution_backward.cpp): the plans for a
// convolution's input and weight gradients and for the transposed convolution.
#pragma once

#include "backends/cuda/cuda_kernels.hpp"

namespace cnngraph::detail::cuda {

class Plan;
// cuDNN's backward-data operation for `forward` (dx from dy and the forward's weights),
// autotuned and cached like the forward; null when no engine takes it.
std::shared_ptr<Plan> backward_data_plan(const ConvolutionOp& forward, const GraphOptions& options,
                                         Context& context, const DeviceWeights& weights);
void run_backward_data(const Plan& plan, Context& context, const DeviceWeights& weights,
                       const void* diff_dst, void* diff_src, std::vector<void*>& pointers);
// cuDNN's backward-filter operation (dw from x and dy, dw in the storage type), likewise.
std::shared_ptr<Plan> backward_filter_plan(const ConvolutionOp& forward,
                                           const GraphOptions& options, Context& context);
void run_backward_filter(const Plan& plan, Context& context, const void* x, void* diff_weights,
                         const void* diff_dst, std::vector<void*>& pointers);

}  // namespace cnngraph::detail::cuda
