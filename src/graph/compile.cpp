// Compiling for given source sizes: shape inference through every node's lower(), fusion
// of convolution chains into post-ops, memory planning, kernel selection.
#include "graph/program.hpp"

#include <algorithm>
#include <set>

#include "cnngraph/checked_math.hpp"
#include "cnngraph/errors.hpp"
#include "core/device_memory.hpp"
#include "env_knobs.hpp"
#include "ops/batch_normalization.hpp"
#include "ops/lower_node.hpp"

namespace cnngraph::detail {

namespace {

// offset + size for the planner's places; throws when the sum does not fit (sizes are
// checked one by one, a sum over many of them could still wrap).
std::size_t place_end(std::size_t offset, std::size_t size) {
  const auto end = checked_add(offset, size);
  if (!end || *end > ImageShape::max_elements) {
    throw InvalidArgument("the images of the graph together exceed " +
                          std::to_string(ImageShape::max_elements) + " elements");
  }
  return *end;
}

// An image's place: its element count rounded up to 64 (256 bytes for f32).
std::size_t padded_elements(const ImageShape& shape) {
  return place_end(shape.elements(), 63) / 64 * 64;
}

// A value's place in the arena, in elements of `element_bytes`: bit-packed, its words and
// magnitudes (4-byte units); else its elements; rounded up as padded_elements does.
std::size_t arena_elements(const Value& value, std::size_t element_bytes) {
  if (value.packed_elements == 0) return padded_elements(value.shape);
  const std::size_t elements = (value.packed_elements * 4 + element_bytes - 1) / element_bytes;
  return place_end(elements, 63) / 64 * 64;
}

}  // namespace

// Best-fit planning of arena blocks over step lifetimes: the blocks freed by values' last
// readers are reused by values written later. Strictly later: a step's dst never shares a
// place with any of its sources (a fused residual included), which kernels rely on
// (KernelArgs in backends/backend.hpp). Neighbouring free blocks count as one: a training
// graph's gradients grow towards the stem, and without joining the smaller places their
// activations left, each larger gradient went to the end of the arena.
void plan_memory(Program& program) {
  struct Block {
    std::size_t offset, size;
    int free_after;  // the step after which the block is free again
  };
  std::vector<Block> blocks;  // in offset order, covering [0, end) without gaps
  std::vector<int> order;
  for (std::size_t v = 0; v < program.values.size(); ++v) {
    const Value& value = program.values[v];
    if (value.storage == Value::Storage::arena && value.alias_of < 0)
      order.push_back(static_cast<int>(v));
  }
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return program.values[a].first_step < program.values[b].first_step;
  });
  std::size_t end = 0;
  for (int v : order) {
    Value& value = program.values[v];
    // Every block starts on a 256-byte boundary (64 elements): vector loads and the GPU
    // libraries' fast paths need aligned images.
    const std::size_t size = arena_elements(value, program.element_bytes);
    const int first = value.first_step;
    const int last = std::max(value.last_step, first);
    const auto free = [&](std::size_t i) { return blocks[i].free_after < first; };
    // The best place: the run of free blocks from some block on that is the smallest to
    // hold the value; else the free run that ends the arena, which then grows by what it
    // lacks; else the arena's end.
    // A window [i, j) slides over each stretch of free blocks: linear in the blocks.
    std::size_t run_begin = blocks.size(), run_end = 0, run_total = 0;
    std::size_t j = 0, total = 0;
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      if (!free(i)) {
        j = i + 1, total = 0;
        continue;
      }
      while (j < blocks.size() && free(j) && total < size) total += blocks[j++].size;
      if (total >= size && (run_begin == blocks.size() || total < run_total)) {
        run_begin = i, run_end = j, run_total = total;
      }
      if (j > i) {
        total -= blocks[i].size;
      } else {
        j = i + 1;
      }
    }
    if (run_begin == blocks.size()) {
      std::size_t i = blocks.size();
      while (i > 0 && free(i - 1)) --i;
      run_begin = i, run_end = blocks.size(), run_total = 0;
      for (std::size_t k = i; k < blocks.size(); ++k) run_total += blocks[k].size;
      end = place_end(end, size - run_total);
      run_total = size;
    }
    value.offset = run_begin < blocks.size() ? blocks[run_begin].offset : end - size;
    std::vector<Block> placed{{value.offset, size, last}};
    if (run_total > size) placed.push_back({value.offset + size, run_total - size, first - 1});
    blocks.erase(blocks.begin() + std::ptrdiff_t(run_begin),
                 blocks.begin() + std::ptrdiff_t(run_end));
    blocks.insert(blocks.begin() + std::ptrdiff_t(run_begin), placed.begin(), placed.end());
  }
  program.arena_floats = end;
  for (Value& value : program.values) {
    if (value.alias_of >= 0) value.offset = program.values[value.alias_of].offset;
  }
}

