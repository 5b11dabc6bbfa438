// Graph, Results and RunFuture. A run releases the GIL, so Python threads can run graphs
// concurrently (runs of one graph are serialized by the library); so does every other call
// that may read a data source, since the library calls a Python source from its own
// threads, which then take the GIL while holding the source's mutex.
#include <algorithm>
#include <chrono>
#include <future>

#include "bindings.hpp"

namespace cnngraph::python {

namespace {

Graph make_graph(const Device& device, const std::vector<Source>& results,
                 std::optional<std::vector<bool>> needed, const GraphOptions& options) {
  auto images = images_of(results);
  std::vector<bool> flags = needed ? std::move(*needed) : std::vector<bool>(images.size(), true);
  nb::gil_scoped_release release;
  return Graph(device, std::move(images), std::move(flags), options);
}

Results run_released(Graph& graph, const std::vector<Image>& sources,
                     const std::vector<LossLabels>& labels = {}) {
  nb::gil_scoped_release release;
  return graph.run(sources, labels);
}

// One LossLabels, or one per label handle.
using Labels = std::variant<LossLabels, std::vector<LossLabels>>;

std::vector<LossLabels> labels_of(const Labels& labels) {
  if (const auto* one = std::get_if<LossLabels>(&labels)) return {*one};
  return std::get<std::vector<LossLabels>>(labels);
}

// What run_async returns: the run's Results once it is done. It keeps the Graph alive
// while the run is in flight (the library's run refers to it), and waits with the GIL
// released, since a run may call Python data sources.
class RunFuture {
 public:
  RunFuture(std::future<Results> future, nb::object graph)
      : future_(future.share()), graph_(std::move(graph)) {}
  RunFuture(RunFuture&&) = default;
  RunFuture& operator=(RunFuture&&) = delete;
  ~RunFuture() {
    // The last reference to the run's state waits for it to end: not with the GIL held.
    if (future_.valid()) {
      nb::gil_scoped_release release;
      future_.wait();
      future_ = {};
    }
  }

  const Results& result(std::optional<double> timeout) const {
    bool ready = true;
    {
      nb::gil_scoped_release release;
      if (timeout) {
        ready = future_.wait_for(std::chrono::duration<double>(std::max(0.0, *timeout))) ==
                std::future_status::ready;
      } else {
        future_.wait();
      }
    }
    if (!ready) {
      PyErr_SetString(PyExc_TimeoutError, "RunFuture.result: the run is not done yet");
      throw nb::python_error();
    }
    return future_.get();
  }

  bool done() const {
    return future_.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  }

 private:
  std::shared_future<Results> future_;
  nb::object graph_;
};

RunFuture run_async(nb::handle self, std::vector<Image> sources, std::vector<LossLabels> labels) {
  auto& graph = nb::cast<Graph&>(self);
  return RunFuture(graph.run_async(std::move(sources), std::move(labels)), nb::borrow(self));
}

const Image& result_at(const Results& results, std::int64_t index) {
  const auto size = static_cast<std::int64_t>(results.images.size());
  if (index < 0) index += size;
  if (index < 0 || index >= size) throw nb::index_error("Results: index out of range");
  return results.images[static_cast<std::size_t>(index)];
}

}  // namespace

void bind_graph(nb::module_& m) {
  nb::class_<RunFuture>(m, "RunFuture",
                        "A run in flight (Graph.run_async): result() waits for its Results.")
      .def("result", &RunFuture::result, nb::arg("timeout").none() = nb::none(),
           nb::rv_policy::copy,
           "The run's Results, waiting (the GIL released) until it is done; raises the run's "
           "exception if it failed, TimeoutError if timeout seconds pass first.")
      .def("done", &RunFuture::done, "Whether the run has ended.")
      .def("__repr__", [](const RunFuture& f) {
        return std::string("<RunFuture ") + (f.done() ? "done" : "running") + ">";
      });

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
            auto image = image_of(result);
            nb::gil_scoped_release release;
            new (self) Graph(device, std::move(image), result_is_needed, options);
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
      .def(
          "run",
          [](Graph& graph, const std::vector<Image>& sources) {
            return run_released(graph, sources);
          },
          "sources"_a,
          "Runs a batch: one Image per source, in source_image_handles order. Returns "
          "Results, a sequence of the result images.")
      .def(
          "run", [](Graph& graph, const Image& source) { return run_released(graph, {source}); },
          "source"_a, "Runs a batch of a graph with one source.")
      .def(
          "run",
          [](Graph& graph, const std::vector<Image>& sources, const Labels& labels) {
            return run_released(graph, sources, labels_of(labels));
          },
          "sources"_a, "labels"_a,
          "A run of a graph with loss nodes: one LossLabels per label_handles entry (or one "
          "LossLabels). In a training graph, one training step: forward, loss, backward and "
          "the weight updates.")
      .def(
          "run",
          [](Graph& graph, const Image& source, const Labels& labels) {
            return run_released(graph, {source}, labels_of(labels));
          },
          "source"_a, "labels"_a)
      .def(
          "run_async",
          [](nb::handle self, std::vector<Image> sources, std::optional<Labels> labels) {
            return run_async(self, std::move(sources),
                             labels ? labels_of(*labels) : std::vector<LossLabels>{});
          },
          "sources"_a, nb::arg("labels").none() = nb::none(),
          "Starts run(sources[, labels]) on another thread; returns a RunFuture.")
      .def(
          "run_async",
          [](nb::handle self, const Image& source, std::optional<Labels> labels) {
            return run_async(self, {source},
                             labels ? labels_of(*labels) : std::vector<LossLabels>{});
          },
          "source"_a, nb::arg("labels").none() = nb::none())
      .def_prop_ro("label_handles", &Graph::label_handles,
                   "The labels nodes of the graph's loss nodes, in the order run() takes "
                   "LossLabels.")
      .def_prop_ro("loss_scale", &Graph::loss_scale,
                   "Dynamic loss scaling's state (active only for f16 training on CUDA).")
      .def_prop_ro("batch_count", &Graph::batch_count)
      .def_prop_ro("compiled_sizes", &Graph::compiled_sizes)
      .def("reload_from_data_sources", &Graph::reload_from_data_sources,
           nb::call_guard<nb::gil_scoped_release>())
      .def("save", &Graph::save, "path"_a, nb::call_guard<nb::gil_scoped_release>(),
           "The graph as a saved graph (docs/saved-graphs.md).")
      .def("save_checkpoint", &Graph::save_checkpoint, "path"_a,
           nb::call_guard<nb::gil_scoped_release>())
      .def("load_checkpoint", &Graph::load_checkpoint, "path"_a,
           nb::call_guard<nb::gil_scoped_release>())
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
