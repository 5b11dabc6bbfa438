// Saved graphs and, where this build has the importer, ONNX models (submodule _onnx; the
// package's cnngraph.onnx re-exports it).
#include "bindings.hpp"

#ifdef CNNGRAPH_PYTHON_HAS_ONNX
#include "cnngraph/onnx.hpp"
#endif

namespace cnngraph::python {

void bind_io(nb::module_& m) {
  m.attr("saved_graph_version") = kSavedGraphVersion;
  m.def(
      "save_graph",
      [](const std::filesystem::path& path, const std::vector<Source>& results) {
        save_graph(path, images_of(results));
      },
      "path"_a, "results"_a,
      "Writes every node the results depend on, with its weights, to one file.");
  m.def(
      "save_graph",
      [](const std::filesystem::path& path, const Source& result) {
        save_graph(path, {image_of(result)});
      },
      "path"_a, "result"_a);

  nb::class_<SavedGraph>(m, "SavedGraph", "A graph read back by load_graph().")
      .def_ro("results", &SavedGraph::results)
      .def_ro("sources", &SavedGraph::sources)
      .def_ro("nodes", &SavedGraph::nodes)
      .def_ro("weights", &SavedGraph::weights)
      .def_ro("normalizations", &SavedGraph::normalizations)
      .def("__repr__", [](const SavedGraph& g) {
        return "<SavedGraph: " + std::to_string(g.nodes.size()) + " nodes, " +
               std::to_string(g.sources.size()) + " sources, " + std::to_string(g.results.size()) +
               " results>";
      });
  m.def("load_graph", &load_graph, "path"_a,
        "Reads a file save_graph wrote; anything malformed is a DataSourceError.");

  nb::module_ onnx = m.def_submodule("_onnx", "The ONNX importer (docs/onnx.md).");
#ifdef CNNGRAPH_PYTHON_HAS_ONNX
  onnx.attr("available") = true;
  nb::class_<cnngraph::onnx::ImportedModel>(onnx, "ImportedModel")
      .def_ro("inputs", &cnngraph::onnx::ImportedModel::inputs)
      .def_ro("input_shapes", &cnngraph::onnx::ImportedModel::input_shapes)
      .def_ro("outputs", &cnngraph::onnx::ImportedModel::outputs)
      .def_ro("output_names", &cnngraph::onnx::ImportedModel::output_names)
      .def_ro("weights", &cnngraph::onnx::ImportedModel::weights)
      .def_ro("batch_normalizations", &cnngraph::onnx::ImportedModel::batch_normalizations)
      .def_ro("opset", &cnngraph::onnx::ImportedModel::opset)
      .def("__repr__", [](const cnngraph::onnx::ImportedModel& model) {
        return "<ImportedModel: opset " + std::to_string(model.opset) + ", " +
               std::to_string(model.inputs.size()) + " inputs, " +
               std::to_string(model.outputs.size()) + " outputs>";
      });
  onnx.def(
      "import_model",
      [](const std::filesystem::path& path, bool trainable,
         std::shared_ptr<const Optimizer> optimizer, int batch) {
        cnngraph::onnx::ImportOptions options;
        options.trainable = trainable;
        options.optimizer = std::move(optimizer);
        options.batch = batch;
        return cnngraph::onnx::import(path, options);
      },
      "path"_a, nb::kw_only(), "trainable"_a = false, nb::arg("optimizer").none() = nb::none(),
      "batch"_a = 1,
      "Reads, checks and converts the ONNX model at `path` into nodes and data sources.");
#else
  onnx.attr("available") = false;
  onnx.def(
      "import_model",
      [](nb::args, nb::kwargs) -> nb::object {
        throw Unsupported(
            "cnngraph.onnx.import_model: this build has no ONNX importer (libonnx-dev and "
            "libprotobuf-dev were not found when it was built)");
      },
      "Raises Unsupported: this build has no ONNX importer.");
#endif
}

}  // namespace cnngraph::python
