// ONNX models on the CPU: cnngraph (the model imported, run on Device::cpu()) against ONNX
// Runtime's CPU provider (bench/ort_cpu.py, a child process with the same thread count, run
// first, on the same files and the same inputs). One JSON line per model and batch: ms and
// images/s of both, the ratio (ORT's time over ours: above 1 means cnngraph is faster), the
// import, compile and first-run times, and top-1 agreement with ORT's f32 outputs; then the
// geometric mean and the lowest ratio.
//
// The models are bench/make_onnx_models.py's (written into --models DIR when absent):
// ResNet-50, MobileNetV2, EfficientNet-B0 and the reference network.
// Usage: onnx_cpu [--models DIR] [--batches 1,32] [--precision f32|bf16] [--seconds S]
//                 [--threads T] [--python PATH] [--no-peer]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cnngraph/cnngraph.hpp>
#include <cnngraph/onnx.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "timing.hpp"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

struct Peer {
  double ms = 0, first_ms = 0, create_ms = 0;
  std::vector<int> top1;
};

std::vector<int> parse_ints(const std::string& list) {
  std::vector<int> out;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(std::stoi(item));
  return out;
}

std::string input_path(const fs::path& dir, const std::string& model, int batch) {
  return (dir / (model + "_b" + std::to_string(batch) + ".input.f32")).string();
}

// The peer's JSON lines, keyed by "model/batch". The fields are printed by ort_cpu.py in a
// fixed form, so a scan for each key is enough.
double number_after(const std::string& line, const std::string& key) {
  const auto at = line.find("\"" + key + "\": ");
  return at == std::string::npos ? -1 : std::atof(line.c_str() + at + key.size() + 4);
}

std::map<std::string, Peer> run_peer(const std::string& command) {
  std::map<std::string, Peer> result;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return result;
  char buffer[1 << 14];
  while (std::fgets(buffer, sizeof buffer, pipe)) {
    const std::string line = buffer;
    const auto model_at = line.find("\"model\": \"");
    if (model_at == std::string::npos) continue;
    const auto start = model_at + 10;
    std::string model = line.substr(start, line.find('"', start) - start);
    model = model.substr(0, model.rfind(".onnx"));
    Peer peer;
    peer.ms = number_after(line, "ort_ms");
    peer.first_ms = number_after(line, "ort_first_ms");
    peer.create_ms = number_after(line, "ort_create_ms");
    const auto top = line.find("\"ort_top1\": [");
    if (top != std::string::npos)
      peer.top1 = parse_ints(line.substr(top + 13, line.find(']', top) - top - 13));
    result[model + "/" + std::to_string(static_cast<int>(number_after(line, "batch")))] = peer;
  }
  pclose(pipe);
  return result;
}

std::vector<int> top1_of(const std::vector<float>& logits, int batch) {
  const std::size_t classes = logits.size() / static_cast<std::size_t>(batch);
  std::vector<int> top;
  for (int n = 0; n < batch; ++n) {
    const auto first = logits.begin() + static_cast<std::ptrdiff_t>(n * classes);
    top.push_back(static_cast<int>(
        std::max_element(first, first + static_cast<std::ptrdiff_t>(classes)) - first));
  }
  return top;
}

}  // namespace

