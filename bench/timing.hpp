// Timing shared by the benchmark programs: a warm-up (the first call pays plan choice,
// workspace and weight upload, reported apart), then the median of repeated runs.
#pragma once

#include <algorithm>
#include <chrono>
#include <vector>

namespace bench {

// Median milliseconds of fn() over at least 3 runs and `seconds` of wall time, after a warm-up.
template <typename Fn>
double median_ms(Fn&& fn, double seconds) {
  fn();
  std::vector<double> times;
  const auto start = std::chrono::steady_clock::now();
  while (times.size() < 3 ||
         std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() <
             seconds) {
    const auto t = std::chrono::steady_clock::now();
    fn();
    times.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count());
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

}  // namespace bench
