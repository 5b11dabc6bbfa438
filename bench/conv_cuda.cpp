// Forward convolution (with bias) on CUDA against PyTorch + cuDNN (cudnn.benchmark on) for
// the ten cases of bench/conv_cuda_cases.txt, in fp16, bf16, TF32 and fp32. cnngraph
// is timed through Graph::run on a device-resident source (the copy into the graph's
// arena, the recorded CUDA graph, the result image and the final synchronization all
// count); the first run (plan choice, weight upload) is reported apart.
// Plans are autotuned (GraphOptions::autotune), as the peer's are by cudnn.benchmark.
// --backward times the convolution's gradient instead: the input, weight and bias
// gradients of a convolution trained on the device (TrainableDataSource, SGD with learning
// rate 0, so its fused step is one small launch more) from a device-resident dy, against
// PyTorch's autograd.grad for the same three.
// Usage: conv_cuda [--cases FILE] [--seconds S] [--no-torch] [--no-autotune] [--verbose]
//                  [--no-cuda-graphs] [--backward]
#include <cmath>
#include <cnngraph/cnngraph.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "problem_string.hpp"
#include "timing.hpp"

using namespace cnngraph;

namespace {

struct Case {
  std::string name;
  int n, c, h, w, k, r, stride, pad, dilation, groups;
  double flops() const {
    const int p = (h + 2 * pad - dilation * (r - 1) - 1) / stride + 1;
    const int q = (w + 2 * pad - dilation * (r - 1) - 1) / stride + 1;
    return 2.0 * n * k * p * q * (c / groups) * r * r;
  }
};

// Lines "name: conv n.. c.. h.. w.. k.. r.. s.. d.. g.. pad=same" (docs/testing.md): square
// odd kernels, square strides and dilations; same padding is then PyTorch's symmetric
// padding of dilation * (r - 1) / 2 pixels.
std::vector<Case> read_cases(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<Case> cases;
  for (const auto& p : cnngraph::testing::read_problem_lines(in)) {
    const auto [kh, kw] = p.dim2('r', {1, 1});
    const auto [sy, sx] = p.dim2('s', {1, 1});
    const auto [dy, dx] = p.dim2('d', {1, 1});
    if (p.op != "conv" || p.label.empty() || kh != kw || kh % 2 == 0 || sy != sx || dy != dx ||
        p.option_or("pad", "same") != "same")
      throw std::runtime_error(path + ": '" + p.text() +
                               "' is not a labelled conv with an odd square kernel, square "
                               "stride and dilation, pad=same");
    cases.push_back({p.label, p.dim('n'), p.dim('c'), p.dim('h'), p.dim('w'), p.dim('k'), kh, sy,
                     dy * (kh - 1) / 2, dy, p.dim('g', 1)});
  }
  return cases;
}

std::map<std::string, double> run_torch(const std::string& cases, double seconds, bool backward) {
  std::map<std::string, double> ms;
  const std::string command = "python3 " + std::string(CNNGRAPH_BENCH_DIR) +
                              "/torch_conv_cuda.py " + cases + " " + std::to_string(seconds) +
                              (backward ? " backward" : "");
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return ms;
  char line[512];
  while (std::fgets(line, sizeof line, pipe)) {
    char name[128], precision[16];
    double value = 0;
    if (std::sscanf(line,
                    "{\"case\": \"%127[^\"]\", \"precision\": \"%15[^\"]\", \"torch_ms\": %lf}",
                    name, precision, &value) == 3) {
      ms[std::string(name) + "/" + precision] = value;
    }
  }
  pclose(pipe);
  return ms;
}

}  // namespace

