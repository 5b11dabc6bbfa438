// The one entry to a node's lower(): what every op shares is filled here, not in each lower().
#pragma once

#include <memory>

#include "ops/op.hpp"

namespace cnngraph::detail {

// node.lower(context), with the op's name (the node's display name) and source sizes (those
// of the context) set.
std::unique_ptr<Op> lower_node(const FilterNode& node, LoweringContext& context);

}  // namespace cnngraph::detail
