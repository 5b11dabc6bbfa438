// Where a TrainableDataSource's newest values live when they are not in its own host copy:
// a graph that trained it (a CPU graph's weights after update_on_device, or a device
// graph's masters and moments). Below both the graph and the backends, so that the public
// data source depends on neither.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "cnngraph/optimizer.hpp"

namespace cnngraph {
class TrainableDataSource;
}

namespace cnngraph::detail {

class ParameterView {
 public:
  virtual ~ParameterView() = default;
  // The current weights, biases (left alone when `bias` is empty: the source has none) and,
  // where the view holds them, the optimizer state (time step and moments).
  virtual void fetch(std::vector<float>& weights, std::vector<float>& bias,
                     OptimizerState& state) const = 0;
  // The optimizer's time step, without copying values; none where the source's own state
  // keeps counting.
  virtual std::optional<std::uint64_t> time_step() const = 0;
};

// The library's access to a TrainableDataSource's private state, for device graphs that
// step its optimizer on the device.
struct TrainableSourceAccess {
  // Its optimizer state as of now (moments, time step).
  static OptimizerState state(const TrainableDataSource& source);
  // From now on its weights, biases and optimizer state are read from `view`.
  static void read_from(TrainableDataSource& source, std::shared_ptr<const ParameterView> view);
};

}  // namespace cnngraph::detail
