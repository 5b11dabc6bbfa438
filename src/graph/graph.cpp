// Graph: owns the analysis, the prepared weights and the compiled programs, and runs them.
#include "cnngraph/graph.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <new>
#include <optional>

#include "backends/backend.hpp"
#include "backends/device_memory.hpp"
#include "cnngraph/errors.hpp"
#include "graph/describe.hpp"
#include "graph/device_training.hpp"
#include "graph/program.hpp"
#include "graph/structure.hpp"
#include "graph/trainables.hpp"
#include "graph/weights.hpp"
#include "kernels/flush_denormals.hpp"

namespace cnngraph {

using namespace detail;

struct Graph::Impl {
  Device device;
  GraphOptions options;
  GraphStructure structure;
  std::unique_ptr<Backend> backend;

  std::mutex mutex;  // one run or compilation at a time
  bool weights_ready = false;
  std::map<const FilterNode*, std::shared_ptr<const PreparedWeights>> weights;
  std::map<const FilterNode*, FusedChain> chains;
  std::vector<Trainable> trainables;
  std::vector<NormalizationTrainable> normalizations;
  std::unique_ptr<DeviceTraining> device_training;  // device graphs that train
  // The compiled programs by source sizes, with the use counter of their last run: at most
  // options.max_compiled_sizes of them; compiling one more evicts the least recently used.
  struct CachedProgram {
    std::unique_ptr<Program> program;
    std::uint64_t last_use = 0;
  };
  std::map<std::vector<ImageShape>, CachedProgram> programs;
  std::uint64_t program_uses = 0;
  const Program* last_program = nullptr;
  std::uint64_t batches = 0;

  Impl(Device d, GraphOptions o, GraphStructure s)
      : device(d), options(o), structure(std::move(s)), backend(make_backend(d, o)) {}

  // Loads every data source once (load, copy, purge) and plans fusion. On failure nothing
  // is kept, so a later call starts again from a clean state.
  void prepare_weights_and_fusion() {
    if (weights_ready) return;
    std::map<const FilterNode*, std::shared_ptr<const PreparedWeights>> loaded;
    std::vector<Trainable> trained = prepare_trainables(structure, loaded);
    std::vector<NormalizationTrainable> normalized = prepare_normalizations(structure);
    // Every weighted node's weights, also where only its gradient node is in the graph
    // (trained ones were loaded above, as float shadow weights for binary ones).
    for (const auto& filter : structure.order) {
      const FilterNode* node = filter->gradient_of() ? filter->gradient_of() : filter.get();
      const WeightedNode* weighted = node->weighted();
      if (weighted && !loaded.count(weighted))
        loaded[weighted] = detail::prepare_node_weights(*weighted, nullptr, false);
    }
    const auto descriptor_of = [&](const ConvolutionNode& c) -> const ConvolutionDescriptor& {
      return loaded.at(&c)->descriptor;
    };
    const auto is_trained = [&](const ConvolutionNode& c) {
      for (const Trainable& t : trained) {
        if (t.node == &c) return true;
      }
      return false;
    };
    // A trained convolution keeps its own weights object (updates rewrite it in place), so
    // nothing is folded into it.
    auto planned = plan_fusion(
        structure,
        [&](const ConvolutionNode& c) {
          return descriptor_of(c).sub_pixel_scale_factor == 1 && !is_trained(c);
        },
        [&](const ConvolutionNode& c) { return descriptor_of(c).neuron.type != NeuronType::none; });
    for (const auto& [conv, chain] : planned) {
      if (chain.batch_norm)
        loaded[conv] = fold_batch_normalization_node(*loaded.at(conv), *chain.batch_norm);
    }
    weights = std::move(loaded);
    chains = std::move(planned);
    trainables = std::move(trained);
    normalizations = std::move(normalized);
    weights_ready = true;
  }

  // Drops the loaded weights and the programs (their kernels hold the old weights): the next
  // run loads the data sources again.
  void forget_weights() {
    device_training.reset();
    programs.clear();
    last_program = nullptr;
    weights.clear();
    trainables.clear();
    normalizations.clear();
    weights_ready = false;
  }

  Program& program_for(const std::vector<ImageShape>& shapes) {
    prepare_weights_and_fusion();
    auto it = programs.find(shapes);
    if (it == programs.end()) {
      CompileInputs inputs{structure,      chains,   weights, trainables,
                           normalizations, *backend, options};
      std::unique_ptr<Program> compiled = compile_program(inputs, shapes);
      const std::size_t limit = std::max<std::size_t>(options.max_compiled_sizes, 1);
      while (programs.size() >= limit) {
        auto oldest = programs.begin();
        for (auto p = programs.begin(); p != programs.end(); ++p) {
          if (p->second.last_use < oldest->second.last_use) oldest = p;
        }
        programs.erase(oldest);
      }
      it = programs.emplace(shapes, CachedProgram{std::move(compiled), 0}).first;
    }
    it->second.last_use = ++program_uses;
    last_program = it->second.program.get();
    return *it->second.program;
  }

