// cnngraph describe: the compiled graph (Graph::describe) of a model.
#include <cstdio>

#include "commands.hpp"
#include "model.hpp"

namespace cnngraph::cli {

int describe_command(int argc, char** argv) {
  cxxopts::Options options(
      "cnngraph describe",
      "Prints MODEL's graph as compiled for the device and input size: its steps, shapes, "
      "fused groups and memory (Graph::describe). A saved graph without --shape prints its "
      "node list alone.");
  options.positional_help("MODEL");
  add_model_options(options);
  options.add_options()("dot", "print the graph in Graphviz instead")(
      "model", "", cxxopts::value<std::string>());
  options.parse_positional({"model"});
  const auto args = parse_arguments(options, argc, argv);
  if (!args) return 0;
  const ModelSettings settings = parse_model_settings(*args);
  const Model model = load_model(settings.model, settings.batch);
  Graph graph(settings.device, model.outputs, std::vector<bool>(model.outputs.size(), true),
              settings.graph_options);
  const bool shape_known =
      model.inputs.size() == 1 && (settings.shape || model.input_shapes[0].has_value());
  if (shape_known) {
    const ImageShape shape = input_shape(model, settings);
    check_input_shape(model, shape);
    graph.compile({shape});
  }
  if (args->count("dot")) {
    std::printf("%s", graph.to_dot().c_str());
    return 0;
  }
  std::printf("model %s (%s), %zu input(s), %zu output(s)\n", settings.model.c_str(),
              model.format == ModelFormat::onnx ? "ONNX" : "saved graph", model.inputs.size(),
              model.outputs.size());
  std::printf("%s", graph.describe().c_str());
  if (!shape_known) std::printf("(not compiled: give --shape C,H,W for the compiled graph)\n");
  return 0;
}

}  // namespace cnngraph::cli
