// conv + batch norm + activation, the ResNet stem and shortcut, and the pooled classifier
// (see layers.hpp).
#include "layers.hpp"

namespace cnngraph::models::detail {

namespace {

// A layer's weights: trainable when there is an optimizer (training graphs), else fixed.
std::shared_ptr<ConvolutionDataSource> weights_source(const Parameters& parameters,
                                                      const std::string& name,
                                                      const ConvolutionDescriptor& d,
                                                      std::vector<float> weights,
                                                      std::vector<float> bias) {
  if (parameters.optimizer) {
    return std::make_shared<TrainableDataSource>(name, d, std::move(weights), std::move(bias),
                                                 parameters.optimizer);
  }
  return std::make_shared<ArrayDataSource>(name, d, std::move(weights), std::move(bias));
}

ConvolutionDescriptor descriptor_of(const ConvSpec& spec) {
  ConvolutionDescriptor d(spec.kernel, spec.kernel, spec.in, spec.out);
  d.stride_x = d.stride_y = spec.stride;
  d.groups = spec.groups;
  return d;
}

std::shared_ptr<ConvolutionDataSource> conv_weights(const Parameters& parameters,
                                                    const std::string& conv, const ConvSpec& spec) {
  const Tensor weight = parameters.tensors(
      conv + ".weight", {spec.out, spec.kernel, spec.kernel, spec.in / spec.groups});
  return weights_source(parameters, conv, descriptor_of(spec), weight.to_floats(), {});
}

// Batch norm `<bn>` of `channels` after `src`, with torchvision's running statistics.
std::shared_ptr<ImageNode> batch_norm(const Parameters& parameters, std::shared_ptr<ImageNode> src,
                                      const std::string& bn, int channels) {
  const TensorProvider& tensors = parameters.tensors;
  BatchNormalizationParameters p;
  p.mean = tensors(bn + ".running_mean", {channels}).to_floats();
  p.variance = tensors(bn + ".running_var", {channels}).to_floats();
  p.gamma = tensors(bn + ".weight", {channels}).to_floats();
  p.beta = tensors(bn + ".bias", {channels}).to_floats();
  p.epsilon = 1e-5f;
  // Labelled by the layer (as the fixed-parameter constructor's sources are not), so that
  // the model can be saved as a graph and checkpointed.
  return std::make_shared<BatchNormalizationNode>(
             std::move(src),
             std::make_shared<BatchNormalizationDataSource>(bn, p, parameters.optimizer))
      ->result_image();
}

}  // namespace

std::shared_ptr<ImageNode> conv_bn(const Parameters& parameters, std::shared_ptr<ImageNode> src,
                                   const std::string& conv, const std::string& bn, ConvSpec spec,
                                   NeuronDescriptor neuron) {
  auto node =
      std::make_shared<ConvolutionNode>(std::move(src), conv_weights(parameters, conv, spec));
  node->padding_policy = torch_padding(spec.kernel / 2);
  node->training_style = parameters.style;
  auto normalized = batch_norm(parameters, node->result_image(), bn, spec.out);
  if (neuron.type == NeuronType::none) return normalized;
  return std::make_shared<NeuronNode>(normalized, neuron)->result_image();
}

std::shared_ptr<ImageNode> binary_conv_bn(const Parameters& parameters,
                                          std::shared_ptr<ImageNode> src, const std::string& conv,
                                          const std::string& bn, ConvSpec spec) {
  auto node = std::make_shared<BinaryConvolutionNode>(
      std::move(src), conv_weights(parameters, conv, spec), 1.0f, BinaryConvolutionType::xnor);
  node->padding_policy = torch_padding(spec.kernel / 2);
  node->training_style = parameters.style;
  return batch_norm(parameters, node->result_image(), bn, spec.out);
}

std::shared_ptr<ImageNode> resnet_stem(const Parameters& parameters,
                                       const std::shared_ptr<ImageNode>& input, int image_size,
                                       int& size, NeuronDescriptor neuron, int channels) {
  auto x = conv_bn(parameters, input, "conv1", "bn1", {3, channels, 7, 2, 1}, neuron);
  auto pool = std::make_shared<PoolingNode>(x, PoolingType::max, 3, 3, 2, 2);
  pool->padding_policy = torch_padding(1);
  size = ((image_size + 6 - 7) / 2 + 1 + 2 - 3) / 2 + 1;
  return pool->result_image();
}

std::shared_ptr<ImageNode> resnet_shortcut(const Parameters& parameters,
                                           const std::shared_ptr<ImageNode>& x,
                                           const std::string& name, int in, int out, int stride) {
  if (stride == 1 && in == out) return x;
  return conv_bn(parameters, x, name + ".downsample.0", name + ".downsample.1",
                 {in, out, 1, stride, 1}, NeuronDescriptor{});
}

std::shared_ptr<ImageNode> classifier(const Parameters& parameters, std::shared_ptr<ImageNode> src,
                                      int size, int features, int classes,
                                      const std::string& name) {
  const TensorProvider& tensors = parameters.tensors;
  auto pool = std::make_shared<PoolingNode>(std::move(src), PoolingType::average, size, size, 1, 1);
  pool->padding_policy = PaddingPolicy::valid();
  const ConvolutionDescriptor d(1, 1, features, classes);
  std::vector<float> weights = tensors(name + ".weight", {classes, 1, 1, features}).to_floats();
  std::vector<float> bias = tensors(name + ".bias", {classes}).to_floats();
  auto fc = std::make_shared<FullyConnectedNode>(
      pool->result_image(),
      weights_source(parameters, name, d, std::move(weights), std::move(bias)));
  fc->training_style = parameters.style;
  return fc->result_image();
}

}  // namespace cnngraph::models::detail
