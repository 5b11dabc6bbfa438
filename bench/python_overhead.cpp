// What the Python package adds to a run: the C++ half of bench/python_overhead.py. For each
// case it builds the network, writes it as a saved graph (save_graph), loads that file back
// and times Graph::run on it, so that the Python side (cnngraph.load_graph on the same
// file, the same options, input and number of runs) times the identical graph. Each case
// prints one JSON line for the driver: the file, device, precision, batch, input shape, the
// runs (a warm-up, then `repetitions` timed one by one), the median in microseconds and a
// checksum of the output (a weighted sum of its elements) that the Python side compares.
//
// The input is made once, before the clock, on the graph's device (a CUDA graph reads a
// device-resident image in place): value i of the batch is ((i * 7919) % 1000) / 1000 - 0.5
// in the input's element type, which Python computes the same way.
//
// Cases: resnet50_cuda_f16_b1 (models::resnet50 with seeded random weights, autotuned
// plans kept in a plan cache file that the Python side reads, so that both run the same
// cuDNN plans), mnist_cpu_b1 and mnist_cpu_b64 (the Fashion-MNIST reference network of
// examples/reference_network.cpp, inference, on Device::cpu()), and relu_cpu_b1 (one ReLU
// on a 1x1x1 image: the fixed cost of a run, where the bindings' share is largest).
// --keep reuses the saved graph and plan cache files that an earlier call left in DIR (the
// driver's later rounds).
// Usage: python_overhead --dir DIR [--cases a,b] [--seconds S] [--warmup N] [--keep] [--list]
#include <algorithm>
#include <chrono>
#include <cnngraph/cnngraph.hpp>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "models.hpp"
#ifdef CNNGRAPH_BENCH_HAS_EXAMPLES
#include "reference_network.hpp"
#endif

using namespace cnngraph;

namespace {

struct Case {
  std::string name, device;
  Precision precision;
  int batch, size, channels;
  // Writes the saved graph to the path given.
  std::function<void(const std::filesystem::path&)> write;
};

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::f16:
      return "f16";
    case Precision::bf16:
      return "bf16";
    case Precision::tf32_allowed:
      return "tf32_allowed";
    case Precision::f32:
      break;
  }
  return "f32";
}

std::vector<Case> cases(const std::filesystem::path& dir) {
  std::vector<Case> all;
  all.push_back({"resnet50_cuda_f16_b1", "cuda", Precision::f16, 1, 224, 3,
                 [](const std::filesystem::path& path) {
                   save_graph(path, {models::resnet50(models::random_tensors(0)).logits});
                 }});
  // One ReLU on a 1x1x1 image: next to nothing but the fixed cost of a run, from each side.
  all.push_back(
      {"relu_cpu_b1", "cpu", Precision::f32, 1, 1, 1, [](const std::filesystem::path& path) {
         const auto x = std::make_shared<ImageNode>("image");
         save_graph(path, {std::make_shared<NeuronNode>(x, NeuronDescriptor::make(NeuronType::relu))
                               ->result_image()});
       }});
#ifdef CNNGRAPH_BENCH_HAS_EXAMPLES
  const auto mnist = [dir](const std::filesystem::path& path) {
    const std::filesystem::path weights = dir / "mnist_initial.safetensors";
    examples::write_initial_weights(weights, 1);
    save_graph(path, {examples::build_reference_network(weights).probabilities});
  };
  for (int batch : {1, 64}) {
    all.push_back(
        {"mnist_cpu_b" + std::to_string(batch), "cpu", Precision::f32, batch, 28, 1, mnist});
  }
#else
  (void)dir;
#endif
  return all;
}

Image input_image(const Case& c, const Device& device) {
  std::vector<float> values(static_cast<std::size_t>(c.batch) * c.size * c.size * c.channels);
  for (std::size_t i = 0; i < values.size(); ++i)
    values[i] = static_cast<float>((i * 7919) % 1000) / 1000.0f - 0.5f;
  const DataType type = c.precision == Precision::f16 ? DataType::f16 : DataType::f32;
  return Image::from_floats({c.batch, c.size, c.size, c.channels}, values, type).to(device);
}

// Element i weighted 1 + i % 10: probabilities sum to 1 per image whatever the weights.
double checksum(const Image& image) {
  const std::vector<float> values = image.to(Device::cpu_reference()).to_floats();
  double sum = 0;
  for (std::size_t i = 0; i < values.size(); ++i)
    sum += values[i] * static_cast<double>(1 + i % 10);
  return sum;
}

