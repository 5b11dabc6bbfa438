// cnngraph run: one batch through a model, its output's shape and, for a classifier, the
// top-5 classes of the first image.
#include <algorithm>
#include <cstdio>
#include <numeric>

#include "commands.hpp"
#include "model.hpp"

namespace cnngraph::cli {

namespace {

void print_output(const std::string& name, const Image& image, Layout layout) {
  const auto [dims, values] = image_to_npy(image, layout);
  std::string text;
  for (const auto d : dims) text += (text.empty() ? "" : ", ") + std::to_string(d);
  std::printf("output %s: (%s)%s\n", name.c_str(), text.c_str(),
              dims.size() == 2 ? "" : (layout == Layout::nchw ? " nchw" : " nhwc"));
  // Classifier-shaped: one score per class for each image.
  if (dims.size() != 2 || dims[1] < 2) return;
  const int classes = static_cast<int>(dims[1]);
  std::vector<int> order(classes);
  std::iota(order.begin(), order.end(), 0);
  const int top = std::min(5, classes);
  std::partial_sort(order.begin(), order.begin() + top, order.end(),
                    [&](int a, int b) { return values[a] > values[b]; });
  std::printf("top-%d of image 0:", top);
  for (int i = 0; i < top; ++i) std::printf(" %d (%.6g)", order[i], values[order[i]]);
  std::printf("\n");
}

}  // namespace

int run_command(int argc, char** argv) {
  cxxopts::Options options(
      "cnngraph run",
      "Runs one batch through MODEL (a saved graph or an ONNX file) and prints its output's "
      "shape and, for a classifier, the top-5 classes of the first image.");
  options.positional_help("MODEL");
  add_model_options(options);
  options.add_options()("input",
                        ".npy input (float32, float16 or float64; (N, C, H, W) in nchw, "
                        "(N, H, W, C) in nhwc, or (N, K)); without it a seeded random batch",
                        cxxopts::value<std::string>())(
      "output", "write the first output here as .npy float32 ((N, K), or 4-D in the layout)",
      cxxopts::value<std::string>())("model", "", cxxopts::value<std::string>());
  options.parse_positional({"model"});
  const auto args = parse_arguments(options, argc, argv);
  if (!args) return 0;
  const ModelSettings settings = parse_model_settings(*args);
  if (args->count("input") && (args->count("shape") || settings.batch_given))
    throw UsageError("--input gives the batch and shape: --batch and --shape are not used with it");

  Image input;
  if (args->count("input")) {
    const std::string file = (*args)["input"].as<std::string>();
    input = image_from_npy(read_npy(file), settings.layout, file);
  }
  const int batch = input.empty() ? settings.batch : input.shape().batch;
  const Model model = load_model(settings.model, batch);
  if (input.empty()) {
    input = random_image(input_shape(model, settings), settings.seed);
  } else if (model.inputs.size() != 1) {
    input_shape(model, settings);  // refuses, naming the count
  }
  check_input_shape(model, input.shape());
  Graph graph(settings.device, model.outputs, std::vector<bool>(model.outputs.size(), true),
              settings.graph_options);
  const Results results = graph.run({input});
  std::printf("model %s on %s, input %s\n", settings.model.c_str(), settings.device.name().c_str(),
              to_string(input.shape()).c_str());
  for (std::size_t i = 0; i < results.images.size(); ++i)
    print_output(model.output_names[i], results.images[i], settings.layout);
  if (args->count("output")) {
    const std::string file = (*args)["output"].as<std::string>();
    const auto [dims, values] = image_to_npy(results.images[0], settings.layout);
    write_npy(file, dims, values);
    std::printf("wrote %s\n", file.c_str());
  }
  return 0;
}

}  // namespace cnngraph::cli
