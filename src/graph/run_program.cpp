// What every executor shares: the checks of a run's images, the labels' places, the results
// and the loss check (see run_program.hpp).
#include "graph/run_program.hpp"

#include <cmath>

#include "cnngraph/errors.hpp"

namespace cnngraph::detail {

namespace {

// A run's image must be on the host or, in a device graph, on the graph's device.
void check_place(const Image& image, const Device& device, const std::string& what) {
  const Device& where = image.device();
  const bool fits = device.kind() == DeviceKind::cuda ? image.is_on_host() || where == device
                                                      : image.is_on_host();
  if (!fits) {
    throw InvalidArgument("Graph::run: " + what + " is on " + where.name() +
                          " but the graph runs on " + device.name() +
                          "; copy it there first with Image::to()");
  }
}

}  // namespace

std::vector<ImageShape> checked_source_shapes(const GraphStructure& structure, const Device& device,
                                              const std::vector<Image>& sources) {
  const auto& handles = structure.sources;
  if (sources.size() != handles.size()) {
    std::string names;
    for (const auto& h : handles)
      names += (names.empty() ? "" : ", ") + (h->handle.empty() ? "<unnamed>" : h->handle);
    throw InvalidArgument("Graph::run: expected " + std::to_string(handles.size()) +
                          " source images (" + names + "), got " + std::to_string(sources.size()));
  }
  std::vector<ImageShape> shapes;
  for (std::size_t i = 0; i < sources.size(); ++i) {
    const std::string what =
        "source image " + std::to_string(i) + " ('" + handles[i]->handle + "')";
    if (sources[i].empty()) throw InvalidArgument("Graph::run: " + what + " is empty");
    check_place(sources[i], device, what);
    shapes.push_back(sources[i].shape());
    if (shapes[i].batch != shapes[0].batch) {
      throw ShapeError("Graph::run: source images differ in batch size: " + to_string(shapes[0]) +
                       " and " + to_string(shapes[i]));
    }
  }
  return shapes;
}

std::vector<const Image*> checked_inputs(Program& program, const GraphStructure& structure,
                                         const Device& device, const std::vector<Image>& sources,
                                         const std::vector<LossLabels>& labels) {
  const auto& losses = structure.loss_nodes;
  if (labels.size() != losses.size()) {
    throw InvalidArgument("Graph::run: the graph has " + std::to_string(losses.size()) +
                          " loss node(s) and takes as many LossLabels; got " +
                          std::to_string(labels.size()));
  }
  std::vector<const Image*> images;
  for (const Image& source : sources) images.push_back(&source);
  for (std::size_t k = 0; k < losses.size(); ++k) {
    const ImageShape& expected = program.values[program.label_values[k]].shape;
    const Image& given = labels[k].labels();
    if (given.shape() != expected) {
      throw ShapeError(losses[k]->display_name() + ": the labels are " + to_string(given.shape()) +
                       " but the predictions are " + to_string(expected));
    }
    check_place(given, device, losses[k]->display_name() + "'s labels");
    images.push_back(&given);
    if (!labels[k].weights().empty()) {
      check_place(labels[k].weights(), device, losses[k]->display_name() + "'s label weights");
      images.push_back(&labels[k].weights());
      continue;
    }
    Image& ones = program.unit_label_weights[k];
    if (ones.empty())
      ones = Image::from_floats(expected, std::vector<float>(expected.elements(), 1.0f));
    images.push_back(&ones);
  }
  return images;
}

Results run_program(Program& program, const RunContext& context, const RunInputs& inputs) {
  return context.execution ? run_on_device(program, context, inputs)
                           : run_on_host(program, context, inputs);
}

DataType result_type(const ImageNode& node, const GraphOptions& options) {
  return node.format ? *node.format : storage_type_for(options.precision);
}

Results collect_results(const Program& program, const GraphStructure& structure,
                        const std::function<Image(int value)>& image_of) {
  Results results;
  for (std::size_t r = 0; r < program.result_values.size(); ++r) {
    results.images.push_back(structure.results_needed[r] ? image_of(program.result_values[r])
                                                         : Image());
  }
  for (const auto& [node, v] : program.exported_values)
    results.exported.emplace_back(node, image_of(v));
  return results;
}

void report_losses(const Program& program, std::uint64_t batch, Results& results) {
  for (const LossOp* loss : program.loss_ops) {
    results.losses.emplace_back(loss->name, static_cast<float>(loss->value));
    if (!std::isfinite(loss->value)) {
      throw NumericalError(loss->name + ": the loss of batch " + std::to_string(batch) + " is " +
                           std::to_string(loss->value) +
                           "; no weights were updated (check the learning rate and inputs)");
    }
  }
}

}  // namespace cnngraph::detail
