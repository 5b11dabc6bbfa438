// Binary convolution on the CPU: xnor and binary_weights BinaryConvolutionNode against the
// same-shape f32 ConvolutionNode (oneDNN's brgconv/jit kernels, the fastest f32 path on this
// CPU), ResNet-18's 3x3 layers at batch 1 and 8, in one run. Prints JSON lines with median
// milliseconds and speed-ups (f32 time / binary time), and the geometric means. Then end to
// end: models::binary_resnet18 against models::resnet18 in f32 (both on the oneDNN `cpu`
// device, random_tensors weights, 224 x 224, inference) at batch 1 and 8, with each graph's
// peak intermediate bytes from describe().
// Usage: binary_cpu [--seconds S] [--layers-only | --networks-only]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cnngraph/cnngraph.hpp>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "models.hpp"
#include "timing.hpp"

using namespace cnngraph;

namespace {

struct Layer {
  const char* name;
  int channels, size;
};

// describe()'s "memory: peak intermediate bytes N" (-1 when absent).
long long peak_intermediate_bytes(const Graph& graph) {
  const std::string text = graph.describe();
  const std::string key = "memory: peak intermediate bytes ";
  const auto at = text.find(key);
  return at == std::string::npos ? -1 : std::stoll(text.substr(at + key.size()));
}

void networks(double seconds) {
  const models::Network binary = models::binary_resnet18(models::random_tensors(1), 224, 1000);
  const models::Network f32 =
      models::resnet18(models::Parameters{models::random_tensors(1), nullptr});
  Graph binary_graph(Device::cpu(), binary.logits);
  Graph f32_graph(Device::cpu(), f32.logits);
  std::mt19937 rng(2);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const int batch : {1, 8}) {
    std::vector<float> pixels(static_cast<std::size_t>(batch) * 224 * 224 * 3);
    for (float& v : pixels) v = normal(rng);
    const Image x = Image::from_floats({batch, 224, 224, 3}, pixels);
    const double f32_ms = bench::median_ms([&] { f32_graph.run({x}); }, seconds);
    const double binary_ms = bench::median_ms([&] { binary_graph.run({x}); }, seconds);
    std::printf(
        "{\"case\": \"resnet18_b%d\", \"f32_onednn_ms\": %.3f, \"binary_ms\": %.3f, "
        "\"binary_speedup\": %.2f, \"f32_peak_intermediate_bytes\": %lld, "
        "\"binary_peak_intermediate_bytes\": %lld}\n",
        batch, f32_ms, binary_ms, f32_ms / binary_ms, peak_intermediate_bytes(f32_graph),
        peak_intermediate_bytes(binary_graph));
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 0.5;
  bool layers_part = true, networks_part = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--seconds" && i + 1 < argc) {
      seconds = std::stod(argv[++i]);
    } else if (a == "--layers-only") {
      networks_part = false;
    } else if (a == "--networks-only") {
      layers_part = false;
    } else {
      std::fprintf(stderr, "usage: binary_cpu [--seconds S] [--layers-only | --networks-only]\n");
      return 2;
    }
  }
  if (!layers_part) {
    networks(seconds);
    return 0;
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
  std::fflush(stdout);
  if (networks_part) networks(seconds);
  return 0;
}
