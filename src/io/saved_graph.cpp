// Saved graphs (docs/saved-graphs.md): the graph's definition as JSON in the safetensors
// metadata, written from each node's attribute list, and the checkpoint tensors beside it.
#include "cnngraph/saved_graph.hpp"

#include <set>

#include "cnngraph/attributes.hpp"
#include "cnngraph/errors.hpp"
#include "cnngraph/loss.hpp"
#include "cnngraph/weights_file.hpp"
#include "graph/checkpoint.hpp"
#include "graph/structure.hpp"
#include "io/saved_node.hpp"
#include "ops/op.hpp"

namespace cnngraph {

namespace {

using nlohmann::json;

constexpr const char* kGraphKey = "cnngraph.graph";
constexpr const char* kVersionKey = "cnngraph.version";
// Beyond these a file is refused before anything is built.
constexpr std::size_t kMaxNodes = 1 << 20;
constexpr std::size_t kMaxSources = 1 << 16;
constexpr int kMaxJsonDepth = 16;

const char* regularization_name(RegularizationType type) {
  switch (type) {
    case RegularizationType::none:
      return "none";
    case RegularizationType::l1:
      return "l1";
    case RegularizationType::l2:
      return "l2";
  }
  return "?";
}

json optimizer_json(const Optimizer* optimizer) {
  if (!optimizer) return nullptr;
  const OptimizerDescriptor& d = optimizer->descriptor();
  json j = {{"name", optimizer->name()},
            {"learning_rate", d.learning_rate},
            {"gradient_rescale", d.gradient_rescale},
            {"apply_gradient_clipping", d.apply_gradient_clipping},
            {"gradient_clip_min", d.gradient_clip_min},
            {"gradient_clip_max", d.gradient_clip_max},
            {"regularization_type", regularization_name(d.regularization_type)},
            {"regularization_scale", d.regularization_scale}};
  if (const auto* sgd = dynamic_cast<const SgdOptimizer*>(optimizer)) {
    j["momentum"] = sgd->momentum();
    j["nesterov"] = sgd->nesterov();
  } else if (const auto* adam = dynamic_cast<const AdamOptimizer*>(optimizer)) {
    j["beta1"] = adam->beta1();
    j["beta2"] = adam->beta2();
    j["epsilon"] = adam->epsilon();
  } else if (const auto* rms = dynamic_cast<const RmsPropOptimizer*>(optimizer)) {
    j["decay"] = rms->decay();
    j["epsilon"] = rms->epsilon();
  } else {
    throw InvalidArgument("save_graph: optimizer '" + optimizer->name() +
                          "' is not one of the library's (sgd, adam, amsgrad, rmsprop)");
  }
  return j;
}

// Writes one node's attribute list as JSON.
class JsonAttributes : public AttributeVisitor {
 public:
  JsonAttributes(json& out, const std::map<const ImageNode*, json>& images,
                 const std::map<const FilterNode*, std::size_t>& nodes)
      : out_(out), images_(images), nodes_(nodes) {
    out_["inputs"] = json::array();
    out_["links"] = json::object();
    out_["attributes"] = json::object();
  }
  void node(const std::string& kind, const std::string& label) override {
    out_["kind"] = kind;
    out_["label"] = label;
  }
  void input(const std::string& name, const ImageNode& image) override {
    if (image.is_labels()) return;  // labels enter through Graph::run
    json ref = images_.at(&image);
    ref["role"] = name;
    out_["inputs"].push_back(std::move(ref));
  }
  void link(const std::string& name, const FilterNode& node) override {
    const auto found = nodes_.find(&node);
    if (found == nodes_.end()) {
      throw InvalidArgument("save_graph: " + node.display_name() + ", the '" + name +
                            "' of a saved node, is not in the saved graph");
    }
    out_["links"][name] = found->second;
  }
  void integer(const std::string& name, std::int64_t value) override {
    out_["attributes"][name] = value;
  }
  void number(const std::string& name, double value) override { out_["attributes"][name] = value; }
  void flag(const std::string& name, bool value) override { out_["attributes"][name] = value; }
  void text(const std::string& name, const std::string& value) override {
    out_["attributes"][name] = value;
  }
  void numbers(const std::string& name, const std::vector<float>& values) override {
    out_["attributes"][name] = values;
  }

