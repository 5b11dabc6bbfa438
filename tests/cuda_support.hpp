// What the CUDA tests share: the skip without a GPU, and the precisions with their
// tolerances against the reference backend.
#pragma once

#include <gtest/gtest.h>

#include "cnngraph/cnngraph.hpp"

namespace cnngraph::testing {

#define REQUIRE_GPU()                                \
  if (Device::cuda_device_count() == 0)              \
  GTEST_SKIP() << "no CUDA GPU on this machine (or " \
                  "this build has no CUDA backend)"

struct PrecisionCase {
  Precision precision;
  const char* name;
  // Max |a - b| / (1 + |b|) against the double reference for sums of a few hundred terms
  // of values in [-1, 1]: f32 differs in summation order only; TF32 keeps 10 mantissa bits
  // of each product's inputs, fp16 10 bits with fp16 images between steps, bf16 7 bits.
  double tolerance;
};
inline const PrecisionCase kPrecisions[] = {{Precision::f32, "f32", 1e-4},
                                            {Precision::tf32_allowed, "tf32", 2e-2},
                                            {Precision::f16, "f16", 2e-2},
                                            {Precision::bf16, "bf16", 8e-2}};

inline GraphOptions options_for(Precision precision) {
  GraphOptions options;
  options.precision = precision;
  return options;
}

// In 16-bit precisions, the images rounded to that type (and back to f32), so that the
// reference computes with the values the device sees.
inline Image rounded_for(const Image& image, Precision precision) {
  if (precision == Precision::f16)
    return image.converted_to(DataType::f16).converted_to(DataType::f32);
  if (precision == Precision::bf16)
    return image.converted_to(DataType::bf16).converted_to(DataType::f32);
  return image;
}

}  // namespace cnngraph::testing
