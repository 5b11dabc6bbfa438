// cuDNN's graph API through small RAII descriptors (see cudnn_graph.hpp).
#include "backends/cuda/cudnn/cudnn_graph.hpp"

#include <cstdio>
#include <cstdlib>
#include <future>

#include "backends/cuda/cuda_common.hpp"
#include "backends/cuda/cudnn/plan_cache.hpp"
#include "cnngraph/errors.hpp"
#include "env_knobs.hpp"

namespace cnngraph::detail::cuda {

// cuDNN 9 marks the handle attributes deprecated in favour of device-property descriptors,
// but the handle remains the documented way to bind a graph and a plan to a GPU at run time.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
constexpr cudnnBackendAttributeName_t kGraphHandle = CUDNN_ATTR_OPERATIONGRAPH_HANDLE;
constexpr cudnnBackendAttributeName_t kPlanHandle = CUDNN_ATTR_EXECUTION_PLAN_HANDLE;
#pragma GCC diagnostic pop

Descriptor::Descriptor(cudnnBackendDescriptorType_t type) {
  check(cudnnBackendCreateDescriptor(type, &handle_), "cudnnBackendCreateDescriptor");
}

Descriptor::~Descriptor() {
  if (handle_) cudnnBackendDestroyDescriptor(handle_);
}

Descriptor& Descriptor::set_raw(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type,
                                std::int64_t count, const void* values) {
  check(cudnnBackendSetAttribute(handle_, name, type, count, values),
        "cudnnBackendSetAttribute(" + std::to_string(static_cast<int>(name)) + ")");
  return *this;
}

void Descriptor::finalize(const std::string& what) {
  check(cudnnBackendFinalize(handle_), "cuDNN: " + what);
}

bool Descriptor::try_finalize() { return cudnnBackendFinalize(handle_) == CUDNN_STATUS_SUCCESS; }

cudnnDataType_t cudnn_type(DataType type) {
  switch (type) {
    case DataType::f16:
      return CUDNN_DATA_HALF;
    case DataType::bf16:
      return CUDNN_DATA_BFLOAT16;
    case DataType::u8:
      return CUDNN_DATA_UINT8;
    default:
      return CUDNN_DATA_FLOAT;
  }
}

DescriptorPtr make_tensor(std::int64_t uid, cudnnDataType_t type, std::int64_t n, std::int64_t c,
                          std::int64_t h, std::int64_t w, bool is_virtual, bool nchw) {
  auto t = std::make_shared<Descriptor>(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  const std::int64_t dims[4] = {n, c, h, w};
  std::int64_t strides[4] = {h * w * c, 1, w * c, c};
  if (nchw) {
    strides[1] = h * w;
    strides[2] = w;
    strides[3] = 1;
  }
  const std::int64_t alignment = 16;  // the memory planner aligns every image to 256 bytes
  t->set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, &type)
      .set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, dims, 4)
      .set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, strides, 4)
      .set(CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, &uid)
      .set(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, &alignment)
      .set(CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, &is_virtual);
  t->finalize("tensor " + std::to_string(uid));
  return t;
}

void Plan::execute(cudnnHandle_t handle, const std::vector<std::int64_t>& uids,
                   const std::vector<void*>& pointers, void* workspace) const {
  // The variant pack is rebuilt only when the pointers change (they rarely do: a program
  // keeps its buffers).
  std::vector<void*> key = pointers;
  key.push_back(workspace);
  if (!variant_pack_ || key != variant_pointers_) {
    auto pack = std::make_shared<Descriptor>(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
    pack->set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, uids.data(),
              static_cast<std::int64_t>(uids.size()))
        .set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, pointers.data(),
             static_cast<std::int64_t>(pointers.size()))
        .set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, &workspace);
    pack->finalize("variant pack");
    variant_pack_ = pack;
    variant_pointers_ = key;
  }
  check(cudnnBackendExecute(handle, plan->get(), variant_pack_->get()),
        "cudnnBackendExecute (" + engine + ")");
}

