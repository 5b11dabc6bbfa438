// The CPU popcount block alone (kernels/popcount_dot.hpp), on one thread: four windows against
// every output channel, for the window sizes and output counts of ResNet-18's 3x3 layers,
// with the weights in cache. Prints JSON lines with tera bit-products per second, the
// ceiling a binary convolution on this core can approach (the layers of bench/binary_cpu
// add the packing, the gathering of border windows and the epilogue).
// Build: g++ -std=c++20 -O3 -Isrc -Iinclude bench/probes/popcount_probe.cpp
//        src/kernels/popcount_dot.cpp -o /tmp/popcount_probe
// CNNGRAPH_POPCOUNT=avx512|popcnt|portable picks the variant, as for the library.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "kernels/popcount_dot.hpp"

using namespace cnngraph::detail;

int main() {
  const PopcountKernel kernel = select_popcount_kernel();
  std::mt19937_64 rng(1);
  struct Shape {
    const char* layer;
    std::size_t words, outputs;  // a 3x3 window of channels / 64 words a tap
  };
  for (const Shape s : {Shape{"conv2_x", 9, 64}, Shape{"conv3_x", 18, 128},
                        Shape{"conv4_x", 36, 256}, Shape{"conv5_x", 72, 512}}) {
    std::vector<std::uint64_t> weights(s.words * s.outputs), windows(4 * s.words);
    for (auto& w : weights) w = rng();
    for (auto& w : windows) w = rng();
    const std::uint64_t* a[4] = {windows.data(), windows.data() + s.words,
                                 windows.data() + 2 * s.words, windows.data() + 3 * s.words};
    std::vector<std::int32_t> counts(4 * s.outputs);
    const double products = 4.0 * s.words * s.outputs * 64;  // bit products a call
    const auto calls = static_cast<std::size_t>(4e9 / products);
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < calls; ++i)
      kernel.block(a, nullptr, weights.data(), s.words, s.outputs, BitOp::exclusive_or,
                   counts.data());
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf(
        "{\"probe\": \"popcount_block\", \"variant\": \"%s\", \"layer\": \"%s\", \"words\": %zu, "
        "\"outputs\": %zu, \"tera_bit_products_per_s\": %.3f, \"check\": %d}\n",
        kernel.name.c_str(), s.layer, s.words, s.outputs, calls * products / seconds / 1e12,
        counts[0]);
  }
}
