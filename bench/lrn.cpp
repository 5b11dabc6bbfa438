// Cross-channel normalization on the CPU: cnngraph (Device::cpu()) against PyTorch CPU's
// LocalResponseNorm (2 threads, bench/torch_lrn.py as a child process in the same run), on
// AlexNet/GoogLeNet-like layers: forward, and forward + input gradient ("train"), median
// milliseconds, ratios (PyTorch time / cnngraph time), and the largest difference between
// the two forward results on the same input. Usage: lrn [--seconds S] [--no-torch]
#include <chrono>
#include <cmath>
#include <cnngraph/cnngraph.hpp>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "problem_string.hpp"
#include "timing.hpp"

using namespace cnngraph;

namespace {

struct Case {
  std::string name;
  int batch, channels, height, width, size;
  float alpha, beta, delta;
};

// Lines "name: lrn n.. c.. h.. w.. size=.. alpha=.. beta=.. delta=.." (docs/testing.md).
std::vector<Case> read_cases(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<Case> cases;
  for (const auto& p : cnngraph::testing::read_problem_lines(in)) {
    if (p.op != "lrn" || p.label.empty())
      throw std::runtime_error(path + ": '" + p.text() + "' is not a labelled lrn");
    cases.push_back({p.label, p.dim('n'), p.dim('c'), p.dim('h'), p.dim('w'),
                     static_cast<int>(p.number_or("size", 5)),
                     static_cast<float>(p.number_or("alpha", 1.0)),
                     static_cast<float>(p.number_or("beta", 5.0)),
                     static_cast<float>(p.number_or("delta", 1.0))});
  }
  return cases;
}

struct TorchResult {
  double forward_ms = 0, train_ms = 0;
};

std::map<std::string, TorchResult> run_torch(const std::string& cases, const std::string& dir,
                                             double seconds) {
  std::map<std::string, TorchResult> result;
  const std::string command = "/usr/bin/python3 " + std::string(CNNGRAPH_BENCH_DIR) +
                              "/torch_lrn.py " + cases + " " + dir + " " + std::to_string(seconds);
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return result;
  char line[512];
  while (std::fgets(line, sizeof line, pipe)) {
    char name[128];
    TorchResult r;
    if (std::sscanf(line,
                    "{\"case\": \"%127[^\"]\", \"torch_forward_ms\": %lf, \"torch_train_ms\": %lf}",
                    name, &r.forward_ms, &r.train_ms) == 3)
      result[name] = r;
  }
  pclose(pipe);
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 0.5;
  bool torch = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--seconds" && i + 1 < argc)
      seconds = std::stod(argv[++i]);
    else if (a == "--no-torch")
      torch = false;
    else {
      std::fprintf(stderr, "usage: lrn [--seconds S] [--no-torch]\n");
      return 2;
    }
  }
  const std::string cases_path = std::string(CNNGRAPH_BENCH_DIR) + "/lrn_cases.txt";
  const std::string dir = "/tmp";
  const auto peer =
      torch ? run_torch(cases_path, dir, seconds) : std::map<std::string, TorchResult>{};
  if (torch && peer.empty())
    std::fprintf(stderr, "PyTorch peer unavailable (apt-get install python3-torch)\n");
  double log_forward = 0, log_train = 0;
  int compared = 0;
  for (const Case& c : read_cases(cases_path)) {
    const ImageShape shape{c.batch, c.height, c.width, c.channels};
    std::vector<float> values(shape.elements());
    for (std::size_t i = 0; i < values.size(); ++i)
      values[i] = static_cast<float>(2 * std::sin(0.001 * double(i)));
    const Image x = Image::from_floats(shape, values);
    auto input = std::make_shared<ImageNode>("x");
    auto dy_node = std::make_shared<ImageNode>("dy");
    auto lrn = std::make_shared<CrossChannelNormalizationNode>(input, c.size);
    lrn->alpha = c.alpha;
    lrn->beta = c.beta;
    lrn->delta = c.delta;
    Graph forward(Device::cpu(), lrn->result_image());
    Graph train(Device::cpu(), {lrn->result_image(), lrn->gradient_filter(dy_node)->result_image()},
                {false, true});
    const Image dy = Image::from_floats(shape, std::vector<float>(shape.elements(), 1.0f));
    std::vector<Image> train_sources;
    for (const auto& h : train.source_image_handles())
      train_sources.push_back(h->handle == "x" ? x : dy);
    Image y;
    const double forward_ms = bench::median_ms([&] { y = forward.run({x})[0]; }, seconds);
    const double train_ms = bench::median_ms([&] { train.run(train_sources); }, seconds);
    std::printf("{\"case\": \"%s\", \"forward_ms\": %.4f, \"train_ms\": %.4f", c.name.c_str(),
                forward_ms, train_ms);
    if (auto it = peer.find(c.name); it != peer.end()) {
      std::vector<float> theirs(shape.elements());
      std::ifstream file(dir + "/" + c.name + ".f32", std::ios::binary);
      file.read(reinterpret_cast<char*>(theirs.data()),
                static_cast<std::streamsize>(theirs.size() * sizeof(float)));
      const auto ours = y.to_floats();
      double worst = 0;
      for (std::size_t i = 0; i < ours.size(); ++i)
        worst =
            std::max(worst, std::fabs(double(ours[i]) - theirs[i]) / (1e-6 + std::fabs(theirs[i])));
      std::printf(
          ", \"torch_forward_ms\": %.4f, \"torch_train_ms\": %.4f, \"forward_vs_torch\": %.2f, "
          "\"train_vs_torch\": %.2f, \"max_rel_diff_vs_torch\": %.2e",
          it->second.forward_ms, it->second.train_ms, it->second.forward_ms / forward_ms,
          it->second.train_ms / train_ms, worst);
      log_forward += std::log(it->second.forward_ms / forward_ms);
      log_train += std::log(it->second.train_ms / train_ms);
      ++compared;
    }
    std::printf("}\n");
  }
  if (compared) {
    std::printf(
        "{\"summary\": \"lrn\", \"cases\": %d, \"geomean_forward_vs_torch\": %.2f, "
        "\"geomean_train_vs_torch\": %.2f}\n",
        compared, std::exp(log_forward / compared), std::exp(log_train / compared));
  }
  return 0;
}
