// Text and Graphviz dumps of a graph.
#pragma once

#include <map>
#include <string>

#include "cnngraph/device.hpp"
#include "graph/program.hpp"
#include "graph/structure.hpp"

namespace cnngraph::detail {

std::string describe_graph(const GraphStructure& structure, const Device& device,
                           const GraphOptions& options, const Program* program);
std::string graph_to_dot(const GraphStructure& structure,
                         const std::map<const FilterNode*, FusedChain>& chains);

}  // namespace cnngraph::detail