 private:
  json& out_;
  const std::map<const ImageNode*, json>& images_;
  const std::map<const FilterNode*, std::size_t>& nodes_;
};

}  // namespace

void save_graph(const std::filesystem::path& path,
                const std::vector<std::shared_ptr<ImageNode>>& results) {
  if (results.empty()) throw InvalidArgument("save_graph: no result images");
  for (const auto& result : results) {
    if (!result) throw InvalidArgument("save_graph: a result image is null");
  }
  const detail::GraphStructure structure =
      detail::analyze_graph(results, std::vector<bool>(results.size(), true));
  json graph = {{"format", "cnngraph saved graph"}, {"version", kSavedGraphVersion}};
  std::map<const ImageNode*, json> images;
  json sources = json::array();
  for (const auto& source : structure.sources) {
    json s = {{"handle", source->handle}};
    if (source->format) s["format"] = to_string(*source->format);
    images[source.get()] = {{"source", sources.size()}};
    sources.push_back(std::move(s));
  }
  std::map<const FilterNode*, std::size_t> ids;
  json nodes = json::array();
  json weights = json::object(), normalizations = json::object();
  for (const auto& node : structure.order) {
    if (node->gradient_of()) {
      throw InvalidArgument("save_graph: " + node->display_name() +
                            " is a gradient node; save the forward graph (training_graph "
                            "rebuilds the gradients after loading)");
    }
    if (node->padding_policy.size == PaddingSize::custom) {  // explicit pads are saved
      throw InvalidArgument("save_graph: " + node->display_name() +
                            " has a custom padding callback, which cannot be saved");
    }
    json n;
    JsonAttributes visitor(n, images, ids);
    node->visit_attributes(visitor);
    if (const WeightedNode* weighted = node->weighted()) {
      const auto* trainable = dynamic_cast<const TrainableDataSource*>(weighted->weights().get());
      weights[weighted->weights()->label()] = {
          {"optimizer", optimizer_json(trainable ? trainable->optimizer().get() : nullptr)}};
    }
    if (const auto* bn = dynamic_cast<const BatchNormalizationNode*>(node.get())) {
      const auto& source = bn->data_source();
      normalizations[source->label()] = {{"optimizer", optimizer_json(source->optimizer().get())},
                                         {"momentum", source->momentum()},
                                         {"epsilon", source->parameters().epsilon}};
    }
    ids[node.get()] = nodes.size();
    images[node->result_image().get()] = {{"node", nodes.size()}};
    nodes.push_back(std::move(n));
  }
  json result_refs = json::array();
  for (const auto& result : results) result_refs.push_back(images.at(result.get()));
  graph["sources"] = std::move(sources);
  graph["nodes"] = std::move(nodes);
  graph["results"] = std::move(result_refs);
  graph["weights"] = std::move(weights);
  graph["normalizations"] = std::move(normalizations);

  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;
  detail::collect_checkpoint(structure, detail::ParameterStore(), tensors, metadata);
  metadata[kGraphKey] = graph.dump();
  metadata[kVersionKey] = std::to_string(kSavedGraphVersion);
  write_weights_file(path, tensors, metadata);
}

namespace {

class Loader {
 public:
  Loader(const std::filesystem::path& path, WeightsFileContents contents)
      : where_("saved graph " + path.string()), path_(path), contents_(std::move(contents)) {}

  SavedGraph load() {
    const auto version = contents_.metadata.find(kVersionKey);
    if (version == contents_.metadata.end()) {
      fail("has no '" + std::string(kVersionKey) + "' metadata: not a saved graph");
    }
    if (version->second != std::to_string(kSavedGraphVersion)) {
      fail("is format version '" + version->second.substr(0, 32) + "', this library reads " +
           std::to_string(kSavedGraphVersion));
    }
    const auto text = contents_.metadata.find(kGraphKey);
    if (text == contents_.metadata.end()) fail("has no '" + std::string(kGraphKey) + "' metadata");
    graph_ = parse(text->second);
    if (!graph_.is_object()) fail("the graph description is not a JSON object");
    weights_json_ = &member(graph_, "weights", json::value_t::object, "the graph");
    normalizations_json_ = &member(graph_, "normalizations", json::value_t::object, "the graph");

    const json& sources = member(graph_, "sources", json::value_t::array, "the graph");
    if (sources.size() > kMaxSources)
      fail("lists more than " + std::to_string(kMaxSources) + " sources");
    for (const json& s : sources) {
      if (!s.is_object()) fail("a source is not an object");
      auto image = std::make_shared<ImageNode>(
          member(s, "handle", json::value_t::string, "a source").get<std::string>());
      if (s.contains("format")) image->format = data_type(s["format"], "a source's format");
      result_.sources.push_back(std::move(image));
    }
    const json& nodes = member(graph_, "nodes", json::value_t::array, "the graph");
    if (nodes.size() > kMaxNodes) fail("lists more than " + std::to_string(kMaxNodes) + " nodes");
    for (std::size_t i = 0; i < nodes.size(); ++i) build_node(i, nodes[i]);
    const json& results = member(graph_, "results", json::value_t::array, "the graph");
    if (results.empty()) fail("lists no results");
    for (const json& r : results)
      result_.results.push_back(image_ref(r, result_.nodes.size(), "a result"));

    // The checkpoint half: weights again and, where saved, the optimizer states.
    const detail::GraphStructure structure =
        detail::analyze_graph(result_.results, std::vector<bool>(result_.results.size(), true));
    detail::assign_checkpoint(structure, contents_, path_);
    return std::move(result_);
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw DataSourceError(where_ + ": " + what);
  }

