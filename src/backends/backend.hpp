// The one interface a backend implements: turn a planned operation into an executable
// kernel. The graph never includes a backend's own headers; backends never see user nodes.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cnngraph/device.hpp"
#include "cnngraph/graph.hpp"
#include "ops/op.hpp"

namespace cnngraph::detail {

// Pointers to NHWC f32 buffers of the shapes the op was planned for.
struct KernelArgs {
  std::vector<const float*> srcs;
  float* dst = nullptr;
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  virtual void run(const KernelArgs& args) = 0;
  // Which implementation this is, for describe() and verbose logs.
  virtual std::string implementation() const = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // Throws Unsupported when no implementation accepts the op.
  virtual std::unique_ptr<Kernel> compile(const Op& op, const GraphOptions& options) const = 0;
};

// One row of a backend's ordered kernel table: the first candidate whose factory accepts the
// op (returns non-null) wins.
struct KernelCandidate {
  OpKind kind;
  const char* name;
  std::unique_ptr<Kernel> (*make)(const Op& op, const GraphOptions& options);
};

std::unique_ptr<Kernel> pick_kernel(std::span<const KernelCandidate> table, const Op& op,
                                    const GraphOptions& options, const std::string& backend);

std::unique_ptr<Backend> make_backend(const Device& device);

}  // namespace cnngraph::detail
