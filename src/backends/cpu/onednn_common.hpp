// Helpers shared by the oneDNN kernels: the engine, NHWC descriptors, neuron -> eltwise.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <vector>

#include "backends/backend.hpp"

namespace cnngraph::detail::onednn {

// The engine and stream all oneDNN kernels of a process share (the one permitted registry).
dnnl::engine& cpu_engine();
dnnl::stream& cpu_stream();

dnnl::memory::desc nhwc_desc(const ImageShape& s,
                             dnnl::memory::data_type type = dnnl::memory::data_type::f32);

struct Eltwise {
  dnnl::algorithm algorithm;
  float alpha = 0.0f, beta = 0.0f, scale = 1.0f;
};

// The neuron as a chain of oneDNN eltwise operations, or nothing when oneDNN has no exact
// equivalent (prelu, soft_sign): then the caller evaluates it with our own loop.
std::optional<std::vector<Eltwise>> eltwise_chain(const NeuronDescriptor& neuron);

// A kernel that runs one oneDNN primitive with sources and destination bound per run.
class PrimitiveKernel : public Kernel {
 public:
  PrimitiveKernel(dnnl::primitive primitive, std::vector<dnnl::memory::desc> src_descs,
                  std::vector<int> src_args, dnnl::memory::desc dst_desc, std::string name);
  void run(const KernelArgs& args) override;
  std::string implementation() const override { return name_; }

 private:
  dnnl::primitive primitive_;
  std::vector<dnnl::memory> srcs_;
  std::vector<int> src_args_;
  dnnl::memory dst_;
  std::string name_;
};

// The prepared weights reordered into `wanted`, cached beside them and shared by every kernel
// of the graph; re-reordered in place when training has changed them (PreparedWeights::version).
dnnl::memory cached_weights(const PreparedWeights& weights, const dnnl::memory::desc& user_desc,
                            const dnnl::memory::desc& wanted);

// The user (library) layout of a convolution's OHWI weights: ohwi, or gohwi with groups.
dnnl::memory::desc user_weights_desc(const ConvolutionOp& op);

// "onednn:<implementation>" from a primitive descriptor.
std::string implementation_name(const dnnl::primitive_desc_base& pd);

}  // namespace cnngraph::detail::onednn
