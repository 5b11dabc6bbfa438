// The extension module cnngraph._cnngraph; the package cnngraph re-exports it
// (docs/python.md).
#include "bindings.hpp"

NB_MODULE(_cnngraph, m) {
  using namespace cnngraph::python;
  m.doc() = "cnngraph: CNN graphs compiled once for a device and run on batches (docs/python.md)";
  m.attr("__version__") = CNNGRAPH_VERSION;
  bind_errors(m);
  bind_images(m);
  bind_data_sources(m);
  bind_nodes(m);
  bind_graph(m);
  bind_io(m);
  bind_training(m);
}
