// ONNX import: builds a node graph from an ONNX model file (component cnngraph::onnx,
// docs/onnx.md). The model's initializers become data sources; ONNX's NCHW weights are
// converted to cnngraph's NHWC layout once, here.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cnngraph/batch_normalization_source.hpp"
#include "cnngraph/data_source.hpp"
#include "cnngraph/image.hpp"
#include "cnngraph/nodes.hpp"
#include "cnngraph/optimizer.hpp"

namespace cnngraph::onnx {

struct ImportOptions {
  // Weights in TrainableDataSource and batch norms with an optimizer, so that
  // training_graph on an imported model trains them; otherwise ArrayDataSource weights and
  // batch norms with fixed parameters (training_style none).
  bool trainable = false;
  // The optimizer of every trainable source; null means SgdOptimizer with its defaults.
  std::shared_ptr<const Optimizer> optimizer;
  // The batch of an input whose batch dimension is symbolic, for input_shapes.
  int batch = 1;
};

struct ImportedModel {
  // The graph inputs, in the model's order; each handle is the ONNX input's name.
  std::vector<std::shared_ptr<ImageNode>> inputs;
  // Their sizes (batch from the model, or ImportOptions::batch when symbolic). An ONNX
  // input [N, C, H, W] is an image of H x W x C; [N, K] is 1 x 1 x K.
  std::vector<ImageShape> input_shapes;
  // The model's outputs, in its order, and their ONNX names. An output [N, C, H, W] reads
  // back in ONNX order through Image::to_nchw(), an output [N, K] through to_floats().
  std::vector<std::shared_ptr<ImageNode>> outputs;
  std::vector<std::string> output_names;
  // Every convolution and fully connected layer's weights (OHWI), by the ONNX name of its
  // weight initializer.
  std::map<std::string, std::shared_ptr<ConvolutionDataSource>> weights;
  // Every batch normalization's parameters, by the ONNX node's name (or its output's).
  std::map<std::string, std::shared_ptr<BatchNormalizationDataSource>> batch_normalizations;
  // The version of the default ONNX operator set the model imports.
  std::int64_t opset = 0;
};

// Reads, checks (ONNX's checker) and converts the
// model at `path`. Throws DataSourceError for a missing or malformed file or external data
// that cannot be read or lies outside the model's folder; Unsupported for an opset outside
// 7 to 21, and for unsupported operators, attributes or data types, naming every such node
// of the model (its name, op type and the reason) in one message.
ImportedModel import(const std::filesystem::path& path, const ImportOptions& options = {});

}  // namespace cnngraph::onnx
