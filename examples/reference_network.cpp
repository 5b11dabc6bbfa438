#include "reference_network.hpp"

#include <cmath>
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

// A binary layer's sum of n products of +-1 is about sqrt(n) in size; 1 / sqrt(n) keeps its
// output in the range of the float layer's, so that fc2's logits and the soft-max do not
// saturate at the start.
float binary_scale(const ConvolutionDescriptor& d) {
  return 1.0f /
         std::sqrt(static_cast<float>(d.kernel_height * d.kernel_width * d.input_feature_channels));
}

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
  LayerSources sources;
  for (const Layer& layer : kLayers) {
    sources.push_back(std::make_shared<FileDataSource>(weights_file, layer.descriptor,
                                                       std::string(layer.name) + ".", layer.name));
  }
  const NetworkNodes nodes = build_reference_network(sources);
  return {nodes.input, nodes.probabilities};
}

LayerSources make_trainable_sources(unsigned seed, std::shared_ptr<const Optimizer> optimizer) {
  LayerSources sources;
  for (std::size_t i = 0; i < std::size(kLayers); ++i) {
    sources.push_back(TrainableDataSource::uniform(kLayers[i].name, kLayers[i].descriptor, 0.2f,
                                                   0.1f, seed * 16 + i, optimizer));
  }
  return sources;
}

BinaryNorms make_binary_norms(std::shared_ptr<const Optimizer> optimizer) {
  return {BatchNormalizationDataSource::identity("bn_conv2", 32, optimizer),
          BatchNormalizationDataSource::identity("bn_fc1", 64, optimizer)};
}

NetworkNodes build_reference_network(const LayerSources& sources, float dropout_keep,
                                     std::uint64_t dropout_seed, const BinaryNorms* binary) {
  const auto relu = [](const std::shared_ptr<ImageNode>& x) {
    return std::make_shared<NeuronNode>(x, NeuronDescriptor::make(NeuronType::relu))
        ->result_image();
  };
  NetworkNodes net;
  net.input = std::make_shared<ImageNode>("image");
  auto conv1 = std::make_shared<ConvolutionNode>(net.input, sources.at(0));
  auto pool1 = std::make_shared<MaxPoolingNode>(relu(conv1->result_image()), 2);
  std::shared_ptr<WeightedNode> conv2, fc1;
  if (binary) {
    auto normalized =
        std::make_shared<BatchNormalizationNode>(pool1->result_image(), binary->before_conv2);
    auto node = std::make_shared<BinaryConvolutionNode>(normalized->result_image(), sources.at(1),
                                                        binary_scale(kLayers[1].descriptor),
                                                        BinaryConvolutionType::xnor);
    node->padding_policy = PaddingPolicy::same();  // ConvolutionNode's default, as conv2's
    conv2 = node;
  } else {
    conv2 = std::make_shared<ConvolutionNode>(pool1->result_image(), sources.at(1));
  }
  auto pool2 = std::make_shared<MaxPoolingNode>(relu(conv2->result_image()), 2);
  if (binary) {
    auto normalized =
        std::make_shared<BatchNormalizationNode>(pool2->result_image(), binary->before_fc1);
    fc1 = std::make_shared<BinaryFullyConnectedNode>(normalized->result_image(), sources.at(2),
                                                     binary_scale(kLayers[2].descriptor),
                                                     BinaryConvolutionType::xnor);
  } else {
    fc1 = std::make_shared<FullyConnectedNode>(pool2->result_image(), sources.at(2));
  }
  auto hidden = relu(fc1->result_image());
  if (dropout_keep < 1.0f) {
    hidden = std::make_shared<DropoutNode>(hidden, dropout_keep, dropout_seed)->result_image();
  }
  auto fc2 = std::make_shared<FullyConnectedNode>(hidden, sources.at(3));
  net.layers = {conv1, conv2, fc1, fc2};
  net.logits = fc2->result_image();
  net.probabilities = std::make_shared<SoftMaxNode>(net.logits)->result_image();
  return net;
}

}  // namespace examples
