// AttributeVisitor: what a node says about itself. Each node lists, in one place (its
// visit_attributes()), its kind, its label, every attribute it was built with and its inputs;
// describe() prints that list, and whatever writes or reads graphs reads the same list, so a
// new node is described once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cnngraph {

class FilterNode;
class ImageNode;

class AttributeVisitor {
 public:
  virtual ~AttributeVisitor() = default;
  // First, once per node: its kind() and its label (empty when unset).
  virtual void node(const std::string& kind, const std::string& label) = 0;
  // Each source image, in source order: a graph source or another filter's result.
  virtual void input(const std::string& name, const ImageNode& image) = 0;
  // A node this one refers to beyond its sources (a gradient node's forward node).
  virtual void link(const std::string& name, const FilterNode& node) = 0;
  // Then the attributes, each by name: sizes and counts, real values, flags, names (enum
  // values, a data source's label) and per-channel lists.
  virtual void integer(const std::string& name, std::int64_t value) = 0;
  virtual void number(const std::string& name, double value) = 0;
  virtual void flag(const std::string& name, bool value) = 0;
  virtual void text(const std::string& name, const std::string& value) = 0;
  virtual void numbers(const std::string& name, const std::vector<float>& values) = 0;
};

}  // namespace cnngraph
