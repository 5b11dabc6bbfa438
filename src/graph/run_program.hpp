// Running a compiled program: one contract for every backend. The graph checks a run's
// images (checked_source_shapes, checked_inputs), picks the program for their sizes and calls
// run_program, which hands it to the executor of the program's backend: run_on_host for the
// host-memory backends (graph/host_run.cpp), run_on_device for device backends
// (graph/device_run.cpp). Both give every step's kernel the same KernelArgs
// (backends/backend.hpp): its sources' buffers in order, a fused residual among them, and dst.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "graph/program.hpp"

namespace cnngraph::detail {

// What an executor needs besides the program and the run's images.
struct RunContext {
  const GraphStructure& structure;
  const GraphOptions& options;
  const Device& device;
  DeviceExecution* execution = nullptr;  // null for the host-memory backends
  // More work after the steps: on a device, enqueued into the same launch (a training
  // graph's optimizer step), so that a recording holds the whole training step.
  std::function<void()> after_steps;
};

struct RunInputs {
  // Per entry of program.input_values: the sources, then each loss node's labels and label
  // weights (from checked_inputs).
  std::vector<const Image*> images;
  std::uint64_t batch = 0;  // the graph's batch counter for this run
};

// The shapes of a run's source images, after checking that there are as many as the graph
// has, none empty, all of one batch size, each on the host or on the graph's device.
std::vector<ImageShape> checked_source_shapes(const GraphStructure& structure, const Device& device,
                                              const std::vector<Image>& sources);

// The run's images in program.input_values order, after checking the labels: one LossLabels
// per loss node, of its predictions' size, on the host or on the graph's device. Where a
// LossLabels has no weights, the program's weights of ones stand in.
std::vector<const Image*> checked_inputs(Program& program, const GraphStructure& structure,
                                         const Device& device, const std::vector<Image>& sources,
                                         const std::vector<LossLabels>& labels);

// Runs every step of `program` on the backend of its context and returns the results (result
// images lent from the program's storage where their type allows, converted copies
// otherwise) with the losses. Throws NumericalError for a loss that is not finite. A training
// graph updates its weights after it returns.
Results run_program(Program& program, const RunContext& context, const RunInputs& inputs);

// The executors run_program picks from, by whether the backend has a DeviceExecution.
Results run_on_host(Program& program, const RunContext& context, const RunInputs& inputs);
Results run_on_device(Program& program, const RunContext& context, const RunInputs& inputs);

// Shared by the executors. The type a result image is returned in: the node's format, else
// the graph's precision.
DataType result_type(const ImageNode& node, const GraphOptions& options);
// The results of a run: per result value the image `image_of` makes (an empty image where
// the graph's result is not needed), then the exported images.
Results collect_results(const Program& program, const GraphStructure& structure,
                        const std::function<Image(int value)>& image_of);
// Adds the loss ops' values to `results`; throws NumericalError naming the first loss that is
// not finite and the batch.
void report_losses(const Program& program, std::uint64_t batch, Results& results);

}  // namespace cnngraph::detail
