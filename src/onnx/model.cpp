// Reading an ONNX model: the file, ONNX's checker, the opset, and the
// elements of its tensors (external data included).
#include <onnx/checker.h>
#include <onnx/defs/schema.h>

#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "cnngraph/errors.hpp"
#include "onnx/importer.hpp"

namespace cnngraph::onnx::detail {
namespace {

constexpr std::int64_t min_opset = 7;
constexpr std::int64_t max_opset = 21;
// The newest opset Debian's ONNX library (1.12) knows: its checker runs on models up to it;
// later operator changes are the converters' own business.
constexpr std::int64_t library_opset = 17;

std::string read_file(const std::filesystem::path& path, const std::string& what) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error))
    throw DataSourceError(what + " " + path.string() + ": no such file");
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (!in) throw DataSourceError(what + " " + path.string() + ": cannot be read");
  return std::move(bytes).str();
}

std::string type_name(int type) {
  return ::onnx::TensorProto_DataType_IsValid(type)
             ? ::onnx::TensorProto_DataType_Name(static_cast<::onnx::TensorProto_DataType>(type))
             : std::to_string(type);
}

struct ExternalData {
  std::filesystem::path file;
  long long offset = 0, length = -1;
  std::string where;
};

// Where a tensor's external data lies: refused unless inside the model's folder.
ExternalData external_data(const ::onnx::TensorProto& tensor, const std::filesystem::path& folder) {
  ExternalData data;
  std::string location;
  for (const auto& entry : tensor.external_data()) {
    try {
      if (entry.key() == "location") location = entry.value();
      if (entry.key() == "offset") data.offset = std::stoll(entry.value());
      if (entry.key() == "length") data.length = std::stoll(entry.value());
    } catch (const std::exception&) {
      throw DataSourceError("tensor " + tensor.name() + ": external data " + entry.key() + " '" +
                            entry.value() + "' is not a number");
    }
  }
  data.where = "tensor " + tensor.name() + ": external data '" + location + "'";
  const std::filesystem::path relative(location);
  if (location.empty()) throw DataSourceError(data.where + " has no location");
  if (relative.is_absolute() || relative.has_root_name())
    throw DataSourceError(data.where + " is an absolute path; it must lie in the model's folder");
  // Symbolic links resolved: a link out of the folder leaves it too.
  const auto base = std::filesystem::weakly_canonical(folder.empty() ? "." : folder);
  data.file = std::filesystem::weakly_canonical(base / relative);
  const auto [end, ignored] =
      std::mismatch(base.begin(), base.end(), data.file.begin(), data.file.end());
  if (end != base.end())
    throw DataSourceError(data.where + " leaves the model's folder " + base.string());
  return data;
}

// The raw little-endian bytes of a tensor: its raw_data, or its external data.
std::optional<std::string> raw_bytes(const ::onnx::TensorProto& tensor,
                                     const std::filesystem::path& folder) {
  if (tensor.data_location() != ::onnx::TensorProto::EXTERNAL) {
    if (tensor.has_raw_data()) return tensor.raw_data();
    return std::nullopt;
  }
  const auto [file, offset, length, where] = external_data(tensor, folder);
  const std::string bytes = read_file(file, where + ": file");
  if (offset < 0 || static_cast<unsigned long long>(offset) > bytes.size() ||
      (length >= 0 && static_cast<unsigned long long>(length) > bytes.size() - offset))
    throw DataSourceError(where + ": offset " + std::to_string(offset) + " and length " +
                          std::to_string(length) + " lie outside its " +
                          std::to_string(bytes.size()) + " bytes");
  return bytes.substr(offset, length < 0 ? std::string::npos : static_cast<std::size_t>(length));
}

std::size_t element_count(const ::onnx::TensorProto& tensor) {
  std::size_t n = 1;
  for (auto d : tensor.dims()) {
    if (d < 0 || d > (1LL << 40))
      throw Refusal{"tensor " + tensor.name() + " has dim " + std::to_string(d)};
    // Bounded so that the byte count cannot wrap: no file holds 2^40 elements.
    if (d != 0 && n > (std::size_t{1} << 40) / static_cast<std::size_t>(d))
      throw Refusal{"tensor " + tensor.name() + " has more than 2^40 elements"};
    n *= static_cast<std::size_t>(d);
  }
  return n;
}

template <typename T>
std::vector<T> from_raw(const std::string& raw, const ::onnx::TensorProto& tensor) {
  const std::size_t n = element_count(tensor);
  if (raw.size() != n * sizeof(T))
    throw DataSourceError("tensor " + tensor.name() + ": " + std::to_string(raw.size()) +
                          " bytes of data for " + std::to_string(n) + " elements");
  std::vector<T> out(n);
  if (n) std::memcpy(out.data(), raw.data(), raw.size());
  return out;
}

// Operators of the default domain whose schema after opset 17 (to 21) takes inputs or
// attributes that ONNX 1.12's opset 17 schema refuses (axes as an input in 18, dilations in
// 19, and the like); operators the library does not know at all are found by lookup.
bool changed_after_library(const ::onnx::NodeProto& node) {
  static const std::set<std::string> changed{"AveragePool",
                                             "Pad",
                                             "ReduceL1",
                                             "ReduceL2",
                                             "ReduceLogSum",
                                             "ReduceLogSumExp",
                                             "ReduceMax",
                                             "ReduceMean",
                                             "ReduceMin",
                                             "ReduceProd",
                                             "ReduceSumSquare",
                                             "Split",
                                             "Resize",
                                             "LpPool",
                                             "ScatterElements",
                                             "ScatterND",
                                             "Col2Im",
                                             "CenterCropPad",
                                             "GroupNormalization",
                                             "DeformConv"};
  if (!node.domain().empty() && node.domain() != "ai.onnx") return false;
  return changed.count(node.op_type()) > 0 ||
         !::onnx::OpSchemaRegistry::Schema(node.op_type(), library_opset, "");
}