namespace {

// A reshape of an arena value into an arena value copies nothing: the result shares its
// source's place (aliases of aliases share the first one's), which then lives until the
// result's last reader. (On CUDA these copies were 2 ms of a ResNet-50 training step: the
// identity gradients of its residual additions.)
void alias_reshapes(Program& program) {
  for (Step& step : program.steps) {
    if (step.op->kind != OpKind::reshape || step.srcs.size() != 1) continue;
    Value& dst = program.values[step.dst];
    const int root = program.values[step.srcs[0]].alias_of >= 0
                         ? program.values[step.srcs[0]].alias_of
                         : step.srcs[0];
    if (dst.storage != Value::Storage::arena ||
        program.values[root].storage != Value::Storage::arena)
      continue;
    dst.alias_of = root;
  }
  for (Value& value : program.values) {
    if (value.alias_of < 0) continue;
    Value& root = program.values[value.alias_of];
    root.last_step = std::max(root.last_step, std::max(value.last_step, value.first_step));
  }
}

// Bit-packed images between binary convolutions (BitPacking in ops/op.hpp): an
// intermediate that a binary convolution writes and that only binary convolutions read, all
// binarizing it alike and all with kernels that take bits (Backend::packs_bits), is stored
// as bits: written once in the producer's epilogue instead of as floats that every consumer
// packs again.
void pack_binary_images(Program& program, const Backend& backend) {
  if (const char* knob = knobs::read(knobs::bit_packing); knob && std::string(knob) == "off")
    return;
  std::vector<std::vector<int>> readers(program.values.size());
  for (std::size_t i = 0; i < program.steps.size(); ++i) {
    for (int v : program.steps[i].srcs) {
      if (v >= 0) readers[v].push_back(static_cast<int>(i));
    }
  }
  const auto packing_binary_op = [&](const Step& step) -> BinaryConvolutionOp* {
    if (step.op->kind != OpKind::binary_convolution) return nullptr;
    auto& op = static_cast<BinaryConvolutionOp&>(*step.op);
    return op.post_ops.empty() && backend.packs_bits(op) ? &op : nullptr;
  };
  for (std::size_t v = 0; v < program.values.size(); ++v) {
    Value& value = program.values[v];
    if (value.storage != Value::Storage::arena || value.alias_of >= 0 || value.first_step < 0 ||
        readers[v].empty())
      continue;
    Step& producer = program.steps[value.first_step];
    BinaryConvolutionOp* written = packing_binary_op(producer);
    if (!written || producer.dst != static_cast<int>(v)) continue;
    std::vector<BinaryConvolutionOp*> reading;
    BitPacking packing;
    for (int r : readers[v]) {
      const Step& reader = program.steps[r];
      BinaryConvolutionOp* op = packing_binary_op(reader);
      if (!op || reader.srcs.size() != 1 || reader.srcs[0] != static_cast<int>(v)) {
        reading.clear();
        break;
      }
      BitPacking wanted = op->source_packing();
      if (reading.empty()) {
        packing = std::move(wanted);
      } else if (!(wanted == packing)) {
        reading.clear();
        break;
      }
      reading.push_back(op);
    }
    if (reading.empty()) continue;
    written->packed_result = true;
    written->result_packing = std::move(packing);
    for (BinaryConvolutionOp* op : reading) op->packed_source = true;
    value.packed_elements = written->result_packing.elements(value.shape);
  }
}

// A training-fusion group's step from its head's lowered op and sources and its tail's, or
// null when the ops these sizes gave do not make the pattern (an addition that broadcasts,
// an average pooling, an inference batch norm): the two then run as steps of their own.
std::unique_ptr<Op> fuse_training_ops(const TrainingFusion& group, std::unique_ptr<Op>& head,
                                      const std::vector<int>& head_srcs, std::unique_ptr<Op>& tail,
                                      const std::vector<int>& tail_srcs, std::vector<int>& srcs) {
  using K = TrainingFusion::Kind;
  const K kind = group.kind;
  switch (kind) {
    case K::batch_norm_relu:
    case K::addition_relu: {
      const OpKind expected =
          kind == K::addition_relu ? OpKind::addition : OpKind::batch_normalization_training;
      if (head->kind != expected) return nullptr;
      if (kind == K::addition_relu) {
        head->kind = OpKind::fused_addition_relu;
      } else {
        head->kind = OpKind::fused_batch_normalization_relu;
        static_cast<BatchNormalizationTrainingOp&>(*head).relu_ceiling =
            fused_relu_ceiling(group.tail);
      }
      srcs = head_srcs;
      return std::move(head);
    }
    case K::max_pooling_relu_gradient: {
      if (head->kind != OpKind::pooling_gradient ||
          static_cast<const PoolingGradientOp&>(*head).type != PoolingType::max)
        return nullptr;
      head->kind = OpKind::fused_max_pooling_relu_gradient;
      srcs = head_srcs;
      return std::move(head);
    }
    case K::relu_batch_norm_gradient: {
      if (head->kind != OpKind::neuron_gradient ||
          tail->kind != OpKind::batch_normalization_gradient)
        return nullptr;
      tail->kind = OpKind::fused_relu_batch_normalization_gradient;
      auto& gradient = static_cast<BatchNormalizationGradientOp&>(*tail);
      gradient.mask_from_statistics = group.mask_from_statistics;
      gradient.relu_ceiling = fused_relu_ceiling(group.head->gradient_of());
      tail->src_shapes = {head->src_shapes[0], tail->src_shapes[1], head->src_shapes[1]};
      srcs = {head_srcs[0], tail_srcs[1], head_srcs[1]};
      return std::move(tail);
    }
    case K::addition_relu_gradient: {
      if (head->kind != OpKind::addition || tail->kind != OpKind::neuron_gradient) return nullptr;
      tail->kind = OpKind::fused_addition_relu_gradient;
      tail->src_shapes = {head->src_shapes[0], head->src_shapes[1], tail->src_shapes[1]};
      srcs = {head_srcs[0], head_srcs[1], tail_srcs[1]};
      return std::move(tail);
    }
  }
  return nullptr;
}

}  // namespace