  json parse(const std::string& text) const {
    int depth = 0;
    const auto limit = [&](int, json::parse_event_t event, json&) {
      if (event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) {
        if (++depth > kMaxJsonDepth) fail("the graph description nests too deep");
      } else if (event == json::parse_event_t::object_end ||
                 event == json::parse_event_t::array_end) {
        --depth;
      }
      return true;
    };
    try {
      return json::parse(text, limit);
    } catch (const json::exception& e) {
      fail(std::string("the graph description is not valid JSON: ") + e.what());
    }
  }

  const json& member(const json& object, const char* name, json::value_t type,
                     const std::string& of) const {
    const auto found = object.find(name);
    if (found == object.end() || found->type() != type) {
      fail(of + " has no '" + name + "' of the right type");
    }
    return *found;
  }

  DataType data_type(const json& value, const std::string& what) const {
    if (value.is_string()) {
      for (DataType t : {DataType::f32, DataType::f16, DataType::bf16, DataType::u8}) {
        if (value.get<std::string>() == to_string(t)) return t;
      }
    }
    fail(what + " is not f32, f16, bf16 or u8");
  }

  std::size_t index(const json& value, std::size_t below, const std::string& what) const {
    if (!value.is_number_unsigned() || value.get<std::uint64_t>() >= below) {
      fail(what + " is not an index below " + std::to_string(below));
    }
    return static_cast<std::size_t>(value.get<std::uint64_t>());
  }

  // {"node": i} (an earlier node's result) or {"source": i}.
  std::shared_ptr<ImageNode> image_ref(const json& ref, std::size_t nodes_before,
                                       const std::string& what) const {
    if (ref.is_object() && ref.contains("node")) {
      return result_.nodes[index(ref["node"], nodes_before, what + "'s node")]->result_image();
    }
    if (ref.is_object() && ref.contains("source")) {
      return result_.sources[index(ref["source"], result_.sources.size(), what + "'s source")];
    }
    fail(what + " names neither an earlier node nor a source");
  }

  // The "optimizer" member of a data source's entry: null for none, else its settings.
  std::shared_ptr<const Optimizer> optimizer(const json& entry, const std::string& of) const {
    const auto found = entry.find("optimizer");
    if (found == entry.end()) fail(of + " has no 'optimizer' (null for none)");
    const json& value = *found;
    if (value.is_null()) return nullptr;
    if (!value.is_object()) fail(of + ": the optimizer is not an object");
    detail::SavedNode reader;
    reader.where = where_ + ", " + of + "'s optimizer";
    reader.attributes = &value;
    OptimizerDescriptor d;
    d.learning_rate = reader.real("learning_rate");
    d.gradient_rescale = reader.real("gradient_rescale");
    d.apply_gradient_clipping = reader.flag("apply_gradient_clipping");
    d.gradient_clip_min = reader.real("gradient_clip_min");
    d.gradient_clip_max = reader.real("gradient_clip_max");
    d.regularization_type =
        reader.choice<RegularizationType>("regularization_type", 3, regularization_name);
    d.regularization_scale = reader.real("regularization_scale");
    const std::string name = reader.text("name");
    if (name == "sgd") {
      return std::make_shared<SgdOptimizer>(d, reader.real("momentum"), reader.flag("nesterov"));
    }
    if (name == "adam" || name == "amsgrad") {
      return std::make_shared<AdamOptimizer>(d, reader.number("beta1"), reader.number("beta2"),
                                             reader.real("epsilon"), name == "amsgrad");
    }
    if (name == "rmsprop") {
      return std::make_shared<RmsPropOptimizer>(d, reader.number("decay"), reader.real("epsilon"));
    }
    fail(of + ": unknown optimizer '" + name.substr(0, 32) + "'");
  }