void stand_in_for_later_operators(::onnx::GraphProto& graph) {
  ::google::protobuf::RepeatedPtrField<::onnx::NodeProto> nodes;
  for (auto& node : *graph.mutable_node()) {
    if (!changed_after_library(node)) {
      *nodes.Add() = std::move(node);
      continue;
    }
    std::string source;
    for (const auto& i : node.input())
      if (!i.empty()) {
        source = i;
        break;
      }
    for (const auto& o : node.output()) {
      if (o.empty()) continue;
      auto* stand_in = nodes.Add();
      stand_in->set_name(node.name());
      stand_in->add_output(o);
      if (source.empty()) {
        // No input to pass on: a constant stands in.
        stand_in->set_op_type("Constant");
        auto* value = stand_in->add_attribute();
        value->set_name("value");
        value->set_type(::onnx::AttributeProto::TENSOR);
        value->mutable_t()->set_data_type(::onnx::TensorProto::FLOAT);
        value->mutable_t()->add_float_data(0.0f);
      } else {
        stand_in->set_op_type("Identity");
        stand_in->add_input(source);
      }
    }
  }
  graph.mutable_node()->Swap(&nodes);
}

}  // namespace

std::vector<float> tensor_floats(const ::onnx::TensorProto& tensor,
                                 const std::filesystem::path& folder) {
  if (tensor.data_type() != ::onnx::TensorProto::FLOAT)
    throw Refusal{"tensor " + tensor.name() + " has data type " + type_name(tensor.data_type()) +
                  " (cnngraph imports FLOAT weights)"};
  if (auto raw = raw_bytes(tensor, folder)) return from_raw<float>(*raw, tensor);
  std::vector<float> out(tensor.float_data().begin(), tensor.float_data().end());
  if (out.size() != element_count(tensor))
    throw DataSourceError("tensor " + tensor.name() + ": " + std::to_string(out.size()) +
                          " floats for " + std::to_string(element_count(tensor)) + " elements");
  return out;
}

std::vector<std::int64_t> tensor_ints(const ::onnx::TensorProto& tensor,
                                      const std::filesystem::path& folder) {
  if (tensor.data_type() != ::onnx::TensorProto::INT64)
    throw Refusal{"tensor " + tensor.name() + " has data type " + type_name(tensor.data_type()) +
                  " (INT64 expected)"};
  if (auto raw = raw_bytes(tensor, folder)) return from_raw<std::int64_t>(*raw, tensor);
  std::vector<std::int64_t> out(tensor.int64_data().begin(), tensor.int64_data().end());
  if (out.size() != element_count(tensor))
    throw DataSourceError("tensor " + tensor.name() + ": " + std::to_string(out.size()) +
                          " integers for " + std::to_string(element_count(tensor)) + " elements");
  return out;
}

::onnx::ModelProto load_model(const std::filesystem::path& path, std::int64_t& opset) {
  const std::string bytes = read_file(path, "ONNX model");
  ::onnx::ModelProto model;
  if (!model.ParseFromString(bytes))
    throw DataSourceError("ONNX model " + path.string() +
                          ": not a valid ModelProto (protobuf parsing failed)");
  opset = -1;
  for (const auto& entry : model.opset_import())
    if (entry.domain().empty() || entry.domain() == "ai.onnx") opset = entry.version();
  if (opset < 0)
    throw Unsupported("ONNX model " + path.string() +
                      ": imports no opset of the default domain (ai.onnx)");
  if (opset < min_opset || opset > max_opset)
    throw Unsupported("ONNX model " + path.string() + ": opset " + std::to_string(opset) +
                      " of the default domain; cnngraph imports opsets " +
                      std::to_string(min_opset) + " to " + std::to_string(max_opset));
  // ONNX's library checks a model up to the opset it knows: a later one is checked as that,
  // with the nodes whose operator is new or changed its inputs or attributes after it
  // standing in as Identity nodes (the converters read those by the model's own opset).
  ::onnx::ModelProto checked = model;
  if (opset > library_opset) {
    for (auto& entry : *checked.mutable_opset_import())
      if (entry.domain().empty() || entry.domain() == "ai.onnx") entry.set_version(library_opset);
    stand_in_for_later_operators(*checked.mutable_graph());
  }
  // Likewise the IR version: PyTorch 2.11 writes IR 10, which the library (IR 8) would refuse
  // though nothing this importer reads changed since.
  if (checked.ir_version() > ::onnx::IR_VERSION) checked.set_ir_version(::onnx::IR_VERSION);
  // The checker opens external data relative to the working folder: it is given the files
  // as this importer resolved (and confined) them.
  for (auto& tensor : *checked.mutable_graph()->mutable_initializer()) {
    if (tensor.data_location() != ::onnx::TensorProto::EXTERNAL) continue;
    const auto data = external_data(tensor, path.parent_path());
    for (auto& entry : *tensor.mutable_external_data())
      if (entry.key() == "location") entry.set_value(data.file.string());
  }
  try {
    ::onnx::checker::check_model(checked);
  } catch (const std::exception& e) {
    throw DataSourceError("ONNX model " + path.string() + " fails ONNX's checker: " + e.what());
  }
  // ONNX 1.12's shape inference is not run: it crashes on some malformed models (a Conv of a
  // 2-D input reads past its dims, found by fuzz/onnx_import_fuzzer.cpp). The converters
  // compute and check every shape themselves.
  return model;
}

}  // namespace cnngraph::onnx::detail
