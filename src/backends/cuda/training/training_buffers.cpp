// Training state on the device: a trained convolution's gradients and f32 master values
// (DeviceTrainingBuffers), the copies between them and the host that TrainingStyle::cpu
// needs, and the fused optimizer step of TrainingStyle::device (CudaOptimizer), whose
// moments and masters never leave the device unless a data source asks for them.
#include <atomic>
#include <map>

#include "backends/cuda/cuda_backend.hpp"
#include "backends/cuda/training/cuda_training.hpp"
#include "backends/cuda/training/optimizer_step.hpp"
#include "cnngraph/errors.hpp"

namespace cnngraph::detail {

namespace {
std::atomic<std::uint64_t> downloads{0};
}  // namespace

std::uint64_t cuda_parameter_downloads() { return downloads.load(); }

namespace cuda {

namespace {

// A synchronous device-to-host copy of training values, counted.
void download(void* host, const void* device, std::size_t bytes, const std::string& what) {
  if (bytes == 0) return;
  ++downloads;
  check(cudaMemcpy(host, device, bytes, cudaMemcpyDeviceToHost),
        "copying " + what + " to the host");
}

std::vector<float> download_floats(const std::shared_ptr<std::byte[]>& device, std::size_t count,
                                   const std::string& what) {
  std::vector<float> host(count);
  download(host.data(), device.get(), count * sizeof(float), what);
  return host;
}

}  // namespace

std::shared_ptr<DeviceTrainingBuffers> device_training_buffers(const PreparedWeights& prepared,
                                                               Context& context) {
  auto kernel_copy = device_weights(prepared, context);
  const std::string key =
      "cuda" + std::to_string(context.device) + ":" + to_string(context.storage) + ":trained";
  std::lock_guard lock(prepared.cache_mutex);
  auto& slot = prepared.backend_cache[key];
  if (!slot) {
    auto t = std::make_shared<DeviceTrainingBuffers>();
    t->kernel_copy = kernel_copy;
    t->weight_count = prepared.weights.size();
    t->bias_count = prepared.bias.size();
    const std::string& label = prepared.source_label;
    t->weights_gradient =
        context.upload(nullptr, t->weight_count * sizeof(float), label + " weight gradient");
    t->bias_gradient =
        context.upload(nullptr, t->bias_count * sizeof(float), label + " bias gradient");
    if (context.storage == DataType::f32) {
      t->master_weights = kernel_copy->weights;
      t->master_bias = kernel_copy->bias;
    } else {
      t->master_weights = context.upload(prepared.weights.data(), t->weight_count * sizeof(float),
                                         label + " f32 weights");
      t->master_bias =
          context.upload(prepared.bias.data(), t->bias_count * sizeof(float), label + " f32 bias");
    }
    slot = t;
  }
  return std::static_pointer_cast<DeviceTrainingBuffers>(slot);
}

void download_gradients(TrainedWeights& parameters, Context& context) {
  auto t = device_training_buffers(*parameters.prepared, context);
  check(cudaStreamSynchronize(context.stream), "waiting for the gradients");
  ConvolutionGradientState& g = parameters.gradient;
  g.weights_gradient.resize(t->weight_count);
  g.bias_gradient.resize(t->bias_count);
  download(g.weights_gradient.data(), t->weights_gradient.get(), t->weight_count * sizeof(float),
           g.node_label + "'s weight gradient");
  download(g.bias_gradient.data(), t->bias_gradient.get(), t->bias_count * sizeof(float),
           g.node_label + "'s bias gradient");
}

void upload_weights(const TrainedWeights& parameters, Context& context) {
  const PreparedWeights& prepared = *parameters.prepared;
  auto t = device_training_buffers(prepared, context);
  check(cudaStreamSynchronize(context.stream), "waiting before a weights upload");
  const auto put = [&](void* device, const std::vector<float>& values, DataType type) {
    const Image image =
        Image::from_floats({1, 1, 1, static_cast<int>(std::max<std::size_t>(values.size(), 1))},
                           values.empty() ? std::vector<float>{0.0f} : values, type);
    context.memory->copy_to_device(device, image.data(), values.size() * size_of(type));
  };
  put(t->kernel_copy->weights.get(), prepared.weights, context.storage);
  put(t->kernel_copy->bias.get(), prepared.bias, context.storage);
  if (context.storage != DataType::f32) {
    put(t->master_weights.get(), prepared.weights, DataType::f32);
    put(t->master_bias.get(), prepared.bias, DataType::f32);
  }
}

void download_weights(const TrainedWeights& parameters, Context& context,
                      std::vector<float>& weights, std::vector<float>& bias) {
  auto t = device_training_buffers(*parameters.prepared, context);
  check(cudaStreamSynchronize(context.stream), "waiting for the weights");
  const std::string& label = parameters.prepared->source_label;
  weights = download_floats(t->master_weights, t->weight_count, label + " weights");
  if (!bias.empty()) bias = download_floats(t->master_bias, t->bias_count, label + " bias");
}

namespace {

// One tensor's optimizer moments on the device (null where the rule needs none).
struct DeviceMoments {
  std::shared_ptr<std::byte[]> momentum, velocity, maximum_velocity;
};

// The device values of one data source: masters, moments, and its group's time step.
class CudaParameterView : public ParameterView {
 public:
  int device = 0;
  std::shared_ptr<DeviceTrainingBuffers> weights;
  bool with_bias = false;
  std::vector<DeviceMoments> moments;    // weights, then bias
  std::shared_ptr<std::uint64_t> steps;  // the group's time step