namespace {

bool has_note(const std::vector<cudnnBackendNumericalNote_t>& notes,
              cudnnBackendNumericalNote_t note) {
  for (auto n : notes) {
    if (n == note) return true;
  }
  return false;
}

// The GPU model and the cuDNN version, part of every plan cache key: a plan is only valid
// where it was made.
std::string platform() {
  int device = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  cudaDeviceProp properties{};
  check(cudaGetDeviceProperties(&properties, device), "cudaGetDeviceProperties");
  return std::string(properties.name) + " sm_" + std::to_string(properties.major) +
         std::to_string(properties.minor) + " cudnn " + std::to_string(cudnnGetVersion());
}

std::string options_key(const GraphOptions& options) {
  return "precision" + std::to_string(static_cast<int>(options.precision)) +
         (options.deterministic ? " deterministic" : "") +
         " workspace<=" + std::to_string(options.workspace_limit_bytes) +
         (options.autotune ? " autotuned" : "");
}

// One engine configuration that passed the filters, finalized into a plan.
struct Candidate {
  DescriptorPtr config, engine, plan;
  std::int64_t workspace = 0;
  std::int64_t index = -1;
  int mode = 0;       // 0: heuristics mode A, 1: FALLBACK
  int position = -1;  // in that mode's list
};

constexpr cudnnBackendHeurMode_t kModes[2] = {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK};

std::int64_t workspace_of(const Descriptor& plan) {
  std::int64_t workspace = 0, got = 0;
  cudnnBackendGetAttribute(plan.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64,
                           1, &got, &workspace);
  return workspace;
}

DescriptorPtr plan_for_config(cudnnHandle_t handle, cudnnBackendDescriptor_t config) {
  auto plan = std::make_shared<Descriptor>(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
  plan->set(kPlanHandle, CUDNN_TYPE_HANDLE, &handle);
  plan->set(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, &config);
  if (!plan->try_finalize()) return nullptr;
  return plan;
}

// The engine configurations cuDNN's heuristics propose for `graph` in one mode, in order.
std::vector<DescriptorPtr> heuristic_configs(cudnnBackendDescriptor_t graph, int mode_index) {
  const cudnnBackendHeurMode_t mode = kModes[mode_index];
  Descriptor heuristics(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
  heuristics.set(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, &graph);
  heuristics.set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, &mode);
  if (!heuristics.try_finalize()) return {};
  std::int64_t count = 0;
  if (cudnnBackendGetAttribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                               CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count,
                               nullptr) != CUDNN_STATUS_SUCCESS ||
      count == 0) {
    return {};
  }
  std::vector<DescriptorPtr> configs;
  std::vector<cudnnBackendDescriptor_t> handles;
  for (std::int64_t i = 0; i < count; ++i) {
    configs.push_back(std::make_shared<Descriptor>(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR));
    handles.push_back(configs.back()->get());
  }
  std::int64_t returned = 0;
  if (cudnnBackendGetAttribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                               CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &returned,
                               handles.data()) != CUDNN_STATUS_SUCCESS) {
    return {};
  }
  configs.resize(static_cast<std::size_t>(returned));
  return configs;
}

