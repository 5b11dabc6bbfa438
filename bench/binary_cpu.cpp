// Binary convolution on the CPU: xnor and binary_weights BinaryConvolutionNode against the
// same-shape f32 ConvolutionNode (oneDNN's brgconv/jit kernels, the fastest f32 path on this
// CPU), ResNet-18's 3x3 layers at batch 1 and 8, in one run. Prints JSON lines with median
// milliseconds and speed-ups (f32 time / binary time), and the geometric means.
// Usage: binary_cpu [--seconds S]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cnngraph/cnngraph.hpp>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "timing.hpp"

using namespace cnngraph;

namespace {

struct Layer {
  const char* name;
  int channels, size;
};

}  // namespace

int main(int argc, char** argv) {
  double seconds = 0.5;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--seconds" && i + 1 < argc) {
      seconds = std::stod(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: binary_cpu [--seconds S]\n");
      return 2;
    }
  }
  const Layer layers[] = {
      {"conv2_x", 64, 56}, {"conv3_x", 128, 28}, {"conv4_x", 256, 14}, {"conv5_x", 512, 7}};
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  double log_xnor = 0, log_weights = 0;
  int cases = 0;
  for (const int batch : {1, 8}) {
    for (const Layer& layer : layers) {
      const ConvolutionDescriptor d(3, 3, layer.channels, layer.channels);
      std::vector<float> w(d.weight_count()),
          pixels(static_cast<std::size_t>(batch) * layer.size * layer.size * layer.channels);
      for (float& v : w) v = uniform(rng);
      for (float& v : pixels) v = uniform(rng);
      auto source = std::make_shared<ArrayDataSource>(layer.name, d, w);
      const Image x = Image::from_floats({batch, layer.size, layer.size, layer.channels}, pixels);
      auto input = std::make_shared<ImageNode>("x");
      auto f32 = std::make_shared<ConvolutionNode>(input, source);
      auto xnor =
          std::make_shared<BinaryConvolutionNode>(input, source, 1.0f, BinaryConvolutionType::xnor);
      auto signs = std::make_shared<BinaryConvolutionNode>(input, source, 1.0f,
                                                           BinaryConvolutionType::binary_weights);
      xnor->padding_policy = signs->padding_policy = PaddingPolicy::same();
      Graph f32_graph(Device::cpu(), f32->result_image());
      Graph xnor_graph(Device::cpu(), xnor->result_image());
      Graph signs_graph(Device::cpu(), signs->result_image());
      const double f32_ms = bench::median_ms([&] { f32_graph.run({x}); }, seconds);
      const double xnor_ms = bench::median_ms([&] { xnor_graph.run({x}); }, seconds);
      const double signs_ms = bench::median_ms([&] { signs_graph.run({x}); }, seconds);
      const double gflop =
          2.0 * batch * layer.size * layer.size * layer.channels * layer.channels * 9 / 1e9;
      std::string kernel = xnor_graph.describe();
      const auto at = kernel.find("onednn:bitpacked_");
      kernel =
          at == std::string::npos ? "?" : kernel.substr(at, kernel.find_first_of(" \n)", at) - at);
      std::printf(
          "{\"case\": \"%s_b%d\", \"channels\": %d, \"size\": %d, \"f32_onednn_ms\": %.4f, "
          "\"f32_gflops\": %.1f, \"xnor_ms\": %.4f, \"xnor_speedup\": %.2f, "
          "\"binary_weights_ms\": %.4f, \"binary_weights_speedup\": %.2f, \"xnor_kernel\": "
          "\"%s\"}\n",
          layer.name, batch, layer.channels, layer.size, f32_ms, gflop / (f32_ms / 1e3), xnor_ms,
          f32_ms / xnor_ms, signs_ms, f32_ms / signs_ms, kernel.c_str());
      log_xnor += std::log(f32_ms / xnor_ms);
      log_weights += std::log(f32_ms / signs_ms);
      ++cases;
    }
  }
  std::printf(
      "{\"summary\": \"binary_cpu\", \"cases\": %d, \"geomean_xnor_speedup\": %.2f, "
      "\"geomean_binary_weights_speedup\": %.2f}\n",
      cases, std::exp(log_xnor / cases), std::exp(log_weights / cases));
  return 0;
}
