// Training steps on CUDA against PyTorch in the same run (bench/torch_train_cuda.py): a
// ResNet-50 step (forward, softmax cross-entropy loss, backward, SGD with momentum 0.9) at
// batch 128 in fp16 (f32 master weights) and in fp32 with TF32 allowed (PyTorch's default
// for convolutions), and a LeNet-style step (the examples' reference network: two 5x5
// convolutions, pooling, fully connected 1024 and 10) at batch 64.
//
// cnngraph trains with TrainingStyle::device: the whole step, optimizer included, is one
// recorded CUDA graph; the batch and its labels stay on the device. A step is timed
// through Graph::run (which waits for the step and reads the loss back). The cold start is
// the time from the Graph's construction (with autotuning) to the end of the first step.
// ResNet-18 and MobileNetV2 (examples/models) train the same way as ResNet-50.
// Usage: train_cuda [--model resnet50|resnet18|mobilenet_v2|lenet|all]
//                   [--precision f16|fp32_tf32|all] [--batch N (ImageNet models; 128)]
//                   [--seconds S] [--no-torch] [--torch-ways eager,compile]
//                   [--plan-cache FILE (GraphOptions::plan_cache_file: a second run with
//                    the file the first wrote measures the cold start with a warm cache)]
//        CNNGRAPH_PROFILE=1 train_cuda --no-torch --seconds 0 ... (per-step times, stderr)
#include <algorithm>
#include <chrono>
#include <cnngraph/cnngraph.hpp>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>

#include "models.hpp"
#include "reference_network.hpp"
#include "timing.hpp"

using namespace cnngraph;