void run_case(const Case& c, const std::filesystem::path& dir, double seconds, int warmup,
              bool keep) {
  const std::filesystem::path file = dir / (c.name + ".cnngraph");
  const std::filesystem::path cache = dir / (c.name + "_plans.json");
  if (!keep || !std::filesystem::exists(file)) {
    c.write(file);
    std::filesystem::remove(cache);  // plans chosen in this run, then shared with Python's
  }
  const Device device = c.device == "cuda" ? Device::cuda() : Device::cpu();
  GraphOptions options;
  options.precision = c.precision;
  if (c.device == "cuda") {
    options.autotune = true;
    options.plan_cache_file = cache.string();
  }
  const SavedGraph saved = load_graph(file);
  Graph graph(device, saved.results.at(0), true, options);
  const Image x = input_image(c, device);
  const double sum = checksum(graph.run({x})[0]);
  for (int i = 0; i < warmup; ++i) graph.run({x});
  // As many runs as fit in `seconds` (at least 50), each timed on its own; Python repeats
  // exactly as many.
  std::vector<double> us;
  const auto start = std::chrono::steady_clock::now();
  while (us.size() < 50 ||
         std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() <
             seconds) {
    const auto t = std::chrono::steady_clock::now();
    graph.run({x});
    us.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t).count());
  }
  const std::size_t repetitions = us.size();
  std::nth_element(us.begin(), us.begin() + us.size() / 2, us.end());
  std::printf(
      "{\"case\": \"%s\", \"file\": \"%s\", \"device\": \"%s\", \"precision\": \"%s\", "
      "\"batch\": %d, \"size\": %d, \"channels\": %d, \"plan_cache_file\": \"%s\", "
      "\"warmup\": %d, \"repetitions\": %zu, \"cpp_us\": %.2f, \"checksum\": %.9g}\n",
      c.name.c_str(), file.c_str(), c.device.c_str(), precision_name(c.precision), c.batch, c.size,
      c.channels, options.plan_cache_file.c_str(), warmup, repetitions, us[us.size() / 2], sum);
  std::fflush(stdout);
}

// A case that did not run, as a JSON line the driver prints.
void skipped(const std::string& name, const std::string& why) {
  std::string text;
  for (char ch : why) {
    if (ch == '"' || ch == '\\') text += '\\';
    text += ch == '\n' ? ' ' : ch;
  }
  std::printf("{\"case\": \"%s\", \"skipped\": \"%s\"}\n", name.c_str(), text.c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::filesystem::path dir;
  std::string wanted;
  double seconds = 2.0;
  int warmup = 20;
  bool list = false, keep = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--dir" && i + 1 < argc)
      dir = argv[++i];
    else if (a == "--cases" && i + 1 < argc)
      wanted = argv[++i];
    else if (a == "--seconds" && i + 1 < argc)
      seconds = std::stod(argv[++i]);
    else if (a == "--warmup" && i + 1 < argc)
      warmup = std::stoi(argv[++i]);
    else if (a == "--list")
      list = true;
    else if (a == "--keep")
      keep = true;
    else {
      std::cerr << "usage: python_overhead --dir DIR [--cases a,b] [--seconds S] [--warmup N] "
                   "[--keep] [--list]\n";
      return 2;
    }
  }
  if (dir.empty() && !list) {
    std::cerr << "python_overhead: --dir (where the saved graphs go) is needed\n";
    return 2;
  }
  const std::vector<Case> all = cases(dir);
  if (list) {
    for (const Case& c : all) std::cout << c.name << "\n";
    return 0;
  }
  std::vector<std::string> names;
  std::stringstream items(wanted);
  for (std::string item; std::getline(items, item, ',');) names.push_back(item);
  if (names.empty())
    for (const Case& c : all) names.push_back(c.name);
  std::filesystem::create_directories(dir);
  int status = 0;
  for (const std::string& name : names) {
    const auto it =
        std::find_if(all.begin(), all.end(), [&](const Case& c) { return c.name == name; });
    if (it == all.end()) {
      std::cerr << "python_overhead: no case '" << name << "' in this build (--list)\n";
      status = 2;
    } else if (it->device == "cuda" && Device::cuda_device_count() == 0) {
      skipped(name, "no CUDA GPU on this machine");
    } else {
      try {
        run_case(*it, dir, seconds, warmup, keep);
      } catch (const Error& e) {
        skipped(name, e.what());
        status = 1;
      }
    }
  }
  return status;
}
