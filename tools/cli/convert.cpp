// cnngraph convert: an ONNX model to a saved graph.
#include <cstdio>

#include "cnngraph/saved_graph.hpp"
#include "commands.hpp"
#include "model.hpp"

namespace cnngraph::cli {

int convert_command(int argc, char** argv) {
  cxxopts::Options options(
      "cnngraph convert",
      "Converts an ONNX model to a saved graph (docs/saved-graphs.md): its outputs, nodes and "
      "weights in one safetensors file that cnngraph run and load_graph read without the ONNX "
      "importer. The saved graph does not record the input size: it is printed here, for "
      "--shape.");
  options.positional_help("MODEL.onnx OUTPUT.safetensors");
  options.add_options()("h,help", "show this help")("model", "", cxxopts::value<std::string>())(
      "out", "", cxxopts::value<std::string>());
  options.parse_positional({"model", "out"});
  const auto args = parse_arguments(options, argc, argv);
  if (!args) return 0;
  if (!args->count("model") || !args->count("out"))
    throw UsageError("convert takes MODEL.onnx and OUTPUT.safetensors");
  const std::string in = (*args)["model"].as<std::string>(), out = (*args)["out"].as<std::string>();
  if (detect_model_format(in) != ModelFormat::onnx)
    throw DataSourceError(in + ": is a saved graph already, not an ONNX model");
  const Model model = load_model(in, 1);
  try {
    save_graph(out, model.outputs);
  } catch (const InvalidArgument& e) {
    // The importer gives convolutions and pools with ONNX pads a padding callback, which a
    // saved graph cannot hold (docs/cli.md).
    throw Unsupported("cannot convert " + in + " to a saved graph: " + e.what());
  }
  std::printf("wrote %s: %zu output(s)\n", out.c_str(), model.outputs.size());
  for (std::size_t i = 0; i < model.inputs.size(); ++i) {
    const ImageShape& s = *model.input_shapes[i];
    if (s.height == 1 && s.width == 1) {
      std::printf("input '%s': %d values (--shape %d)\n", model.inputs[i]->handle.c_str(),
                  s.channels, s.channels);
    } else {
      std::printf("input '%s': %d x %d x %d (--shape %d,%d,%d in nchw)\n",
                  model.inputs[i]->handle.c_str(), s.height, s.width, s.channels, s.channels,
                  s.height, s.width);
    }
  }
  return 0;
}

}  // namespace cnngraph::cli
