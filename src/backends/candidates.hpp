// Kernel selection, the same for every backend: a backend's ordered table of candidates per
// op kind, the one loop that walks it (the first factory that accepts the op wins), and the
// list of op kinds a backend does not take at all. A factory that declines returns
// decline("why"); with GraphOptions::verbose the loop prints every decline and the choice.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "backends/backend.hpp"

namespace cnngraph::detail {

// One row of a backend's table. `Context...` is what its factories need besides the op
// (the CUDA backend's stream and handles; nothing on the CPU backends).
template <typename... Context>
struct KernelCandidate {
  OpKind kind;
  const char* name;
  std::unique_ptr<Kernel> (*make)(const Op& op, const GraphOptions& options, Context&... context);
};

// An op kind a backend has no row for, and why (a graph with it runs on another device).
struct UnsupportedOpKind {
  OpKind kind;
  const char* reason;
};

// A factory's refusal: returns null and records `reason` for the verbose log of the loop.
std::unique_ptr<Kernel> decline(std::string reason);
// A factory whose part (another factory it called) declined: returns null and keeps that
// part's reason, prefixed by `part` ("its input gradient: <reason>").
std::unique_ptr<Kernel> decline_part(std::string_view part);

// What a backend's table covers, for the test that every op kind has a row or a stated gap.
struct DispatchTable {
  std::string backend;
  std::vector<OpKind> rows;  // in table order, repeated per candidate
  std::vector<UnsupportedOpKind> unsupported;
};

// The tables this program has: reference always, oneDNN and CUDA where built and linked.
std::vector<DispatchTable> dispatch_tables();

namespace dispatch {
void begin_candidate();
void report_decline(const std::string& backend, const Op& op, const char* candidate);
void report_choice(const std::string& backend, const Op& op, const Kernel& kernel);
[[noreturn]] void throw_unsupported(const std::string& backend, const Op& op,
                                    std::span<const UnsupportedOpKind> unsupported,
                                    std::string_view hint);
}  // namespace dispatch

// The first candidate of `op.kind` whose factory accepts the op; throws Unsupported (with the
// backend's stated reason when the kind is one of `unsupported`, else `hint`) when none does.
template <typename... Context>
std::unique_ptr<Kernel> pick_kernel(
    std::type_identity_t<std::span<const KernelCandidate<Context...>>> table,
    std::span<const UnsupportedOpKind> unsupported, const Op& op, const GraphOptions& options,
    const std::string& backend, std::string_view hint, Context&... context) {
  for (const KernelCandidate<Context...>& candidate : table) {
    if (candidate.kind != op.kind) continue;
    dispatch::begin_candidate();
    if (auto kernel = candidate.make(op, options, context...)) {
      if (options.verbose) dispatch::report_choice(backend, op, *kernel);
      return kernel;
    }
    if (options.verbose) dispatch::report_decline(backend, op, candidate.name);
  }
  dispatch::throw_unsupported(backend, op, unsupported, hint);
}

template <typename... Context>
DispatchTable describe_table(
    std::string backend, std::type_identity_t<std::span<const KernelCandidate<Context...>>> table,
    std::span<const UnsupportedOpKind> unsupported) {
  DispatchTable result{std::move(backend), {}, {unsupported.begin(), unsupported.end()}};
  for (const auto& candidate : table) result.rows.push_back(candidate.kind);
  return result;
}

}  // namespace cnngraph::detail