  DataType output_type(const ImageNode& node) const {
    return node.format ? *node.format : storage_type_for(options.precision);
  }

  std::vector<ImageShape> check_sources(const std::vector<Image>& sources) const {
    const auto& handles = structure.sources;
    if (sources.size() != handles.size()) {
      std::string names;
      for (const auto& h : handles)
        names += (names.empty() ? "" : ", ") + (h->handle.empty() ? "<unnamed>" : h->handle);
      throw InvalidArgument("Graph::run: expected " + std::to_string(handles.size()) +
                            " source images (" + names + "), got " +
                            std::to_string(sources.size()));
    }
    std::vector<ImageShape> shapes;
    for (std::size_t i = 0; i < sources.size(); ++i) {
      if (sources[i].empty()) {
        throw InvalidArgument("Graph::run: source image " + std::to_string(i) + " ('" +
                              handles[i]->handle + "') is empty");
      }
      const Device& where = sources[i].device();
      const bool fits = device.kind() == DeviceKind::cuda
                            ? sources[i].is_on_host() || where == device
                            : sources[i].is_on_host();
      if (!fits) {
        throw InvalidArgument("Graph::run: source image " + std::to_string(i) + " ('" +
                              handles[i]->handle + "') is on " + where.name() +
                              " but the graph runs on " + device.name() +
                              "; copy it there first with Image::to()");
      }
      shapes.push_back(sources[i].shape());
      if (shapes[i].batch != shapes[0].batch) {
        throw ShapeError("Graph::run: source images differ in batch size: " + to_string(shapes[0]) +
                         " and " + to_string(shapes[i]));
      }
    }
    return shapes;
  }

  // One-filled label weights for loss nodes whose labels come without weights.
  std::vector<float> unit_weights;

  std::vector<const float*> label_pointers(const Program& program,
                                           const std::vector<LossLabels>& labels) {
    const auto& losses = structure.loss_nodes;
    if (labels.size() != losses.size()) {
      throw InvalidArgument("Graph::run: the graph has " + std::to_string(losses.size()) +
                            " loss node(s) and takes as many LossLabels; got " +
                            std::to_string(labels.size()));
    }
    std::vector<const float*> pointers;
    for (std::size_t k = 0; k < losses.size(); ++k) {
      const ImageShape& expected = program.values[program.label_values[k]].shape;
      if (labels[k].labels().shape() != expected) {
        throw ShapeError(losses[k]->display_name() + ": the labels are " +
                         to_string(labels[k].labels().shape()) + " but the predictions are " +
                         to_string(expected));
      }
      pointers.push_back(reinterpret_cast<const float*>(labels[k].labels().data()));
      if (labels[k].weights().empty()) {
        if (unit_weights.size() < expected.elements())
          unit_weights.assign(expected.elements(), 1.0f);
        pointers.push_back(unit_weights.data());
      } else {
        pointers.push_back(reinterpret_cast<const float*>(labels[k].weights().data()));
      }
    }
    return pointers;
  }

