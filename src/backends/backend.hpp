// The one interface a backend implements: turn a planned operation into an executable
// kernel. The graph never includes a backend's own headers; backends never see user nodes.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cnngraph/device.hpp"
#include "cnngraph/graph_options.hpp"
#include "cnngraph/image.hpp"
#include "cnngraph/optimizer.hpp"
#include "core/parameter_view.hpp"
#include "ops/op.hpp"

namespace cnngraph::detail {

// The element type of the images between steps that a precision option asks for (where a
// node sets no format of its own).
inline DataType storage_type_for(Precision precision) {
  switch (precision) {
    case Precision::f16:
      return DataType::f16;
    case Precision::bf16:
      return DataType::bf16;
    default:
      return DataType::f32;
  }
}

// The one contract between the executors (graph/run_program.hpp) and every backend's
// kernels. Pointers to NHWC buffers of the shapes the op was planned for: host f32 on the
// CPU backends; on a device backend, device pointers to elements of its storage type (the
// float* type is then only a handle).
// - srcs: the op's sources in the order of op.src_shapes. A fused residual (a sum post-op of
//   a ConvolutionOp) is the last of them, srcs[1]: a kernel reads it from there.
// - dst: the result; it holds nothing on entry (in particular not the residual: a kernel
//   whose library adds to what dst holds, as oneDNN's sum post-op does, copies the residual
//   there itself).
// - dst never shares memory with any of srcs (the memory planner, graph/compile.cpp,
//   guarantees it), so a kernel may write dst before it has read all of its sources.
struct KernelArgs {
  std::vector<const float*> srcs;
  float* dst = nullptr;
  std::uint64_t batch = 0;  // the graph's batch counter (dropout masks)
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  virtual void run(const KernelArgs& args) = 0;
  // Which implementation this is, for describe() and verbose logs.
  virtual std::string implementation() const = 0;
  // Device kernels: host work around each run of the program, outside the stream and any
  // recording of it: before the launch (values staged in pinned memory, which the
  // recording copies) and after the device has finished (values read back from there).
  virtual void before_run() {}
  virtual void after_run() {}
};

class DeviceMemory;

// One trained convolution whose optimizer step runs on the device.
struct DeviceOptimizerEntry {
  TrainedWeights* parameters = nullptr;
  bool with_bias = false;  // the data source has biases (they are trained too)
  std::shared_ptr<const Optimizer> optimizer;
  OptimizerState state;  // to start from: time step and moments (empty moments: zeros)
};

// The fused optimizer step of a device graph's trained convolutions (TrainingStyle::device
// with the library's optimizers): moments and f32 master values stay on the device.
class DeviceOptimizer {
 public:
  virtual ~DeviceOptimizer() = default;
  // Before a run: this step's rules (learning rates may change between runs), with the
  // gradients multiplied by `unscale` first (the inverse loss scale).
  virtual void prepare(float unscale) = 0;
  // Inside the run's launch, after its steps: the check that every gradient is finite, then,
  // with `step`, the step of every entry, which the device skips when one is not.
  virtual void enqueue(bool step) = 0;
  // After the run finished: whether every gradient was finite.
  virtual bool gradients_finite() const = 0;
  // The step that enqueue(false) left out, enqueued on its own after the run.
  virtual void enqueue_step() = 0;
  // After a step was taken: the time steps advance.
  virtual void advance() = 0;
  // Entry i's values on the device, for its data source.
  virtual std::shared_ptr<ParameterView> view(std::size_t i) const = 0;
};

// How a backend whose images live in device memory runs a program: everything is enqueued
// on its stream, and the graph waits once at the end of a run.
class DeviceExecution {
 public:
  virtual ~DeviceExecution() = default;
  // The element type of the images between steps.
  virtual DataType storage_type() const = 0;
  virtual DeviceMemory& memory() = 0;
  virtual void upload_async(void* dst, const void* host_src, std::size_t bytes) = 0;
  virtual void copy_async(void* dst, const void* src, std::size_t bytes) = 0;
  // Converts `count` elements (u8 is normalized, as in Image).
  virtual void convert_async(const void* src, DataType from, void* dst, DataType to,
                             std::size_t count) = 0;
  // The graph's batch counter for the run about to launch. Kernels that read it (dropout
  // masks) copy it on the device, so that a replayed recording sees each run's value.
  virtual void set_batch(std::uint64_t) {}
  // The factor loss gradients are multiplied by in the runs about to launch (dynamic loss
  // scaling; read on the device like the batch counter).
  virtual void set_loss_scale(float) {}
  // Runs `launch_steps`, which enqueues every step of one program. `captured` is that
  // program's slot: the backend may record the launches once (a CUDA graph) and replay the
  // recording on later runs, when `replayable` (the same buffers every run).
  virtual void launch(std::shared_ptr<void>& captured, bool replayable,
                      const std::function<void()>& launch_steps) = 0;
  // Waits for everything enqueued; throws DeviceError for a failure inside it.
  virtual void synchronize() = 0;
  // Milliseconds the device spends on what `launch_steps` enqueues (waits for it).
  virtual double time_ms(const std::function<void()>& launch_steps) = 0;
  // Called once every kernel of a program is compiled (the CUDA backend saves its plan
  // cache then).
  virtual void program_compiled() {}

