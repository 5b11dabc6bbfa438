#include "reference_network.hpp"

#include <random>

namespace examples {

using namespace cnngraph;

namespace {

struct Layer {
  const char* name;
  ConvolutionDescriptor descriptor;
};

const Layer kLayers[] = {
    {"conv1", ConvolutionDescriptor(5, 5, 1, 32)},
    {"conv2", ConvolutionDescriptor(5, 5, 32, 64)},
    {"fc1", ConvolutionDescriptor(7, 7, 64, 1024)},
    {"fc2", ConvolutionDescriptor(1, 1, 1024, 10)},
};

}  // namespace

void write_initial_weights(const std::filesystem::path& path, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-0.2f, 0.2f);
  std::map<std::string, Tensor> tensors;
  for (const Layer& layer : kLayers) {
    const ConvolutionDescriptor& d = layer.descriptor;
    std::vector<float> w(static_cast<std::size_t>(d.output_feature_channels) * d.kernel_height *
                         d.kernel_width * d.input_feature_channels);
    for (float& v : w) v = uniform(rng);
    tensors[std::string(layer.name) + ".weight"] = Tensor::from_floats(
        {d.output_feature_channels, d.kernel_height, d.kernel_width, d.input_feature_channels}, w);
    tensors[std::string(layer.name) + ".bias"] = Tensor::from_floats(
        {d.output_feature_channels}, std::vector<float>(d.output_feature_channels, 0.1f));
  }
  write_weights_file(path, tensors);
}

ReferenceNetwork build_reference_network(const std::filesystem::path& weights_file) {
  const auto source = [&](int i) {
    return std::make_shared<FileDataSource>(weights_file, kLayers[i].descriptor,
                                            std::string(kLayers[i].name) + ".", kLayers[i].name);
  };
  const auto relu = [](const std::shared_ptr<ImageNode>& x) {
    return std::make_shared<NeuronNode>(x, NeuronDescriptor::make(NeuronType::relu))
        ->result_image();
  };
  ReferenceNetwork net;
  net.input = std::make_shared<ImageNode>("image");
  auto conv1 = std::make_shared<ConvolutionNode>(net.input, source(0));
  auto pool1 = std::make_shared<MaxPoolingNode>(relu(conv1->result_image()), 2);
  auto conv2 = std::make_shared<ConvolutionNode>(pool1->result_image(), source(1));
  auto pool2 = std::make_shared<MaxPoolingNode>(relu(conv2->result_image()), 2);
  auto fc1 = std::make_shared<FullyConnectedNode>(pool2->result_image(), source(2));
  auto fc2 = std::make_shared<FullyConnectedNode>(relu(fc1->result_image()), source(3));
  net.probabilities = std::make_shared<SoftMaxNode>(fc2->result_image())->result_image();
  return net;
}

}  // namespace examples
