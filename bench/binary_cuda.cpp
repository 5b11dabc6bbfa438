// Binary (xnor) convolution on CUDA against the same-shape fp16 convolution through cuDNN
// (cnngraph's f16 graph: autotuned cuDNN plans, the same launch path), in one run:
// - per layer, ResNet-18's 3x3 layers at batch 1, 64 and 256, with fp16 images in and out:
//   the 1-bit tensor-core kernel and the CUDA-core popcount kernel (CNNGRAPH_CUDA_BINARY);
// - chains of four such layers, where the images between xnor layers are bit-packed (only
//   the first reads and the last writes fp16), per layer;
// - end to end: models::binary_resnet18 against models::resnet18, both fp16 on CUDA, with
//   each graph's peak intermediate bytes (describe()). PyTorch's torch.compile ResNet-18 is
//   in bench/resnet50_cuda --model resnet18 / binary_resnet18.
// Prints JSON lines with median milliseconds and speed-ups (fp16 time / xnor time), and the
// geometric means.
// Usage: binary_cuda [--seconds S] [--layers-only | --networks-only | --case LAYER:BATCH]
#include <cmath>
#include <cnngraph/cnngraph.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>
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

struct Geomean {
  double log_sum = 0;
  int count = 0;
  void add(double ratio) {
    log_sum += std::log(ratio);
    ++count;
  }
  double value() const { return count ? std::exp(log_sum / count) : 0.0; }
};

// describe()'s "memory: peak intermediate bytes N" (-1 when absent).
long long peak_intermediate_bytes(const Graph& graph) {
  const std::string text = graph.describe();
  const std::string key = "memory: peak intermediate bytes ";
  const auto at = text.find(key);
  return at == std::string::npos ? -1 : std::stoll(text.substr(at + key.size()));
}

GraphOptions f16_autotuned() {
  GraphOptions options;
  options.precision = Precision::f16;
  options.autotune = true;
  return options;
}

Image random_device_image(ImageShape shape, std::mt19937& rng) {
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> pixels(shape.elements());
  for (float& v : pixels) v = uniform(rng);
  return Image::from_floats(shape, pixels, DataType::f16).to(Device::cuda());
}

// `depth` same-padded 3x3 layers of `channels`, fp16 convolutions or xnor ones.
std::shared_ptr<ImageNode> chain(const std::shared_ptr<ImageNode>& x, int channels, int depth,
                                 bool xnor, std::mt19937& rng) {
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::shared_ptr<ImageNode> image = x;
  for (int i = 0; i < depth; ++i) {
    const ConvolutionDescriptor d(3, 3, channels, channels);
    std::vector<float> w(d.weight_count());
    for (float& v : w) v = uniform(rng);
    auto source = std::make_shared<ArrayDataSource>("w" + std::to_string(i), d, w);
    std::shared_ptr<WeightedNode> node;
    if (xnor) {
      node =
          std::make_shared<BinaryConvolutionNode>(image, source, 1.0f, BinaryConvolutionType::xnor);
    } else {
      node = std::make_shared<ConvolutionNode>(image, source);
    }
    node->padding_policy = PaddingPolicy::same();
    image = node->result_image();
  }
  return image;
}

