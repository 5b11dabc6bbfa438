// The layers shared by the networks of models.hpp, and the tensor providers.
#include "models.hpp"

#include <cmath>
#include <random>

namespace cnngraph::models {

namespace {

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

}  // namespace

TensorProvider tensors_from(std::map<std::string, Tensor> tensors) {
  auto held = std::make_shared<std::map<std::string, Tensor>>(std::move(tensors));
  return [held](const std::string& name, const std::vector<std::int64_t>& shape) {
    auto it = held->find(name);
    if (it == held->end()) throw DataSourceError("model weights: no tensor '" + name + "'");
    if (it->second.shape != shape) {
      throw DataSourceError("model weights: tensor '" + name + "' has shape " +
                            shape_text(it->second.shape) + ", the layer wants " +
                            shape_text(shape));
    }
    return it->second;
  };
}

TensorProvider random_tensors(unsigned seed) {
  return [seed](const std::string& name, const std::vector<std::int64_t>& shape) {
    // One stream per tensor name: a tensor does not depend on the order of the requests.
    std::mt19937 rng(seed ^ static_cast<unsigned>(std::hash<std::string>{}(name)));
    std::size_t count = 1;
    for (auto d : shape) count *= static_cast<std::size_t>(d);
    std::vector<float> values(count);
    const auto ends_with = [&](const char* suffix) {
      const std::string s = suffix;
      return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
    };
    std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
    if (ends_with("running_var")) {
      for (float& v : values) v = 0.5f + 0.5f * (unit(rng) + 1.0f);
    } else if (ends_with("running_mean") || ends_with(".bias")) {
      for (float& v : values) v = 0.1f * unit(rng);
    } else if (shape.size() == 1) {  // batch-norm gamma
      for (float& v : values) v = 1.0f + 0.2f * unit(rng);
    } else {  // He-uniform over the fan-in of an OHWI weight
      const double fan_in = double(count) / double(shape[0]);
      const float bound = static_cast<float>(std::sqrt(6.0 / fan_in));
      for (float& v : values) v = bound * unit(rng);
    }
    return Tensor::from_floats(shape, values);
  };
}

PaddingPolicy torch_padding(int pad) {
  // Explicit pads (not a callback), so that the models can be saved as graphs.
  return PaddingPolicy::explicit_padding(pad, pad, pad, pad);
}

}  // namespace cnngraph::models
