// Launchers of kernels/binary_convolution.cu: binary convolution's weights on the device.
#pragma once

#include "backends/cuda/cuda_common.hpp"

namespace cnngraph::detail::cuda {

// Binary convolution's weights on the device.
struct BinaryWeights {
  const unsigned* bits = nullptr;     // [tap][word][output]: bit set where the weight is >= 0
  int words = 0;                      // 32-bit words per tap (group channels / 32, rounded up)
  const float* bias = nullptr;        // f32 per output channel
  const float* input_bias = nullptr;  // the terms, f32 on the device, or null
  const float* input_scale = nullptr;
  const float* output_bias = nullptr;
  const float* output_scale = nullptr;
};

}  // namespace cnngraph::detail::cuda
