// cnngraph::onnx::import: loads the model, makes its inputs, converts its nodes in order
// through the converter table, and reports every node it cannot convert at once.
#include <algorithm>
#include <limits>
#include <set>

#include "cnngraph/errors.hpp"
#include "onnx/importer.hpp"

namespace cnngraph::onnx {

namespace {

struct InputShape {
  ImageShape shape;
  bool flat = false;
};

InputShape input_shape(const ::onnx::ValueInfoProto& input, int batch) {
  const auto& type = input.type();
  if (!type.has_tensor_type() || type.tensor_type().elem_type() != ::onnx::TensorProto::FLOAT)
    throw detail::Refusal{"only FLOAT tensor inputs are supported"};
  const auto& shape = type.tensor_type().shape();
  const auto dim = [&](int i) -> int {
    const auto& d = shape.dim(i);
    if (!d.has_dim_value()) {
      if (i == 0) return batch;
      throw detail::Refusal{"dimension " + std::to_string(i) + " is not a fixed size"};
    }
    if (d.dim_value() < 1 || d.dim_value() > (1 << 24))
      throw detail::Refusal{"dimension " + std::to_string(i) + " is " +
                            std::to_string(d.dim_value())};
    return static_cast<int>(d.dim_value());
  };
  if (shape.dim_size() == 4) {
    const InputShape s{{dim(0), dim(2), dim(3), dim(1)}, false};
    const long double elements =
        static_cast<long double>(s.shape.channels) * s.shape.height * s.shape.width;
    if (elements > static_cast<long double>(std::numeric_limits<int>::max()))
      throw detail::Refusal{"an image of more than 2^31 elements"};
    return s;
  }
  if (shape.dim_size() == 2) return {{dim(0), 1, 1, dim(1)}, true};
  throw detail::Refusal{"only inputs [N, C, H, W] and [N, K] are supported, not rank " +
                        std::to_string(shape.dim_size())};
}

}  // namespace

ImportedModel import(const std::filesystem::path& path, const ImportOptions& options) {
  if (options.batch < 1)
    throw InvalidArgument("onnx::import: ImportOptions::batch " + std::to_string(options.batch) +
                          " is not positive");
  ImportedModel model;
  const ::onnx::ModelProto proto = detail::load_model(path, model.opset);
  const auto& graph = proto.graph();
  detail::Context context{model.opset, options, path.parent_path(), {}, {}, {}, {}, model};
  for (const auto& t : graph.initializer()) context.constants[t.name()] = &t;

  std::vector<std::string> problems;
  std::set<std::string> unavailable;  // outputs of nodes that were refused
  const auto refuse = [&](const std::string& what, const std::string& reason) {
    problems.push_back(what + ": " + reason);
  };
  for (const auto& input : graph.input()) {
    if (context.constants.count(input.name())) continue;  // an initializer listed as input
    try {
      const auto s = input_shape(input, options.batch);
      auto image = std::make_shared<ImageNode>(input.name());
      context.values[input.name()] =
          detail::Value{image, s.shape.channels, s.shape.height, s.shape.width, s.flat};
      model.inputs.push_back(image);
      model.input_shapes.push_back(s.shape);
    } catch (const detail::Refusal& r) {
      refuse("input '" + input.name() + "'", r.reason);
      unavailable.insert(input.name());
    }
  }
  for (const auto& node : graph.node()) {
    const std::string first_output = node.output_size() ? node.output(0) : "";
    const std::string what = "node '" + (node.name().empty() ? first_output : node.name()) + "' (" +
                             node.op_type() + ")";
    try {
      if (node.output_size() == 0) throw detail::Refusal{"it has no outputs"};
      if (!node.domain().empty() && node.domain() != "ai.onnx")
        throw detail::Refusal{"domain '" + node.domain() + "' is not supported"};
      const auto convert = detail::find_converter(node.op_type());
      if (std::any_of(node.input().begin(), node.input().end(),
                      [&](const std::string& i) { return unavailable.count(i) > 0; })) {
        for (const auto& o : node.output()) unavailable.insert(o);
        if (!convert && !detail::is_foldable(node.op_type()))
          throw detail::Refusal{"operator not supported"};
        continue;  // its inputs failed; the nodes they came from are listed
      }
      if (detail::fold_constant(node, context)) continue;
      if (!convert)
        throw detail::Refusal{detail::is_foldable(node.op_type())
                                  ? "folded only on constants (a computed tensor here)"
                                  : "operator not supported"};
      auto outputs = convert(node, context);
      for (const auto& v : outputs) {
        // Each factor fits an int; their product must too (a fully connected layer's K).
        const long double elements = static_cast<long double>(v.channels) * v.height * v.width;
        if (elements > static_cast<long double>(std::numeric_limits<int>::max()))
          throw detail::Refusal{"its result of " + std::to_string(v.channels) + " x " +
                                std::to_string(v.height) + " x " + std::to_string(v.width) +
                                " has more than 2^31 elements"};
      }
      for (std::size_t i = 0; i < outputs.size(); ++i)
        context.values[node.output(static_cast<int>(i))] = std::move(outputs[i]);
    } catch (const detail::Refusal& r) {
      refuse(what, r.reason);
      for (const auto& o : node.output()) unavailable.insert(o);
    } catch (const Error& e) {
      // A node the library refuses (a descriptor it rejects, say): listed like the others.
      refuse(what, e.what());
      for (const auto& o : node.output()) unavailable.insert(o);
    }
  }
  for (const auto& output : graph.output()) {
    if (unavailable.count(output.name())) continue;
    const auto it = context.values.find(output.name());
    if (it == context.values.end()) {
      refuse("output '" + output.name() + "'", "is not computed from the inputs");
      continue;
    }
    if (it->second.flat && it->second.height * it->second.width != 1) {
      refuse("output '" + output.name() + "'",
             "is a flattened map, whose NCHW order cnngraph's NHWC images do not keep");
      continue;
    }
    auto image = it->second.image;
    // A graph computes its results: an output that is an input (through Identity, say) is
    // passed through a neuron of type none.
    if (std::find(model.inputs.begin(), model.inputs.end(), image) != model.inputs.end()) {
      auto pass = std::make_shared<NeuronNode>(image, NeuronDescriptor::make(NeuronType::none));
      pass->label = output.name();
      image = pass->result_image();
    }
    model.outputs.push_back(image);
    model.output_names.push_back(output.name());
  }
  if (!problems.empty()) {
    std::string message = "ONNX model " + path.string() + ": " + std::to_string(problems.size()) +
                          " unsupported " + (problems.size() == 1 ? "part" : "parts") + ":";
    for (const auto& p : problems) message += "\n  " + p;
    throw Unsupported(message);
  }
  return model;
}

}  // namespace cnngraph::onnx
