// describe() and to_dot(): what a user reads to see how the graph was compiled.
#include "graph/describe.hpp"

#include <sstream>

namespace cnngraph::detail {

namespace {
std::string source_name(const GraphStructure& g, const ImageNode* image) {
  for (std::size_t i = 0; i < g.sources.size(); ++i) {
    if (g.sources[i].get() == image) {
      return "source " + std::to_string(i) +
             (image->handle.empty() ? "" : " '" + image->handle + "'");
    }
  }
  return "?";
}

const char* storage_name(Value::Storage s) {
  switch (s) {
    case Value::Storage::source:
      return "source";
    case Value::Storage::arena:
      return "arena";
    case Value::Storage::output:
      return "output";
  }
  return "?";
}

// A node's attributes as "name value" pairs; its kind, label and sources are in the line
// already, and default flags are left out.
class AttributeText : public AttributeVisitor {
 public:
  void node(const std::string&, const std::string&) override {}
  void input(const std::string&, const ImageNode&) override {}
  void link(const std::string& name, const FilterNode& node) override {
    add(name, node.display_name());
  }
  void integer(const std::string& name, std::int64_t value) override {
    add(name, std::to_string(value));
  }
  void number(const std::string& name, double value) override {
    std::ostringstream text;
    text << value;
    add(name, text.str());
  }
  void flag(const std::string& name, bool value) override {
    if (value) add(name, "");
  }
  void text(const std::string& name, const std::string& value) override { add(name, value); }
  void numbers(const std::string& name, const std::vector<float>& values) override {
    if (!values.empty()) add(name, std::to_string(values.size()) + " values");
  }
  const std::string& str() const { return text_; }

 private:
  void add(const std::string& name, const std::string& value) {
    text_ += (text_.empty() ? "" : ", ") + name + (value.empty() ? "" : " " + value);
  }
  std::string text_;
};

std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}
}  // namespace

std::string describe_graph(const GraphStructure& g, const Device& device,
                           const GraphOptions& options, const Program* program) {
  std::ostringstream out;
  const char* precision[] = {"f32", "tf32_allowed", "f16", "bf16"};
  out << "graph on " << device.name() << ", precision "
      << precision[static_cast<int>(options.precision)] << "\n";
  if (!program) {
    out << "not compiled yet (sizes are fixed by the first run or compile()); nodes:\n";
    for (const auto& f : g.order) {
      AttributeText attributes;
      f->visit_attributes(attributes);
      out << "  " << f->display_name() << " [" << attributes.str() << "]\n";
    }
    return out.str();
  }
  for (std::size_t i = 0; i < g.sources.size(); ++i) {
    out << "  " << source_name(g, g.sources[i].get()) << ": "
        << to_string(program->source_shapes[i]) << "\n";
  }
  for (std::size_t i = 0; i < program->steps.size(); ++i) {
    const Step& step = program->steps[i];
    const Value& dst = program->values[step.dst];
    out << "  #" << i << " " << step.op->name;
    for (const std::string& f : step.fused) out << " + " << f;
    out << " [" << step.op->attributes() << "] ";
    for (std::size_t s = 0; s < step.srcs.size(); ++s) {
      out << (s ? ", " : "") << to_string(program->values[step.srcs[s]].shape);
    }
    out << " -> " << to_string(dst.shape) << " (" << storage_name(dst.storage);
    if (dst.storage == Value::Storage::arena) out << " @" << dst.offset * program->element_bytes;
    if (dst.packed_elements) out << ", bit-packed " << dst.packed_elements * 4 << " bytes";
    if (step.kernel) {
      out << ") via " << step.kernel->implementation() << "\n";
    } else {
      out << ", its source's place: nothing moves)\n";
    }
  }
  std::size_t total_intermediate = 0;
  for (const Value& v : program->values) {
    if (v.storage == Value::Storage::arena)
      total_intermediate +=
          v.packed_elements ? v.packed_elements * 4 : v.shape.elements() * program->element_bytes;
  }
  out << "memory: peak intermediate bytes "
      << program->intermediate_elements * program->element_bytes << " (unshared would be "
      << total_intermediate << ")\n";
  return out.str();
}

std::string graph_to_dot(const GraphStructure& g,
                         const std::map<const FilterNode*, FusedChain>& chains) {
  std::ostringstream out;
  out << "digraph cnngraph {\n  rankdir=TB;\n";
  std::map<const void*, std::string> ids;
  const auto id = [&](const void* p) {
    auto it = ids.find(p);
    if (it == ids.end()) it = ids.emplace(p, "n" + std::to_string(ids.size())).first;
    return it->second;
  };
  for (const auto& s : g.sources) {
    out << "  " << id(s.get()) << " [shape=ellipse, label=\"" << escape(source_name(g, s.get()))
        << "\"];\n";
  }
  std::size_t cluster = 0;
  for (const auto& [conv, chain] : chains) {
    out << "  subgraph cluster_" << cluster++ << " { label=\"fused\"; style=dashed; " << id(conv)
        << ";";
    for (const FilterNode* n : chain.absorbed()) out << " " << id(n) << ";";
    out << " }\n";
  }
  for (const auto& f : g.order) {
    out << "  " << id(f.get()) << " [shape=box, label=\"" << escape(f->display_name()) << "\"];\n";
    for (const auto& s : f->source_images()) {
      out << "  " << id(s->is_source() ? static_cast<const void*>(s.get()) : s->producer())
          << " -> " << id(f.get()) << ";\n";
    }
  }
  for (std::size_t r = 0; r < g.results.size(); ++r) {
    out << "  result" << r << " [shape=ellipse, label=\"result " << r << "\"];\n  "
        << id(g.results[r]->producer()) << " -> result" << r << ";\n";
  }
  out << "}\n";
  return out.str();
}

}  // namespace cnngraph::detail