  std::optional<std::uint64_t> time_step() const override { return *steps; }

  void fetch(std::vector<float>& w, std::vector<float>& b, OptimizerState& state) const override {
    check(cudaSetDevice(device), "cudaSetDevice");
    w = download_floats(weights->master_weights, weights->weight_count, "trained weights");
    if (with_bias && !b.empty())
      b = download_floats(weights->master_bias, weights->bias_count, "trained biases");
    state.time_step = *steps;
    state.tensors.resize(moments.size());
    for (std::size_t k = 0; k < moments.size(); ++k) {
      const std::size_t count = k == 0 ? weights->weight_count : weights->bias_count;
      const auto take = [&](const std::shared_ptr<std::byte[]>& from, std::vector<float>& to) {
        if (from) to = download_floats(from, count, "optimizer moments");
      };
      take(moments[k].momentum, state.tensors[k].momentum);
      take(moments[k].velocity, state.tensors[k].velocity);
      take(moments[k].maximum_velocity, state.tensors[k].maximum_velocity);
    }
  }
};

class CudaOptimizer : public DeviceOptimizer {
 public:
  CudaOptimizer(std::vector<DeviceOptimizerEntry> entries, Context& context) : context_(context) {
    std::map<std::pair<const Optimizer*, std::uint64_t>, std::size_t> group_of;
    std::vector<std::vector<DeviceParameter>> tensors;
    for (DeviceOptimizerEntry& entry : entries) {
      const auto key = std::make_pair(entry.optimizer.get(), entry.state.time_step);
      if (!group_of.count(key)) {
        group_of[key] = groups_.size();
        Group group;
        group.optimizer = entry.optimizer;
        group.time_step = std::make_shared<std::uint64_t>(entry.state.time_step);
        group.kind = device_step_rule(*entry.optimizer, 1);
        groups_.push_back(std::move(group));
        tensors.emplace_back();
      }
      const std::size_t g = group_of[key];
      auto view = std::make_shared<CudaParameterView>();
      view->device = context.device;
      view->weights = device_training_buffers(*entry.parameters->prepared, context);
      view->with_bias = entry.with_bias;
      view->steps = groups_[g].time_step;
      const DeviceTrainingBuffers& w = *view->weights;
      for (int k = 0; k < (entry.with_bias ? 2 : 1); ++k) {
        const std::size_t count = k == 0 ? w.weight_count : w.bias_count;
        const OptimizerState::Tensor* start =
            k < int(entry.state.tensors.size()) ? &entry.state.tensors[k] : nullptr;
        DeviceMoments m = moments_for(groups_[g].kind, count, start);
        DeviceParameter p;
        p.values = reinterpret_cast<float*>((k == 0 ? w.master_weights : w.master_bias).get());
        p.gradients = k == 0 ? w.weights_gradient_f32() : w.bias_gradient_f32();
        p.momentum = reinterpret_cast<float*>(m.momentum.get());
        p.velocity = reinterpret_cast<float*>(m.velocity.get());
        p.maximum_velocity = reinterpret_cast<float*>(m.maximum_velocity.get());
        if (context.storage != DataType::f32)
          p.storage_copy = (k == 0 ? w.kernel_copy->weights : w.kernel_copy->bias).get();
        p.count = count;
        tensors[g].push_back(p);
        view->moments.push_back(std::move(m));
      }
      views_.push_back(std::move(view));
    }
    for (std::size_t g = 0; g < groups_.size(); ++g) {
      groups_[g].table = std::make_unique<DeviceOptimizerTable>(std::move(tensors[g]),
                                                                context.storage, *context.memory);
    }
    pinned_block_ = allocate_pinned(sizeof(Pinned) + groups_.size() * sizeof(DeviceStepRule),
                                    "the optimizer step's rules");
    pinned_ = reinterpret_cast<Pinned*>(pinned_block_.get());
    pinned_->flag = 0;
    device_ = context.memory->allocate(sizeof(Pinned) + groups_.size() * sizeof(DeviceStepRule),
                                       "the optimizer step's rules");
  }

