// cuDNN's graph API through small RAII descriptors (see cudnn_graph.hpp).
#include "backends/cuda/cudnn_graph.hpp"

#include "backends/cuda/cuda_common.hpp"
#include "cnngraph/errors.hpp"

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
                          std::int64_t h, std::int64_t w, bool is_virtual) {
  auto t = std::make_shared<Descriptor>(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  const std::int64_t dims[4] = {n, c, h, w};
  const std::int64_t strides[4] = {h * w * c, 1, w * c, c};
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

}  // namespace

std::shared_ptr<Plan> find_plan(cudnnHandle_t handle, std::vector<DescriptorPtr> operations,
                                bool float_data, const GraphOptions& options) {
  auto graph = std::make_shared<Descriptor>(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  std::vector<cudnnBackendDescriptor_t> ops;
  for (const auto& op : operations) ops.push_back(op->get());
  graph->set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, ops.data(),
             static_cast<std::int64_t>(ops.size()));
  graph->set(kGraphHandle, CUDNN_TYPE_HANDLE, &handle);
  if (!graph->try_finalize()) return nullptr;
  cudnnBackendDescriptor_t graph_handle = graph->get();

  for (cudnnBackendHeurMode_t mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
    Descriptor heuristics(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    heuristics.set(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                   &graph_handle);
    heuristics.set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, &mode);
    if (!heuristics.try_finalize()) continue;
    std::int64_t count = 0;
    if (cudnnBackendGetAttribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count,
                                 nullptr) != CUDNN_STATUS_SUCCESS ||
        count == 0) {
      continue;
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
      continue;
    }
    for (std::int64_t i = 0; i < returned; ++i) {
      auto engine = std::make_shared<Descriptor>(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
      cudnnBackendDescriptor_t engine_handle = engine->get();
      std::int64_t got = 0;
      if (cudnnBackendGetAttribute(handles[i], CUDNN_ATTR_ENGINECFG_ENGINE,
                                   CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &got,
                                   &engine_handle) != CUDNN_STATUS_SUCCESS) {
        continue;
      }
      std::vector<cudnnBackendNumericalNote_t> notes(CUDNN_NUMERICAL_NOTE_TYPE_COUNT);
      std::int64_t note_count = 0;
      cudnnBackendGetAttribute(engine_handle, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE,
                               CUDNN_TYPE_NUMERICAL_NOTE, CUDNN_NUMERICAL_NOTE_TYPE_COUNT,
                               &note_count, notes.data());
      notes.resize(static_cast<std::size_t>(note_count));
      if (has_note(notes, CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS)) continue;
      if (float_data && options.precision != Precision::tf32_allowed &&
          has_note(notes, CUDNN_NUMERICAL_NOTE_TENSOR_CORE)) {
        continue;
      }
      if (options.deterministic && has_note(notes, CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC)) continue;
      auto plan = std::make_shared<Descriptor>(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
      plan->set(kPlanHandle, CUDNN_TYPE_HANDLE, &handle);
      plan->set(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                &handles[i]);
      if (!plan->try_finalize()) continue;
      std::int64_t workspace = 0;
      cudnnBackendGetAttribute(plan->get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                               CUDNN_TYPE_INT64, 1, &got, &workspace);
      if (options.workspace_limit_bytes &&
          static_cast<std::size_t>(workspace) > options.workspace_limit_bytes) {
        continue;
      }
      std::int64_t index = -1;
      cudnnBackendGetAttribute(engine_handle, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1,
                               &got, &index);
      auto result = std::make_shared<Plan>();
      result->keep = std::move(operations);
      result->keep.push_back(graph);
      result->keep.push_back(configs[static_cast<std::size_t>(i)]);
      result->keep.push_back(engine);
      result->plan = plan;
      result->workspace_bytes = workspace;
      result->engine = "eng" + std::to_string(index);
      return result;
    }
  }
  return nullptr;
}

}  // namespace cnngraph::detail::cuda
