// The CUDA backend's training state between runs (training_buffers.cpp): the copies of a
// trained convolution's values and gradients that TrainingStyle::cpu makes, and the fused
// optimizer of TrainingStyle::device. The backend's DeviceExecution methods call these.
#pragma once

#include "backends/cuda/cuda_kernels.hpp"

namespace cnngraph::detail::cuda {

void download_gradients(TrainedWeights& parameters, Context& context);
void upload_weights(const TrainedWeights& parameters, Context& context);
void download_weights(const TrainedWeights& parameters, Context& context,
                      std::vector<float>& weights, std::vector<float>& bias);
std::unique_ptr<DeviceOptimizer> make_device_optimizer(std::vector<DeviceOptimizerEntry> entries,
                                                       Context& context);

}  // namespace cnngraph::detail::cuda
