// Kernel selection from a backend's table, and the device -> backend mapping.
#include "backends/backend.hpp"

#include <iostream>

#include "backends/onednn/onednn_backend.hpp"
#include "backends/reference/reference_backend.hpp"
#include "cnngraph/errors.hpp"

namespace cnngraph::detail {

namespace {

// A transposed convolution on any backend: the backend's own convolution-gradient kernel for
// the adjoint convolution (input gradient only), then the transpose's bias.
class ConvolutionTransposeKernel : public Kernel {
 public:
  ConvolutionTransposeKernel(const ConvolutionTransposeOp& op, std::unique_ptr<Kernel> inner)
      : op_(op), inner_(std::move(inner)) {}
  void run(const KernelArgs& args) override {
    inner_->run(args);
    if (op_.bias.empty()) return;
    const std::size_t C = op_.bias.size();
    const std::size_t pixels = op_.dst_shape.elements() / C;
    for (std::size_t p = 0; p < pixels; ++p)
      for (std::size_t c = 0; c < C; ++c) args.dst[p * C + c] += op_.bias[c];
  }
  std::string implementation() const override { return inner_->implementation() + "+bias"; }

 private:
  const ConvolutionTransposeOp& op_;
  std::unique_ptr<Kernel> inner_;
};

}  // namespace

std::unique_ptr<Kernel> pick_kernel(std::span<const KernelCandidate> table, const Op& op,
                                    const GraphOptions& options, const std::string& backend) {
  if (op.kind == OpKind::convolution_transpose) {
    const auto& transpose = static_cast<const ConvolutionTransposeOp&>(op);
    return std::make_unique<ConvolutionTransposeKernel>(
        transpose, pick_kernel(table, transpose.inner, options, backend));
  }
  for (const KernelCandidate& candidate : table) {
    if (candidate.kind != op.kind) continue;
    if (auto kernel = candidate.make(op, options)) {
      if (options.verbose) {
        std::cerr << "cnngraph: " << backend << ": " << op.name << " [" << op.attributes()
                  << "] -> " << kernel->implementation() << "\n";
      }
      return kernel;
    }
  }
  throw Unsupported(op.name + ": no " + backend + " kernel accepts [" + op.attributes() + "]");
}

std::unique_ptr<Backend> make_backend(const Device& device) {
  switch (device.kind()) {
    case DeviceKind::cpu_reference:
      return make_reference_backend();
    case DeviceKind::cpu:
      return make_onednn_backend();
    case DeviceKind::cuda:
      break;
  }
  throw DeviceError("device " + device.name() + " has no backend in this build");
}

}  // namespace cnngraph::detail