  Results run(const std::vector<Image>& sources, const std::vector<LossLabels>& labels) {
    std::lock_guard lock(mutex);
    Program& program = program_for(check_sources(sources));
    if (DeviceExecution* execution = backend->device_execution()) {
      label_pointers(program, labels);  // the same checks as on the host
      std::vector<Image> label_images;  // labels and weights per loss node (ones where none)
      for (std::size_t k = 0; k < labels.size(); ++k) {
        const Image& given = labels[k].labels();
        label_images.push_back(given);
        label_images.push_back(
            labels[k].weights().empty()
                ? Image::from_floats(given.shape(),
                                     std::vector<float>(given.shape().elements(), 1.0f))
                : labels[k].weights());
      }
      const bool training = !trainables.empty() || !normalizations.empty();
      if (training && !device_training)
        device_training =
            std::make_unique<DeviceTraining>(trainables, !normalizations.empty(), *execution,
                                             options, !structure.loss_nodes.empty());
      const std::uint64_t batch = batches++;
      Results results;
      {
        // No reader of a source trained here sees the launch half done (and this graph takes
        // no other source's lock meanwhile).
        std::vector<std::unique_lock<std::mutex>> held;
        if (device_training) {
          held = device_training->hold_resident_sources();
          device_training->prepare();
        }
        results = run_program_on_device(
            program, *execution, device, structure, sources, label_images, batch,
            options.cuda_graphs, [&](const ImageNode& node) { return output_type(node); },
            [&] {
              if (device_training) device_training->enqueue();
            });
        if (device_training) device_training->launched();
      }
      if (device_training) {
        device_training->apply(trainables, normalizations, device, batch, sources[0].shape().batch);
      }
      return results;
    }
    // Sources that are not f32 are converted once at the boundary.
    std::vector<Image> converted(sources.size());
    std::vector<const float*> source_data(sources.size());
    for (std::size_t i = 0; i < sources.size(); ++i) {
      const Image& s = sources[i].data_type() == DataType::f32
                           ? sources[i]
                           : (converted[i] = sources[i].converted_to(DataType::f32));
      source_data[i] = reinterpret_cast<const float*>(s.data());
    }
    for (const float* p : label_pointers(program, labels)) source_data.push_back(p);
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
          return const_cast<float*>(source_data[value.offset]);
        case Value::Storage::arena:
          return program.arena.data() + value.offset;
        case Value::Storage::output:
          return reinterpret_cast<float*>(outputs[v].get());
      }
      return nullptr;
    };
    std::optional<FlushDenormalsOnAllThreads> flush;
    if (options.flush_denormals) flush.emplace();
    KernelArgs args;
    args.batch = batches++;
    for (Step& step : program.steps) {
      if (!step.kernel) continue;  // an alias: nothing moves
      args.srcs.clear();
      for (int v : step.srcs) args.srcs.push_back(pointer(v));
      args.dst = pointer(step.dst);
      if (step.preload >= 0) {
        std::memcpy(args.dst, pointer(step.preload),
                    program.values[step.preload].shape.elements() * sizeof(float));
      }
      step.kernel->run(args);
    }
    Results results;
    for (const LossOp* loss : program.loss_ops) {
      results.losses.emplace_back(loss->name, static_cast<float>(loss->value));
      if (!std::isfinite(loss->value)) {
        throw NumericalError(loss->name + ": the loss of batch " + std::to_string(args.batch) +
                             " is " + std::to_string(loss->value) +
                             "; no weights were updated (check the learning rate and inputs)");
      }
    }
    if (!trainables.empty() || !normalizations.empty())
      apply_updates(trainables, normalizations, device, args.batch, sources[0].shape().batch);
    // f32 results are the output blocks themselves, lent to the caller; others are converted
    // copies.
    const auto result_image = [&](int v, const ImageNode& node) {
      const Value& value = program.values[v];
      Image image = ImageAccess::make(value.shape, DataType::f32, Device::cpu(),
                                      outputs[v].lend(outputs[v].get()));
      const DataType type = output_type(node);
      return type == DataType::f32 ? image : image.converted_to(type);
    };
    for (std::size_t r = 0; r < program.result_values.size(); ++r) {
      const int v = program.result_values[r];
      if (!structure.results_needed[r]) {
        results.images.emplace_back();
        continue;
      }
      results.images.push_back(result_image(v, *program.values[v].node));
    }
    for (const auto& [node, v] : program.exported_values)
      results.exported.emplace_back(node, result_image(v, *node));
    return results;
  }
};

const Image& Results::operator[](std::size_t i) const {
  if (i >= images.size()) {
    throw InvalidArgument("Results: result " + std::to_string(i) + " asked for, the run has " +
                          std::to_string(images.size()));
  }
  return images[i];
}

float Results::loss() const {
  if (losses.empty()) throw InvalidArgument("Results::loss: the graph has no loss node");
  float total = 0.0f;
  for (const auto& [name, value] : losses) total += value;
  return total;
}

const Image& Results::exported_image(const ImageNode& node) const {
  for (const auto& [n, image] : exported) {
    if (n.get() == &node) return image;
  }
  throw InvalidArgument(
      "Results::exported_image: the node was not exported from the graph "
      "(set export_from_graph before building the graph)");
}

Graph::Graph(Device device, std::shared_ptr<ImageNode> result_image, bool result_image_is_needed,
             GraphOptions options)
    : Graph(device, std::vector<std::shared_ptr<ImageNode>>{std::move(result_image)},
            std::vector<bool>{result_image_is_needed}, options) {}

Graph::Graph(Device device, std::vector<std::shared_ptr<ImageNode>> result_images,
             std::vector<bool> results_are_needed, GraphOptions options)
    : impl_(std::make_unique<Impl>(
          device, options,
          analyze_graph(std::move(result_images), std::move(results_are_needed)))) {}

Graph::~Graph() = default;

