// The CUDA backend: a stream and library handles per graph, the ordered kernel table, the
// simple kernels that are one launch of ours, and CUDA-graph recording of whole programs.
#include "backends/cuda/cuda_backend.hpp"

#include "backends/candidates.hpp"
#include "backends/cuda/cuda_kernels.hpp"
#include "backends/cuda/cuda_training.hpp"
#include "backends/cuda/plan_cache.hpp"
#include "cnngraph/errors.hpp"

namespace cnngraph::detail {

namespace cuda {

namespace {

std::unique_ptr<Kernel> make_neuron(const Op& base, const GraphOptions&, Context& context) {
  const auto& op = static_cast<const NeuronOp&>(base);
  std::vector<std::shared_ptr<std::byte[]>> slopes;
  const DeviceNeuron n = device_neuron(op.neuron, context, op.name, slopes);
  return function_kernel<NeuronOp>(
      op, "cuda:neuron", [&context, n, slopes](const NeuronOp& o, const KernelArgs& a) {
        neuron(context.storage, n, a.srcs[0], a.dst, o.dst_shape.elements(), o.dst_shape.channels,
               context.stream);
      });
}

std::unique_ptr<Kernel> make_pooling(const Op& op, const GraphOptions&, Context& context) {
  return function_kernel<PoolingOp>(op, "cuda:pooling",
                                    [&context](const PoolingOp& o, const KernelArgs& a) {
                                      pooling(context.storage, o, a.srcs[0], a.dst, context.stream);
                                    });
}

std::unique_ptr<Kernel> make_addition(const Op& op, const GraphOptions&, Context& context) {
  return function_kernel<AdditionOp>(
      op, "cuda:add", [&context](const AdditionOp& o, const KernelArgs& a) {
        add(context.storage, a.srcs[0], a.srcs[1], a.dst, o.dst_shape.elements(), context.stream);
      });
}

std::unique_ptr<Kernel> make_concatenation(const Op& op, const GraphOptions&, Context& context) {
  return function_kernel<ConcatenationOp>(
      op, "cuda:concat", [&context](const ConcatenationOp& o, const KernelArgs& a) {
        const std::size_t element = size_of(context.storage);
        const std::size_t pixels = o.dst_shape.elements() / o.dst_shape.channels;
        const std::size_t row = o.dst_shape.channels * element;
        std::size_t offset = 0;
        for (std::size_t s = 0; s < o.src_shapes.size(); ++s) {
          const std::size_t width = o.src_shapes[s].channels * element;
          check(cudaMemcpy2DAsync(reinterpret_cast<std::byte*>(a.dst) + offset, row, a.srcs[s],
                                  width, width, pixels, cudaMemcpyDeviceToDevice, context.stream),
                o.name + ": concatenation");
          offset += width;
        }
      });
}

std::unique_ptr<Kernel> make_softmax(const Op& op, const GraphOptions&, Context& context) {
  return function_kernel<SoftMaxOp>(op, "cuda:softmax",
                                    [&context](const SoftMaxOp& o, const KernelArgs& a) {
                                      softmax(context.storage, o.logarithmic, a.srcs[0], a.dst,
                                              o.dst_shape.elements() / o.dst_shape.channels,
                                              o.dst_shape.channels, context.stream);
                                    });
}

std::unique_ptr<Kernel> make_batch_normalization(const Op& base, const GraphOptions&,
                                                 Context& context) {
  const auto& op = static_cast<const BatchNormalizationOp&>(base);
  auto scale = context.upload(op.scale.data(), op.scale.size() * sizeof(float), op.name);
  auto shift = context.upload(op.shift.data(), op.shift.size() * sizeof(float), op.name);
  return function_kernel<BatchNormalizationOp>(
      op, "cuda:affine",
      [&context, scale, shift](const BatchNormalizationOp& o, const KernelArgs& a) {
        affine(context.storage, a.srcs[0], reinterpret_cast<const float*>(scale.get()),
               reinterpret_cast<const float*>(shift.get()), a.dst, o.dst_shape.elements(),
               o.dst_shape.channels, context.stream);
      });
}

std::unique_ptr<Kernel> make_reshape(const Op& op, const GraphOptions&, Context& context) {
  return function_kernel<ReshapeOp>(
      op, "cuda:copy", [&context](const ReshapeOp& o, const KernelArgs& a) {
        check(cudaMemcpyAsync(a.dst, a.srcs[0], o.dst_shape.elements() * size_of(context.storage),
                              cudaMemcpyDeviceToDevice, context.stream),
              o.name + ": copy");
      });
}

std::unique_ptr<Kernel> make_local_response_normalization(const Op& op, const GraphOptions&,
                                                          Context& context) {
  return function_kernel<CrossChannelNormalizationOp>(
      op, "cuda:local_response_normalization",
      [&context](const CrossChannelNormalizationOp& o, const KernelArgs& a) {
        local_response_normalization(context.storage, o, a.srcs[0], a.dst, context.stream);
      });
}

std::unique_ptr<Kernel> make_local_response_normalization_gradient(const Op& op,
                                                                   const GraphOptions&,
                                                                   Context& context) {
  auto scratch =
      context.memory->allocate(2 * op.dst_shape.elements() * sizeof(float), op.name + " scratch");
  return function_kernel<CrossChannelNormalizationOp>(
      op, "cuda:local_response_normalization_gradient",
      [&context, scratch](const CrossChannelNormalizationOp& o, const KernelArgs& a) {
        local_response_normalization_gradient(context.storage, o, a.srcs[0], a.srcs[1], a.dst,
                                              reinterpret_cast<float*>(scratch.get()),
                                              context.stream);
      });
}

const KernelCandidate<Context> cuda_kernels[] = {
    {OpKind::convolution, "cublaslt:fully_connected", make_cublaslt_fully_connected},
    {OpKind::convolution, "cuda:depthwise_convolution", make_depthwise_convolution},
    {OpKind::convolution, "cudnn:convolution", make_cudnn_convolution},
    {OpKind::convolution, "cuda:direct_convolution", make_direct_convolution},
    {OpKind::convolution_transpose, "cudnn:convolution_transpose",
     make_cudnn_convolution_transpose},
    {OpKind::neuron, "cuda:neuron", make_neuron},
    {OpKind::pooling, "cuda:pooling", make_pooling},
    {OpKind::addition, "cuda:add", make_addition},
    {OpKind::concatenation, "cuda:concat", make_concatenation},
    {OpKind::softmax, "cuda:softmax", make_softmax},
    {OpKind::batch_normalization, "cuda:affine", make_batch_normalization},
    {OpKind::reshape, "cuda:copy", make_reshape},
    {OpKind::cross_channel_normalization, "cuda:local_response_normalization",
     make_local_response_normalization},
    {OpKind::binary_convolution, "cuda:binary_convolution", make_binary_convolution},
    {OpKind::convolution_gradient, "cublaslt:fully_connected_gradient",
     make_cublaslt_fully_connected_gradient},
    {OpKind::convolution_gradient, "cudnn:convolution_gradient", make_cudnn_convolution_gradient},
    {OpKind::convolution_transpose_gradient, "cudnn:convolution_transpose_gradient",
     make_cudnn_convolution_transpose_gradient},
    {OpKind::neuron_gradient, "cuda:neuron_gradient", make_neuron_gradient},
    {OpKind::pooling_gradient, "cuda:pooling_gradient", make_pooling_gradient},
    {OpKind::softmax_gradient, "cuda:softmax_gradient", make_softmax_gradient},
    {OpKind::channel_slice, "cuda:channel_slice", make_channel_slice},
    {OpKind::loss, "cuda:loss", make_loss},
    {OpKind::dropout, "cuda:dropout", make_dropout},
    {OpKind::cross_channel_normalization_gradient, "cuda:local_response_normalization_gradient",
     make_local_response_normalization_gradient},
    {OpKind::batch_normalization_training, "cuda:batch_normalization_training",
     make_batch_normalization_training},
    {OpKind::batch_normalization_gradient, "cuda:batch_normalization_gradient",
     make_batch_normalization_gradient},
};

// Op kinds with no CUDA kernel: a graph with one runs on the CPU devices.
const UnsupportedOpKind cuda_unsupported[] = {
    {OpKind::binary_convolution_gradient,
     "binary convolutions are inference-only on CUDA (no binary_convolution_gradient kernel)"},
};

constexpr const char* cuda_hint =
    "docs/cuda.md lists what trains on CUDA; the rest runs on the CPU devices";

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
    return pick_kernel(cuda_kernels, cuda_unsupported, op, options, name(), cuda_hint, context_);
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

DispatchTable cuda_dispatch_table() {
  return describe_table<cuda::Context>("cuda", cuda::cuda_kernels, cuda::cuda_unsupported);
}

}  // namespace cnngraph::detail
