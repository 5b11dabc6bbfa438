// Comparing a network's logits with a peer's (PyTorch, ONNX Runtime): as a whole, not per
// element, since a logit near zero has no meaningful relative error.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

namespace cnngraph::testing {

// max |a - b| over max |b|.
inline double relative_to_largest(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0, largest = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::abs(double(a[i]) - double(b[i])));
    largest = std::max(largest, std::abs(double(b[i])));
  }
  return worst / std::max(largest, 1e-12);
}

}  // namespace cnngraph::testing
