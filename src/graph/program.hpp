// A graph compiled for one set of source sizes: lowered ops in order, their kernels, and
// where every image lives.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.hpp"
#include "cnngraph/graph.hpp"
#include "graph/lent_block.hpp"
#include "graph/parameters.hpp"
#include "graph/structure.hpp"

namespace cnngraph::detail {

struct Value {
  enum class Storage { source, arena, output };
  const ImageNode* node = nullptr;
  ImageShape shape;
  Storage storage = Storage::arena;
  // In elements: an arena value's place; an output value's place within an output set, and
  // on device backends a source's place in the arena too.
  std::size_t offset = 0;
  int first_step = -1;  // the step that writes it (-1 for sources)
  int last_step = -1;   // the last step that reads it
  // The value whose place this one shares (-1: none): a reshape's result, or an addition's
  // identity gradient, is its source's elements as they are.
  int alias_of = -1;
  // > 0: the value is bit-packed (BitPacking in ops/op.hpp) in this many 4-byte units,
  // between binary convolutions.
  std::size_t packed_elements = 0;
};

struct Step {
  std::unique_ptr<Op> op;
  std::unique_ptr<Kernel> kernel;  // null where the step moves nothing (its dst is an alias)
  std::vector<int> srcs;           // value indices
  int dst = -1;
  std::vector<std::string> fused;  // names of the nodes folded into this step
};

struct Program {
  std::vector<ImageShape> source_shapes;
  std::vector<Value> values;
  std::vector<Step> steps;
  std::size_t arena_floats = 0;
  // The intermediates' part of the arena (a device arena holds the sources after them), and
  // the bytes of one element: the storage type's on a device backend, else a float's.
  std::size_t intermediate_elements = 0;
  std::size_t element_bytes = sizeof(float);
  std::vector<float> arena;  // reused by every run of this program (host backends)
  // Device backends: one block of device memory holds the intermediates and the sources
  // (at fixed offsets after the intermediates); the outputs live in an output set, a block
  // whose images are handed to the caller as results without a copy. A set is reused once
  // the caller has let go of every image in it, and each set keeps its own recording of
  // the steps (the backend's CUDA graph), which replays only with the same buffers.
  // Offsets count storage-type elements; output values' offsets are within a set.
  struct OutputSet {
    LentBlock block;
    std::shared_ptr<void> captured;
    std::vector<std::byte*> recorded_sources;  // the source buffers `captured` reads
    std::size_t runs = 0;
  };
  std::shared_ptr<std::byte[]> device_arena;
  std::size_t output_set_elements = 0;
  std::vector<OutputSet> output_sets;  // at most kMaxOutputSets
  static constexpr std::size_t kMaxOutputSets = 4;
  std::size_t runs = 0;
  // Host backends: the f32 storage of each output value from the last run; reused when the
  // caller has let go of it, so steady-state runs neither allocate nor page-fault.
  std::vector<LentBlock> output_storage;
  std::vector<int> result_values;
  // The value each image of a run goes to: the sources in order, then each loss node's
  // labels and label weights (in structure.loss_nodes order).
  std::vector<int> input_values;
  // Per loss node (in structure.loss_nodes order) the value of its labels.
  std::vector<int> label_values;
  // Per loss node, label weights of ones for runs whose LossLabels have none (made on the
  // first such run).
  std::vector<Image> unit_label_weights;
  std::vector<const LossOp*> loss_ops;
  std::vector<std::pair<std::shared_ptr<ImageNode>, int>> exported_values;
};

struct CompileInputs {
  const GraphStructure& structure;
  const std::map<const FilterNode*, FusedChain>& chains;
  const TrainingFusionPlan& training_fusion;
  const std::map<const FilterNode*, std::shared_ptr<const PreparedWeights>>& weights;
  ParameterStore& parameters;
  const Backend& backend;
  const GraphOptions& options;
};

std::unique_ptr<Program> compile_program(const CompileInputs& in,
                                         const std::vector<ImageShape>& source_shapes);

// Places every arena value of `program` (Value::offset, from the values' shapes and their
// first and last steps) and sets arena_floats; compile_program's memory planner.
void plan_memory(Program& program);

}  // namespace cnngraph::detail