// A configuration's engine and its global index (-1 when cuDNN does not say).
std::pair<DescriptorPtr, std::int64_t> engine_of(const Descriptor& config) {
  auto engine = std::make_shared<Descriptor>(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
  cudnnBackendDescriptor_t engine_handle = engine->get();
  std::int64_t got = 0, index = -1;
  if (cudnnBackendGetAttribute(config.get(), CUDNN_ATTR_ENGINECFG_ENGINE,
                               CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &got,
                               &engine_handle) != CUDNN_STATUS_SUCCESS) {
    return {nullptr, -1};
  }
  cudnnBackendGetAttribute(engine_handle, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &got,
                           &index);
  return {engine, index};
}

// Whether the options allow an engine: no down-converting engines, TF32 tensor cores only
// with tf32_allowed, no non-deterministic engines in deterministic mode.
bool allowed(const Descriptor& engine, bool float_data, const GraphOptions& options) {
  std::vector<cudnnBackendNumericalNote_t> notes(CUDNN_NUMERICAL_NOTE_TYPE_COUNT);
  std::int64_t count = 0;
  cudnnBackendGetAttribute(engine.get(), CUDNN_ATTR_ENGINE_NUMERICAL_NOTE,
                           CUDNN_TYPE_NUMERICAL_NOTE, CUDNN_NUMERICAL_NOTE_TYPE_COUNT, &count,
                           notes.data());
  notes.resize(static_cast<std::size_t>(count));
  if (has_note(notes, CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS)) return false;
  if (float_data && options.precision != Precision::tf32_allowed &&
      has_note(notes, CUDNN_NUMERICAL_NOTE_TENSOR_CORE)) {
    return false;
  }
  return !(options.deterministic && has_note(notes, CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC));
}

bool runtime_compiled(const Descriptor& engine) {
  std::vector<cudnnBackendBehaviorNote_t> notes(CUDNN_BEHAVIOR_NOTE_TYPE_COUNT);
  std::int64_t count = 0;
  cudnnBackendGetAttribute(engine.get(), CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, CUDNN_TYPE_BEHAVIOR_NOTE,
                           CUDNN_BEHAVIOR_NOTE_TYPE_COUNT, &count, notes.data());
  notes.resize(static_cast<std::size_t>(count));
  for (auto n : notes) {
    if (n == CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION) return true;
  }
  return false;
}

// The candidates of one heuristics mode, in its order, up to `limit` in all.
void add_candidates(cudnnHandle_t handle, cudnnBackendDescriptor_t graph, int mode, bool float_data,
                    const GraphOptions& options, std::size_t limit, std::vector<Candidate>& out,
                    int& compiled_candidates) {
  const std::vector<DescriptorPtr> configs = heuristic_configs(graph, mode);
  const std::int64_t returned = static_cast<std::int64_t>(configs.size());
  std::int64_t next = 0;
  // Rounds: pick as many allowed configurations as places are left, then finalize their
  // plans on threads of their own (runtime-compiled engines compile their kernels then,
  // which dominates a cold start); configurations that fail leave places for the next round.
  while (out.size() < limit && next < returned) {
    std::vector<Candidate> picked;
    for (; next < returned && out.size() + picked.size() < limit; ++next) {
      const std::size_t i = static_cast<std::size_t>(next);
      auto [engine, index] = engine_of(*configs[i]);
      if (!engine) continue;
      if (!allowed(*engine, float_data, options)) continue;
      bool seen = false;  // FALLBACK mode may repeat an engine of mode A
      for (const Candidate& c : out) seen |= c.index == index;
      for (const Candidate& c : picked) seen |= c.index == index;
      if (seen) continue;
      // Runtime-compiled engines cost a kernel compilation each (tenths of a second): when
      // autotuning, only the first kMaxCompiledCandidates of them are tried.
      if (runtime_compiled(*engine) && limit > 1) {
        if (compiled_candidates >= kMaxCompiledCandidates) continue;
        ++compiled_candidates;
      }
      picked.push_back({configs[i], engine, nullptr, 0, index, mode, static_cast<int>(next)});
    }
    std::vector<std::future<DescriptorPtr>> plans;
    for (const Candidate& c : picked) {
      plans.push_back(std::async(std::launch::async, [handle, config = c.config] {
        return plan_for_config(handle, config->get());
      }));
    }
    for (std::size_t k = 0; k < picked.size(); ++k) {
      picked[k].plan = plans[k].get();
      if (!picked[k].plan) continue;
      picked[k].workspace = workspace_of(*picked[k].plan);
      if (options.workspace_limit_bytes &&
          static_cast<std::size_t>(picked[k].workspace) > options.workspace_limit_bytes) {
        continue;
      }
      out.push_back(std::move(picked[k]));
    }
  }
}

PlanRecord record_of(const Candidate& c) {
  PlanRecord record;
  record.engine = c.index;
  record.heuristics_mode = c.mode;
  record.position = c.position;
  // Only some engines (the runtime-compiled ones) have a JSON form; the others are found
  // again at their place in the heuristics' list.
  std::int64_t size = 0;
  if (cudnnBackendGetAttribute(c.plan->get(), CUDNN_ATTR_EXECUTION_PLAN_JSON_REPRESENTATION,
                               CUDNN_TYPE_CHAR, 0, &size, nullptr) == CUDNN_STATUS_SUCCESS &&
      size > 0) {
    std::string json(static_cast<std::size_t>(size), '\0');
    if (cudnnBackendGetAttribute(c.plan->get(), CUDNN_ATTR_EXECUTION_PLAN_JSON_REPRESENTATION,
                                 CUDNN_TYPE_CHAR, size, &size,
                                 json.data()) == CUDNN_STATUS_SUCCESS) {
      json.resize(std::min<std::size_t>(json.size(), static_cast<std::size_t>(size)));
      while (!json.empty() && json.back() == '\0') json.pop_back();
      record.json = std::move(json);
    }
  }
  return record;
}

// The plan a cache entry describes: from its JSON form where it has one, else the
// configuration at its place in the heuristics' list (heuristics are deterministic for one
// GPU model and cuDNN version, which the key holds; the engine index is checked). Null
// when cuDNN no longer gives it.
std::shared_ptr<Candidate> rebuild(cudnnHandle_t handle, cudnnBackendDescriptor_t graph,
                                   const PlanRecord& record) {
  auto c = std::make_shared<Candidate>();
  c->index = record.engine;
  if (!record.json.empty()) {
    auto plan = std::make_shared<Descriptor>(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
    plan->set(kPlanHandle, CUDNN_TYPE_HANDLE, &handle);
    if (cudnnBackendSetAttribute(plan->get(), CUDNN_ATTR_EXECUTION_PLAN_JSON_REPRESENTATION,
                                 CUDNN_TYPE_CHAR, static_cast<std::int64_t>(record.json.size()),
                                 record.json.data()) == CUDNN_STATUS_SUCCESS &&
        plan->try_finalize()) {
      c->plan = plan;
      c->workspace = workspace_of(*plan);
      return c;
    }
  }
  if (record.heuristics_mode < 0 || record.heuristics_mode > 1 || record.position < 0)
    return nullptr;
  const auto configs = heuristic_configs(graph, record.heuristics_mode);
  if (static_cast<std::size_t>(record.position) >= configs.size()) return nullptr;
  c->config = configs[static_cast<std::size_t>(record.position)];
  auto [engine, index] = engine_of(*c->config);
  if (!engine || index != record.engine) return nullptr;
  c->engine = engine;
  c->plan = plan_for_config(handle, c->config->get());
  if (!c->plan) return nullptr;
  c->workspace = workspace_of(*c->plan);
  return c;
}

std::shared_ptr<Plan> make_result(const Candidate& c, std::vector<DescriptorPtr> keep,
                                  std::string how) {
  auto result = std::make_shared<Plan>();
  result->keep = std::move(keep);
  for (const DescriptorPtr& d : {c.config, c.engine})
    if (d) result->keep.push_back(d);
  result->plan = c.plan;
  result->workspace_bytes = c.workspace;
  result->engine = "eng" + std::to_string(c.index) + how;
  return result;
}

}  // namespace

int autotune_candidates() {
  static const int count = [] {
    const char* env = knobs::read(knobs::cuda_autotune_candidates);
    const int wanted = env ? std::atoi(env) : 8;
    return wanted >= 1 && wanted <= 64 ? wanted : 8;
  }();
  return count;
}

std::shared_ptr<Plan> find_plan(cudnnHandle_t handle, std::vector<DescriptorPtr> operations,
                                bool float_data, const GraphOptions& options,
                                const std::string& problem, const PlanTimer* timer) {
  auto graph = std::make_shared<Descriptor>(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  std::vector<cudnnBackendDescriptor_t> ops;
  for (const auto& op : operations) ops.push_back(op->get());
  graph->set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, ops.data(),
             static_cast<std::int64_t>(ops.size()));
  graph->set(kGraphHandle, CUDNN_TYPE_HANDLE, &handle);
  if (!graph->try_finalize()) return nullptr;
  std::vector<DescriptorPtr> keep = std::move(operations);
  keep.push_back(graph);

  const bool autotune = options.autotune && timer;
  const std::string key = problem + " | " + options_key(options) + " | " + platform();
  if (auto record = cached_plan(key)) {
    if (auto c = rebuild(handle, graph->get(), *record))
      return make_result(*c, std::move(keep),
                         record->autotuned ? " (autotuned, cached)" : " (cached)");
  }

  const std::size_t limit = autotune ? static_cast<std::size_t>(autotune_candidates()) : 1;
  std::vector<Candidate> candidates;
  int compiled_candidates = 0;
  for (int mode = 0; mode < 2; ++mode) {
    if (candidates.size() < limit) {
      add_candidates(handle, graph->get(), mode, float_data, options, limit, candidates,
                     compiled_candidates);
    }
  }
  if (candidates.empty()) return nullptr;

  std::size_t best = 0;
  double best_ms = 0;
  std::string how;
  if (autotune) {
    best_ms = -1;
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      const double ms = (*timer)(*make_result(candidates[i], {}, ""), best_ms);
      if (options.verbose) {
        std::fprintf(stderr, "cnngraph: cuda: autotune %s: eng%lld %s\n", problem.c_str(),
                     static_cast<long long>(candidates[i].index),
                     ms < 0 ? "failed" : (std::to_string(ms) + " ms").c_str());
      }
      if (ms > 0 && (best_ms < 0 || ms < best_ms)) {
        best = i;
        best_ms = ms;
      }
    }
    // When none ran, cuDNN's first choice stays, its time unknown (-1).

    how = " (autotuned of " + std::to_string(candidates.size()) + ")";
  }
  PlanRecord record = record_of(candidates[best]);
  record.milliseconds = best_ms;
  record.autotuned = autotune;
  store_plan(key, std::move(record));
  auto plan = make_result(candidates[best], std::move(keep), how);
  plan->milliseconds = best_ms;
  return plan;
}