int main(int argc, char** argv) {
  std::string cases_path = std::string(CNNGRAPH_BENCH_DIR) + "/conv_cuda_cases.txt";
  double seconds = 1.0;
  bool torch = true;
  bool autotune = true;  // as the peer's cudnn.benchmark
  bool verbose = false;
  bool cuda_graphs = true;
  bool backward = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--cases" && i + 1 < argc)
      cases_path = argv[++i];
    else if (a == "--seconds" && i + 1 < argc)
      seconds = std::stod(argv[++i]);
    else if (a == "--no-torch")
      torch = false;
    else if (a == "--no-autotune")
      autotune = false;
    else if (a == "--verbose")
      verbose = true;
    else if (a == "--no-cuda-graphs")
      cuda_graphs = false;
    else if (a == "--backward")
      backward = true;
  }
  // Read first: a bad case file is an error on any machine.
  const std::vector<Case> cases = read_cases(cases_path);
  if (Device::cuda_device_count() == 0) {
    std::cout << "{\"skipped\": \"conv_cuda: no CUDA GPU on this machine\", \"cases\": "
              << cases.size() << "}\n";
    return 0;
  }
  const auto torch_ms =
      torch ? run_torch(cases_path, seconds, backward) : std::map<std::string, double>{};
  const std::pair<const char*, Precision> precisions[] = {{"f16", Precision::f16},
                                                          {"bf16", Precision::bf16},
                                                          {"tf32", Precision::tf32_allowed},
                                                          {"f32", Precision::f32}};
  std::map<std::string, std::pair<double, int>> log_ratio;  // per precision
  std::map<std::string, double> min_ratio;
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (const Case& c : cases) {
    ConvolutionDescriptor d(c.r, c.r, c.c, c.k);
    d.stride_x = d.stride_y = c.stride;
    d.dilation_x = d.dilation_y = c.dilation;
    d.groups = c.groups;
    std::vector<float> weights(static_cast<std::size_t>(c.k) * c.r * c.r * (c.c / c.groups));
    for (float& v : weights) v = uniform(rng) * 0.1f;
    std::vector<float> bias(c.k, 0.01f);
    std::shared_ptr<ConvolutionDataSource> source;
    if (backward) {
      source = std::make_shared<TrainableDataSource>(
          c.name, d, weights, bias, std::make_shared<SgdOptimizer>(OptimizerDescriptor{0.0f}));
    } else {
      source = std::make_shared<ArrayDataSource>(c.name, d, weights, bias);
    }
    auto x = std::make_shared<ImageNode>("x");
    auto conv = std::make_shared<ConvolutionNode>(x, source);
    // MPS's default (same, centred, odd pixel top-left) equals PyTorch's symmetric padding
    // for every case of the suite.
    conv->padding_policy = PaddingPolicy::same();
    conv->training_style = TrainingStyle::device;
    auto dy = std::make_shared<ImageNode>("dy");
    const std::shared_ptr<ImageNode> result =
        backward ? conv->gradient_filter_for(0, dy)->result_image() : conv->result_image();
    std::vector<float> input(static_cast<std::size_t>(c.n) * c.h * c.w * c.c);
    for (float& v : input) v = uniform(rng);
    const int p = (c.h + 2 * c.pad - c.dilation * (c.r - 1) - 1) / c.stride + 1;
    const int q = (c.w + 2 * c.pad - c.dilation * (c.r - 1) - 1) / c.stride + 1;
    std::vector<float> gradient(static_cast<std::size_t>(c.n) * p * q * c.k);
    for (float& v : gradient) v = uniform(rng);
    for (const auto& [label, precision] : precisions) {
      GraphOptions options;
      options.precision = precision;
      options.autotune = autotune;
      options.verbose = verbose;  // kernel choices and autotuning times on stderr
      options.cuda_graphs = cuda_graphs;
      const DataType type = precision == Precision::f16    ? DataType::f16
                            : precision == Precision::bf16 ? DataType::bf16
                                                           : DataType::f32;
      const Image image = Image::from_floats({c.n, c.h, c.w, c.c}, input, type).to(Device::cuda());
      const Image dy_image =
          Image::from_floats({c.n, p, q, c.k}, gradient, type).to(Device::cuda());
      Graph graph(Device::cuda(), result, true, options);
      std::vector<Image> sources;
      for (const auto& handle : graph.source_image_handles())
        sources.push_back(handle == dy ? dy_image : image);
      const auto cold_start = std::chrono::steady_clock::now();
      graph.run(sources);
      const double first_ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - cold_start)
              .count();
      const double ms = bench::median_ms([&] { graph.run(sources); }, seconds);
      // The backward pass is two convolutions' work (data and weight gradients).
      const double tflops = c.flops() * (backward ? 2 : 1) / ms / 1e9;
      std::printf(
          "{\"case\": \"%s\", \"precision\": \"%s\", \"cnngraph_ms\": %.4f, "
          "\"cnngraph_tflops\": %.1f, \"first_run_ms\": %.1f",
          c.name.c_str(), label, ms, tflops, first_ms);
      const auto peer = torch_ms.find(c.name + "/" + label);
      if (peer != torch_ms.end()) {
        const double ratio = peer->second / ms;
        std::printf(", \"torch_ms\": %.4f, \"torch_tflops\": %.1f, \"ratio\": %.3f", peer->second,
                    c.flops() * (backward ? 2 : 1) / peer->second / 1e9, ratio);
        log_ratio[label].first += std::log(ratio);
        log_ratio[label].second += 1;
        auto [slot, added] = min_ratio.emplace(label, ratio);
        if (!added) slot->second = std::min(slot->second, ratio);
      }
      std::printf("}\n");
      std::fflush(stdout);
    }
  }
  for (const auto& [label, sum] : log_ratio) {
    std::printf(
        "{\"summary\": \"%s\", \"precision\": \"%s\", \"cases\": %d, "
        "\"geomean_ratio_vs_torch\": %.3f, \"min_ratio\": %.3f, \"autotune\": %s}\n",
        backward ? "conv_cuda_backward" : "conv_cuda", label.c_str(), sum.second,
        std::exp(sum.first / sum.second), min_ratio[label], autotune ? "true" : "false");
  }
}