// `only`: "LAYER:BATCH" (e.g. conv4_x:256) runs that case alone, for a profiler.
void layers(double seconds, const std::string& only) {
  const Layer all[] = {
      {"conv2_x", 64, 56}, {"conv3_x", 128, 28}, {"conv4_x", 256, 14}, {"conv5_x", 512, 7}};
  std::mt19937 rng(1);
  Geomean mma_large, chain_large;
  for (const int batch : {1, 64, 256}) {
    for (const Layer& layer : all) {
      if (!only.empty() && only != std::string(layer.name) + ":" + std::to_string(batch)) continue;
      const Image x = random_device_image({batch, layer.size, layer.size, layer.channels}, rng);
      auto input = std::make_shared<ImageNode>("x");
      Graph dense(Device::cuda(), chain(input, layer.channels, 1, false, rng), true,
                  f16_autotuned());
      const double dense_ms = bench::median_ms([&] { dense.run({x}); }, seconds);
      const auto xnor = chain(input, layer.channels, 1, true, rng);
      double kernel_ms[2] = {};
      for (int k = 0; k < 2; ++k) {
        ::setenv("CNNGRAPH_CUDA_BINARY", k == 0 ? "mma" : "popc", 1);
        Graph binary(Device::cuda(), xnor, true, f16_autotuned());
        kernel_ms[k] = bench::median_ms([&] { binary.run({x}); }, seconds);
      }
      ::unsetenv("CNNGRAPH_CUDA_BINARY");
      // Four layers, bits between the xnor ones.
      Graph dense4(Device::cuda(), chain(input, layer.channels, 4, false, rng), true,
                   f16_autotuned());
      Graph xnor4(Device::cuda(), chain(input, layer.channels, 4, true, rng), true,
                  f16_autotuned());
      const double dense4_ms = bench::median_ms([&] { dense4.run({x}); }, seconds) / 4;
      const double xnor4_ms = bench::median_ms([&] { xnor4.run({x}); }, seconds) / 4;
      if (batch >= 64) {
        mma_large.add(dense_ms / kernel_ms[0]);
        chain_large.add(dense4_ms / xnor4_ms);
      }
      std::printf(
          "{\"layer\": \"%s\", \"batch\": %d, \"cudnn_f16_ms\": %.4f, \"xnor_mma_ms\": %.4f, "
          "\"xnor_popc_ms\": %.4f, \"mma_speedup\": %.3f, \"popc_speedup\": %.3f, "
          "\"chain4_cudnn_f16_ms_per_layer\": %.4f, \"chain4_xnor_bits_ms_per_layer\": %.4f, "
          "\"chain4_speedup\": %.3f}\n",
          layer.name, batch, dense_ms, kernel_ms[0], kernel_ms[1], dense_ms / kernel_ms[0],
          dense_ms / kernel_ms[1], dense4_ms, xnor4_ms, dense4_ms / xnor4_ms);
      std::fflush(stdout);
    }
  }
  std::printf(
      "{\"summary\": \"binary_cuda layers\", \"batches\": \"64,256\", "
      "\"geomean_mma_speedup_vs_cudnn_f16\": %.3f, \"geomean_chain4_speedup_vs_cudnn_f16\": "
      "%.3f}\n",
      mma_large.value(), chain_large.value());
}

void networks(double seconds) {
  const models::Network binary = models::binary_resnet18(models::random_tensors(1), 224, 1000);
  const models::Network f16 =
      models::resnet18(models::Parameters{models::random_tensors(1), nullptr});
  Graph binary_graph(Device::cuda(), binary.logits, true, f16_autotuned());
  Graph f16_graph(Device::cuda(), f16.logits, true, f16_autotuned());
  std::mt19937 rng(2);
  for (const int batch : {1, 64, 256}) {
    const Image x = random_device_image({batch, 224, 224, 3}, rng);
    const double f16_ms = bench::median_ms([&] { f16_graph.run({x}); }, seconds);
    const double binary_ms = bench::median_ms([&] { binary_graph.run({x}); }, seconds);
    std::printf(
        "{\"case\": \"resnet18_b%d\", \"f16_ms\": %.3f, \"binary_ms\": %.3f, "
        "\"binary_img_s\": %.0f, \"binary_speedup\": %.3f, \"f16_peak_intermediate_bytes\": "
        "%lld, \"binary_peak_intermediate_bytes\": %lld}\n",
        batch, f16_ms, binary_ms, batch * 1000.0 / binary_ms, f16_ms / binary_ms,
        peak_intermediate_bytes(f16_graph), peak_intermediate_bytes(binary_graph));
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 0.5;
  bool layers_part = true, networks_part = true;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--seconds" && i + 1 < argc) {
      seconds = std::stod(argv[++i]);
    } else if (a == "--case" && i + 1 < argc) {
      only = argv[++i];
      networks_part = false;
    } else if (a == "--layers-only") {
      networks_part = false;
    } else if (a == "--networks-only") {
      layers_part = false;
    } else {
      std::fprintf(stderr,
                   "usage: binary_cuda [--seconds S] [--layers-only | --networks-only | "
                   "--case LAYER:BATCH]\n");
      return 2;
    }
  }
  if (Device::cuda_device_count() == 0) {
    std::cout << "{\"skipped\": \"binary_cuda: no CUDA GPU on this machine\"}\n";
    return 0;
  }
  if (layers_part) layers(seconds, only);
  if (networks_part) networks(seconds);
}
