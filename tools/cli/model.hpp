// What the cnngraph program's subcommands share: reading a model (a saved graph or an ONNX
// file, told apart by content), the device, precision, layout and input-shape options, and
// the usage errors that exit with code 2.
#pragma once

#include <chrono>
#include <cnngraph/cnngraph.hpp>
#include <cxxopts.hpp>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "npy.hpp"

namespace cnngraph::cli {

// A malformed command line (unknown option, bad value, missing argument): exit code 2.
// Every other failure is a cnngraph::Error or std::exception: exit code 1.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class ModelFormat { saved_graph, onnx };

// A saved graph is a safetensors file (an 8-byte little-endian header length, then a JSON
// object); an ONNX model is a protobuf ModelProto. Throws DataSourceError for a missing
// file or one that is neither.
ModelFormat detect_model_format(const std::filesystem::path& path);

// Whether this program was built with the ONNX importer (cnngraph::onnx).
bool onnx_available();

struct Model {
  ModelFormat format = ModelFormat::saved_graph;
  std::vector<std::shared_ptr<ImageNode>> inputs;
  // The size of each input as the model declares it (ONNX; batch = the batch asked for).
  // A saved graph records none.
  std::vector<std::optional<ImageShape>> input_shapes;
  std::vector<std::shared_ptr<ImageNode>> outputs;
  std::vector<std::string> output_names;
};

// Reads a model; `batch` is an ONNX model's symbolic batch. An ONNX file in a build without
// the importer is an Unsupported error saying so.
Model load_model(const std::filesystem::path& path, int batch);

enum class Layout { nchw, nhwc };

// The options run, bench and describe share.
struct ModelSettings {
  std::string model;
  Device device = Device::cpu_reference();
  GraphOptions graph_options;
  Layout layout = Layout::nchw;
  int batch = 1;
  bool batch_given = false;
  std::optional<std::vector<int>> shape;  // --shape, in layout order
  unsigned seed = 1;
};
void add_model_options(cxxopts::Options& options);
ModelSettings parse_model_settings(const cxxopts::ParseResult& args);

// The shape of the model's only input: --shape with --batch, else the model's own with
// --batch; a UsageError when neither says it, or the model has more than one input.
ImageShape input_shape(const Model& model, const ModelSettings& settings);
// An npy array as an input image: (N, C, H, W) or (N, H, W, C) per the layout, or (N, K).
Image image_from_npy(const NpyArray& array, Layout layout, const std::string& name);
// Seeded uniform [0, 1) values.
Image random_image(ImageShape shape, unsigned seed);
// An image as npy dimensions and values: (N, K) when H = W = 1, else 4-D in the layout.
std::pair<std::vector<std::int64_t>, std::vector<float>> image_to_npy(const Image& image,
                                                                      Layout layout);
// Checks the input against the model's declared size (ONNX), naming both.
void check_input_shape(const Model& model, const ImageShape& shape);

// Parses a subcommand's arguments; --help prints and returns nullopt (exit 0).
std::optional<cxxopts::ParseResult> parse_arguments(cxxopts::Options& options, int argc,
                                                    char** argv);
// Milliseconds since `begin`.
double milliseconds_since(std::chrono::steady_clock::time_point begin);

}  // namespace cnngraph::cli
