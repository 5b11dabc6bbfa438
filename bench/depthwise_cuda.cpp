// The CUDA depthwise kernel alone, every variant that takes each layer, against the memory
// roofline and PyTorch's convolution (bench/torch_conv_cuda.py: cuDNN or PyTorch's own
// depthwise kernels, cudnn.benchmark on) for the layers of bench/depthwise_cuda_cases.txt,
// in fp16, bf16 and fp32. The launcher is called on device buffers (bytes 0x3C; values do
// not change the time) with the layer's bias fused, so no graph, arena copy or
// synchronization is counted: the time is CUDA events around repeated launches. GB/s counts
// the bytes a kernel must move at least: the source and the result once, the weights and
// bias. The roofline is --roofline-gbps (default 4800, the H200's HBM3e; docs/cuda.md).
// Usage: depthwise_cuda [--cases FILE] [--seconds S] [--no-torch] [--roofline-gbps G]
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cnngraph/cnngraph.hpp>
#include <cstdio>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "backends/cuda/kernels/depthwise_convolution.hpp"
#include "problem_string.hpp"

using namespace cnngraph;
using cnngraph::detail::ConvolutionOp;
namespace cuda = cnngraph::detail::cuda;

namespace {

struct Layer {
  std::string name;
  int n, c, h, w, r, stride, pad, dilation;
  int p() const { return (h + 2 * pad - dilation * (r - 1) - 1) / stride + 1; }
  int q() const { return (w + 2 * pad - dilation * (r - 1) - 1) / stride + 1; }
};

// conv_cuda's notation (docs/testing.md), depthwise only: g == c == k, odd square kernel,
// pad=same (PyTorch's symmetric dilation * (r - 1) / 2).
std::vector<Layer> read_layers(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<Layer> layers;
  for (const auto& p : cnngraph::testing::read_problem_lines(in)) {
    const auto [kh, kw] = p.dim2('r', {1, 1});
    const auto [sy, sx] = p.dim2('s', {1, 1});
    const auto [dy, dx] = p.dim2('d', {1, 1});
    const int c = p.dim('c');
    if (p.op != "conv" || p.label.empty() || kh != kw || kh % 2 == 0 || sy != sx || dy != dx ||
        p.dim('k') != c || p.dim('g', 1) != c || p.option_or("pad", "same") != "same")
      throw std::runtime_error(path + ": '" + p.text() +
                               "' is not a labelled depthwise conv (g = c = k) with an odd square "
                               "kernel, square stride and dilation, pad=same");
    layers.push_back(
        {p.label, p.dim('n'), c, p.dim('h'), p.dim('w'), kh, sy, dy * (kh - 1) / 2, dy});
  }
  return layers;
}

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
}

// The op the backend would make for the layer (sizes, geometry, groups); no weights needed.
ConvolutionOp op_for(const Layer& l) {
  ConvolutionOp op;
  op.name = l.name;
  op.src_shapes = {{l.n, l.h, l.w, l.c}};
  op.dst_shape = {l.n, l.p(), l.q(), l.c};
  op.groups = op.input_channels = op.output_channels = l.c;
  op.kernel_width = op.kernel_height = l.r;
  op.dilation_x = op.dilation_y = l.dilation;
  for (AxisGeometry* axis : {&op.x, &op.y}) {
    axis->stride = l.stride;
    axis->pad_before = l.pad;
    axis->kernel_size = l.dilation * (l.r - 1) + 1;
  }
  op.x.source_size = l.w;
  op.y.source_size = l.h;
  op.x.result_size = l.q();
  op.y.result_size = l.p();
  return op;
}

std::map<std::string, double> run_torch(const std::string& cases, double seconds) {
  std::map<std::string, double> ms;
  const std::string command = "python3 " + std::string(CNNGRAPH_BENCH_DIR) +
                              "/torch_conv_cuda.py " + cases + " " + std::to_string(seconds);
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return ms;
  char line[512];
  while (std::fgets(line, sizeof line, pipe)) {
    char name[128], precision[16];
    double value = 0;
    if (std::sscanf(line,
                    "{\"case\": \"%127[^\"]\", \"precision\": \"%15[^\"]\", \"torch_ms\": %lf}",
                    name, precision, &value) == 3)
      ms[std::string(name) + "/" + precision] = value;
  }
  pclose(pipe);
  return ms;
}

