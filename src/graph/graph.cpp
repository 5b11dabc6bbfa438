// Graph: owns the analysis, the prepared weights and the compiled programs (at most
// GraphOptions::max_compiled_sizes), one run or compilation at a time; a run goes to the
// executor of the graph's backend (graph/run_program.hpp).
#include "cnngraph/graph.hpp"

#include <algorithm>
#include <mutex>
#include <new>
#include <optional>

#include "backends/backend.hpp"
#include "cnngraph/errors.hpp"
#include "cnngraph/saved_graph.hpp"
#include "env_knobs.hpp"
#include "graph/checkpoint.hpp"
#include "graph/describe.hpp"
#include "graph/device_updates.hpp"
#include "graph/parameters.hpp"
#include "graph/run_program.hpp"
#include "graph/structure.hpp"
#include "graph/weights.hpp"
#include "kernels/flush_denormals.hpp"

namespace cnngraph {

using namespace detail;

namespace {
// GraphOptions::training_fusion, unless the CNNGRAPH_TRAINING_FUSION knob says otherwise.
bool training_fusion_on(const GraphOptions& options) {
  const char* knob = knobs::read(knobs::training_fusion);
  if (!knob) return options.training_fusion;
  const std::string value = knob;
  if (value == "on") return true;
  if (value == "off") return false;
  throw InvalidArgument(std::string(knobs::training_fusion.name) + " is '" + value +
                        "'; it takes on or off");
}
}  // namespace

struct Graph::Impl {
  Device device;
  GraphOptions options;
  GraphStructure structure;
  std::unique_ptr<Backend> backend;

  std::mutex mutex;  // one run or compilation at a time
  bool weights_ready = false;
  std::map<const FilterNode*, std::shared_ptr<const PreparedWeights>> weights;
  std::map<const FilterNode*, FusedChain> chains;
  TrainingFusionPlan training_fusion;
  ParameterStore parameters;
  std::unique_ptr<DeviceUpdates> device_updates;  // device graphs that train
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
    ParameterStore trained(structure, loaded);
    // Every weighted node's weights, also where only its gradient node is in the graph
    // (trained ones were loaded above, as float shadow weights for binary ones).
    for (const auto& filter : structure.order) {
      const FilterNode* node = filter->gradient_of() ? filter->gradient_of() : filter.get();
      const WeightedNode* weighted = node->weighted();
      if (weighted && !loaded.count(weighted))
        loaded[weighted] = detail::prepare_node_weights(*weighted, nullptr, false);
    }
    const auto descriptor_of = [&](const WeightedNode& c) -> const ConvolutionDescriptor& {
      return loaded.at(&c)->descriptor;
    };
    const auto is_trained = [&](const WeightedNode& c) { return trained.find(c) != nullptr; };
    // A trained convolution keeps its own weights object (updates rewrite it in place), so
    // nothing is folded into it.
    auto planned = plan_fusion(
        structure,
        [&](const WeightedNode& c) {
          return descriptor_of(c).sub_pixel_scale_factor == 1 && !is_trained(c);
        },
        [&](const WeightedNode& c) { return descriptor_of(c).neuron.type != NeuronType::none; });
    for (const auto& [conv, chain] : planned) {
      // A binary convolution's weights are signs: its batch norm folds into its output terms
      // when it is lowered (graph/compile.cpp).
      if (chain.batch_norm && !dynamic_cast<const BinaryConvolutionNode*>(conv))
        loaded[conv] = fold_batch_normalization_node(*loaded.at(conv), *chain.batch_norm);
    }
    TrainingFusionPlan fused_steps;
    if (structure.has_gradients && training_fusion_on(options) && backend->fuses_training_steps()) {
      fused_steps = plan_training_fusion(structure, planned);
    }
    weights = std::move(loaded);
    chains = std::move(planned);
    training_fusion = std::move(fused_steps);
    parameters = std::move(trained);
    weights_ready = true;
  }

  // Drops the loaded weights and the programs (their kernels hold the old weights): the next
  // run loads the data sources again.
  void forget_weights() {
    device_updates.reset();
    programs.clear();
    last_program = nullptr;
    weights.clear();
    parameters = ParameterStore();
    weights_ready = false;
  }

  Program& program_for(const std::vector<ImageShape>& shapes) {
    prepare_weights_and_fusion();
    auto it = programs.find(shapes);
    if (it == programs.end()) {
      CompileInputs inputs{structure,  chains,   training_fusion, weights,
                           parameters, *backend, options};
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

  // One run: the images checked, the program for their sizes run by its backend's executor,
  // then a training graph's updates (on a device, its optimizer step goes into the same
  // launch). Host runs, updates included, compute with denormals flushed
  // (GraphOptions::flush_denormals).
  Results run(const std::vector<Image>& sources, const std::vector<LossLabels>& labels) {
    std::lock_guard lock(mutex);
    Program& program = program_for(checked_source_shapes(structure, device, sources));
    RunInputs inputs{checked_inputs(program, structure, device, sources, labels), 0};
    DeviceExecution* execution = backend->device_execution();
    if (execution && !parameters.empty() && !device_updates)
      device_updates = std::make_unique<DeviceUpdates>(parameters, *execution, options,
                                                       !structure.loss_nodes.empty());
    std::optional<FlushDenormalsOnAllThreads> flush;
    if (!execution && options.flush_denormals) flush.emplace();
    inputs.batch = batches++;
    const RunContext context{structure, options, device, execution, [&] {
                               if (device_updates) device_updates->enqueue();
                             }};
    Results results;
    {
      // No reader of a source trained here sees the launch half done (and this graph takes
      // no other source's lock meanwhile).
      std::vector<std::unique_lock<std::mutex>> held;
      if (device_updates) {
        held = device_updates->hold_resident_sources();
        device_updates->prepare();
      }
      results = run_program(program, context, inputs);
      if (device_updates) device_updates->launched();
    }
    const int batch_size = sources[0].shape().batch;
    if (device_updates) {
      device_updates->apply(device, inputs.batch, batch_size);
    } else if (!parameters.empty()) {
      parameters.apply_updates(device, inputs.batch, batch_size);
    }
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
  return g.device_updates ? g.device_updates->loss_scale() : LossScaleStatus{};
}

void Graph::save_checkpoint(const std::filesystem::path& path) const {
  Impl& g = impl();
  std::lock_guard lock(g.mutex);
  if (g.device_updates) g.device_updates->synchronize_states();
  detail::save_checkpoint(g.structure, g.parameters, path);
}

void Graph::save(const std::filesystem::path& path) const {
  Impl& g = impl();
  std::lock_guard lock(g.mutex);
  if (g.device_updates) g.device_updates->synchronize_states();
  save_graph(path, g.structure.results);
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
