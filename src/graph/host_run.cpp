// Running a compiled program on a host-memory backend (reference, oneDNN): every image is
// f32 in host memory; intermediates live in the program's arena, results in output blocks
// lent to the caller.
#include <chrono>
#include <cstdio>

#include "core/device_memory.hpp"
#include "env_knobs.hpp"
#include "graph/run_program.hpp"

namespace cnngraph::detail {

Results run_on_host(Program& program, const RunContext& context, const RunInputs& inputs) {
  // Sources that are not f32 are converted once at the boundary (labels always are f32).
  std::vector<Image> converted(inputs.images.size());
  std::vector<float*> input_at(program.values.size(), nullptr);
  for (std::size_t i = 0; i < inputs.images.size(); ++i) {
    const Image& image = *inputs.images[i];
    const Image& f32 = image.data_type() == DataType::f32
                           ? image
                           : (converted[i] = image.converted_to(DataType::f32));
    input_at[static_cast<std::size_t>(program.input_values[i])] =
        const_cast<float*>(reinterpret_cast<const float*>(f32.data()));
  }
  std::vector<LentBlock>& outputs = program.output_storage;
  outputs.resize(program.values.size());
  for (std::size_t v = 0; v < outputs.size(); ++v) {
    const Value& value = program.values[v];
    if (value.storage != Value::Storage::output) continue;
    if (!outputs[v] || !outputs[v].is_free()) {
      outputs[v] = LentBlock(
          std::shared_ptr<std::byte[]>(new std::byte[value.shape.elements() * sizeof(float)]));
    }
  }
  const auto pointer = [&](int v) -> float* {
    const Value& value = program.values[v];
    switch (value.storage) {
      case Value::Storage::source:
        return input_at[static_cast<std::size_t>(v)];
      case Value::Storage::arena:
        return program.arena.data() + value.offset;
      case Value::Storage::output:
        return reinterpret_cast<float*>(outputs[v].get());
    }
    return nullptr;
  };

  // CNNGRAPH_PROFILE=1 logs every step's time to stderr, as device runs do.
  static const bool profile = knobs::read(knobs::profile) != nullptr;
  KernelArgs args;
  args.batch = inputs.batch;
  for (Step& step : program.steps) {
    if (!step.kernel) continue;  // an alias: nothing moves
    args.srcs.clear();
    for (int v : step.srcs) args.srcs.push_back(pointer(v));
    args.dst = pointer(step.dst);
    const auto start =
        profile ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
    step.kernel->run(args);
    if (profile) {
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count();
      std::fprintf(stderr, "cnngraph: profile: %-40s %9.4f ms  %s [%s]\n", step.op->name.c_str(),
                   ms, step.kernel->implementation().c_str(), step.op->attributes().c_str());
    }
  }
  if (context.after_steps) context.after_steps();
  ++program.runs;

  // f32 results are the output blocks themselves, lent to the caller; others are converted
  // copies.
  Results results = collect_results(program, context.structure, [&](int v) {
    const Value& value = program.values[v];
    Image image = ImageAccess::make(value.shape, DataType::f32, Device::cpu(),
                                    outputs[v].lend(outputs[v].get()));
    const DataType type = result_type(*value.node, context.options);
    return type == DataType::f32 ? image : image.converted_to(type);
  });
  report_losses(program, inputs.batch, results);
  return results;
}

}  // namespace cnngraph::detail