  const Tensor* tensor(const std::string& name) const {
    const auto found = contents_.tensors.find(name);
    return found == contents_.tensors.end() ? nullptr : &found->second;
  }

  std::shared_ptr<ConvolutionDataSource> weights(const std::string& label,
                                                 const ConvolutionDescriptor& d) {
    if (const auto found = result_.weights.find(label); found != result_.weights.end()) {
      fail("data source '" + label + "' is used by two nodes; its labels must be unique");
    }
    const auto entry = weights_json_->find(label);
    if (entry == weights_json_->end() || !entry->is_object() || !entry->contains("optimizer")) {
      fail("has no weights entry for data source '" + label + "'");
    }
    const std::vector<std::int64_t> shape = {d.output_feature_channels, d.kernel_height,
                                             d.kernel_width, d.input_feature_channels / d.groups};
    const Tensor* w = tensor(label + ".weight");
    if (!w || w->shape != shape) {
      fail("has no tensor '" + label + ".weight' of the descriptor's shape");
    }
    std::vector<float> bias;
    if (const Tensor* b = tensor(label + ".bias")) {
      if (b->shape != std::vector<std::int64_t>{d.output_feature_channels}) {
        fail("tensor '" + label + ".bias' is not " + std::to_string(d.output_feature_channels) +
             " values");
      }
      bias = b->to_floats();
    }
    std::shared_ptr<const Optimizer> opt = optimizer(*entry, "data source '" + label + "'");
    // A source saved without an optimizer (not trainable then) trains with SGD's defaults.
    if (!opt) opt = std::make_shared<SgdOptimizer>();
    auto source = std::make_shared<TrainableDataSource>(label, d, w->to_floats(), std::move(bias),
                                                        std::move(opt));
    result_.weights[label] = source;
    return source;
  }

  std::shared_ptr<BatchNormalizationDataSource> normalization(const std::string& label) {
    if (const auto found = result_.normalizations.find(label);
        found != result_.normalizations.end()) {
      return found->second;  // shared by several nodes
    }
    const auto entry = normalizations_json_->find(label);
    if (entry == normalizations_json_->end() || !entry->is_object()) {
      fail("has no normalizations entry for data source '" + label + "'");
    }
    detail::SavedNode reader;
    reader.where = where_ + ", batch normalization '" + label + "'";
    reader.attributes = &*entry;
    BatchNormalizationParameters p;
    p.epsilon = reader.real("epsilon");
    std::vector<float>* members[] = {&p.gamma, &p.beta, &p.mean, &p.variance};
    const char* names[] = {"gamma", "beta", "running_mean", "running_variance"};
    const Tensor* gamma = tensor(label + ".gamma");
    if (!gamma || gamma->shape.size() != 1) fail("has no 1-D tensor '" + label + ".gamma'");
    for (int i = 0; i < 4; ++i) {
      const Tensor* t = tensor(label + "." + names[i]);
      if (!t || t->shape != gamma->shape) {
        fail("has no tensor '" + label + "." + names[i] + "' of " +
             std::to_string(gamma->shape[0]) + " values");
      }
      *members[i] = t->to_floats();
    }
    auto source = std::make_shared<BatchNormalizationDataSource>(
        label, std::move(p), optimizer(*entry, reader.where), reader.real("momentum"));
    result_.normalizations[label] = source;
    return source;
  }

