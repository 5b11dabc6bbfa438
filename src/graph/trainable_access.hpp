// The library's access to a TrainableDataSource's private state, for device graphs that
// train it on the device (graph/device_training.cpp).
#pragma once

#include <memory>

#include "cnngraph/trainable_data_source.hpp"

namespace cnngraph::detail {

class ParameterResidence;

struct TrainableSourceAccess {
  // Its optimizer state as of now (moments, time step).
  static OptimizerState state(const TrainableDataSource& source);
  // From now on its weights, biases and optimizer state are read from `residence`.
  static void reside(TrainableDataSource& source,
                     std::shared_ptr<const ParameterResidence> residence);
};

}  // namespace cnngraph::detail