  // Training. The weight and bias gradients the kernels of a trained convolution left on
  // the device, into parameters.gradient (f32, host). Waits for them.
  virtual void download_gradients(TrainedWeights& parameters) = 0;
  // parameters.prepared's values, just changed on the host, into its device copies.
  virtual void upload_weights(const TrainedWeights& parameters) = 0;
  // The device's (master) values of a trained convolution, into host vectors.
  virtual void download_weights(const TrainedWeights& parameters, std::vector<float>& weights,
                                std::vector<float>& bias) = 0;
  // The fused step of these entries; throws Unsupported for an optimizer it has no rule for.
  virtual std::unique_ptr<DeviceOptimizer> make_optimizer(
      std::vector<DeviceOptimizerEntry> entries) = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // Null for the host-memory (CPU) backends.
  virtual DeviceExecution* device_execution() const { return nullptr; }
  // Throws Unsupported when no implementation accepts the op.
  virtual std::unique_ptr<Kernel> compile(const Op& op, const GraphOptions& options) const = 0;
  // Whether the compiler may hand it the fused op kinds of training fusion
  // (graph/structure.hpp, plan_training_fusion).
  virtual bool fuses_training_steps() const { return false; }
  // Whether the kernel the backend compiles for `op` (a BinaryConvolutionOp) reads a
  // bit-packed source and writes a bit-packed result when the op says so (ops/op.hpp,
  // BitPacking): the compiler packs an image only between two ops it says this of.
  virtual bool packs_bits(const BinaryConvolutionOp&) const { return false; }
};

// A kernel whose body is a function of the op and the run's buffers (plain loops).
template <typename OpType, typename Body>
class FunctionKernel : public Kernel {
 public:
  FunctionKernel(const OpType& op, std::string name, Body body)
      : op_(op), name_(std::move(name)), body_(std::move(body)) {}
  void run(const KernelArgs& args) override { body_(op_, args); }
  std::string implementation() const override { return name_; }

 private:
  const OpType& op_;
  std::string name_;
  Body body_;
};

template <typename OpType, typename Body>
std::unique_ptr<Kernel> function_kernel(const Op& op, std::string name, Body body) {
  return std::make_unique<FunctionKernel<OpType, Body>>(static_cast<const OpType&>(op),
                                                        std::move(name), std::move(body));
}

// The backend of a device (backends/registry.cpp, the one place that knows every backend).
std::unique_ptr<Backend> make_backend(const Device& device, const GraphOptions& options);

}  // namespace cnngraph::detail
