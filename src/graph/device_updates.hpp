// Training in a device graph (the CUDA backend): the trained convolutions whose optimizer
// runs on the device itself, and, after each run, the host-side updates of the others.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "backends/backend.hpp"
#include "cnngraph/trainable_data_source.hpp"
#include "graph/parameters.hpp"

namespace cnngraph::detail {

class DeviceUpdates {
 public:
  // Takes every TrainingStyle::device convolution whose data source is a
  // TrainableDataSource with one of the library's optimizers and no folded batch norm:
  // the device steps those, and the data sources read their values from there. The other
  // trained convolutions are updated on the host after each run (their gradients copied
  // there; TrainingStyle::cpu always is).
  // In f16 graphs with a loss node it scales the loss dynamically
  // (GraphOptions::initial_loss_scale).
  // Marks those entries of `parameters` (kept by reference) stepped_on_device.
  DeviceUpdates(ParameterStore& parameters, DeviceExecution& execution, const GraphOptions& options,
                bool has_loss);

  // Before a run: the loss scale and the optimizer's rules for this step.
  void prepare();
  // Inside the run's launch, after its steps: the device's optimizer step (or, where it
  // waits for host-side updates, its check that every gradient is finite).
  void enqueue();
  // After the launch, still under hold_resident_sources(): a step taken inside it counts.
  void launched();
  // After the run: the device's finiteness check, then the host-side updates
  // (ParameterStore::apply_updates) of the other convolutions and of the batch normalizations,
  // uploading the weights they changed, then the device step where it waited for them (under
  // hold_resident_sources(), taken after the host-side updates let go of theirs). Gradients
  // that are not finite skip the whole step: with loss scaling the scale is lowered, else
  // NumericalError is thrown.
  void apply(const Device& device, std::uint64_t batch, int batch_size);
  // Copies the device-stepped convolutions' values into their entries' source_state (for a
  // checkpoint).
  void synchronize_states();

  LossScaleStatus loss_scale() const { return scale_; }

  // The library mutex of every data source this graph trains on the device, locked in one
  // order (by address) for the length of a run, so that whoever reads such a source
  // (another graph's compile, current_weights()) never meets a step half done.
  std::vector<std::unique_lock<std::mutex>> hold_resident_sources() const;

 private:
  // A step whose gradients are not finite: lowers the scale, or throws without scaling.
  void skip_step(std::uint64_t batch);

  ParameterStore& parameters_;
  DeviceExecution& execution_;
  LossScaleStatus scale_;
  int growth_interval_ = 0;
  int good_steps_ = 0;
  std::unique_ptr<DeviceOptimizer> optimizer_;
  std::vector<TrainableDataSource*> resident_;  // the device-stepped sources, by address
  // Whether the device's step is part of the run's launch. Where other convolutions or
  // batch normalizations are updated on the host (whose update() may throw, or whose
  // gradients may not be finite), it waits until those succeeded, so that a failed batch
  // changes no weight the device steps.
  bool step_in_launch_ = true;
};

}  // namespace cnngraph::detail
