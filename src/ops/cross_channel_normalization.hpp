// The channel window of cross-channel normalization, shared by every backend's kernels.
#pragma once

#include <algorithm>

namespace cnngraph::detail {

struct ChannelWindow {
  int first, last;  // inclusive
};

// Channels summed for channel k of `channels`, with window size N: N / 2 before, (N - 1) / 2
// after, clipped to the image.
inline ChannelWindow normalization_window(int k, int N, int channels) {
  return {std::max(0, k - N / 2), std::min(channels - 1, k + (N - 1) / 2)};
}

// The channels whose windows hold channel j: the mirror image of normalization_window.
inline ChannelWindow normalization_readers(int j, int N, int channels) {
  return {std::max(0, j - (N - 1) / 2), std::min(channels - 1, j + N / 2)};
}

}  // namespace cnngraph::detail
