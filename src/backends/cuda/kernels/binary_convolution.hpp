// Binary convolution's device-side data: the weights of the CUDA-core popcount kernel, and
// the problem the tensor-core kernel (binary_convolution_mma.cu) takes.
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

// An xnor or and convolution of one group for the tensor-core kernel. The source is
// bit-packed as BitPacking (ops/op.hpp) says: `words` 32-bit words a pixel, two per 64
// channels. Sizes fit 32-bit index math.
struct BinaryMmaProblem {
  int N = 0, H = 0, W = 0, C = 0, P = 0, Q = 0, K = 0, R = 0, S = 0;
  int stride_y = 1, stride_x = 1, pad_y = 0, pad_x = 0, dilation_y = 1, dilation_x = 1;
  int words = 0;    // per source pixel
  int k_words = 0;  // per output channel in `weights`: R * S * words, rounded up to 8
  bool xnor = true;
  float scale_value = 1.0f;
  const unsigned* src = nullptr;      // [pixel][words]
  const unsigned* weights = nullptr;  // [output][k_words], tap-major like the source's rows
  const int* tap_ones = nullptr;      // [output][tap]: set bits of each tap's weight words
  const int* weight_ones = nullptr;   // [output]: set bits over every tap
  const float* bias = nullptr;        // f32 per output channel
  const float* output_scale = nullptr;
  const float* output_bias = nullptr;
  // The result as bits for a consumer that binarizes it (BitPacking): its input terms
  // (null: 0 and 1), its comparison, and `result_words` 32-bit words a pixel.
  bool packed_result = false;
  bool next_strict = false;
  const float* next_input_bias = nullptr;
  const float* next_input_scale = nullptr;
  int result_words = 0;
  void* dst = nullptr;      // [pixel][K] of the storage type, or [pixel][result_words] bits
  int multiprocessors = 1;  // the device's: the launch makes about one wave of blocks
};

void binary_convolution_mma(DataType storage, const BinaryMmaProblem& problem, cudaStream_t stream);

}  // namespace cnngraph::detail::cuda
