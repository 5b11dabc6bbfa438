// The shared half of kernel selection (backends/candidates.hpp): decline reasons, the verbose
// lines and the error when no candidate accepts an op.
#include "backends/candidates.hpp"

#include <iostream>

#include "cnngraph/errors.hpp"

namespace cnngraph::detail {

namespace {
// The reason of the factory that ran last on this thread (kernels compile on the graph's
// compiling thread; the loop clears it before each factory).
thread_local std::string last_decline;
}  // namespace

std::unique_ptr<Kernel> decline(std::string reason) {
  last_decline = std::move(reason);
  return nullptr;
}

std::unique_ptr<Kernel> decline_part(std::string_view part) {
  return decline(std::string(part) + (last_decline.empty() ? " declined" : ": " + last_decline));
}

namespace dispatch {

void begin_candidate() { last_decline.clear(); }

void report_decline(const std::string& backend, const Op& op, const char* candidate) {
  std::cerr << "cnngraph: " << backend << ": " << op.name << " [" << op.attributes() << "] "
            << candidate << " declined" << (last_decline.empty() ? "" : ": ") << last_decline
            << "\n";
}

void report_choice(const std::string& backend, const Op& op, const Kernel& kernel) {
  std::cerr << "cnngraph: " << backend << ": " << op.name << " [" << op.attributes() << "] -> "
            << kernel.implementation() << "\n";
}

void throw_unsupported(const std::string& backend, const Op& op,
                       std::span<const UnsupportedOpKind> unsupported, std::string_view hint) {
  std::string message = op.name + ": no " + backend + " kernel accepts [" + op.attributes() + "]";
  for (const UnsupportedOpKind& gap : unsupported)
    if (gap.kind == op.kind)
      message += " (" + backend + " has no kernel for it: " + gap.reason + ")";
  if (!hint.empty()) message += " (" + std::string(hint) + ")";
  throw Unsupported(message);
}

}  // namespace dispatch

}  // namespace cnngraph::detail
