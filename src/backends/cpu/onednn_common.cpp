// oneDNN engine, descriptors and the neuron-to-eltwise table.
#include "backends/cpu/onednn_common.hpp"

#include <cfloat>
#include <cmath>

namespace cnngraph::detail::onednn {

using dnnl::algorithm;
using dnnl::memory;

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& cpu_stream() {
  static dnnl::stream stream(cpu_engine());
  return stream;
}

memory::desc nhwc_desc(const ImageShape& s, memory::data_type type) {
  return memory::desc({s.batch, s.channels, s.height, s.width}, type, memory::format_tag::nhwc);
}

std::optional<std::vector<Eltwise>> eltwise_chain(const NeuronDescriptor& n) {
  using V = std::vector<Eltwise>;
  switch (n.type) {
    case NeuronType::none:
      return V{};
    case NeuronType::relu:
      return V{{algorithm::eltwise_relu, n.a}};
    case NeuronType::linear:
      return V{{algorithm::eltwise_linear, n.a, n.b}};
    case NeuronType::sigmoid:
      return V{{algorithm::eltwise_logistic}};
    case NeuronType::hard_sigmoid:
      return V{{algorithm::eltwise_linear, n.a, n.b}, {algorithm::eltwise_clip, 0.0f, 1.0f}};
    case NeuronType::tanh:
      return V{{algorithm::eltwise_linear, n.b, 0.0f}, {algorithm::eltwise_tanh, 0.0f, 0.0f, n.a}};
    case NeuronType::absolute:
      return V{{algorithm::eltwise_abs}};
    case NeuronType::soft_plus:
      return V{{algorithm::eltwise_linear, n.b, 0.0f},
               {algorithm::eltwise_soft_relu, 0.0f, 0.0f, n.a}};
    case NeuronType::elu:
      return V{{algorithm::eltwise_elu, n.a}};
    case NeuronType::relu_n:
      return V{{algorithm::eltwise_relu, n.a}, {algorithm::eltwise_clip, -FLT_MAX, n.b}};
    case NeuronType::power:
      return V{{algorithm::eltwise_linear, n.a, n.b}, {algorithm::eltwise_pow, 1.0f, n.c}};
    case NeuronType::exponential: {
      const float ln_c = n.c > 0.0f ? std::log(n.c) : 1.0f;
      return V{{algorithm::eltwise_linear, n.a * ln_c, n.b * ln_c}, {algorithm::eltwise_exp}};
    }
    case NeuronType::gelu:
      return V{{algorithm::eltwise_gelu_erf}};
    case NeuronType::silu:
      return V{{algorithm::eltwise_swish, 1.0f}};
    // oneDNN 2.6's log as a convolution post-op gave wrong results in our tests; our loop
    // evaluates it instead.
    case NeuronType::logarithm:
    case NeuronType::prelu:
    case NeuronType::soft_sign:
      return std::nullopt;
  }
  return std::nullopt;
}

PrimitiveKernel::PrimitiveKernel(dnnl::primitive primitive, std::vector<memory::desc> src_descs,
                                 std::vector<int> src_args, memory::desc dst_desc, std::string name)
    : primitive_(std::move(primitive)), src_args_(std::move(src_args)), name_(std::move(name)) {
  for (const auto& d : src_descs) srcs_.emplace_back(d, cpu_engine(), nullptr);
  dst_ = memory(dst_desc, cpu_engine(), nullptr);
}

void PrimitiveKernel::run(const KernelArgs& args) {
  std::unordered_map<int, memory> bindings;
  for (std::size_t i = 0; i < srcs_.size(); ++i) {
    srcs_[i].set_data_handle(const_cast<float*>(args.srcs[i]));
    bindings.emplace(src_args_[i], srcs_[i]);
  }
  dst_.set_data_handle(args.dst);
  bindings.emplace(DNNL_ARG_DST, dst_);
  primitive_.execute(cpu_stream(), bindings);
  cpu_stream().wait();
}

std::string implementation_name(const dnnl::primitive_desc_base& pd) {
  return "onednn:" + std::string(pd.impl_info_str());
}

namespace {
struct WeightsCache {
  struct Entry {
    dnnl::memory::desc desc;
    dnnl::memory memory;
    std::uint64_t version;
  };
  std::vector<Entry> entries;
};
}  // namespace

dnnl::memory cached_weights(const PreparedWeights& w, const dnnl::memory::desc& user_desc,
                            const dnnl::memory::desc& wanted) {
  // The primitive reads our own layout: no copy to keep (training would refresh it each step).
  if (wanted == user_desc) {
    return dnnl::memory(user_desc, cpu_engine(), const_cast<float*>(w.weights.data()));
  }
  std::lock_guard lock(w.cache_mutex);
  auto& slot = w.backend_cache["onednn"];
  if (!slot) slot = std::make_shared<WeightsCache>();
  auto& cache = *std::static_pointer_cast<WeightsCache>(slot);
  WeightsCache::Entry* entry = nullptr;
  for (auto& e : cache.entries) {
    if (e.desc == wanted) entry = &e;
  }
  if (entry && entry->version == w.version) return entry->memory;
  if (!entry) {
    cache.entries.push_back({wanted, dnnl::memory(wanted, cpu_engine()), w.version});
    entry = &cache.entries.back();
  }
  dnnl::memory user(user_desc, cpu_engine(), const_cast<float*>(w.weights.data()));
  dnnl::reorder(user, entry->memory).execute(cpu_stream(), user, entry->memory);
  cpu_stream().wait();
  entry->version = w.version;
  return entry->memory;
}

dnnl::memory::desc user_weights_desc(const ConvolutionOp& op) {
  using dnnl::memory;
  const memory::dim G = op.groups, O = op.output_channels, I = op.input_channels;
  const memory::dim KH = op.kernel_height, KW = op.kernel_width;
  if (G == 1) return memory::desc({O, I, KH, KW}, memory::data_type::f32, memory::format_tag::ohwi);
  return memory::desc({G, O / G, I / G, KH, KW}, memory::data_type::f32, memory::format_tag::gohwi);
}

}  // namespace cnngraph::detail::onednn