double time_plan(const Plan& plan, cudnnHandle_t handle, cudaStream_t stream, DeviceMemory& memory,
                 const std::vector<std::int64_t>& uids, const std::vector<void*>& pointers,
                 double best_ms) {
  cudaEvent_t start = nullptr, stop = nullptr;
  double ms = -1;
  try {
    auto workspace =
        memory.allocate(static_cast<std::size_t>(plan.workspace_bytes), "autotuning's workspace");
    check(cudaEventCreate(&start), "cudaEventCreate");
    check(cudaEventCreate(&stop), "cudaEventCreate");
    float elapsed = 0;
    check(cudaEventRecord(start, stream), "cudaEventRecord");
    plan.execute(handle, uids, pointers, workspace.get());
    check(cudaEventRecord(stop, stream), "cudaEventRecord");
    check(cudaEventSynchronize(stop), "autotuning a cuDNN plan");
    check(cudaEventElapsedTime(&elapsed, start, stop), "cudaEventElapsedTime");
    if (best_ms > 0 && elapsed > 4 * best_ms) {
      cudaEventDestroy(start);
      cudaEventDestroy(stop);
      return elapsed;
    }
    constexpr int kRuns = 3;
    check(cudaEventRecord(start, stream), "cudaEventRecord");
    for (int i = 0; i < kRuns; ++i) plan.execute(handle, uids, pointers, workspace.get());
    check(cudaEventRecord(stop, stream), "cudaEventRecord");
    check(cudaEventSynchronize(stop), "autotuning a cuDNN plan");
    check(cudaEventElapsedTime(&elapsed, start, stop), "cudaEventElapsedTime");
    ms = elapsed / kRuns;
  } catch (const DeviceError&) {
    cudaStreamSynchronize(stream);
    cudaGetLastError();
    ms = -1;
  }
  if (start) cudaEventDestroy(start);
  if (stop) cudaEventDestroy(stop);
  return ms;
}

}  // namespace cnngraph::detail::cuda
