// Binary (xnor) convolution on CUDA against the same-shape fp16 convolution through cuDNN
// (cnngraph's f16 graph: autotuned cuDNN plans, the same launch path), ResNet-18's 3x3
// layers at batch 1 and 64, in one run. The xnor graph runs in f16 storage too, so both
// read and write the same bytes; its kernel packs signs into 32-channel words and
// counts with __popc. Prints JSON lines with median milliseconds and the speed-up (fp16
// time / xnor time), and the geometric mean.
// Usage: binary_cuda [--seconds S]
#include <cmath>
#include <cnngraph/cnngraph.hpp>
#include <cstdio>
#include <iostream>
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
    if (a == "--seconds" && i + 1 < argc) seconds = std::stod(argv[++i]);
  }
  if (Device::cuda_device_count() == 0) {
    std::cout << "{\"skipped\": \"binary_cuda: no CUDA GPU on this machine\"}\n";
    return 0;
  }
  const Layer layers[] = {
      {"conv2_x", 64, 56}, {"conv3_x", 128, 28}, {"conv4_x", 256, 14}, {"conv5_x", 512, 7}};
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  double log_speedup = 0;
  int cases = 0;
  GraphOptions options;
  options.precision = Precision::f16;
  options.autotune = true;
  for (const int batch : {1, 64}) {
    for (const Layer& layer : layers) {
      const ConvolutionDescriptor d(3, 3, layer.channels, layer.channels);
      std::vector<float> w(d.weight_count()),
          pixels(static_cast<std::size_t>(batch) * layer.size * layer.size * layer.channels);
      for (float& v : w) v = uniform(rng);
      for (float& v : pixels) v = uniform(rng);
      auto source = std::make_shared<ArrayDataSource>(layer.name, d, w);
      const Image x =
          Image::from_floats({batch, layer.size, layer.size, layer.channels}, pixels, DataType::f16)
              .to(Device::cuda());
      auto input = std::make_shared<ImageNode>("x");
      auto f16 = std::make_shared<ConvolutionNode>(input, source);
      auto xnor =
          std::make_shared<BinaryConvolutionNode>(input, source, 1.0f, BinaryConvolutionType::xnor);
      f16->padding_policy = xnor->padding_policy = PaddingPolicy::same();
      Graph dense(Device::cuda(), f16->result_image(), true, options);
      Graph binary(Device::cuda(), xnor->result_image(), true, options);
      const double dense_ms = bench::median_ms([&] { dense.run({x}); }, seconds);
      const double binary_ms = bench::median_ms([&] { binary.run({x}); }, seconds);
      const double speedup = dense_ms / binary_ms;
      log_speedup += std::log(speedup);
      ++cases;
      std::printf(
          "{\"layer\": \"%s\", \"batch\": %d, \"cudnn_f16_ms\": %.4f, \"xnor_ms\": %.4f, "
          "\"speedup\": %.3f}\n",
          layer.name, batch, dense_ms, binary_ms, speedup);
      std::fflush(stdout);
    }
  }
  std::printf(
      "{\"summary\": \"binary_cuda\", \"cases\": %d, \"geomean_speedup_vs_cudnn_f16\": %.3f}\n",
      cases, std::exp(log_speedup / cases));
}
