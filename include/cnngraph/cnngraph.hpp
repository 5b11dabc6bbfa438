// cnngraph: MPS's convolutional neural-network graph for Linux. Umbrella header.
#pragma once

#include "cnngraph/attributes.hpp"
#include "cnngraph/batch_normalization_source.hpp"
#include "cnngraph/data_source.hpp"
#include "cnngraph/descriptor.hpp"
#include "cnngraph/device.hpp"
#include "cnngraph/errors.hpp"
#include "cnngraph/graph.hpp"
#include "cnngraph/graph_options.hpp"
#include "cnngraph/image.hpp"
#include "cnngraph/loss.hpp"
#include "cnngraph/nodes.hpp"
#include "cnngraph/optimizer.hpp"
#include "cnngraph/padding.hpp"
#include "cnngraph/trainable_data_source.hpp"
#include "cnngraph/training_state.hpp"
#include "cnngraph/weights_file.hpp"