std::unique_ptr<Program> compile_program(const CompileInputs& in,
                                         const std::vector<ImageShape>& source_shapes) {
  const GraphStructure& g = in.structure;
  auto program = std::make_unique<Program>();
  program->source_shapes = source_shapes;
  std::map<const ImageNode*, int> value_of;
  const auto add_value = [&](const ImageNode* node, ImageShape shape, int step) {
    Value v;
    v.node = node;
    v.shape = shape;
    v.first_step = step;
    const bool exported = node->export_from_graph;
    bool needed_result = false;
    for (std::size_t r = 0; r < g.results.size(); ++r) {
      needed_result |= g.results[r].get() == node && g.results_needed[r];
    }
    if (exported || needed_result) v.storage = Value::Storage::output;
    value_of[node] = static_cast<int>(program->values.size());
    program->values.push_back(v);
  };
  program->input_values.assign(g.sources.size() + 2 * g.loss_nodes.size(), -1);
  const auto add_input = [&](const ImageNode* node, ImageShape shape, std::size_t input) {
    add_value(node, shape, -1);
    program->values.back().storage = Value::Storage::source;
    program->input_values[input] = static_cast<int>(program->values.size() - 1);
  };
  for (std::size_t s = 0; s < g.sources.size(); ++s)
    add_input(g.sources[s].get(), source_shapes[s], s);

  // Nodes absorbed into a convolution are still lowered (their shape rules and checks apply)
  // but make no step of their own.
  std::map<const FilterNode*, const FilterNode*> absorbed_into;
  for (const auto& [conv, chain] : in.chains) {
    for (const FilterNode* node : chain.absorbed()) absorbed_into[node] = conv;
  }
  std::map<const FilterNode*, std::size_t> step_of;
  // Convolutions whose fused group ends early for these sizes (at a broadcasting addition).
  std::set<const FilterNode*> cut_short;
  LoweringContext context;
  context.weights_for = [&](const FilterNode& node) { return in.weights.at(&node); };
  context.parameters_for = [&](const FilterNode& node) { return in.parameters.weights_for(node); };
  context.normalization_for = [&](const BatchNormalizationNode& node) {
    return in.parameters.normalization_for(node);
  };
  // Labels and label weights are sources that take the predictions' size.
  program->label_values.assign(g.loss_nodes.size(), -1);
  program->unit_label_weights.resize(g.loss_nodes.size());
  std::map<const ImageNode*, ImageShape> shape_of;
  for (std::size_t s = 0; s < g.sources.size(); ++s)
    shape_of[g.sources[s].get()] = source_shapes[s];

  // Training fusion: a group's head is lowered and kept here until its tail.
  struct PendingHead {
    std::unique_ptr<Op> op;
    std::vector<int> srcs;
  };
  std::map<const FilterNode*, PendingHead> pending_heads;
  const auto& fusion = in.training_fusion;

  for (const auto& filter : g.order) {
    for (std::size_t k = 0; k < g.loss_nodes.size(); ++k) {
      if (g.loss_nodes[k] != filter.get()) continue;
      const ImageShape predictions = shape_of.at(filter->source_images()[0].get());
      for (std::size_t i = 1; i <= 2; ++i) {
        const ImageNode* labels = filter->source_images()[i].get();
        shape_of[labels] = predictions;
        add_input(labels, predictions, g.sources.size() + 2 * k + (i - 1));
      }
      program->label_values[k] = value_of.at(filter->source_images()[1].get());
    }
    context.src_shapes.clear();
    for (const auto& source : filter->source_images())
      context.src_shapes.push_back(shape_of.at(source.get()));
    std::unique_ptr<Op> op = lower_node(*filter, context);
    const ImageNode* result = filter->result_image().get();
    shape_of[result] = op->dst_shape;

    auto absorbed = absorbed_into.find(filter.get());
    if (absorbed != absorbed_into.end() && !cut_short.count(absorbed->second)) {
      Step& step = program->steps[step_of.at(absorbed->second)];
      const FusedChain& chain = in.chains.at(absorbed->second);
      const auto link =
          std::find_if(chain.links.begin(), chain.links.end(),
                       [&](const FusedChain::Link& l) { return l.node == filter.get(); });
      if (link != chain.links.end() && link->residual && op->kind != OpKind::addition) {
        // An addition that broadcasts at these sizes is no residual sum: the group ends
        // before it, and it and the rest of the chain run as steps of their own.
        cut_short.insert(absorbed->second);
        const auto& sources = filter->source_images();
        const ImageNode* input =
            sources[0].get() == link->residual ? sources[1].get() : sources[0].get();
        add_value(input, shape_of.at(input), static_cast<int>(step_of.at(absorbed->second)));
        step.dst = value_of.at(input);
      }
    }
    if (absorbed != absorbed_into.end() && !cut_short.count(absorbed->second)) {
      Step& step = program->steps[step_of.at(absorbed->second)];
      step.fused.push_back(filter->display_name());
      const FusedChain& chain = in.chains.at(absorbed->second);
      auto& conv = static_cast<ConvolutionOp&>(*step.op);
      if (filter.get() == chain.batch_norm && conv.kind == OpKind::binary_convolution) {
        // Its lowering above checked the channel count against the convolution's.
        std::vector<float> scale, shift;
        fold_batch_normalization(static_cast<const BatchNormalizationNode&>(*filter).parameters(),
                                 scale, shift);
        static_cast<BinaryConvolutionOp&>(conv).fold_channel_affine(scale, shift);
      }
      for (const FusedChain::Link& link : chain.links) {
        if (link.node != filter.get()) continue;
        if (link.residual) {
          conv.post_ops.push_back({PostOp::Kind::sum, {}});
          // The residual is the step's last source, which kernels read it from
          // (backends/backend.hpp, KernelArgs).
          conv.src_shapes.push_back(shape_of.at(link.residual));
          step.srcs.push_back(value_of.at(link.residual));
        } else {
          conv.post_ops.push_back(
              {PostOp::Kind::neuron, static_cast<const NeuronNode*>(filter.get())->neuron()});
        }
      }
      if (result == chain.output) {
        add_value(result, op->dst_shape, static_cast<int>(step_of.at(absorbed->second)));
        step.dst = value_of.at(result);
      }
      continue;
    }

    Step step;
    // The sources the op reads (Op::read_sources): the first of the node's; a fused relu's
    // gradient reads the relu's result for its source.
    // (-1 for a fusion head's result, which is never stored unless the group falls apart.)
    const auto mask = fusion.mask_source.find(filter.get());
    const auto read_sources = [&] {
      std::vector<int> srcs;
      for (std::size_t s = 0; s < op->src_shapes.size(); ++s) {
        const ImageNode* source = filter->source_images()[s].get();
        if (s == 1 && mask != fusion.mask_source.end()) source = mask->second;
        const auto value = value_of.find(source);
        srcs.push_back(value == value_of.end() ? -1 : value->second);
      }
      return srcs;
    };
    step.srcs = read_sources();
    const bool normalized_later = fusion.normalized_into.count(filter.get()) &&
                                  op->kind == OpKind::batch_normalization_training;
    if (fusion.head_of.count(filter.get()) || normalized_later) {
      pending_heads[filter.get()] = {std::move(op), std::move(step.srcs)};
      continue;
    }
    if (auto tail = fusion.tail_of.find(filter.get()); tail != fusion.tail_of.end()) {
      const TrainingFusion& group = fusion.groups[tail->second];
      PendingHead& head = pending_heads.at(group.head);
      std::vector<int> srcs;
      // The batch norms that the group's sum normalizes, still without steps of their own.
      std::array<PendingHead*, 2> normalized{};
      for (std::size_t s = 0; s < 2; ++s) {
        const auto pending = pending_heads.find(group.normalized[s]);
        if (group.normalized[s] && pending != pending_heads.end()) normalized[s] = &pending->second;
      }
      if (std::unique_ptr<Op> fused =
              fuse_training_ops(group, head.op, head.srcs, op, step.srcs, srcs)) {
        for (std::size_t s = 0; s < 2; ++s) {
          if (!normalized[s]) continue;
          auto& sum = static_cast<AdditionOp&>(*fused);
          sum.kind = OpKind::fused_batch_normalization_addition_relu;
          sum.normalized[s] =
              static_cast<const BatchNormalizationTrainingOp&>(*normalized[s]->op).trainable;
          srcs[s] = normalized[s]->srcs[0];
          step.fused.push_back(group.normalized[s]->display_name());
          step_of[group.normalized[s]] = program->steps.size();
        }
        // The group is named after its head; the tail is folded into it.
        fused->name = group.head->display_name();
        fused->dst_shape = shape_of.at(result);
        step.op = std::move(fused);
        step.srcs = std::move(srcs);
        step.fused.push_back(filter->display_name());
        step_of[filter.get()] = program->steps.size();
        add_value(result, shape_of.at(result), static_cast<int>(program->steps.size()));
        step.dst = value_of.at(result);
        program->steps.push_back(std::move(step));
        continue;
      }
      // Not the pattern at these sizes: the batch norms' and the head's own steps first.
      for (std::size_t s = 0; s < 2; ++s) {
        if (!normalized[s]) continue;
        const FilterNode* bn = group.normalized[s];
        Step bn_step;
        bn_step.op = std::move(normalized[s]->op);
        bn_step.srcs = std::move(normalized[s]->srcs);
        step_of[bn] = program->steps.size();
        add_value(bn->result_image().get(), bn_step.op->dst_shape,
                  static_cast<int>(program->steps.size()));
        bn_step.dst = value_of.at(bn->result_image().get());
        head.srcs[s] = bn_step.dst;
        program->steps.push_back(std::move(bn_step));
      }
      Step head_step;
      head_step.op = std::move(head.op);
      head_step.srcs = std::move(head.srcs);
      const ImageNode* head_result = group.head->result_image().get();
      step_of[group.head] = program->steps.size();
      add_value(head_result, head_step.op->dst_shape, static_cast<int>(program->steps.size()));
      head_step.dst = value_of.at(head_result);
      program->steps.push_back(std::move(head_step));
      step.srcs = read_sources();
    }
    if (std::find(step.srcs.begin(), step.srcs.end(), -1) != step.srcs.end())
      throw InvalidArgument(filter->display_name() + ": reads an image that fusion removed");
    step.op = std::move(op);
    step_of[filter.get()] = program->steps.size();
    if (!in.chains.count(filter.get())) {
      add_value(result, step.op->dst_shape, static_cast<int>(program->steps.size()));
      step.dst = value_of.at(result);
    }
    program->steps.push_back(std::move(step));
  }

  for (std::size_t i = 0; i < program->steps.size(); ++i) {
    for (int v : program->steps[i].srcs) {
      program->values[v].last_step = std::max(program->values[v].last_step, static_cast<int>(i));
    }
  }
  pack_binary_images(*program, in.backend);
  alias_reshapes(*program);
  if (DeviceExecution* device = in.backend.device_execution())
    program->element_bytes = size_of(device->storage_type());
  plan_memory(*program);
  program->intermediate_elements = program->arena_floats;
  for (const auto& result : g.results) program->result_values.push_back(value_of.at(result.get()));
  for (std::size_t v = 0; v < program->values.size(); ++v) {
    const Value& value = program->values[v];
    if (value.node->export_from_graph && value.storage == Value::Storage::output &&
        !value.node->is_source()) {
      program->exported_values.emplace_back(value.node->producer()->result_image(),
                                            static_cast<int>(v));
    }
  }
  // Kernels last: every op now has its final post-ops and sources.
  for (Step& step : program->steps) {
    if (step.dst >= 0 && program->values[step.dst].alias_of >= 0) continue;
    step.kernel = in.backend.compile(*step.op, in.options);
    if (step.op->kind == OpKind::loss)
      program->loss_ops.push_back(static_cast<LossOp*>(step.op.get()));
  }
  if (DeviceExecution* device = in.backend.device_execution()) {
    // Sources get their own places after the intermediates; outputs go to output sets.
    std::size_t end = program->arena_floats;
    for (Value& value : program->values) {
      const std::size_t padded = padded_elements(value.shape);
      if (value.storage == Value::Storage::source) {
        value.offset = end;
        end = place_end(end, padded);
      } else if (value.storage == Value::Storage::output) {
        value.offset = program->output_set_elements;
        program->output_set_elements = place_end(program->output_set_elements, padded);
      }
    }
    program->arena_floats = end;
    const std::size_t bytes = std::max<std::size_t>(end, 1) * program->element_bytes;
    const std::string graph_name =
        g.results.empty() || !g.results[0]->producer()
            ? std::string("the graph")
            : "the graph of '" + g.results[0]->producer()->display_name() + "'";
    program->device_arena = device->memory().allocate(
        bytes, "the images of " + graph_name + " (" + std::to_string(bytes) + " bytes)");
    device->program_compiled();
  } else {
    program->arena.assign(program->arena_floats, 0.0f);
  }
  return program;
}

}  // namespace cnngraph::detail
