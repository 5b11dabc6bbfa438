// The CUDA backend: a stream and library handles per graph, the kernels of its table
// (kernels.cpp), and CUDA-graph recording of whole programs.
#include "backends/cuda/cuda_backend.hpp"

#include "backends/cuda/cuda_kernels.hpp"
#include "backends/cuda/cudnn/plan_cache.hpp"
#include "backends/cuda/kernels/elementwise.hpp"
#include "backends/cuda/training/cuda_training.hpp"
#include "cnngraph/errors.hpp"

namespace cnngraph::detail {

namespace cuda {

namespace {

// A program's launches recorded as a CUDA graph; `failed` when recording did not work
// (the program then runs launch by launch).
struct Recording {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  bool failed = false;
  ~Recording() {
    if (exec) cudaGraphExecDestroy(exec);
    if (graph) cudaGraphDestroy(graph);
  }
};

class CudaBackend : public Backend, public DeviceExecution {
 public:
  // The fused training kernels (docs/training.md) agree with the unfused graph in f32, f16
  // and bf16 and pass the whole GPU suite.
  bool fuses_training_steps() const override { return true; }
  // Bit-packed images between xnor and and layers that the tensor-core kernel takes.
  bool packs_bits(const BinaryConvolutionOp& op) const override {
    return binary_mma_takes(op, context_.device);
  }
  CudaBackend(const Device& device, const GraphOptions& options)
      : plan_cache_file_(options.plan_cache_file) {
    context_.device = device.index();
    context_.memory = device_memory(device);
    context_.storage = storage_type_for(options.precision);
    bind();
    const StreamHandles handles = acquire_stream_handles(context_.device);
    context_.stream = handles.stream;
    context_.cudnn = handles.cudnn;
    context_.cublas = handles.cublas;
    context_.pinned = allocate_pinned(2 * sizeof(std::uint64_t), "the batch counter");
    context_.batch = reinterpret_cast<std::uint64_t*>(context_.pinned.get());
    context_.loss_scale = reinterpret_cast<float*>(context_.batch + 1);
    *context_.batch = 0;
    *context_.loss_scale = 1.0f;
    if (!plan_cache_file_.empty()) load_plan_cache(plan_cache_file_);
  }
  // The handles go back to the process's pool once the stream is idle; destroying them
  // would synchronize the device under other threads' captures (StreamHandles).
  ~CudaBackend() override {
    cudaSetDevice(context_.device);
    if (cudaStreamSynchronize(context_.stream) != cudaSuccess) {
      cudaGetLastError();
      return;  // a broken stream is not handed to another graph (its handles leak)
    }
    release_stream_handles(context_.device, {context_.stream, context_.cudnn, context_.cublas});
  }

  std::string name() const override { return "cuda"; }
  DeviceExecution* device_execution() const override { return const_cast<CudaBackend*>(this); }

  std::unique_ptr<Kernel> compile(const Op& op, const GraphOptions& options) const override {
    bind();
    return pick_cuda_kernel(op, options, context_);
  }

  DataType storage_type() const override { return context_.storage; }
  DeviceMemory& memory() override { return *context_.memory; }

  void upload_async(void* dst, const void* host_src, std::size_t bytes) override {
    bind();
    check(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, context_.stream),
          "copying a source image to " + device_name());
  }
  void copy_async(void* dst, const void* src, std::size_t bytes) override {
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, context_.stream),
          "copying on " + device_name());
  }
  void convert_async(const void* src, DataType from, void* dst, DataType to,
                     std::size_t count) override {
    convert(src, from, dst, to, count, context_.stream);
  }

  void set_batch(std::uint64_t batch) override { *context_.batch = batch; }
  void set_loss_scale(float scale) override { *context_.loss_scale = scale; }

  void launch(std::shared_ptr<void>& captured, bool replayable,
              const std::function<void()>& launch_steps) override {
    bind();
    auto* recording = static_cast<Recording*>(captured.get());
    if (!replayable || (recording && recording->failed)) {
      launch_steps();
      return;
    }
    if (!recording) {
      auto fresh = std::make_shared<Recording>();
      record(*fresh, launch_steps);
      captured = fresh;
      recording = fresh.get();
      if (recording->failed) {
        launch_steps();
        return;
      }
    }
    check(cudaGraphLaunch(recording->exec, context_.stream), "cudaGraphLaunch");
  }

  void synchronize() override {
    check(cudaStreamSynchronize(context_.stream), "running a graph on " + device_name());
  }

  double time_ms(const std::function<void()>& launch_steps) override {
    bind();
    cudaEvent_t start = nullptr, stop = nullptr;
    check(cudaEventCreate(&start), "cudaEventCreate");
    check(cudaEventCreate(&stop), "cudaEventCreate");
    float ms = 0;
    cudaEventRecord(start, context_.stream);
    launch_steps();
    cudaEventRecord(stop, context_.stream);
    const cudaError_t status = cudaEventSynchronize(stop);
    if (status == cudaSuccess) cudaEventElapsedTime(&ms, start, stop);
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    check(status, "timing steps on " + device_name());
    return ms;
  }

  void program_compiled() override {
    if (!plan_cache_file_.empty()) save_plan_cache(plan_cache_file_);
  }

  void download_gradients(TrainedWeights& parameters) override {
    bind();
    cuda::download_gradients(parameters, context_);
  }
  void upload_weights(const TrainedWeights& parameters) override {
    bind();
    cuda::upload_weights(parameters, context_);
  }
  void download_weights(const TrainedWeights& parameters, std::vector<float>& weights,
                        std::vector<float>& bias) override {
    bind();
    cuda::download_weights(parameters, context_, weights, bias);
  }
  std::unique_ptr<DeviceOptimizer> make_optimizer(
      std::vector<DeviceOptimizerEntry> entries) override {
    bind();
    return make_device_optimizer(std::move(entries), context_);
  }

 private:
  void bind() const { check(cudaSetDevice(context_.device), "cudaSetDevice"); }
  std::string device_name() const { return "cuda:" + std::to_string(context_.device); }

  void record(Recording& recording, const std::function<void()>& launch_steps) {
    const CaptureScope scope;
    check(cudaStreamBeginCapture(context_.stream, cudaStreamCaptureModeThreadLocal),
          "cudaStreamBeginCapture");
    try {
      launch_steps();
    } catch (...) {
      cudaGraph_t broken = nullptr;
      cudaStreamEndCapture(context_.stream, &broken);
      if (broken) cudaGraphDestroy(broken);
      cudaGetLastError();
      recording.failed = true;
      return;
    }
    if (cudaStreamEndCapture(context_.stream, &recording.graph) != cudaSuccess ||
        cudaGraphInstantiate(&recording.exec, recording.graph, 0) != cudaSuccess) {
      cudaGetLastError();
      recording.failed = true;
    }
  }

  mutable Context context_;
  std::string plan_cache_file_;
};

}  // namespace

}  // namespace cuda

std::unique_ptr<Backend> make_cuda_backend(const Device& device, const GraphOptions& options) {
  return std::make_unique<cuda::CudaBackend>(device, options);
}

}  // namespace cnngraph::detail
