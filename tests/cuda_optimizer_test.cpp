// The fused GPU optimizer step (src/backends/cuda/optimizer_step.*) against the host
// optimizers of src/kernels/optimizers.cpp: every rule, with and without the gradient
// pre-processing, over tensors of odd sizes in one launch, for three steps; and the
// 16-bit copies of the values written in the same pass. Skips without a GPU.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/cuda/training/optimizer_step.hpp"
#include "cnngraph/device.hpp"
#include "cnngraph/errors.hpp"
#include "core/device_memory.hpp"

using namespace cnngraph;
using namespace cnngraph::detail::cuda;

namespace {

#define REQUIRE_GPU()                                \
  if (Device::cuda_device_count() == 0)              \
  GTEST_SKIP() << "no CUDA GPU on this machine (or " \
                  "this build has no CUDA backend)"

// A device buffer of floats, zeroed or filled from the host.
struct DeviceFloats {
  float* data = nullptr;
  std::size_t count = 0;
  explicit DeviceFloats(std::size_t n, const float* host = nullptr) : count(n) {
    EXPECT_EQ(cudaMalloc(&data, std::max<std::size_t>(n, 1) * sizeof(float)), cudaSuccess);
    if (host) {
      cudaMemcpy(data, host, n * sizeof(float), cudaMemcpyHostToDevice);
    } else {
      cudaMemset(data, 0, n * sizeof(float));
    }
  }
  ~DeviceFloats() { cudaFree(data); }
  std::vector<float> read() const {
    std::vector<float> host(count);
    cudaMemcpy(host.data(), data, count * sizeof(float), cudaMemcpyDeviceToHost);
    return host;
  }
};

struct OptimizerCase {
  std::string name;
  std::function<std::unique_ptr<Optimizer>(OptimizerDescriptor)> make;
};

std::vector<OptimizerCase> optimizer_cases() {
  return {
      {"sgd", [](OptimizerDescriptor d) { return std::make_unique<SgdOptimizer>(d); }},
      {"sgd_momentum",
       [](OptimizerDescriptor d) { return std::make_unique<SgdOptimizer>(d, 0.9f); }},
      {"sgd_nesterov",
       [](OptimizerDescriptor d) { return std::make_unique<SgdOptimizer>(d, 0.8f, true); }},
      {"adam", [](OptimizerDescriptor d) { return std::make_unique<AdamOptimizer>(d); }},
      {"amsgrad",
       [](OptimizerDescriptor d) {
         return std::make_unique<AdamOptimizer>(d, 0.8, 0.95, 1e-6f, true);
       }},
      {"rmsprop",
       [](OptimizerDescriptor d) { return std::make_unique<RmsPropOptimizer>(d, 0.7, 1e-6f); }},
  };
}

std::vector<OptimizerDescriptor> descriptors() {
  OptimizerDescriptor plain;
  plain.learning_rate = 0.01f;
  OptimizerDescriptor clipped_l1 = plain;
  clipped_l1.apply_gradient_clipping = true;
  clipped_l1.gradient_clip_min = -0.3f;
  clipped_l1.gradient_clip_max = 0.25f;
  clipped_l1.gradient_rescale = 0.5f;
  clipped_l1.regularization_type = RegularizationType::l1;
  clipped_l1.regularization_scale = 0.01f;
  OptimizerDescriptor l2 = plain;
  l2.regularization_type = RegularizationType::l2;
  l2.regularization_scale = 0.1f;
  return {plain, clipped_l1, l2};
}

}  // namespace

TEST(CudaOptimizerStep, EveryRuleMatchesTheHostOptimizerOverThreeSteps) {
  REQUIRE_GPU();
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  const std::vector<std::size_t> sizes = {1, 1000, 37, 4099};
  for (const OptimizerCase& c : optimizer_cases()) {
    for (const OptimizerDescriptor& d : descriptors()) {
      const auto optimizer = c.make(d);
      std::vector<std::vector<float>> host_values;
      std::vector<std::unique_ptr<DeviceFloats>> keep;
      std::vector<DeviceParameter> parameters;
      std::vector<DeviceFloats*> device_values, device_gradients;
      for (std::size_t n : sizes) {
        std::vector<float> v(n);
        for (float& x : v) x = uniform(rng);
        host_values.push_back(v);
        DeviceParameter p;
        p.count = n;
        for (float** moment : {&p.momentum, &p.velocity, &p.maximum_velocity}) {
          keep.push_back(std::make_unique<DeviceFloats>(n));
          *moment = keep.back()->data;
        }
        keep.push_back(std::make_unique<DeviceFloats>(n, v.data()));
        p.values = keep.back()->data;
        device_values.push_back(keep.back().get());
        keep.push_back(std::make_unique<DeviceFloats>(n));
        p.gradients = keep.back()->data;
        device_gradients.push_back(keep.back().get());
        parameters.push_back(p);
      }
      DeviceOptimizerTable table(parameters, DataType::f32, *detail::device_memory(Device::cuda()));
      OptimizerState state;
      for (int step = 1; step <= 3; ++step) {
        std::vector<std::vector<float>> gradients;
        std::vector<ParameterTensor> tensors;
        for (std::size_t t = 0; t < sizes.size(); ++t) {
          std::vector<float> g(sizes[t]);
          for (float& x : g) x = uniform(rng);
          cudaMemcpy(device_gradients[t]->data, g.data(), g.size() * sizeof(float),
                     cudaMemcpyHostToDevice);
          gradients.push_back(std::move(g));
        }
        for (std::size_t t = 0; t < sizes.size(); ++t)
          tensors.push_back({host_values[t], gradients[t]});
        optimizer->step(tensors, state);
        table.step(device_step_rule(*optimizer, state.time_step), nullptr);
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      }
      double worst = 0;
      for (std::size_t t = 0; t < sizes.size(); ++t) {
        const std::vector<float> gpu = device_values[t]->read();
        for (std::size_t i = 0; i < gpu.size(); ++i) {
          worst = std::max(worst, std::fabs(double(gpu[i]) - host_values[t][i]) /
                                      (1.0 + std::fabs(host_values[t][i])));
        }
      }
      // The same formulas in float; the compilers may contract a multiply-add differently.
      EXPECT_LE(worst, 1e-5) << c.name << " clip " << d.apply_gradient_clipping << " reg "
                             << static_cast<int>(d.regularization_type);
    }
  }
}