namespace {

struct Setup {
  std::string model;
  Precision precision;
  int batch;
};

const char* label(Precision p) { return p == Precision::f16 ? "f16" : "fp32_tf32"; }

DataType storage(Precision p) { return p == Precision::f16 ? DataType::f16 : DataType::f32; }

// A batch of random images and random classes, on the device in the graph's storage type.
struct DeviceBatch {
  Image images;
  LossLabels labels;
};
DeviceBatch device_batch(const Setup& s, int size, int channels, int classes) {
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<float> values(static_cast<std::size_t>(s.batch) * size * size * channels);
  for (float& v : values) v = normal(rng);
  std::vector<int> picked(s.batch);
  for (int& c : picked) c = static_cast<int>(rng() % classes);
  const LossLabels host = LossLabels::from_classes(picked, classes);
  const ImageShape shape = host.labels().shape();
  const Image ones = Image::from_floats(shape, std::vector<float>(shape.elements(), 1.0f));
  const DataType type = storage(s.precision);
  return {Image::from_floats({s.batch, size, size, channels}, values, type).to(Device::cuda()),
          LossLabels(host.labels().converted_to(type).to(Device::cuda()),
                     ones.converted_to(type).to(Device::cuda()))};
}

struct Measured {
  double ms = 0, cold_ms = 0;
  double peak_mib = 0;  // device memory in use at most during the graph's life, batch included
  float first_loss = 0, last_loss = 0;
};

Measured measure(const Setup& s, double seconds, const std::string& plan_cache) {
  auto sgd = std::make_shared<SgdOptimizer>(OptimizerDescriptor{0.01f}, 0.9f);
  const bool lenet = s.model == "lenet";
  const models::Parameters parameters{models::random_tensors(0), sgd};
  const std::shared_ptr<ImageNode> logits =
      lenet ? examples::build_reference_network(examples::make_trainable_sources(1, sgd)).logits
      : s.model == "resnet18"     ? models::resnet18(parameters).logits
      : s.model == "mobilenet_v2" ? models::mobilenet_v2(parameters).logits
                                  : models::resnet50(parameters).logits;
  const DeviceBatch batch = lenet ? device_batch(s, 28, 1, 10) : device_batch(s, 224, 3, 1000);
  auto loss = std::make_shared<LossNode>(
      logits, LossDescriptor(LossType::softmax_cross_entropy, ReductionType::mean));
  const auto terminals = loss->training_graph();
  GraphOptions options;
  options.precision = s.precision;
  options.autotune = true;
  options.plan_cache_file = plan_cache;
  Measured m;
  Device::cuda().reset_peak_memory();
  const auto start = std::chrono::steady_clock::now();
  Graph graph(Device::cuda(), terminals, std::vector<bool>(terminals.size(), false), options);
  m.first_loss = graph.run({batch.images}, {batch.labels}).loss();
  m.cold_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  m.ms = bench::median_ms([&] { m.last_loss = graph.run({batch.images}, {batch.labels}).loss(); },
                          seconds);
  m.peak_mib = double(Device::cuda().memory_statistics().peak_bytes_in_use) / (1 << 20);
  return m;
}

struct Peer {
  double ms = 0, cold_s = 0, peak_mib = 0;
};

// model/precision/way -> the peer's figures
std::map<std::string, Peer> run_torch(const std::string& models, double seconds,
                                      const std::string& ways, int batch) {
  std::map<std::string, Peer> out;
  const std::string command = "python3 " + std::string(CNNGRAPH_BENCH_DIR) +
                              "/torch_train_cuda.py " + models + " " + std::to_string(seconds) +
                              " " + ways + " " + std::to_string(batch);
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return out;
  char line[512];
  while (std::fgets(line, sizeof line, pipe)) {
    std::fputs(line, stderr);  // the peer's own lines, as they come
    char model[32], precision[16], way[16];
    int batch = 0;
    double img_s = 0;
    Peer p;
    if (std::sscanf(line,
                    "{\"model\": \"%31[^\"]\", \"precision\": \"%15[^\"]\", \"batch\": %d, "
                    "\"way\": \"%15[^\"]\", \"torch_ms\": %lf, \"img_s\": %lf, \"cold_s\": %lf, "
                    "\"peak_mib\": %lf}",
                    model, precision, &batch, way, &p.ms, &img_s, &p.cold_s, &p.peak_mib) == 8) {
      out[std::string(model) + "/" + precision + "/" + way] = p;
    }
  }
  pclose(pipe);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model = "all", ways = "eager,compile", precision = "all";
  double seconds = 2.0;
  int batch = 128;  // the ImageNet models' batch (LeNet's is 64)
  std::string plan_cache;
  bool torch = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--model" && i + 1 < argc)
      model = argv[++i];
    else if (a == "--seconds" && i + 1 < argc)
      seconds = std::stod(argv[++i]);
    else if (a == "--precision" && i + 1 < argc)
      precision = argv[++i];
    else if (a == "--plan-cache" && i + 1 < argc)
      plan_cache = argv[++i];
    else if (a == "--no-torch")
      torch = false;
    else if (a == "--torch-ways" && i + 1 < argc)
      ways = argv[++i];
    else if (a == "--batch" && i + 1 < argc)
      batch = std::stoi(argv[++i]);
  }
  const std::vector<std::string> known = {"lenet", "resnet50", "resnet18", "mobilenet_v2"};
  if (model != "all" && std::find(known.begin(), known.end(), model) == known.end()) {
    std::fprintf(stderr, "train_cuda: unknown --model '%s'\n", model.c_str());
    return 2;
  }
  if (Device::cuda_device_count() == 0) {
    std::printf("{\"skipped\": \"no CUDA GPU on this machine\"}\n");
    return 0;
  }
  const std::string models = model == "all" ? "lenet,resnet50,resnet18,mobilenet_v2" : model;
  const auto peer = torch ? run_torch(models, seconds, ways, batch) : std::map<std::string, Peer>{};
  std::vector<Setup> setups;
  for (const std::string& name : known) {
    if (model != "all" && model != name) continue;
    if (name == "lenet") {
      setups.push_back({"lenet", Precision::tf32_allowed, 64});
      continue;
    }
    if (precision != "fp32_tf32") setups.push_back({name, Precision::f16, batch});
    if (precision != "f16") setups.push_back({name, Precision::tf32_allowed, batch});
  }
  for (const Setup& s : setups) {
    const Measured m = measure(s, seconds, plan_cache);
    std::printf(
        "{\"summary\": \"train_cuda\", \"model\": \"%s\", \"precision\": \"%s\", \"batch\": %d, "
        "\"cnngraph_ms\": %.3f, \"cnngraph_img_s\": %.0f, \"cold_ms\": %.0f, \"first_loss\": "
        "%.4f, \"last_loss\": %.4f, \"cnngraph_peak_mib\": %.0f",
        s.model.c_str(), label(s.precision), s.batch, m.ms, s.batch * 1000.0 / m.ms, m.cold_ms,
        m.first_loss, m.last_loss, m.peak_mib);
    double best = 0;
    for (const char* way : {"eager", "compile"}) {
      auto it = peer.find(s.model + "/" + label(s.precision) + "/" + way);
      if (it == peer.end()) continue;
      const Peer& p = it->second;
      best = best == 0 ? p.ms : std::min(best, p.ms);
      std::printf(
          ", \"torch_%s_ms\": %.3f, \"torch_%s_img_s\": %.0f, \"torch_%s_cold_s\": %.1f, "
          "\"torch_%s_peak_mib\": %.0f",
          way, p.ms, way, s.batch * 1000.0 / p.ms, way, p.cold_s, way, p.peak_mib);
    }
    if (best > 0) std::printf(", \"ratio_vs_best_torch\": %.3f", best / m.ms);
    std::printf("}\n");
    std::fflush(stdout);
  }
}