Graph::Impl& Graph::impl() const {
  if (!impl_) {
    throw InvalidArgument(
        "Graph: this graph was moved from; use the Graph it was moved to, or build a new one");
  }
  return *impl_;
}

namespace {
// Host allocations that fail become DeviceError, as the CUDA backend's do.
template <typename Call>
decltype(auto) translating_out_of_memory(const char* what, Call call) {
  try {
    return call();
  } catch (const std::bad_alloc&) {
    throw DeviceError(std::string(what) +
                      ": out of host memory (the images, the arena of intermediates or the "
                      "compiled kernels did not fit)");
  }
}
}  // namespace

Graph::Graph(Graph&&) noexcept = default;
Graph& Graph::operator=(Graph&&) noexcept = default;

const Device& Graph::device() const { return impl().device; }
const GraphOptions& Graph::options() const { return impl().options; }
const std::vector<std::shared_ptr<ImageNode>>& Graph::source_image_handles() const {
  return impl().structure.sources;
}

void Graph::compile(const std::vector<ImageShape>& source_shapes) {
  Impl& g = impl();
  std::lock_guard lock(g.mutex);
  if (source_shapes.size() != g.structure.sources.size()) {
    throw InvalidArgument("Graph::compile: expected " + std::to_string(g.structure.sources.size()) +
                          " source shapes, got " + std::to_string(source_shapes.size()));
  }
  for (const ImageShape& s : source_shapes) {
    if (s.batch <= 0 || s.height <= 0 || s.width <= 0 || s.channels <= 0) {
      throw InvalidArgument("Graph::compile: every size must be positive, got " + to_string(s));
    }
  }
  translating_out_of_memory("Graph::compile", [&] { g.program_for(source_shapes); });
}

Results Graph::run(const std::vector<Image>& sources) { return run(sources, {}); }

Results Graph::run(const std::vector<Image>& sources, const std::vector<LossLabels>& labels) {
  Impl& g = impl();
  return translating_out_of_memory("Graph::run", [&] { return g.run(sources, labels); });
}

std::future<Results> Graph::run_async(std::vector<Image> sources) {
  return run_async(std::move(sources), {});
}

std::future<Results> Graph::run_async(std::vector<Image> sources, std::vector<LossLabels> labels) {
  Impl* g = &impl();
  return std::async(std::launch::async, [g, sources = std::move(sources),
                                         labels = std::move(labels)] {
    return translating_out_of_memory("Graph::run_async", [&] { return g->run(sources, labels); });
  });
}

std::vector<std::shared_ptr<ImageNode>> Graph::label_handles() const {
  std::vector<std::shared_ptr<ImageNode>> handles;
  for (const LossNode* loss : impl().structure.loss_nodes) handles.push_back(loss->labels());
  return handles;
}

std::uint64_t Graph::batch_count() const {
  Impl& g = impl();
  std::lock_guard lock(g.mutex);
  return g.batches;
}

std::vector<std::vector<ImageShape>> Graph::compiled_sizes() const {
  Impl& g = impl();
  std::lock_guard lock(g.mutex);
  std::vector<std::pair<std::uint64_t, std::vector<ImageShape>>> by_use;
  for (const auto& [shapes, cached] : g.programs) by_use.emplace_back(cached.last_use, shapes);
  std::sort(by_use.begin(), by_use.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::vector<ImageShape>> sizes;
  for (auto& [use, shapes] : by_use) sizes.push_back(std::move(shapes));
  return sizes;
}

LossScaleStatus Graph::loss_scale() const {
  Impl& g = impl();
  std::lock_guard lock(g.mutex);
  return g.device_training ? g.device_training->loss_scale() : LossScaleStatus{};
}

void Graph::save_checkpoint(const std::filesystem::path& path) const {
  Impl& g = impl();
  std::lock_guard lock(g.mutex);
  if (g.device_training) g.device_training->synchronize_states(g.trainables);
  detail::save_checkpoint(g.structure, g.trainables, path);
}

void Graph::load_checkpoint(const std::filesystem::path& path) {
  Impl& g = impl();
  std::lock_guard lock(g.mutex);
  detail::load_checkpoint(g.structure, path);
  g.forget_weights();
}

void Graph::reload_from_data_sources() {
  Impl& g = impl();
  std::lock_guard lock(g.mutex);
  g.forget_weights();
}

std::string Graph::describe() const {
  Impl& g = impl();
  std::lock_guard lock(g.mutex);
  return describe_graph(g.structure, g.device, g.options, g.last_program);
}

std::string Graph::to_dot() const {
  Impl& g = impl();
  std::lock_guard lock(g.mutex);
  return graph_to_dot(g.structure, g.chains);
}

}  // namespace cnngraph
