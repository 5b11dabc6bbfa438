// The fast CPU backend: oneDNN primitives in NHWC, weights reordered once.
#pragma once

#include <memory>

#include "backends/backend.hpp"

namespace cnngraph::detail {

std::unique_ptr<Backend> make_onednn_backend();

// The oneDNN backend's table, for the dispatch test.
struct DispatchTable;
DispatchTable onednn_dispatch_table();

}  // namespace cnngraph::detail
