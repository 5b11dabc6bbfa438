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
  std::uint64_t batch = 0;  // the graph's batch counter (dropout masks)
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

// A kernel whose body is a function of the op and the run's buffers (plain loops).
template <typename OpType, typename Body>
class FunctionKernel : public Kernel {
 public:
  FunctionKernel(const OpType& op, std::string name, Body body)
      : op_(op), name_(std::move(name)), body_(std::move(body)) {}
  void run(const KernelArgs& args) override { body_(op_, args); }
  std::string implementation() const override { return name_; }

 private:
  const OpType& op_;
  std::string name_;
  Body body_;
};

template <typename OpType, typename Body>
std::unique_ptr<Kernel> function_kernel(const Op& op, std::string name, Body body) {
  return std::make_unique<FunctionKernel<OpType, Body>>(static_cast<const OpType&>(op),
                                                        std::move(name), std::move(body));
}

std::unique_ptr<Kernel> pick_kernel(std::span<const KernelCandidate> table, const Op& op,
                                    const GraphOptions& options, const std::string& backend);

std::unique_ptr<Backend> make_backend(const Device& device);

}  // namespace cnngraph::detail
