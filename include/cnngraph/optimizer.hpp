// Optimizers (MPSNNOptimizer and its subclasses): update a trainable node's weights and
// biases from their gradients, with MPS's formulas and defaults. They hold no per-tensor
// state themselves, so one optimizer may serve many data sources; each source keeps its own
// OptimizerState (moments and time step).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace cnngraph {

enum class RegularizationType { none, l1, l2 };

// Apple: MPSNNOptimizerDescriptor. Each gradient element is first clipped to
// [gradient_clip_min, gradient_clip_max] (when apply_gradient_clipping), then multiplied by
// gradient_rescale, then the regularization term is added (L1: scale * sign(w), L2:
// scale * w); the optimizer's own rule follows.
struct OptimizerDescriptor {
  float learning_rate = 0.001f;
  float gradient_rescale = 1.0f;
  bool apply_gradient_clipping = false;
  float gradient_clip_min = -1.0f;
  float gradient_clip_max = 1.0f;
  RegularizationType regularization_type = RegularizationType::none;
  float regularization_scale = 0.0f;

  // Throws InvalidArgument naming the field (non-finite or negative learning rate, clip
  // min > max, negative regularization scale).
  void validate(const std::string& where) const;
};

// One tensor of a step: the values to change and their gradients (same length).
struct ParameterTensor {
  std::span<float> values;
  std::span<const float> gradients;
};

// What an optimizer remembers between steps for one data source: the number of steps taken
// and per tensor its moment vectors (zero-initialised at first use, as MPS requires).
struct OptimizerState {
  std::uint64_t time_step = 0;
  struct Tensor {
    std::vector<float> momentum;          // SGD momentum, Adam first moment
    std::vector<float> velocity;          // Adam second moment, RMSProp mean square
    std::vector<float> maximum_velocity;  // AMSGrad
  };
  std::vector<Tensor> tensors;

  // Throws InvalidArgument naming `where` unless this state fits parameter tensors of
  // `lengths` elements: at most one entry per tensor, each moment empty (not used yet) or
  // of its tensor's length, and every value finite.
  void validate(const std::vector<std::size_t>& lengths, const std::string& where) const;
};

class Optimizer {
 public:
  explicit Optimizer(OptimizerDescriptor descriptor);
  virtual ~Optimizer() = default;

  const OptimizerDescriptor& descriptor() const { return descriptor_; }
  float learning_rate() const { return descriptor_.learning_rate; }
  // May change between batches (learning-rate schedules).
  void set_learning_rate(float learning_rate);

  // One step over all tensors of a parameter set (weights, then biases), counting one time
  // step. Throws InvalidArgument when a tensor's values and gradients differ in length.
  void step(std::span<const ParameterTensor> tensors, OptimizerState& state) const;

  virtual std::string name() const = 0;

 protected:
  // The optimizer's rule for one tensor; `gradients` are already clipped, rescaled and
  // regularized. `time_step` counts from 1.
  virtual void apply(std::span<float> values, std::span<const float> gradients,
                     OptimizerState::Tensor& state, std::uint64_t time_step) const = 0;

 private:
  OptimizerDescriptor descriptor_;
};

// Apple: MPSNNOptimizerStochasticGradientDescent.
//   no momentum: w -= lr * g
//   momentum:    m = momentum * m + lr * g; w -= m
//   Nesterov:    m = momentum * m + g; w -= lr * (g + momentum * m)
class SgdOptimizer : public Optimizer {
 public:
  explicit SgdOptimizer(OptimizerDescriptor descriptor = {}, float momentum = 0.0f,
                        bool nesterov = false);
  float momentum() const { return momentum_; }
  bool nesterov() const { return nesterov_; }
  std::string name() const override { return "sgd"; }

 protected:
  void apply(std::span<float> values, std::span<const float> gradients,
             OptimizerState::Tensor& state, std::uint64_t time_step) const override;

 private:
  float momentum_;
  bool nesterov_;
};

// Apple: MPSNNOptimizerAdam.
//   t += 1; lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
//   m = beta1 * m + (1 - beta1) * g; v = beta2 * v + (1 - beta2) * g^2
//   w -= lr_t * m / (sqrt(v) + epsilon)      (AMSGrad: v_max = max(v_max, v), used for v)
class AdamOptimizer : public Optimizer {
 public:
  explicit AdamOptimizer(OptimizerDescriptor descriptor = {}, double beta1 = 0.9,
                         double beta2 = 0.999, float epsilon = 1e-8f, bool amsgrad = false);
  double beta1() const { return beta1_; }
  double beta2() const { return beta2_; }
  float epsilon() const { return epsilon_; }
  bool amsgrad() const { return amsgrad_; }
  std::string name() const override { return amsgrad_ ? "amsgrad" : "adam"; }

 protected:
  void apply(std::span<float> values, std::span<const float> gradients,
             OptimizerState::Tensor& state, std::uint64_t time_step) const override;

 private:
  double beta1_, beta2_;
  float epsilon_;
  bool amsgrad_;
};

// Apple: MPSNNOptimizerRMSProp.
//   s = decay * s + (1 - decay) * g^2; w -= lr * g / (sqrt(s) + epsilon)
class RmsPropOptimizer : public Optimizer {
 public:
  explicit RmsPropOptimizer(OptimizerDescriptor descriptor = {}, double decay = 0.9,
                            float epsilon = 1e-8f);
  double decay() const { return decay_; }
  float epsilon() const { return epsilon_; }
  std::string name() const override { return "rmsprop"; }

 protected:
  void apply(std::span<float> values, std::span<const float> gradients,
             OptimizerState::Tensor& state, std::uint64_t time_step) const override;

 private:
  double decay_;
  float epsilon_;
};

}  // namespace cnngraph
