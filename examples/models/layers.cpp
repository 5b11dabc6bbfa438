// conv + batch norm + activation, and the pooled classifier (see layers.hpp).
#include "layers.hpp"

namespace cnngraph::models::detail {

std::shared_ptr<ImageNode> conv_bn(const Parameters& parameters, std::shared_ptr<ImageNode> src,
                                   const std::string& conv, const std::string& bn, ConvSpec spec,
                                   NeuronDescriptor neuron) {
  ConvolutionDescriptor d(spec.kernel, spec.kernel, spec.in, spec.out);
  d.stride_x = d.stride_y = spec.stride;
  d.groups = spec.groups;
  const TensorProvider& tensors = parameters.tensors;
  const Tensor weight =
      tensors(conv + ".weight", {spec.out, spec.kernel, spec.kernel, spec.in / spec.groups});
  std::shared_ptr<ConvolutionDataSource> source;
  if (parameters.optimizer) {
    source = std::make_shared<TrainableDataSource>(conv, d, weight.to_floats(),
                                                   std::vector<float>{}, parameters.optimizer);
  } else {
    source = std::make_shared<ArrayDataSource>(conv, d, weight.to_floats());
  }
  auto node = std::make_shared<ConvolutionNode>(std::move(src), source);
  node->padding_policy = torch_padding(spec.kernel / 2);
  node->training_style = parameters.style;
  BatchNormalizationParameters p;
  p.mean = tensors(bn + ".running_mean", {spec.out}).to_floats();
  p.variance = tensors(bn + ".running_var", {spec.out}).to_floats();
  p.gamma = tensors(bn + ".weight", {spec.out}).to_floats();
  p.beta = tensors(bn + ".bias", {spec.out}).to_floats();
  p.epsilon = 1e-5f;
  // Labelled by the layer (as the fixed-parameter constructor's sources are not), so that
  // the model can be saved as a graph and checkpointed.
  auto normalized = std::make_shared<BatchNormalizationNode>(
      node->result_image(),
      std::make_shared<BatchNormalizationDataSource>(bn, p, parameters.optimizer));
  if (neuron.type == NeuronType::none) return normalized->result_image();
  return std::make_shared<NeuronNode>(normalized->result_image(), neuron)->result_image();
}

std::shared_ptr<ImageNode> classifier(const Parameters& parameters, std::shared_ptr<ImageNode> src,
                                      int size, int features, int classes,
                                      const std::string& name) {
  const TensorProvider& tensors = parameters.tensors;
  auto pool = std::make_shared<PoolingNode>(std::move(src), PoolingType::average, size, size, 1, 1);
  pool->padding_policy = PaddingPolicy::valid();
  ConvolutionDescriptor d(1, 1, features, classes);
  std::vector<float> weights = tensors(name + ".weight", {classes, 1, 1, features}).to_floats();
  std::vector<float> bias = tensors(name + ".bias", {classes}).to_floats();
  std::shared_ptr<ConvolutionDataSource> source;
  if (parameters.optimizer) {
    source = std::make_shared<TrainableDataSource>(name, d, std::move(weights), std::move(bias),
                                                   parameters.optimizer);
  } else {
    source = std::make_shared<ArrayDataSource>(name, d, std::move(weights), std::move(bias));
  }
  auto fc = std::make_shared<FullyConnectedNode>(pool->result_image(), source);
  fc->training_style = parameters.style;
  return fc->result_image();
}

}  // namespace cnngraph::models::detail
