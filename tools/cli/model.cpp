// Reading models and the options the subcommands share (model.hpp).
#include "model.hpp"

#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include "cnngraph/saved_graph.hpp"
#ifdef CNNGRAPH_CLI_HAS_ONNX
#include "cnngraph/onnx.hpp"
#endif

namespace cnngraph::cli {

namespace fs = std::filesystem;

ModelFormat detect_model_format(const fs::path& path) {
  const std::string name = path.string();
  std::error_code error;
  if (!fs::is_regular_file(path, error))
    throw DataSourceError(name + ": no such file (or not a regular file)");
  const std::uintmax_t size = fs::file_size(path, error);
  std::ifstream in(path, std::ios::binary);
  unsigned char head[9] = {};
  if (error || !in || !in.read(reinterpret_cast<char*>(head), size >= 9 ? 9 : 1))
    throw DataSourceError(name + ": cannot read it");
  std::uint64_t header = 0;
  for (int i = 7; i >= 0; --i) header = header << 8 | head[i];
  if (size >= 9 && head[8] == '{' && header <= size - 8) return ModelFormat::saved_graph;
  // A ModelProto starts with a field tag: a small field number and wire type 0 (varint) or
  // 2 (bytes); ONNX writers put ir_version (field 1, tag 0x08) first.
  const int wire_type = head[0] & 7, field = head[0] >> 3;
  if ((wire_type == 0 || wire_type == 2) && field >= 1 && field <= 20) return ModelFormat::onnx;
  throw DataSourceError(name +
                        ": neither a saved graph (safetensors) nor an ONNX model (protobuf)");
}

bool onnx_available() {
#ifdef CNNGRAPH_CLI_HAS_ONNX
  return true;
#else
  return false;
#endif
}

Model load_model(const fs::path& path, int batch) {
  Model model;
  model.format = detect_model_format(path);
  if (model.format == ModelFormat::saved_graph) {
    SavedGraph saved = load_graph(path);
    model.inputs = saved.sources;
    model.input_shapes.resize(saved.sources.size());
    model.outputs = saved.results;
    for (std::size_t i = 0; i < saved.results.size(); ++i)
      model.output_names.push_back("result " + std::to_string(i));
    return model;
  }
#ifdef CNNGRAPH_CLI_HAS_ONNX
  onnx::ImportOptions options;
  options.batch = batch;
  onnx::ImportedModel imported = onnx::import(path, options);
  model.inputs = imported.inputs;
  for (ImageShape shape : imported.input_shapes) {
    shape.batch = batch;
    model.input_shapes.push_back(shape);
  }
  model.outputs = imported.outputs;
  model.output_names = imported.output_names;
  return model;
#else
  (void)batch;
  throw Unsupported(path.string() +
                    ": an ONNX model, and this cnngraph program was built without the ONNX "
                    "importer (the cnngraph::onnx component: CNNGRAPH_WITH_ONNX with "
                    "libonnx-dev and protobuf)");
#endif
}

void add_model_options(cxxopts::Options& options) {
  options.add_options()("device", "cpu (oneDNN), cuda or reference (plain loops, the oracle)",
                        cxxopts::value<std::string>()->default_value("cpu"))(
      "precision", "f32, f16 or bf16 (GraphOptions::precision)",
      cxxopts::value<std::string>()->default_value("f32"))(
      "batch", "images per run", cxxopts::value<int>()->default_value("1"))(
      "shape",
      "one input image's size in layout order: C,H,W (nchw), H,W,C (nhwc), or K for a vector; "
      "needed for a saved graph, which does not record it",
      cxxopts::value<std::string>())("layout", "nchw or nhwc: the order of .npy arrays and --shape",
                                     cxxopts::value<std::string>()->default_value("nchw"))(
      "seed", "seed of the random input", cxxopts::value<unsigned>()->default_value("1"))(
      "h,help", "show this help");
}

namespace {

std::vector<int> parse_shape(const std::string& text) {
  std::vector<int> dims;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    std::size_t used = 0;
    long value = 0;
    try {
      value = std::stol(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || value <= 0 || value > 1 << 24)
      throw UsageError("--shape: '" + item + "' is not a positive size (in '" + text + "')");
    dims.push_back(static_cast<int>(value));
  }
  if (dims.size() != 1 && dims.size() != 3)
    throw UsageError("--shape takes 3 sizes (C,H,W or H,W,C) or 1 (K), got '" + text + "'");
  return dims;
}

}  // namespace

ModelSettings parse_model_settings(const cxxopts::ParseResult& args) {
  ModelSettings s;
  if (!args.count("model")) throw UsageError("no MODEL given");
  s.model = args["model"].as<std::string>();
  const std::string device = args["device"].as<std::string>();
  if (device == "cpu") {
    s.device = Device::cpu();
  } else if (device == "reference") {
    s.device = Device::cpu_reference();
  } else if (device == "cuda") {
    s.device = Device::cuda(0);  // DeviceError (exit 1) where there is none
  } else {
    throw UsageError("--device must be cpu, cuda or reference, got '" + device + "'");
  }
  const std::string precision = args["precision"].as<std::string>();
  if (precision == "f32") {
    s.graph_options.precision = Precision::f32;
  } else if (precision == "f16") {
    s.graph_options.precision = Precision::f16;
  } else if (precision == "bf16") {
    s.graph_options.precision = Precision::bf16;
  } else {
    throw UsageError("--precision must be f32, f16 or bf16, got '" + precision + "'");
  }
  const std::string layout = args["layout"].as<std::string>();
  if (layout == "nchw") {
    s.layout = Layout::nchw;
  } else if (layout == "nhwc") {
    s.layout = Layout::nhwc;
  } else {
    throw UsageError("--layout must be nchw or nhwc, got '" + layout + "'");
  }
  s.batch = args["batch"].as<int>();
  s.batch_given = args.count("batch") > 0;
  if (s.batch <= 0 || s.batch > 1 << 20)
    throw UsageError("--batch must be in [1, 1048576], got " + std::to_string(s.batch));
  if (args.count("shape")) s.shape = parse_shape(args["shape"].as<std::string>());
  s.seed = args["seed"].as<unsigned>();
  return s;
}

ImageShape input_shape(const Model& model, const ModelSettings& settings) {
  if (model.inputs.size() != 1)
    throw Unsupported(settings.model + " has " + std::to_string(model.inputs.size()) +
                      " inputs; the cnngraph program feeds models of one input");
  if (settings.shape) {
    const std::vector<int>& d = *settings.shape;
    if (d.size() == 1) return {settings.batch, 1, 1, d[0]};
    return settings.layout == Layout::nchw ? ImageShape{settings.batch, d[1], d[2], d[0]}
                                           : ImageShape{settings.batch, d[0], d[1], d[2]};
  }
  if (model.input_shapes[0]) {
    ImageShape shape = *model.input_shapes[0];
    shape.batch = settings.batch;
    return shape;
  }
  throw UsageError(settings.model +
                   " is a saved graph, which does not record its input size: give --shape "
                   "C,H,W (or --input FILE.npy for run)");
}

Image image_from_npy(const NpyArray& array, Layout layout, const std::string& name) {
  const auto& d = array.shape;
  std::string dims;
  for (const auto v : d) dims += (dims.empty() ? "" : ", ") + std::to_string(v);
  for (const auto v : d) {
    if (v <= 0) throw DataSourceError(name + ": an input of shape (" + dims + ") has no elements");
  }
  const auto as_int = [](std::int64_t v) { return static_cast<int>(v); };  // checked by the reader
  if (d.size() == 2) return Image::from_floats({as_int(d[0]), 1, 1, as_int(d[1])}, array.values);
  if (d.size() != 4)
    throw DataSourceError(name + ": an input of shape (" + dims +
                          "); inputs have 4 dimensions (N, C, H, W or N, H, W, C) or 2 (N, K)");
  if (layout == Layout::nchw)
    return Image::from_nchw({as_int(d[0]), as_int(d[2]), as_int(d[3]), as_int(d[1])}, array.values);
  return Image::from_floats({as_int(d[0]), as_int(d[1]), as_int(d[2]), as_int(d[3])}, array.values);
}

Image random_image(ImageShape shape, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::vector<float> values(shape.elements());
  for (float& v : values) v = uniform(rng);
  return Image::from_floats(shape, values);
}

std::pair<std::vector<std::int64_t>, std::vector<float>> image_to_npy(const Image& image,
                                                                      Layout layout) {
  const ImageShape& s = image.shape();
  if (s.height == 1 && s.width == 1) return {{s.batch, s.channels}, image.to_floats()};
  if (layout == Layout::nchw) return {{s.batch, s.channels, s.height, s.width}, image.to_nchw()};
  return {{s.batch, s.height, s.width, s.channels}, image.to_floats()};
}

void check_input_shape(const Model& model, const ImageShape& shape) {
  if (model.input_shapes.empty() || !model.input_shapes[0]) return;
  ImageShape expected = *model.input_shapes[0];
  expected.batch = shape.batch;
  if (expected != shape)
    throw ShapeError("the input is " + to_string(shape) + " but the model's input '" +
                     model.inputs[0]->handle + "' is " + to_string(expected) +
                     " (n batch, h height, w width, c channels)");
}

std::optional<cxxopts::ParseResult> parse_arguments(cxxopts::Options& options, int argc,
                                                    char** argv) {
  cxxopts::ParseResult args;
  try {
    args = options.parse(argc, argv);
  } catch (const cxxopts::exceptions::exception& e) {
    throw UsageError(e.what());
  }
  if (args.count("help")) {
    std::cout << options.help() << "\n";
    return std::nullopt;
  }
  if (!args.unmatched().empty())
    throw UsageError("unexpected argument '" + args.unmatched()[0] + "'");
  return args;
}

double milliseconds_since(std::chrono::steady_clock::time_point begin) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - begin)
      .count();
}

}  // namespace cnngraph::cli