  void build_node(std::size_t i, const json& n) {
    const std::string of = "node " + std::to_string(i);
    if (!n.is_object()) fail(of + " is not an object");
    detail::SavedNode saved;
    saved.kind = member(n, "kind", json::value_t::string, of).get<std::string>();
    saved.where = where_ + ", " + of + " (" + saved.kind.substr(0, 64) + ")";
    const detail::NodeBuilder build = detail::find_node_builder(saved.kind);
    if (!build) fail(of + " is of unknown kind '" + saved.kind.substr(0, 64) + "'");
    const json& inputs = member(n, "inputs", json::value_t::array, of);
    std::vector<std::string> roles;
    for (const json& input : inputs) {
      saved.sources.push_back(image_ref(input, i, of + "'s input"));
      roles.push_back(input.is_object() && input.contains("role") && input["role"].is_string()
                          ? input["role"].get<std::string>()
                          : "");
    }
    for (const auto& [name, target] : member(n, "links", json::value_t::object, of).items()) {
      saved.links[name] = result_.nodes[index(target, i, of + "'s link '" + name + "'")].get();
    }
    saved.attributes = &member(n, "attributes", json::value_t::object, of);
    saved.weights = [this](const std::string& label, const ConvolutionDescriptor& d) {
      return weights(label, d);
    };
    saved.normalization = [this](const std::string& label) { return normalization(label); };
    std::shared_ptr<FilterNode> node;
    try {
      node = build(saved);
      node->label = member(n, "label", json::value_t::string, of).get<std::string>();
      // PaddingSize's order: valid, same, full, custom (never saved), explicit_pads.
      node->padding_policy.size = saved.choice<PaddingSize>("padding", 5, [](PaddingSize s) {
        const char* names[] = {"valid", "same", "full", "(custom)", "explicit"};
        return names[static_cast<int>(s)];
      });
      if (node->padding_policy.size == PaddingSize::custom)
        throw DataSourceError(saved.where + ": padding 'custom' cannot be loaded");
      if (node->padding_policy.size == PaddingSize::explicit_pads) {
        constexpr std::int64_t kMaxPad = 1 << 24;  // far past any window; bounds hostile files
        ExplicitPads& pads = node->padding_policy.pads;
        pads.top = static_cast<int>(saved.integer("pad_top", 0, kMaxPad));
        pads.bottom = static_cast<int>(saved.integer("pad_bottom", 0, kMaxPad));
        pads.left = static_cast<int>(saved.integer("pad_left", 0, kMaxPad));
        pads.right = static_cast<int>(saved.integer("pad_right", 0, kMaxPad));
        pads.ceil_mode = saved.flag("ceil_mode");
      }
      node->padding_policy.alignment =
          saved.choice<PaddingAlignment>("padding_alignment", 3, [](PaddingAlignment a) {
            const char* names[] = {"centered", "top_left", "bottom_right"};
            return names[static_cast<int>(a)];
          });
      node->padding_policy.remainder =
          saved.choice<PaddingRemainder>("padding_remainder", 2, [](PaddingRemainder r) {
            return r == PaddingRemainder::top_left ? "top_left" : "bottom_right";
          });
      const auto& image = node->result_image();
      if (saved.has("format"))
        image->format = data_type((*saved.attributes)["format"], saved.where + " format");
      image->export_from_graph = saved.flag("export_from_graph");
      image->stop_gradient = saved.flag("stop_gradient");
      if (saved.has("training_style")) {
        const auto style = saved.choice<TrainingStyle>(
            "training_style", 3, [](TrainingStyle s) { return detail::training_style_name(s); });
        if (auto* weighted = dynamic_cast<WeightedNode*>(node.get()))
          weighted->training_style = style;
        if (auto* bn = dynamic_cast<BatchNormalizationNode*>(node.get()))
          bn->training_style = style;
      }
    } catch (const DataSourceError&) {
      throw;
    } catch (const Error& e) {
      throw DataSourceError(saved.where + ": " + e.what());
    }
    if (node->kind() != saved.kind) {
      fail(of + " is saved as kind '" + saved.kind + "' but its attributes make a '" +
           node->kind() + "'");
    }
    for (std::size_t k = 0; k < roles.size(); ++k) {
      if (roles[k] != node->source_name(k)) {
        fail(of + "'s input " + std::to_string(k) + " is saved as '" + roles[k].substr(0, 32) +
             "', the node calls it '" + node->source_name(k) + "'");
      }
    }
    result_.nodes.push_back(std::move(node));
  }

  std::string where_;
  std::filesystem::path path_;
  WeightsFileContents contents_;
  json graph_;
  const json* weights_json_ = nullptr;
  const json* normalizations_json_ = nullptr;
  SavedGraph result_;
};

}  // namespace

SavedGraph load_graph(const std::filesystem::path& path) {
  return Loader(path, read_weights_file_with_metadata(path)).load();
}

}  // namespace cnngraph