// Median milliseconds of one launch: batches of 20 launches between CUDA events, for at
// least `seconds` and 5 batches, after a warm-up batch.
template <typename Fn>
double median_launch_ms(Fn&& launch, double seconds, cudaStream_t stream) {
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  std::vector<double> times;
  double total = 0;
  for (int batch = -1; batch < 5 || total < seconds * 1e3; ++batch) {
    check(cudaEventRecord(start, stream), "cudaEventRecord");
    for (int i = 0; i < 20; ++i) launch();
    check(cudaEventRecord(stop, stream), "cudaEventRecord");
    check(cudaEventSynchronize(stop), "running the depthwise kernel");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    if (batch >= 0) times.push_back(ms / 20);
    total += ms;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::string cases_path = std::string(CNNGRAPH_BENCH_DIR) + "/depthwise_cuda_cases.txt";
  double seconds = 0.3, roofline = 4800;
  bool torch = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--cases" && i + 1 < argc)
      cases_path = argv[++i];
    else if (a == "--seconds" && i + 1 < argc)
      seconds = std::stod(argv[++i]);
    else if (a == "--roofline-gbps" && i + 1 < argc)
      roofline = std::stod(argv[++i]);
    else if (a == "--no-torch")
      torch = false;
  }
  const std::vector<Layer> layers = read_layers(cases_path);
  if (Device::cuda_device_count() == 0) {
    std::printf("{\"skipped\": \"depthwise_cuda: no CUDA GPU on this machine\", \"cases\": %zu}\n",
                layers.size());
    return 0;
  }
  const auto torch_ms = torch ? run_torch(cases_path, seconds) : std::map<std::string, double>{};
  const std::pair<const char*, DataType> precisions[] = {
      {"f16", DataType::f16}, {"bf16", DataType::bf16}, {"f32", DataType::f32}};
  cudaStream_t stream;
  check(cudaStreamCreate(&stream), "cudaStreamCreate");
  std::map<std::string, std::pair<double, int>> log_fraction;  // best variant, per precision
  for (const Layer& l : layers) {
    const ConvolutionOp op = op_for(l);
    for (const auto& [label, type] : precisions) {
      const std::size_t element = size_of(type);
      const std::size_t in = op.src_shapes[0].elements() * element;
      const std::size_t out = op.dst_shape.elements() * element;
      const std::size_t weights = std::size_t(l.r) * l.r * l.c * element, bias = l.c * element;
      void *x = nullptr, *y = nullptr, *w = nullptr, *b = nullptr;
      check(cudaMalloc(&x, in), "cudaMalloc");
      check(cudaMalloc(&y, out), "cudaMalloc");
      check(cudaMalloc(&w, weights), "cudaMalloc");
      check(cudaMalloc(&b, bias), "cudaMalloc");
      for (auto [p, bytes] : {std::pair{x, in}, {w, weights}, {b, bias}})
        check(cudaMemset(p, 0x3C, bytes), "cudaMemset");
      cuda::DeviceEpilogue epilogue;
      epilogue.bias = b;
      const double moved_gb = double(in + out + weights + bias) / 1e9;
      double best_ms = -1;
      std::string best;
      for (const cuda::DepthwiseVariant& v : cuda::depthwise_variants(type, op)) {
        const double ms = median_launch_ms(
            [&] { cuda::depthwise_convolution(type, op, v, x, w, epilogue, y, stream); }, seconds,
            stream);
        std::printf(
            "{\"case\": \"%s\", \"precision\": \"%s\", \"variant\": \"%s\", \"ms\": %.4f, "
            "\"gbps\": %.0f, \"roofline_fraction\": %.3f}\n",
            l.name.c_str(), label, v.name().c_str(), ms, moved_gb / ms * 1e3,
            moved_gb / ms * 1e3 / roofline);
        if (best_ms < 0 || ms < best_ms) {
          best_ms = ms;
          best = v.name();
        }
      }
      std::printf(
          "{\"case\": \"%s\", \"precision\": \"%s\", \"best\": \"%s\", \"ms\": %.4f, "
          "\"gbps\": %.0f, \"roofline_fraction\": %.3f, \"roofline_ms\": %.4f",
          l.name.c_str(), label, best.c_str(), best_ms, moved_gb / best_ms * 1e3,
          moved_gb / best_ms * 1e3 / roofline, moved_gb / roofline * 1e3);
      const auto peer = torch_ms.find(l.name + "/" + label);
      if (peer != torch_ms.end()) {
        std::printf(", \"torch_ms\": %.4f, \"torch_gbps\": %.0f, \"ratio\": %.3f", peer->second,
                    moved_gb / peer->second * 1e3, peer->second / best_ms);
      }
      std::printf("}\n");
      std::fflush(stdout);
      log_fraction[label].first += std::log(moved_gb / best_ms * 1e3 / roofline);
      log_fraction[label].second += 1;
      for (void* p : {x, y, w, b}) cudaFree(p);
    }
  }
  for (const auto& [label, sum] : log_fraction) {
    std::printf(
        "{\"summary\": \"depthwise_cuda\", \"precision\": \"%s\", \"cases\": %d, "
        "\"geomean_roofline_fraction\": %.3f, \"roofline_gbps\": %.0f}\n",
        label.c_str(), sum.second, std::exp(sum.first / sum.second), roofline);
  }
  cudaStreamDestroy(stream);
}