  void prepare(float unscale) override {
    for (std::size_t g = 0; g < groups_.size(); ++g) {
      DeviceStepRule rule = device_step_rule(*groups_[g].optimizer, *groups_[g].time_step + 1);
      rule.unscale = unscale;
      rules(pinned_)[g] = rule;
    }
    pinned_->flag = 0;
  }

  void enqueue(bool step) override {
    auto* device = reinterpret_cast<Pinned*>(device_.get());
    check(cudaMemcpyAsync(device, pinned_, sizeof(Pinned) + groups_.size() * sizeof(DeviceStepRule),
                          cudaMemcpyHostToDevice, context_.stream),
          "copying the optimizer step's rules");
    for (const Group& group : groups_) group.table->check_finite(&device->flag, context_.stream);
    if (step) enqueue_step();
    check(cudaMemcpyAsync(&pinned_->flag, &device->flag, sizeof(unsigned), cudaMemcpyDeviceToHost,
                          context_.stream),
          "copying the optimizer step's status");
  }

  void enqueue_step() override {
    auto* device = reinterpret_cast<Pinned*>(device_.get());
    for (std::size_t g = 0; g < groups_.size(); ++g) {
      groups_[g].table->step(groups_[g].kind, rules(device) + g, &device->flag, context_.stream);
    }
  }

  bool gradients_finite() const override { return pinned_->flag == 0; }

  void advance() override {
    for (Group& group : groups_) ++*group.time_step;
  }

  std::shared_ptr<ParameterView> view(std::size_t i) const override { return views_.at(i); }

 private:
  // The block copied to the device before each step: the status flag (the device sets it
  // when a gradient is not finite), then one rule per group.
  struct Pinned {
    unsigned flag;
    unsigned padding[15];
  };
  static DeviceStepRule* rules(Pinned* block) {
    return reinterpret_cast<DeviceStepRule*>(block + 1);
  }

  // The data sources that share an optimizer object and a time step take one step together.
  struct Group {
    std::shared_ptr<const Optimizer> optimizer;
    std::shared_ptr<std::uint64_t> time_step;
    DeviceStepRule kind;
    std::unique_ptr<DeviceOptimizerTable> table;
  };

  DeviceMoments moments_for(const DeviceStepRule& kind, std::size_t count,
                            const OptimizerState::Tensor* start) {
    using Kind = DeviceStepRule::Kind;
    const bool momentum = kind.kind == Kind::sgd_momentum || kind.kind == Kind::sgd_nesterov ||
                          kind.kind == Kind::adam;
    const bool velocity = kind.kind == Kind::adam || kind.kind == Kind::rmsprop;
    const bool maximum = kind.kind == Kind::adam && kind.amsgrad;
    const auto make = [&](bool needed, const std::vector<float>* from) {
      std::shared_ptr<std::byte[]> block;
      if (!needed) return block;
      const bool resume = from && from->size() == count;
      block = context_.upload(resume ? from->data() : nullptr, count * sizeof(float),
                              "optimizer moments");
      if (!resume) check(cudaMemset(block.get(), 0, count * sizeof(float)), "cudaMemset");
      return block;
    };
    return {make(momentum, start ? &start->momentum : nullptr),
            make(velocity, start ? &start->velocity : nullptr),
            make(maximum, start ? &start->maximum_velocity : nullptr)};
  }

  Context& context_;
  std::vector<Group> groups_;
  std::vector<std::shared_ptr<CudaParameterView>> views_;
  std::shared_ptr<std::byte[]> pinned_block_;
  Pinned* pinned_ = nullptr;
  std::shared_ptr<std::byte[]> device_;
};

}  // namespace

std::unique_ptr<DeviceOptimizer> make_device_optimizer(std::vector<DeviceOptimizerEntry> entries,
                                                       Context& context) {
  return std::make_unique<CudaOptimizer>(std::move(entries), context);
}

}  // namespace cuda
}  // namespace cnngraph::detail
