// The ops of training fusion (graph/structure.hpp, plan_training_fusion): each fused kind
// reuses the op struct of its main part; here are their names and attribute texts.
#include <cmath>
#include <iomanip>
#include <locale>
#include <sstream>

#include "ops/op.hpp"

namespace cnngraph::detail {

const char* training_fusion_name(OpKind kind) {
  switch (kind) {
    case OpKind::fused_batch_normalization_relu:
      return "batch_norm+relu";
    case OpKind::fused_relu_batch_normalization_gradient:
      return "relu_gradient+batch_norm_gradient";
    case OpKind::fused_addition_relu:
      return "add+relu";
    case OpKind::fused_addition_relu_gradient:
      return "add+relu_gradient";
    case OpKind::fused_max_pooling_relu_gradient:
      return "max_pooling_gradient+relu_gradient";
    case OpKind::fused_batch_normalization_addition_relu:
      return "batch_norm+add+relu";
    default:
      return nullptr;
  }
}

namespace {
std::string fused_text(OpKind kind) {
  const char* name = training_fusion_name(kind);
  return name ? std::string("fused ") + name : std::string();
}

// A relu_n's ceiling after the fused kind's name: "fused batch_norm+relu (relu_n 6)".
std::string with_ceiling(std::string text, float ceiling) {
  if (text.empty() || !(ceiling < INFINITY)) return text;
  std::ostringstream out;
  out.imbue(std::locale::classic());
  out << text << " (relu_n " << std::setprecision(9) << ceiling << ")";
  return out.str();
}
}  // namespace

std::string AdditionOp::attributes() const { return fused_text(kind); }
std::string BatchNormalizationTrainingOp::attributes() const {
  return with_ceiling(fused_text(kind), relu_ceiling);
}
std::string BatchNormalizationGradientOp::attributes() const {
  return with_ceiling(fused_text(kind), relu_ceiling);
}
std::string NeuronGradientOp::attributes() const {
  return kind == OpKind::neuron_gradient ? to_string(neuron.type) : fused_text(kind);
}
std::string PoolingGradientOp::attributes() const { return fused_text(kind); }

}  // namespace cnngraph::detail
