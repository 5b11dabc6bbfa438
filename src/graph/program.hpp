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
#include "graph/structure.hpp"
#include "graph/trainables.hpp"

namespace cnngraph::detail {

struct Value {
  enum class Storage { source, arena, output };
  const ImageNode* node = nullptr;
  ImageShape shape;
  Storage storage = Storage::arena;
  std::size_t offset = 0;  // in floats, for arena values; source index for sources
  int first_step = -1;     // the step that writes it (-1 for sources)
  int last_step = -1;      // the last step that reads it
  // The value whose place this one shares (-1: none): a reshape's result, or an addition's
  // identity gradient, is its source's elements as they are.
  int alias_of = -1;
};

struct Step {
  std::unique_ptr<Op> op;
  std::unique_ptr<Kernel> kernel;  // null where the step moves nothing (its dst is an alias)
  std::vector<int> srcs;           // value indices
  int dst = -1;
  std::vector<std::string> fused;  // names of the nodes folded into this step
  // Copy this value into dst before running (the residual of a fused sum post-op).
  int preload = -1;
};

struct Program {
  std::vector<ImageShape> source_shapes;
  std::vector<Value> values;
  std::vector<Step> steps;
  std::size_t arena_floats = 0;
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
  // Per loss node (in structure.loss_nodes order) the value of its labels; the label weights
  // value follows it in the source list. Sources come first, then labels and weights.
  std::vector<int> label_values;
  std::vector<const LossOp*> loss_ops;
  std::vector<std::pair<std::shared_ptr<ImageNode>, int>> exported_values;
};

struct CompileInputs {
  const GraphStructure& structure;
  const std::map<const FilterNode*, FusedChain>& chains;
  const std::map<const FilterNode*, std::shared_ptr<const PreparedWeights>>& weights;
  std::vector<Trainable>& trainables;
  std::vector<NormalizationTrainable>& normalizations;
  const Backend& backend;
  const GraphOptions& options;
};

std::unique_ptr<Program> compile_program(const CompileInputs& in,
                                         const std::vector<ImageShape>& source_shapes);

// Runs a compiled program on a device backend: the sources are copied (and converted) into
// their places in the device arena, the steps launched on the backend's stream into a free
// output set (recorded on the set's second run and replayed after, when `recording`), and
// the results returned as images of that set on `device` (converted copies where a result's
// type is not the storage type). The images of `sources` are already checked; `labels`
// holds each loss node's labels and label weights (checked too), which go to their places
// like sources. `after_steps` enqueues more work into the same launch (a training graph's
// optimizer step), so that a recording holds the whole training step. Returns after the
// device has finished, with the losses reported.
Results run_program_on_device(Program& program, DeviceExecution& execution, const Device& device,
                              const GraphStructure& structure, const std::vector<Image>& sources,
                              const std::vector<Image>& labels, std::uint64_t batch, bool recording,
                              const std::function<DataType(const ImageNode&)>& type_of,
                              const std::function<void()>& after_steps);

}  // namespace cnngraph::detail
