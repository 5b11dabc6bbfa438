// Convolution forward on the CPU: cnngraph (Device::cpu(), a one-node graph) against oneDNN
// called directly (the same library, primitives made here) and PyTorch CPU (2 threads, run
// as a child process on the same cases in the same run). One JSON line per case, then the
// geometric means. Usage: conv_cpu [--cases FILE] [--seconds S] [--no-torch]
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <chrono>
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

namespace {

struct Case {
  std::string name;
  int batch, channels, height, width, out_channels, kernel, stride, groups;
  double flops() const {
    const int p = (height + stride - 1) / stride, q = (width + stride - 1) / stride;
    return 2.0 * batch * out_channels * p * q * (channels / groups) * kernel * kernel;
  }
};

// Lines "name: conv n.. c.. h.. w.. k.. r.. s.. g.. pad=same" (docs/testing.md): square
// kernels and strides, same padding, which the oneDNN primitives here are made for.
std::vector<Case> read_cases(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<Case> cases;
  for (const auto& p : cnngraph::testing::read_problem_lines(in)) {
    const auto [kh, kw] = p.dim2('r', {1, 1});
    const auto [sy, sx] = p.dim2('s', {1, 1});
    if (p.op != "conv" || p.label.empty() || kh != kw || sy != sx || p.dim('d', 1) != 1 ||
        p.option_or("pad", "same") != "same")
      throw std::runtime_error(path + ": '" + p.text() +
                               "' is not a labelled conv with square kernel and stride, no "
                               "dilation, pad=same");
    cases.push_back({p.label, p.dim('n'), p.dim('c'), p.dim('h'), p.dim('w'), p.dim('k'), kh, sy,
                     p.dim('g', 1)});
  }
  return cases;
}

std::vector<float> random_floats(std::size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

double time_cnngraph(const Case& c, const std::vector<float>& weights,
                     const std::vector<float>& bias, const cnngraph::Image& input, double seconds,
                     double& cold_ms) {
  using namespace cnngraph;
  ConvolutionDescriptor d(c.kernel, c.kernel, c.channels, c.out_channels);
  d.stride_x = d.stride_y = c.stride;
  d.groups = c.groups;
  auto conv = std::make_shared<ConvolutionNode>(
      std::make_shared<ImageNode>(), std::make_shared<ArrayDataSource>(c.name, d, weights, bias));
  const auto t = std::chrono::steady_clock::now();
  Graph graph(Device::cpu(), conv->result_image());
  graph.run({input});
  cold_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
  return bench::median_ms([&] { graph.run({input}); }, seconds);
}

double time_onednn(const Case& c, const std::vector<float>& weights, const std::vector<float>& bias,
                   const cnngraph::Image& input, double seconds) {
  using namespace dnnl;
  using tag = memory::format_tag;
  engine eng(engine::kind::cpu, 0);
  stream strm(eng);
  const memory::dim G = c.groups, O = c.out_channels, I = c.channels, K = c.kernel;
  const memory::dim P = (c.height + c.stride - 1) / c.stride,
                    Q = (c.width + c.stride - 1) / c.stride;
  const memory::dim pad_total_h = (P - 1) * c.stride + K - c.height,
                    pad_total_w = (Q - 1) * c.stride + K - c.width;
  const memory::desc src_md({c.batch, I, c.height, c.width}, memory::data_type::f32, tag::nhwc);
  const memory::desc dst_md({c.batch, O, P, Q}, memory::data_type::f32, tag::nhwc);
  const memory::desc bias_md({O}, memory::data_type::f32, tag::x);
  const memory::desc user_w =
      G == 1 ? memory::desc({O, I, K, K}, memory::data_type::f32, tag::ohwi)
             : memory::desc({G, O / G, I / G, K, K}, memory::data_type::f32, tag::gohwi);
  const memory::desc any_w =
      G == 1 ? memory::desc({O, I, K, K}, memory::data_type::f32, tag::any)
             : memory::desc({G, O / G, I / G, K, K}, memory::data_type::f32, tag::any);
  convolution_forward::desc desc(prop_kind::forward_inference, algorithm::convolution_direct,
                                 src_md, any_w, bias_md, dst_md, {c.stride, c.stride}, {0, 0},
                                 {(pad_total_h + 1) / 2, (pad_total_w + 1) / 2},
                                 {pad_total_h / 2, pad_total_w / 2});
  convolution_forward::primitive_desc pd(desc, eng);
  memory w_user(user_w, eng, const_cast<float*>(weights.data()));
  memory w(pd.weights_desc(), eng);
  reorder(w_user, w).execute(strm, w_user, w);
  memory b(bias_md, eng, const_cast<float*>(bias.data()));
  memory src(src_md, eng, const_cast<std::byte*>(input.data()));
  memory dst(dst_md, eng);
  convolution_forward conv(pd);
  return bench::median_ms(
      [&] {
        conv.execute(
            strm,
            {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_BIAS, b}, {DNNL_ARG_DST, dst}});
        strm.wait();
      },
      seconds);
}

std::map<std::string, double> run_torch(const std::string& cases_path, double seconds) {
  std::map<std::string, double> result;
  const std::string command = "/usr/bin/python3 " + std::string(CNNGRAPH_BENCH_DIR) +
                              "/torch_conv_cpu.py " + cases_path + " " + std::to_string(seconds);
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return result;
  char line[512];
  while (std::fgets(line, sizeof line, pipe)) {
    char name[128];
    double ms;
    if (std::sscanf(line, "{\"case\": \"%127[^\"]\", \"torch_ms\": %lf}", name, &ms) == 2)
      result[name] = ms;
  }
  pclose(pipe);
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  std::string cases_path = std::string(CNNGRAPH_BENCH_DIR) + "/conv_cpu_cases.txt";
  double seconds = 0.5;
  bool torch = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--cases" && i + 1 < argc)
      cases_path = argv[++i];
    else if (a == "--seconds" && i + 1 < argc)
      seconds = std::stod(argv[++i]);
    else if (a == "--no-torch")
      torch = false;
  }
  const auto cases = read_cases(cases_path);
  std::cerr << "running the PyTorch peer first (same cases, 2 threads)...\n";
  const auto torch_ms = torch ? run_torch(cases_path, seconds) : std::map<std::string, double>{};
  if (torch && torch_ms.empty())
    std::cerr << "PyTorch peer unavailable (apt-get install python3-torch)\n";
  std::mt19937 rng(0);
  double log_vs_onednn = 0, log_vs_torch = 0;
  int torch_cases = 0;
  for (const Case& c : cases) {
    const auto weights = random_floats(
        static_cast<std::size_t>(c.out_channels) * c.kernel * c.kernel * (c.channels / c.groups),
        rng);
    const auto bias = random_floats(c.out_channels, rng);
    const auto input = cnngraph::Image::from_floats(
        {c.batch, c.height, c.width, c.channels},
        random_floats(static_cast<std::size_t>(c.batch) * c.height * c.width * c.channels, rng));
    double cold_ms = 0;
    const double ours = time_cnngraph(c, weights, bias, input, seconds, cold_ms);
    const double onednn = time_onednn(c, weights, bias, input, seconds);
    const double gflops = c.flops() / ours / 1e6;
    // Ratios are speedups: peer time / cnngraph time (above 1 means cnngraph is faster).
    std::printf(
        "{\"case\": \"%s\", \"cnngraph_ms\": %.4f, \"cnngraph_gflops\": %.1f, \"cold_ms\": %.2f, "
        "\"onednn_ms\": %.4f, \"vs_onednn\": %.3f",
        c.name.c_str(), ours, gflops, cold_ms, onednn, onednn / ours);
    log_vs_onednn += std::log(onednn / ours);
    if (auto it = torch_ms.find(c.name); it != torch_ms.end()) {
      std::printf(", \"torch_ms\": %.4f, \"vs_torch\": %.3f", it->second, it->second / ours);
      log_vs_torch += std::log(it->second / ours);
      ++torch_cases;
    }
    std::printf("}\n");
    std::fflush(stdout);
  }
  std::printf("{\"summary\": \"conv_cpu\", \"cases\": %zu, \"geomean_vs_onednn\": %.3f",
              cases.size(), std::exp(log_vs_onednn / cases.size()));
  if (torch_cases)
    std::printf(", \"geomean_vs_torch\": %.3f", std::exp(log_vs_torch / torch_cases));
  std::printf("}\n");
  return 0;
}