TEST(CudaOptimizerStep, SixteenBitCopiesFollowTheMasterValues) {
  REQUIRE_GPU();
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> uniform(-2.0f, 2.0f);
  for (DataType storage : {DataType::f16, DataType::bf16}) {
    const std::size_t n = 3001;
    std::vector<float> v(n), g(n);
    for (float& x : v) x = uniform(rng);
    for (float& x : g) x = uniform(rng);
    DeviceFloats values(n, v.data()), gradients(n, g.data()), momentum(n);
    void* copy = nullptr;
    ASSERT_EQ(cudaMalloc(&copy, n * 2), cudaSuccess);
    DeviceParameter p;
    p.values = values.data;
    p.gradients = gradients.data;
    p.momentum = momentum.data;
    p.storage_copy = copy;
    p.count = n;
    DeviceOptimizerTable table({p}, storage, *detail::device_memory(Device::cuda()));
    OptimizerDescriptor d;
    d.learning_rate = 0.1f;
    const SgdOptimizer sgd(d, 0.9f);
    table.step(device_step_rule(sgd, 1), nullptr);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const std::vector<float> master = values.read();
    std::vector<unsigned short> bits(n);
    cudaMemcpy(bits.data(), copy, n * 2, cudaMemcpyDeviceToHost);
    cudaFree(copy);
    for (std::size_t i = 0; i < n; ++i) {
      const float expected_master = v[i] - 0.1f * g[i];  // m = 0.9 * 0 + lr * g
      ASSERT_NEAR(master[i], expected_master, 1e-6f) << i;
      __half_raw half_bits;
      half_bits.x = bits[i];
      __nv_bfloat16_raw bfloat_bits;
      bfloat_bits.x = bits[i];
      const float copied = storage == DataType::f16 ? __half2float(__half(half_bits))
                                                    : __bfloat162float(__nv_bfloat16(bfloat_bits));
      const float rounded = storage == DataType::f16
                                ? __half2float(__float2half_rn(master[i]))
                                : __bfloat162float(__float2bfloat16_rn(master[i]));
      ASSERT_EQ(copied, rounded) << to_string(storage) << " element " << i;
    }
  }
}

TEST(CudaOptimizerStep, MissingMomentsAndOwnOptimizersAreClearErrors) {
  // Needs no GPU until a launch: the checks come first.
  struct Own : Optimizer {
    Own() : Optimizer({}) {}
    std::string name() const override { return "own"; }
    void apply(std::span<float>, std::span<const float>, OptimizerState::Tensor&,
               std::uint64_t) const override {}
  };
  EXPECT_THROW(device_step_rule(Own{}, 1), Unsupported);
  DeviceParameter p;
  p.count = 4;
  const AdamOptimizer adam;
  EXPECT_FALSE(has_moments(p, device_step_rule(adam, 1)));
  EXPECT_TRUE(has_moments(p, device_step_rule(SgdOptimizer{}, 1)));
  // A tensor without values is refused before any device memory is touched.
  struct NoMemory : detail::DeviceMemory {
    std::shared_ptr<std::byte[]> allocate(std::size_t, const std::string&) override {
      throw std::logic_error("allocated");
    }
    void copy_to_device(void*, const void*, std::size_t) override {}
    void copy_to_host(void*, const void*, std::size_t) override {}
    void check_readable(const void*, const std::string&) override {}
    void synchronize() override {}
    DeviceMemoryStatistics statistics() override { return {}; }
    void reset_peak() override {}
  } no_memory;
  EXPECT_THROW(DeviceOptimizerTable({p}, DataType::f32, no_memory), InvalidArgument);
}
