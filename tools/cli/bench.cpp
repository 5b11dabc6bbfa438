// cnngraph bench: cold start (import, compile, first run), then warm-up and timed runs of
// one batch: median latency and images/s; with --per-layer, each step's median time from
// the library's own profile (CNNGRAPH_PROFILE).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "commands.hpp"
#include "model.hpp"

namespace cnngraph::cli {

namespace {

double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  const std::size_t i = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(i, values.size() - 1)];
}

// Collects what the library writes to stderr (its profile lines) while it is in scope.
class StderrCapture {
 public:
  StderrCapture() : file_(std::tmpfile()) {
    if (!file_) throw DeviceError("--per-layer: cannot make a temporary file");
    std::fflush(stderr);
    saved_ = ::dup(2);
    if (saved_ < 0 || ::dup2(::fileno(file_), 2) < 0)
      throw DeviceError("--per-layer: cannot redirect stderr");
  }
  ~StderrCapture() { restore(); }
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;

  // Restores stderr and returns every line written meanwhile.
  std::vector<std::string> lines() {
    restore();
    std::vector<std::string> out;
    std::rewind(file_);
    std::string line;
    for (int c; (c = std::fgetc(file_)) != EOF;) {
      if (c != '\n') {
        line += static_cast<char>(c);
        continue;
      }
      out.push_back(line);
      line.clear();
    }
    return out;
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
    saved_ = -1;
  }
  std::FILE* file_;
  int saved_ = -1;
};

// "cnngraph: profile: <name padded to 40> <ms> ms  <kernel> [<attributes>]" per step and run.
void print_per_layer(const std::vector<std::string>& lines, int runs, int timed) {
  const std::string prefix = "cnngraph: profile: ";
  std::vector<std::pair<std::string, double>> steps;
  for (const std::string& line : lines) {
    if (line.rfind(prefix, 0) != 0) {
      std::fprintf(stderr, "%s\n", line.c_str());  // not ours: pass it on
      continue;
    }
    const std::string rest = line.substr(prefix.size());
    const std::size_t ms = rest.find(" ms");
    const std::size_t number = ms == std::string::npos ? ms : rest.rfind(' ', ms - 1);
    if (number == std::string::npos) continue;
    std::string name = rest.substr(0, number);
    name.erase(name.find_last_not_of(' ') + 1);
    const std::string kernel = rest.substr(std::min(rest.size(), ms + 3));
    steps.emplace_back(name + kernel, std::atof(rest.substr(number, ms - number).c_str()));
  }
  if (steps.empty() || steps.size() % static_cast<std::size_t>(runs) != 0) {
    std::printf("per-layer: the library reported no per-step times for this graph\n");
    return;
  }
  const std::size_t per_run = steps.size() / static_cast<std::size_t>(runs);
  std::printf("per-layer (median of %d runs, each step timed on its own):\n", timed);
  double total = 0.0;
  for (std::size_t s = 0; s < per_run; ++s) {
    std::vector<double> times;
    for (int r = runs - timed; r < runs; ++r) times.push_back(steps[r * per_run + s].second);
    const double median = percentile(times, 0.5);
    total += median;
    std::printf("  %9.4f ms  %s\n", median, steps[s].first.c_str());
  }
  std::printf("  %9.4f ms  (sum)\n", total);
}

}  // namespace

int bench_command(int argc, char** argv) {
  cxxopts::Options options(
      "cnngraph bench",
      "Times MODEL (a saved graph or an ONNX file) on a seeded random batch: the cold start "
      "(import, compile, first run), then --warmup runs and --iterations timed runs: median, "
      "p90 and minimum latency and images/s.");
  options.positional_help("MODEL");
  add_model_options(options);
  options.add_options()("warmup", "untimed runs after the first",
                        cxxopts::value<int>()->default_value("10"))(
      "iterations", "timed runs", cxxopts::value<int>()->default_value("100"))(
      "per-layer",
      "each step's median time, from the library's profile (CNNGRAPH_PROFILE; on CUDA the "
      "steps are then launched one by one, without CUDA-graph replay)")(
      "model", "", cxxopts::value<std::string>());
  options.parse_positional({"model"});
  const auto args = parse_arguments(options, argc, argv);
  if (!args) return 0;
  const ModelSettings settings = parse_model_settings(*args);
  const int warmup = (*args)["warmup"].as<int>(), iterations = (*args)["iterations"].as<int>();
  if (warmup < 0 || warmup > 1000000)
    throw UsageError("--warmup must be in [0, 1000000], got " + std::to_string(warmup));
  if (iterations < 1 || iterations > 1000000)
    throw UsageError("--iterations must be in [1, 1000000], got " + std::to_string(iterations));
  const bool per_layer = args->count("per-layer") > 0;
  // The library reads it once, at the first run of a graph.
  if (per_layer) ::setenv("CNNGRAPH_PROFILE", "1", 1);

  const auto cold = std::chrono::steady_clock::now();
  const Model model = load_model(settings.model, settings.batch);
  const double import_ms = milliseconds_since(cold);
  const ImageShape shape = input_shape(model, settings);
  check_input_shape(model, shape);
  const Image input = random_image(shape, settings.seed);
  const auto compile_begin = std::chrono::steady_clock::now();
  Graph graph(settings.device, model.outputs, std::vector<bool>(model.outputs.size(), true),
              settings.graph_options);
  graph.compile({shape});
  const double compile_ms = milliseconds_since(compile_begin);
  std::optional<StderrCapture> capture;
  if (per_layer) capture.emplace();
  const auto first_begin = std::chrono::steady_clock::now();
  // Reading the outputs back is part of a run: the CUDA backend finishes its work there.
  graph.run({input}).images[0].to_floats();
  const double first_ms = milliseconds_since(first_begin), cold_ms = milliseconds_since(cold);

  for (int i = 0; i < warmup; ++i) graph.run({input}).images[0].to_floats();
  std::vector<double> times;
  for (int i = 0; i < iterations; ++i) {
    const auto begin = std::chrono::steady_clock::now();
    graph.run({input}).images[0].to_floats();
    times.push_back(milliseconds_since(begin));
  }
  std::vector<std::string> profile;
  if (capture) profile = capture->lines();

  const double median = percentile(times, 0.5);
  std::printf("model %s on %s, input %s, precision %s\n", settings.model.c_str(),
              settings.device.name().c_str(), to_string(shape).c_str(),
              (*args)["precision"].as<std::string>().c_str());
  std::printf("cold start: %.2f ms (import %.2f, compile %.2f, first run %.2f)\n", cold_ms,
              import_ms, compile_ms, first_ms);
  std::printf("latency over %d runs after %d warm-up: median %.4f ms, p90 %.4f ms, min %.4f ms\n",
              iterations, warmup, median, percentile(times, 0.9),
              *std::min_element(times.begin(), times.end()));
  std::printf("throughput: %.1f images/s (batch %d / median)\n", shape.batch * 1000.0 / median,
              shape.batch);
  if (per_layer) print_per_layer(profile, 1 + warmup + iterations, iterations);
  return 0;
}

}  // namespace cnngraph::cli