int main(int argc, char** argv) {
  fs::path dir = "onnx-bench-models";
  std::string batches_text = "1,32", precision_text = "f32",
              python = "/opt/cnngraph-bench/bin/python3";
  double seconds = 2.0;
  int threads = 2;
  bool peer = true;
  std::vector<std::string> names{"resnet50", "mobilenet_v2", "efficientnet_b0", "reference"};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--models" && has_value)
      dir = argv[++i];
    else if (a == "--batches" && has_value)
      batches_text = argv[++i];
    else if (a == "--precision" && has_value)
      precision_text = argv[++i];
    else if (a == "--seconds" && has_value)
      seconds = std::stod(argv[++i]);
    else if (a == "--threads" && has_value)
      threads = std::stoi(argv[++i]);
    else if (a == "--python" && has_value)
      python = argv[++i];
    else if (a == "--only" && has_value) {
      names.clear();
      std::stringstream in(argv[++i]);
      for (std::string item; std::getline(in, item, ',');) names.push_back(item);
    } else if (a == "--no-peer")
      peer = false;
    else {
      std::cerr << "usage: onnx_cpu [--models DIR] [--only a,b] [--batches 1,32] "
                   "[--precision f32|bf16] [--seconds S] [--threads T] [--python PATH] "
                   "[--no-peer]\n";
      return 2;
    }
  }
  cnngraph::GraphOptions options;
  if (precision_text == "bf16")
    options.precision = cnngraph::Precision::bf16;
  else if (precision_text != "f32") {
    std::cerr << "--precision: f32 or bf16\n";
    return 2;
  }
  const std::vector<int> batches = parse_ints(batches_text);
  fs::create_directories(dir);
  bool missing = false;
  for (const auto& name : names) missing = missing || !fs::exists(dir / (name + ".onnx"));
  if (missing) {
    std::string list;
    for (const auto& name : names) list += (list.empty() ? "" : ",") + name;
    const std::string command = "/usr/bin/python3 " + std::string(CNNGRAPH_BENCH_DIR) +
                                "/make_onnx_models.py " + dir.string() + " --models " + list;
    std::cerr << "writing the models: " << command << "\n";
    if (std::system(command.c_str()) != 0) {
      std::cerr << "make_onnx_models.py failed (needs python3-onnx and python3-numpy)\n";
      return 1;
    }
  }

  // The inputs, seeded, written for the peer to read, so both run the same images.
  std::map<std::string, std::vector<float>> inputs;
  std::map<std::string, cnngraph::ImageShape> input_shapes;
  std::mt19937 rng(0);
  std::normal_distribution<float> normal;
  for (const auto& name : names) {
    cnngraph::onnx::ImportOptions import_options;
    import_options.batch = 1;
    const auto probe = cnngraph::onnx::import(dir / (name + ".onnx"), import_options);
    for (int batch : batches) {
      cnngraph::ImageShape shape = probe.input_shapes.at(0);
      shape.batch = batch;
      std::vector<float> x(static_cast<std::size_t>(batch) * shape.height * shape.width *
                           shape.channels);
      for (float& v : x) v = normal(rng);
      std::ofstream(input_path(dir, name, batch), std::ios::binary)
          .write(reinterpret_cast<const char*>(x.data()),
                 static_cast<std::streamsize>(x.size() * sizeof(float)));
      inputs[name + "/" + std::to_string(batch)] = std::move(x);
      input_shapes[name + "/" + std::to_string(batch)] = shape;
    }
  }

  std::map<std::string, Peer> peers;
  if (peer) {
    std::string command = python + " " + std::string(CNNGRAPH_BENCH_DIR) + "/ort_cpu.py" +
                          " --threads " + std::to_string(threads) + " --seconds " +
                          std::to_string(seconds) + " --batches " + batches_text + " --inputs " +
                          dir.string();
    for (const auto& name : names) command += " " + (dir / (name + ".onnx")).string();
    std::cerr << "running the ONNX Runtime peer first (" << threads << " threads)...\n";
    peers = run_peer(command);
    if (peers.empty())
      std::cerr << "ONNX Runtime peer unavailable (tools/setup --bench installs it in "
                   "/opt/cnngraph-bench)\n";
  }

  double log_ratio = 0, lowest = 1e9;
  int rated = 0;
  for (const auto& name : names) {
    for (int batch : batches) {
      const std::string key = name + "/" + std::to_string(batch);
      auto start = Clock::now();
      cnngraph::onnx::ImportOptions import_options;
      import_options.batch = batch;
      const auto model = cnngraph::onnx::import(dir / (name + ".onnx"), import_options);
      const double import_ms = ms_since(start);
      start = Clock::now();
      cnngraph::Graph graph(cnngraph::Device::cpu(), model.outputs.at(0), true, options);
      const double compile_ms = ms_since(start);
      const cnngraph::Image x = cnngraph::Image::from_nchw(input_shapes.at(key), inputs.at(key));
      start = Clock::now();
      const cnngraph::Image first = graph.run({x})[0];
      const double first_ms = ms_since(start);
      const double ms = bench::median_ms([&] { graph.run({x}); }, seconds);
      const auto top1 = top1_of(first.converted_to(cnngraph::DataType::f32).to_floats(), batch);
      std::printf(
          "{\"model\": \"%s\", \"batch\": %d, \"precision\": \"%s\", \"ms\": %.2f, "
          "\"img_s\": %.1f, \"import_ms\": %.1f, \"compile_ms\": %.1f, "
          "\"first_run_ms\": %.1f",
          name.c_str(), batch, precision_text.c_str(), ms, batch * 1e3 / ms, import_ms, compile_ms,
          first_ms);
      const auto found = peers.find(key);
      if (found != peers.end() && found->second.ms > 0) {
        const Peer& p = found->second;
        const double ratio = p.ms / ms;
        log_ratio += std::log(ratio);
        lowest = std::min(lowest, ratio);
        ++rated;
        int agree = 0;
        for (std::size_t i = 0; i < std::min(top1.size(), p.top1.size()); ++i)
          agree += top1[i] == p.top1[i];
        std::printf(
            ", \"ort_ms\": %.2f, \"ort_img_s\": %.1f, \"ratio\": %.3f, "
            "\"ort_create_ms\": %.1f, \"ort_first_run_ms\": %.1f, "
            "\"top1_agree\": \"%d/%zu\"",
            p.ms, batch * 1e3 / p.ms, ratio, p.create_ms, p.first_ms, agree, p.top1.size());
      }
      std::printf("}\n");
      std::fflush(stdout);
    }
  }
  if (rated > 0)
    std::printf(
        "{\"summary\": \"onnx_cpu %s\", \"geomean_vs_ort\": %.3f, \"lowest\": %.3f, "
        "\"cases\": %d}\n",
        precision_text.c_str(), std::exp(log_ratio / rated), lowest, rated);
  return 0;
}
