// The ONNX importer's internals: the model loader, the values a conversion passes between
// operators, and the table of operator converters.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cnngraph/onnx.hpp"

namespace cnngraph::onnx::detail {

// A converter throws this for a node it cannot convert; the importer collects them all.
struct Refusal {
  std::string reason;
};

// Reads and checks the model file; returns the default domain's opset.
::onnx::ModelProto load_model(const std::filesystem::path& path, std::int64_t& opset);

// The elements of an initializer or Constant, from its own fields, raw data or external
// data (a file next to the model, within `folder`). Refusal for other data types.
std::vector<float> tensor_floats(const ::onnx::TensorProto& tensor,
                                 const std::filesystem::path& folder);
std::vector<std::int64_t> tensor_ints(const ::onnx::TensorProto& tensor,
                                      const std::filesystem::path& folder);

// An ONNX tensor the graph computes, as a cnngraph image of channels x height x width (the
// ONNX dims without the batch).
struct Value {
  std::shared_ptr<ImageNode> image;
  int channels = 0, height = 0, width = 0;
  // An ONNX 2-D tensor [N, channels * height * width]: a Flatten (or Reshape to [N, -1]) of
  // this map. The image keeps the map itself, in NHWC order; a Gemm reading it permutes
  // its weights from ONNX's NCHW flattening order.
  bool flat = false;
};

struct Context {
  std::int64_t opset = 0;
  const ImportOptions& options;
  std::filesystem::path folder;
  std::map<std::string, Value> values;
  std::map<std::string, const ::onnx::TensorProto*> constants;  // initializers and Constants
  std::deque<::onnx::TensorProto> folded;                       // the constants folded at import
  std::map<std::string, std::string> weight_users;  // weight initializer -> its first node
  ImportedModel& model;
};

// Folds a Constant, a Shape of a computed tensor, or a Gather, Unsqueeze, Squeeze, Concat or
// Identity of constants into a constant; false for a node that is none of these.
bool fold_constant(const ::onnx::NodeProto& node, Context& context);
bool is_foldable(const std::string& op_type);

using Converter = std::vector<Value> (*)(const ::onnx::NodeProto& node, Context& context);
// The converter of `op_type` in the default domain, or null.
Converter find_converter(const std::string& op_type);

// OIHW (ONNX's convolution weights) to OHWI.
std::vector<float> oihw_to_ohwi(const std::vector<float>& w, int o, int i, int h, int wd);
// A Gemm's weights (matrix `b`, K x O, or O x K when `transposed`) for a fully connected
// layer reading a channels x height x width map in NHWC order, where ONNX's K index is
// NCHW's c * height * width + y * width + x. Scaled by alpha.
std::vector<float> gemm_to_ohwi(const std::vector<float>& b, bool transposed, int outputs,
                                int channels, int height, int width, float alpha);
// One axis of an ONNX window: the result size for explicit pads (explicit_result_size in
// the library's padding.hpp, in int).
int window_result_size(int in, int dilated_kernel, int stride, int pad_before, int pad_after,
                       bool ceil_mode);

}  // namespace cnngraph::onnx::detail
