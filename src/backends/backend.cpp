// Kernel selection from a backend's table, and the device -> backend mapping.
#include "backends/backend.hpp"

#include <iostream>

#include "backends/onednn/onednn_backend.hpp"
#include "backends/reference/reference_backend.hpp"
#include "cnngraph/errors.hpp"

namespace cnngraph::detail {

std::unique_ptr<Kernel> pick_kernel(std::span<const KernelCandidate> table, const Op& op,
                                    const GraphOptions& options, const std::string& backend) {
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
