// ResNet-50 (or MobileNetV2, EfficientNet-B0, ResNet-18, the binary ResNet-18 against
// PyTorch's float ResNet-18) inference on CUDA against PyTorch in the same run:
// images per second at several batch sizes in fp16 and fp32 (TF32 allowed on both sides), against
// PyTorch eager, eager replayed from a CUDA graph, and torch.compile(mode="reduce-
// overhead") (bench/torch_resnet50_cuda.py), plus cold starts.
//
// cnngraph is timed through Graph::run on a device-resident batch (autotuned plans, the
// recorded CUDA graph, the logits handed back as an image). Its cold start is measured in
// fresh processes (this program runs itself with --cold): from the Graph's construction
// (weights folded and uploaded, plans chosen, memory planned) to the first logits, once
// with an empty plan cache file (plans chosen by autotuning) and once with the file the
// first process wrote, and once with the default options (cuDNN's heuristic choices, no
// autotuning, no cache). The network's random weights are made before the clock starts.
// With --onnx FILE (a build with the ONNX importer), the same network imported from an ONNX
// export (bench/export_onnx_torchvision.py) is timed right after the built one, on the same
// batch: "onnx_vs_built" is the built graph's time over the imported one's.
// Usage: resnet50_cuda [--model resnet50|mobilenet_v2|efficientnet_b0|resnet18|binary_resnet18]
//                      [--batches 1,32,256] [--seconds S] [--no-torch]
//                      [--torch-ways eager,graphs,compile] [--onnx FILE]
//                      [--precisions f16,fp32_tf32] [--no-cold]
//        CNNGRAPH_PROFILE=1 resnet50_cuda --profile MODEL f16|fp32_tf32 BATCH (per-step times)
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cnngraph/cnngraph.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>

#include "models.hpp"
#include "timing.hpp"
#ifdef CNNGRAPH_BENCH_HAS_ONNX
#include <cnngraph/onnx.hpp>
#endif

using namespace cnngraph;

