// Constants a model computes from shapes (PyTorch's x.view(x.size(0), -1) exports as
// Shape -> Gather -> Unsqueeze -> Concat -> Reshape): folded at import into int64 tensors.
// A Shape's batch entry folds to 0, which a Reshape reads as "keep this dim": the only use
// of a batch size that the importer takes. An Identity of a constant is that constant.
#include <algorithm>

#include "onnx/importer.hpp"

namespace cnngraph::onnx::detail {
namespace {

::onnx::TensorProto& add_ints(Context& context, const std::string& name,
                              std::vector<std::int64_t> dims,
                              const std::vector<std::int64_t>& values) {
  auto& t = context.folded.emplace_back();
  t.set_name(name);
  t.set_data_type(::onnx::TensorProto::INT64);
  for (auto d : dims) t.add_dims(d);
  for (auto v : values) t.add_int64_data(v);
  context.constants[name] = &t;
  return t;
}

const ::onnx::TensorProto* constant(const ::onnx::NodeProto& node, const Context& context, int i) {
  if (node.input_size() <= i || node.input(i).empty()) return nullptr;
  const auto it = context.constants.find(node.input(i));
  return it == context.constants.end() ? nullptr : it->second;
}

bool all_constant(const ::onnx::NodeProto& node, const Context& context) {
  for (int i = 0; i < node.input_size(); ++i)
    if (!node.input(i).empty() && !constant(node, context, i)) return false;
  return node.input_size() > 0;
}

std::vector<std::int64_t> dims_of(const ::onnx::TensorProto& t) {
  return {t.dims().begin(), t.dims().end()};
}

std::vector<std::int64_t> axes_of(const ::onnx::NodeProto& node, const Context& context) {
  if (context.opset >= 13) {
    const auto* axes = constant(node, context, 1);
    if (!axes) throw Refusal{"axes must be a constant"};
    return tensor_ints(*axes, context.folder);
  }
  for (const auto& a : node.attribute())
    if (a.name() == "axes") return {a.ints().begin(), a.ints().end()};
  throw Refusal{"axes are missing"};
}

}  // namespace

bool is_foldable(const std::string& op_type) {
  for (const char* op :
       {"Constant", "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Identity"})
    if (op_type == op) return true;
  return false;
}

bool fold_constant(const ::onnx::NodeProto& node, Context& context) {
  const std::string& op = node.op_type();
  const std::string out = node.output_size() ? node.output(0) : "";
  if (op == "Constant") {
    if (node.attribute_size() != 1 || node.attribute(0).name() != "value")
      throw Refusal{"only a Constant with a tensor 'value' is supported"};
    auto& t = context.folded.emplace_back(node.attribute(0).t());
    context.constants[out] = &t;
    return true;
  }
  if (op == "Shape") {
    if (node.attribute_size() != 0) throw Refusal{"start and end are not supported"};
    const auto it = context.values.find(node.input(0));
    if (it == context.values.end()) return false;
    const Value& v = it->second;
    if (v.flat)
      add_ints(context, out, {2}, {0, static_cast<std::int64_t>(v.channels) * v.height * v.width});
    else
      add_ints(context, out, {4}, {0, v.channels, v.height, v.width});
    return true;
  }
  if (!all_constant(node, context)) return false;
  if (op == "Identity") {
    // PyTorch's TorchScript exporter aliases deduplicated initializers through Identity
    // nodes: the alias is the same constant.
    const auto* source = constant(node, context, 0);
    if (!source) return false;
    context.constants[out] = source;
    return true;
  }
  if (op == "Gather") {
    for (const auto& a : node.attribute())
      if (a.name() != "axis" || a.i() != 0) throw Refusal{"only axis 0 is supported"};
    const auto& data = *constant(node, context, 0);
    const auto values = tensor_ints(data, context.folder);
    if (data.dims_size() != 1) throw Refusal{"only 1-D data is folded"};
    const auto& index_tensor = *constant(node, context, 1);
    std::vector<std::int64_t> picked;
    for (auto i : tensor_ints(index_tensor, context.folder)) {
      if (i < 0) i += static_cast<std::int64_t>(values.size());
      if (i < 0 || i >= static_cast<std::int64_t>(values.size()))
        throw Refusal{"index " + std::to_string(i) + " is out of range"};
      picked.push_back(values[static_cast<std::size_t>(i)]);
    }
    add_ints(context, out, dims_of(index_tensor), picked);
    return true;
  }
  if (op == "Unsqueeze" || op == "Squeeze") {
    const auto& data = *constant(node, context, 0);
    const auto values = tensor_ints(data, context.folder);
    auto dims = dims_of(data);
    auto axes = axes_of(node, context);
    if (op == "Unsqueeze") {
      const auto rank = static_cast<std::int64_t>(dims.size() + axes.size());
      for (auto& a : axes) a = a < 0 ? a + rank : a;
      std::sort(axes.begin(), axes.end());
      for (auto a : axes) {
        if (a < 0 || a > static_cast<std::int64_t>(dims.size())) throw Refusal{"bad axis"};
        dims.insert(dims.begin() + a, 1);
      }
    } else {
      std::vector<std::int64_t> kept;
      for (std::size_t i = 0; i < dims.size(); ++i)
        if (dims[i] != 1) kept.push_back(dims[i]);
      dims = kept;
    }
    add_ints(context, out, dims, values);
    return true;
  }
  if (op == "Concat") {
    std::vector<std::int64_t> values;
    for (int i = 0; i < node.input_size(); ++i) {
      const auto& t = *constant(node, context, i);
      if (t.dims_size() != 1) throw Refusal{"only 1-D constants are concatenated"};
      const auto v = tensor_ints(t, context.folder);
      values.insert(values.end(), v.begin(), v.end());
    }
    add_ints(context, out, {static_cast<std::int64_t>(values.size())}, values);
    return true;
  }
  return false;
}

}  // namespace cnngraph::onnx::detail
