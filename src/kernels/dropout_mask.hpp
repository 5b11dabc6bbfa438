// The dropout mask as a pure function of (seed, batch, element): forward and gradient kernels
// of every backend compute the same mask without storing it.
#pragma once

#include <cstdint>

#include "ops/host_device.hpp"

namespace cnngraph::detail {

CNNGRAPH_HOST_DEVICE inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Whether element `index` of batch `batch` is kept.
CNNGRAPH_HOST_DEVICE inline bool dropout_keeps(std::uint64_t seed, std::uint64_t batch,
                                               std::uint64_t index, float keep_probability) {
  const std::uint64_t bits = splitmix64(splitmix64(seed ^ (batch * 0xd1b54a32d192ed03ull)) + index);
  const float uniform = static_cast<float>(bits >> 40) * (1.0f / 16777216.0f);  // [0, 1)
  return uniform < keep_probability;
}

}  // namespace cnngraph::detail
