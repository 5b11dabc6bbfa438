// Training throughput on the CPU: the reference network (examples/reference_network.hpp;
// Adam, dropout 0.5, softmax cross-entropy, batch 64) with cnngraph on Device::cpu() against
// PyTorch CPU (2 threads, bench/torch_train_cpu.py run as a child process in the same run),
// then inference at batch 1000. Random data of the Fashion-MNIST shape: throughput does not
// depend on the pixel values. Usage: train_cpu [--steps N] [--no-torch]
#include <chrono>
#include <cnngraph/cnngraph.hpp>
#include <cstdio>
#include <random>
#include <string>

#include "reference_network.hpp"

using namespace cnngraph;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

Image random_batch(int n, std::mt19937& rng) {
  std::uniform_real_distribution<float> pixel(0.0f, 1.0f);
  std::vector<float> values(static_cast<std::size_t>(n) * 28 * 28);
  for (float& v : values) v = pixel(rng);
  return Image::from_floats({n, 28, 28, 1}, values);
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 200, batch = 64, inference_batches = 10;
  bool torch = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--steps" && i + 1 < argc)
      steps = std::stoi(argv[++i]);
    else if (a == "--no-torch")
      torch = false;
    else {
      std::fprintf(stderr, "usage: train_cpu [--steps N] [--no-torch]\n");
      return 2;
    }
  }
  std::mt19937 rng(1);
  const auto sources = examples::make_trainable_sources(1, std::make_shared<AdamOptimizer>());
  const auto net = examples::build_reference_network(sources, 0.5f);
  LossDescriptor loss_descriptor(LossType::softmax_cross_entropy, ReductionType::sum);
  loss_descriptor.weight = 1.0f / batch;
  auto loss = std::make_shared<LossNode>(net.logits, loss_descriptor);
  const auto terminals = loss->training_graph();
  Graph training(Device::cpu(), terminals, std::vector<bool>(terminals.size(), false));
  const Image images = random_batch(batch, rng);
  std::vector<int> classes(batch);
  for (int& c : classes) c = static_cast<int>(rng() % 10);
  const LossLabels labels = LossLabels::from_classes(classes, 10);

  auto start = std::chrono::steady_clock::now();
  training.run({images}, {labels});
  const double cold_ms = seconds_since(start) * 1e3;
  start = std::chrono::steady_clock::now();
  for (int s = 0; s < steps; ++s) training.run({images}, {labels});
  const double train_img_s = steps * batch / seconds_since(start);

  const auto inference_net = examples::build_reference_network(sources);
  Graph inference(Device::cpu(), inference_net.probabilities);
  const Image inference_images = random_batch(1000, rng);
  inference.run({inference_images});
  start = std::chrono::steady_clock::now();
  for (int b = 0; b < inference_batches; ++b) inference.run({inference_images});
  const double inference_img_s = inference_batches * 1000 / seconds_since(start);

  double torch_train = 0, torch_inference = 0;
  if (torch) {
    const std::string command = "/usr/bin/python3 " + std::string(CNNGRAPH_BENCH_DIR) +
                                "/torch_train_cpu.py " + std::to_string(steps) + " " +
                                std::to_string(batch) + " " + std::to_string(inference_batches);
    if (FILE* pipe = popen(command.c_str(), "r")) {
      char line[512];
      while (std::fgets(line, sizeof line, pipe)) {
        std::sscanf(line, "{\"torch_train_img_s\": %lf, \"torch_inference_img_s\": %lf}",
                    &torch_train, &torch_inference);
      }
      pclose(pipe);
    }
    if (torch_train <= 0) std::fprintf(stderr, "PyTorch peer failed (python3-torch installed?)\n");
  }
  std::printf(
      "{\"case\": \"train_b%d_adam\", \"steps\": %d, \"cnngraph_img_s\": %.1f, "
      "\"torch_img_s\": %.1f, \"ratio\": %.3f, \"cnngraph_first_step_ms\": %.1f}\n",
      batch, steps, train_img_s, torch_train, torch_train > 0 ? train_img_s / torch_train : 0.0,
      cold_ms);
  std::printf(
      "{\"case\": \"inference_b1000\", \"cnngraph_img_s\": %.1f, \"torch_img_s\": %.1f, "
      "\"ratio\": %.3f}\n",
      inference_img_s, torch_inference,
      torch_inference > 0 ? inference_img_s / torch_inference : 0.0);
  return 0;
}