namespace {

struct Setup {
  std::string model = "resnet50";
  Precision precision = Precision::f16;
  int batch = 1;
};

const char* label(Precision p) { return p == Precision::f16 ? "f16" : "fp32_tf32"; }

models::Network build(const std::string& model) {
  if (model == "mobilenet_v2") return models::mobilenet_v2(models::random_tensors(0));
  if (model == "efficientnet_b0") return models::efficientnet_b0(models::random_tensors(0));
  if (model == "resnet18")
    return models::resnet18(models::Parameters{models::random_tensors(0), nullptr});
  if (model == "binary_resnet18") return models::binary_resnet18(models::random_tensors(0));
  return models::resnet50(models::random_tensors(0));
}

Image device_batch(const Setup& s) {
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<float> values(static_cast<std::size_t>(s.batch) * 224 * 224 * 3);
  for (float& v : values) v = normal(rng);
  const DataType type = s.precision == Precision::f16 ? DataType::f16 : DataType::f32;
  return Image::from_floats({s.batch, 224, 224, 3}, values, type).to(Device::cuda());
}

GraphOptions options_for(const Setup& s, const std::string& cache, bool autotune = true) {
  GraphOptions options;
  options.precision = s.precision;
  options.autotune = autotune;
  options.plan_cache_file = cache;
  return options;
}

// --cold: one graph in a fresh process, milliseconds from construction to the first logits.
double cold_start_ms(const Setup& s, const std::string& cache, bool autotune) {
  const models::Network net = build(s.model);
  const Image x = device_batch(s);
  const auto start = std::chrono::steady_clock::now();
  Graph graph(Device::cuda(), net.logits, true, options_for(s, cache, autotune));
  graph.run({x});
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

double child_cold_start_ms(const std::string& self, const Setup& s, const std::string& cache,
                           bool autotune = true) {
  const std::string command = self + " --cold " + s.model + " " + label(s.precision) + " " +
                              std::to_string(s.batch) + " " + cache + (autotune ? " 1" : " 0");
  FILE* pipe = popen(command.c_str(), "r");
  double ms = -1;
  if (!pipe) return ms;
  char line[256];
  while (std::fgets(line, sizeof line, pipe)) std::sscanf(line, "{\"cold_ms\": %lf}", &ms);
  pclose(pipe);
  return ms;
}

// (precision/batch/way) -> (ms per batch, cold seconds)
std::map<std::string, std::pair<double, double>> run_torch(const std::string& model,
                                                           const std::string& batches,
                                                           double seconds, const std::string& ways,
                                                           const std::string& precisions) {
  std::map<std::string, std::pair<double, double>> out;
  const std::string command = "python3 " + std::string(CNNGRAPH_BENCH_DIR) +
                              "/torch_resnet50_cuda.py " + model + " " + batches + " " +
                              std::to_string(seconds) + " " + ways + " " + precisions;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return out;
  char line[512];
  while (std::fgets(line, sizeof line, pipe)) {
    std::fputs(line, stderr);  // the peer's own lines, as they come
    char name[32], precision[16], way[16];
    int batch = 0;
    double ms = 0, img_s = 0, cold = 0;
    if (std::sscanf(line,
                    "{\"model\": \"%31[^\"]\", \"precision\": \"%15[^\"]\", \"batch\": %d, "
                    "\"way\": \"%15[^\"]\", \"torch_ms\": %lf, \"img_s\": %lf, \"cold_s\": %lf}",
                    name, precision, &batch, way, &ms, &img_s, &cold) == 7) {
      out[std::string(precision) + "/" + std::to_string(batch) + "/" + way] = {ms, cold};
    }
  }
  pclose(pipe);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (Device::cuda_device_count() == 0) {
    std::cout << "{\"skipped\": \"resnet50_cuda: no CUDA GPU on this machine\"}\n";
    return 0;
  }
  if (argc == 5 && std::string(argv[1]) == "--profile") {
    // With CNNGRAPH_PROFILE=1: three runs' per-step times (the first pays lazy loading).
    Setup s{argv[2], std::string(argv[3]) == "f16" ? Precision::f16 : Precision::tf32_allowed,
            std::atoi(argv[4])};
    const models::Network net = build(s.model);
    const Image x = device_batch(s);
    GraphOptions options = options_for(s, "");
    options.verbose = true;  // the kernels chosen and the autotuning's timings
    Graph graph(Device::cuda(), net.logits, true, options);
    for (int run = 0; run < 3; ++run) {
      std::fprintf(stderr, "run %d\n", run);
      graph.run({x});
    }
    return 0;
  }
  if (argc == 7 && std::string(argv[1]) == "--cold") {
    Setup s{argv[2], std::string(argv[3]) == "f16" ? Precision::f16 : Precision::tf32_allowed,
            std::atoi(argv[4])};
    std::printf("{\"cold_ms\": %.1f}\n",
                cold_start_ms(s, std::string(argv[5]) == "none" ? "" : argv[5],
                              std::string(argv[6]) == "1"));
    return 0;
  }
  std::string model = "resnet50", batches = "1,32,256", ways = "eager,graphs,compile", onnx_file;
  std::string precisions = "f16,fp32_tf32";
  double seconds = 1.0;
  bool torch = true, cold_starts = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--model" && i + 1 < argc)
      model = argv[++i];
    else if (a == "--batches" && i + 1 < argc)
      batches = argv[++i];
    else if (a == "--seconds" && i + 1 < argc)
      seconds = std::stod(argv[++i]);
    else if (a == "--no-torch")
      torch = false;
    else if (a == "--torch-ways" && i + 1 < argc)
      ways = argv[++i];
    else if (a == "--onnx" && i + 1 < argc)
      onnx_file = argv[++i];
    else if (a == "--precisions" && i + 1 < argc)
      precisions = argv[++i];
    else if (a == "--no-cold")  // the three cold starts per case skipped (-1 printed)
      cold_starts = false;
  }
#ifndef CNNGRAPH_BENCH_HAS_ONNX
  if (!onnx_file.empty()) {
    std::cerr << "--onnx: this build has no ONNX importer (libonnx-dev)\n";
    return 2;
  }
#endif
  std::vector<int> batch_sizes;
  std::stringstream list(batches);
  for (std::string item; std::getline(list, item, ',');) batch_sizes.push_back(std::stoi(item));
  // PyTorch has no binary ResNet-18: its peer is the float one.
  const std::string peer_model = model == "binary_resnet18" ? "resnet18" : model;
  const auto peer = torch ? run_torch(peer_model, batches, seconds, ways, precisions)
                          : std::map<std::string, std::pair<double, double>>{};
  const std::string cache_dir = "/tmp/cnngraph_bench_" + std::to_string(getpid());
  std::filesystem::create_directories(cache_dir);
  const models::Network net = build(model);
  for (Precision precision : {Precision::f16, Precision::tf32_allowed}) {
    if (precisions.find(label(precision)) == std::string::npos) continue;
    for (int batch : batch_sizes) {
      const Setup s{model, precision, batch};
      const std::string cache =
          cache_dir + "/" + label(precision) + std::to_string(batch) + ".json";
      std::remove(cache.c_str());
      const double cold = cold_starts ? child_cold_start_ms(argv[0], s, cache) : -1;
      const double cold_cached = cold_starts ? child_cold_start_ms(argv[0], s, cache) : -1;
      // Heuristic plans (no autotuning), no cache file: the default options' cold start.
      const double cold_heuristic =
          cold_starts ? child_cold_start_ms(argv[0], s, "none", false) : -1;
      const Image x = device_batch(s);
      Graph graph(Device::cuda(), net.logits, true, options_for(s, cache));
      const double ms = bench::median_ms([&] { graph.run({x}); }, seconds);
      std::printf(
          "{\"model\": \"%s\", \"precision\": \"%s\", \"batch\": %d, \"cnngraph_ms\": %.3f, "
          "\"cnngraph_img_s\": %.0f, \"cold_ms\": %.0f, \"cold_cached_ms\": %.0f, "
          "\"cold_heuristic_ms\": %.0f",
          model.c_str(), label(precision), batch, ms, batch * 1000.0 / ms, cold, cold_cached,
          cold_heuristic);
#ifdef CNNGRAPH_BENCH_HAS_ONNX
      if (!onnx_file.empty()) {
        onnx::ImportOptions import_options;
        import_options.batch = batch;
        const onnx::ImportedModel imported = onnx::import(onnx_file, import_options);
        Graph onnx_graph(Device::cuda(), imported.outputs.at(0), true, options_for(s, ""));
        const double onnx_ms = bench::median_ms([&] { onnx_graph.run({x}); }, seconds);
        std::printf(", \"onnx_ms\": %.3f, \"onnx_img_s\": %.0f, \"onnx_vs_built\": %.3f", onnx_ms,
                    batch * 1000.0 / onnx_ms, ms / onnx_ms);
      }
#endif
      for (const char* way : {"eager", "graphs", "compile"}) {
        auto it =
            peer.find(std::string(label(precision)) + "/" + std::to_string(batch) + "/" + way);
        if (it == peer.end()) continue;
        std::printf(", \"torch_%s_img_s\": %.0f, \"torch_%s_cold_s\": %.1f, \"ratio_vs_%s\": %.3f",
                    way, batch * 1000.0 / it->second.first, way, it->second.second, way,
                    it->second.first / ms);
      }
      std::printf("}\n");
      std::fflush(stdout);
    }
  }
  std::filesystem::remove_all(cache_dir);
}
