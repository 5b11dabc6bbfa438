// Running a compiled program on a device backend (see run_program_on_device).
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "backends/device_memory.hpp"
#include "cnngraph/errors.hpp"
#include "env_knobs.hpp"
#include "graph/program.hpp"

namespace cnngraph::detail {

namespace {

// An output set no result image holds: an existing one, a new one while there are fewer
// than kMaxOutputSets, else a set for this run only (its launches are not recorded).
Program::OutputSet& free_output_set(Program& program, DeviceMemory& memory, std::size_t element,
                                    Program::OutputSet& for_this_run) {
  for (Program::OutputSet& set : program.output_sets) {
    if (set.block.is_free()) return set;
  }
  Program::OutputSet fresh;
  fresh.block =
      LentBlock(memory.allocate(std::max<std::size_t>(program.output_set_elements, 1) * element,
                                "the result images of a graph"));
  if (program.output_sets.size() < Program::kMaxOutputSets) {
    program.output_sets.push_back(std::move(fresh));
    return program.output_sets.back();
  }
  for_this_run = std::move(fresh);
  return for_this_run;
}

}  // namespace

Results run_program_on_device(Program& program, DeviceExecution& execution, const Device& device,
                              const GraphStructure& structure, const std::vector<Image>& sources,
                              const std::vector<Image>& labels, std::uint64_t batch, bool recording,
                              const std::function<DataType(const ImageNode&)>& type_of,
                              const std::function<void()>& after_steps) {
  const DataType storage = execution.storage_type();
  const std::size_t element = size_of(storage);
  DeviceMemory& memory = execution.memory();
  Program::OutputSet for_this_run;
  Program::OutputSet& set = free_output_set(program, memory, element, for_this_run);
  std::byte* base = program.device_arena.get();
  // The images that go to source places: the sources (values 0..), then each loss's labels
  // and label weights (their values follow one another).
  std::vector<std::pair<int, const Image*>> inputs;
  for (std::size_t s = 0; s < sources.size(); ++s) inputs.emplace_back(int(s), &sources[s]);
  for (std::size_t k = 0; k < program.label_values.size(); ++k) {
    inputs.emplace_back(program.label_values[k], &labels[2 * k]);
    inputs.emplace_back(program.label_values[k] + 1, &labels[2 * k + 1]);
  }
  // Device images of the storage type are read where they are (no copy); the others are
  // uploaded or converted into their place in the arena.
  std::vector<std::byte*> source_at(program.values.size(), nullptr);
  for (const auto& [v, image] : inputs) {
    source_at[static_cast<std::size_t>(v)] =
        !image->is_on_host() && image->data_type() == storage
            ? const_cast<std::byte*>(image->data())
            : base + program.values[static_cast<std::size_t>(v)].offset * element;
  }
  const auto at = [&](int v) {
    const Value& value = program.values[v];
    if (value.storage == Value::Storage::source) return source_at[static_cast<std::size_t>(v)];
    return (value.storage == Value::Storage::output ? set.block.get() : base) +
           value.offset * element;
  };

  // Staging buffers for host images of another type live until the device is done.
  std::vector<std::shared_ptr<std::byte[]>> staging;
  for (const auto& [v, image_pointer] : inputs) {
    const Image& image = *image_pointer;
    const std::size_t count = image.shape().elements();
    const void* from = image.data();
    if (at(v) == from) continue;  // read in place
    if (image.is_on_host()) {
      if (image.data_type() == storage) {
        execution.upload_async(at(v), image.data(), image.size_in_bytes());
        continue;
      }
      staging.push_back(memory.allocate(image.size_in_bytes(), "a source image's upload"));
      execution.upload_async(staging.back().get(), image.data(), image.size_in_bytes());
      from = staging.back().get();
    }
    if (image.data_type() == storage) {
      execution.copy_async(at(v), from, image.size_in_bytes());
    } else {
      execution.convert_async(from, image.data_type(), at(v), storage, count);
    }
  }

  // A recording replays only with the source buffers it was made with; a run with other
  // device images launches its steps one by one (and keeps the recording for later).
  const std::vector<std::byte*>& bound = source_at;
  if (recording && set.runs > 0 && !set.captured) set.recorded_sources = bound;
  const bool replay = recording && set.runs > 0 && set.recorded_sources == bound;
  const auto run_step = [&](Step& step) {
    if (!step.kernel) return;  // an alias: nothing moves
    KernelArgs args;
    args.batch = batch;
    for (int v : step.srcs) args.srcs.push_back(reinterpret_cast<const float*>(at(v)));
    args.dst = reinterpret_cast<float*>(at(step.dst));
    // No preload: device kernels read a fused residual from its source, not from dst.
    step.kernel->run(args);
  };
  execution.set_batch(batch);
  for (Step& step : program.steps) {
    if (step.kernel) step.kernel->before_run();
  }
  // CNNGRAPH_PROFILE=1 times every step on its own (no recording) and logs it to stderr.
  static const bool profile = knobs::read(knobs::profile) != nullptr;
  if (profile) {
    for (Step& step : program.steps) {
      if (!step.kernel) continue;
      const double ms = execution.time_ms([&] { run_step(step); });
      std::fprintf(stderr, "cnngraph: profile: %-40s %9.4f ms  %s [%s]\n", step.op->name.c_str(),
                   ms, step.kernel->implementation().c_str(), step.op->attributes().c_str());
    }
    const double ms = execution.time_ms(after_steps);
    std::fprintf(stderr, "cnngraph: profile: %-40s %9.4f ms\n", "(optimizer step)", ms);
  } else {
    execution.launch(set.captured, replay, [&] {
      for (Step& step : program.steps) run_step(step);
      after_steps();
    });
  }

  const auto copy_out = [&](int v) {
    const Value& value = program.values[v];
    const DataType type = type_of(*value.node);
    const std::size_t count = value.shape.elements();
    if (type == storage && value.storage == Value::Storage::output) {
      // Zero-copy: the image shares the set's block, which stays out of use until the caller
      // lets go of it.
      return ImageAccess::make(value.shape, type, device, set.block.lend(at(v)));
    }
    auto storage_block = memory.allocate(count * size_of(type), "a result image");
    if (type == storage) {
      execution.copy_async(storage_block.get(), at(v), count * element);
    } else {
      execution.convert_async(at(v), storage, storage_block.get(), type, count);
    }
    return ImageAccess::make(value.shape, type, device, std::move(storage_block));
  };
  Results results;
  for (std::size_t r = 0; r < program.result_values.size(); ++r) {
    results.images.push_back(structure.results_needed[r] ? copy_out(program.result_values[r])
                                                         : Image());
  }
  for (const auto& [node, v] : program.exported_values)
    results.exported.emplace_back(node, copy_out(v));
  execution.synchronize();
  for (Step& step : program.steps) {
    if (step.kernel) step.kernel->after_run();
  }
  ++set.runs;
  ++program.runs;
  for (const LossOp* loss : program.loss_ops) {
    results.losses.emplace_back(loss->name, static_cast<float>(loss->value));
    if (!std::isfinite(loss->value)) {
      throw NumericalError(loss->name + ": the loss of batch " + std::to_string(batch) + " is " +
                           std::to_string(loss->value) +
                           "; no weights were updated (check the learning rate and inputs)");
    }
  }
  return results;
}

}  // namespace cnngraph::detail
