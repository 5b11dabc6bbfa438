// Graph and Results. A run releases the GIL, so Python threads can run graphs concurrently
// (runs of one graph are serialized by the library).
#include "bindings.hpp"

namespace cnngraph::python {

namespace {

Graph make_graph(const Device& device, const std::vector<Source>& results,
                 std::optional<std::vector<bool>> needed, const GraphOptions& options) {
  auto images = images_of(results);
  std::vector<bool> flags = needed ? std::move(*needed) : std::vector<bool>(images.size(), true);
  return Graph(device, std::move(images), std::move(flags), options);
}

Results run_released(Graph& graph, const std::vector<Image>& sources) {
  nb::gil_scoped_release release;
  return graph.run(sources);
}

const Image& result_at(const Results& results, std::int64_t index) {
  const auto size = static_cast<std::int64_t>(results.images.size());
  if (index < 0) index += size;
  if (index < 0 || index >= size) throw nb::index_error("Results: index out of range");
  return results.images[static_cast<std::size_t>(index)];
}

}  // namespace

void bind_graph(nb::module_& m) {
  nb::class_<Results>(m, "Results",
                      "What a run returns: a sequence of the result images (one per result "
                      "node, in the Graph's order), the exported intermediates and the losses.")
      .def_ro("images", &Results::images)
      .def_ro("exported", &Results::exported)
      .def_ro("losses", &Results::losses)
      .def("exported_image", &Results::exported_image, "node"_a)
      .def("loss", &Results::loss, "The sum of the losses.")
      .def("__len__", [](const Results& r) { return r.images.size(); })
      .def("__getitem__", &result_at, "index"_a)
      .def("__iter__", [](nb::handle self) { return self.attr("images").attr("__iter__")(); })
      .def("__repr__", [](const Results& r) {
        return "Results(" + std::to_string(r.images.size()) + " images, " +
               std::to_string(r.exported.size()) + " exported, " + std::to_string(r.losses.size()) +
               " losses)";
      });

  nb::class_<Graph>(m, "Graph",
                    "Built from result image nodes (or the filters that make them), compiled "
                    "once for a device, run on batches many times.")
      .def(
          "__init__",
          [](Graph* self, const Device& device, const Source& result, bool result_is_needed,
             const GraphOptions& options) {
            new (self) Graph(device, image_of(result), result_is_needed, options);
          },
          "device"_a, "result"_a, "result_is_needed"_a = true, "options"_a = GraphOptions{})
      .def(
          "__init__",
          [](Graph* self, const Device& device, const std::vector<Source>& results,
             std::optional<std::vector<bool>> results_are_needed, const GraphOptions& options) {
            new (self) Graph(make_graph(device, results, std::move(results_are_needed), options));
          },
          "device"_a, "results"_a, "results_are_needed"_a = nb::none(),
          "options"_a = GraphOptions{})
      .def_prop_ro("device", &Graph::device)
      .def_prop_ro("options", &Graph::options)
      .def_prop_ro("source_image_handles", &Graph::source_image_handles,
                   "The graph's inputs, in the order run() takes their images.")
      .def(
          "compile",
          [](Graph& graph, const std::vector<ImageShape>& shapes) {
            nb::gil_scoped_release release;
            graph.compile(shapes);
          },
          "source_shapes"_a, "Checks and plans the graph for these source sizes now.")
      .def("run", &run_released, "sources"_a,
           "Runs a batch: one Image per source, in source_image_handles order. Returns "
           "Results, a sequence of the result images.")
      .def(
          "run", [](Graph& graph, const Image& source) { return run_released(graph, {source}); },
          "source"_a, "Runs a batch of a graph with one source.")
      .def_prop_ro("batch_count", &Graph::batch_count)
      .def_prop_ro("compiled_sizes", &Graph::compiled_sizes)
      .def("reload_from_data_sources", &Graph::reload_from_data_sources)
      .def("save", &Graph::save, "path"_a, "The graph as a saved graph (docs/saved-graphs.md).")
      .def("save_checkpoint", &Graph::save_checkpoint, "path"_a)
      .def("load_checkpoint", &Graph::load_checkpoint, "path"_a)
      .def("describe", &Graph::describe,
           "The compiled graph (nodes, shapes, fused groups, memory), or the node list "
           "before any compilation.")
      .def("to_dot", &Graph::to_dot, "Graphviz.")
      .def("__repr__", [](const Graph& graph) {
        return "<Graph on " + graph.device().name() + ", " +
               std::to_string(graph.source_image_handles().size()) + " sources>";
      });
}

}  // namespace cnngraph::python
