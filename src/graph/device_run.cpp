// Running a compiled program on a device backend: the sources are copied (and converted)
// into their places in the device arena, the steps launched on the backend's stream into a
// free output set (recorded on the set's second run and replayed after, with
// GraphOptions::cuda_graphs), and the results returned as images of that set on the device
// (converted copies where a result's type is not the storage type). Returns after the device
// has finished.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "cnngraph/errors.hpp"
#include "core/device_memory.hpp"
#include "env_knobs.hpp"
#include "graph/run_program.hpp"

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

Results run_on_device(Program& program, const RunContext& context, const RunInputs& inputs) {
  DeviceExecution& execution = *context.execution;
  const DataType storage = execution.storage_type();
  const std::size_t element = size_of(storage);
  DeviceMemory& memory = execution.memory();
  Program::OutputSet for_this_run;
  Program::OutputSet& set = free_output_set(program, memory, element, for_this_run);
  std::byte* base = program.device_arena.get();
  // Device images of the storage type are read where they are (no copy) when they are
  // aligned as the arena's blocks are (the kernels' vector loads count on it; a wrapped
  // caller's buffer may be less aligned); the others are uploaded, copied or converted into
  // their place in the arena.
  std::vector<std::byte*> source_at(program.values.size(), nullptr);
  for (std::size_t i = 0; i < inputs.images.size(); ++i) {
    const Image& image = *inputs.images[i];
    const auto v = static_cast<std::size_t>(program.input_values[i]);
    const bool aligned = reinterpret_cast<std::uintptr_t>(image.data()) % 256 == 0;
    source_at[v] = !image.is_on_host() && image.data_type() == storage && aligned
                       ? const_cast<std::byte*>(image.data())
                       : base + program.values[v].offset * element;
  }
  const auto at = [&](int v) {
    const Value& value = program.values[v];
    if (value.storage == Value::Storage::source) return source_at[static_cast<std::size_t>(v)];
    return (value.storage == Value::Storage::output ? set.block.get() : base) +
           value.offset * element;
  };

  // Staging buffers for host images of another type live until the device is done.
  std::vector<std::shared_ptr<std::byte[]>> staging;
  for (std::size_t i = 0; i < inputs.images.size(); ++i) {
    const int v = program.input_values[i];
    const Image& image = *inputs.images[i];
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
  const bool recording = context.options.cuda_graphs;
  if (recording && set.runs > 0 && !set.captured) set.recorded_sources = bound;
  const bool replay = recording && set.runs > 0 && set.recorded_sources == bound;
  const auto run_step = [&](Step& step) {
    if (!step.kernel) return;  // an alias: nothing moves
    KernelArgs args;
    args.batch = inputs.batch;
    for (int v : step.srcs) args.srcs.push_back(reinterpret_cast<const float*>(at(v)));
    args.dst = reinterpret_cast<float*>(at(step.dst));
    step.kernel->run(args);
  };
  execution.set_batch(inputs.batch);
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
    if (context.after_steps) {
      const double ms = execution.time_ms(context.after_steps);
      std::fprintf(stderr, "cnngraph: profile: %-40s %9.4f ms\n", "(optimizer step)", ms);
    }
  } else {
    execution.launch(set.captured, replay, [&] {
      for (Step& step : program.steps) run_step(step);
      if (context.after_steps) context.after_steps();
    });
  }

  const auto copy_out = [&](int v) {
    const Value& value = program.values[v];
    const DataType type = result_type(*value.node, context.options);
    const std::size_t count = value.shape.elements();
    if (type == storage && value.storage == Value::Storage::output) {
      // Zero-copy: the image shares the set's block, which stays out of use until the caller
      // lets go of it.
      return ImageAccess::make(value.shape, type, context.device, set.block.lend(at(v)));
    }
    auto storage_block = memory.allocate(count * size_of(type), "a result image");
    if (type == storage) {
      execution.copy_async(storage_block.get(), at(v), count * element);
    } else {
      execution.convert_async(at(v), storage, storage_block.get(), type, count);
    }
    return ImageAccess::make(value.shape, type, context.device, std::move(storage_block));
  };
  Results results = collect_results(program, context.structure, copy_out);
  execution.synchronize();
  for (Step& step : program.steps) {
    if (step.kernel) step.kernel->after_run();
  }
  ++set.runs;
  ++program.runs;
  report_losses(program, inputs.batch, results);
  return results;
}

}  // namespace cnngraph::detail
