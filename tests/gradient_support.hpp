// Finite-difference checks of gradient nodes and a data source that records its updates.
#pragma once

#include <functional>

#include "support.hpp"

namespace cnngraph::testing {

// Fixed weights; update() records the gradients it is given and changes nothing.
class RecordingSource : public ConvolutionDataSource {
 public:
  RecordingSource(ConvolutionDescriptor d, std::vector<float> weights, std::vector<float> bias)
      : descriptor_(std::move(d)), weights_(std::move(weights)), bias_(std::move(bias)) {}
  static std::shared_ptr<RecordingSource> random(const ConvolutionDescriptor& d, std::mt19937& rng);

  DataType data_type() const override { return DataType::f32; }
  ConvolutionDescriptor descriptor() const override { return descriptor_; }
  const void* weights() const override { return weights_.data(); }
  const float* bias_terms() const override { return bias_.empty() ? nullptr : bias_.data(); }
  bool load() override { return true; }
  void purge() override {}
  std::string label() const override { return "recording"; }
  std::shared_ptr<ConvolutionDataSource> copy() const override {
    return std::make_shared<RecordingSource>(descriptor_, weights_, bias_);
  }
  bool update(const ConvolutionGradientState& gradient, const WeightsAndBiasesState&) override {
    if (throw_on_update) throw std::runtime_error("update refused for the test");
    last_gradient = gradient;
    ++updates;
    return false;
  }

  std::vector<float>& mutable_weights() { return weights_; }
  std::vector<float>& mutable_bias() { return bias_; }
  ConvolutionGradientState last_gradient;
  int updates = 0;
  bool throw_on_update = false;

 private:
  ConvolutionDescriptor descriptor_;
  std::vector<float> weights_, bias_;
};

// (f(v + h) - f(v - h)) / 2h for element k of `values`, which `evaluate()` reads; restores it.
template <typename Evaluate>
double central_difference(std::vector<float>& values, std::size_t k, float h, Evaluate evaluate) {
  const float saved = values[k];
  values[k] = saved + h;
  const double plus = evaluate();
  values[k] = saved - h;
  const double minus = evaluate();
  values[k] = saved;
  return (plus - minus) / (2.0 * h);
}

// Runs a graph whose sources are named by handle.
Image run_named(Graph& graph, const std::map<std::string, Image>& inputs);

// Checks every source gradient of the node `make` builds on sources of `shapes` (handles
// "x0", "x1", ...) against central differences of sum(dy * f(x)) on the reference backend,
// at up to `samples` elements per source. Inputs uniform in [lo, hi].
void check_input_gradients(
    const std::function<std::shared_ptr<FilterNode>(std::vector<std::shared_ptr<ImageNode>>)>& make,
    const std::vector<ImageShape>& shapes, unsigned seed, float lo = -1.0f, float hi = 1.0f,
    double tolerance = 5e-3, int samples = 24);

// The loss types of the loss tests of every backend: a prediction range where each is smooth
// and whether it takes 0/1 labels (otherwise labels in (0.1, 1)).
struct LossCase {
  LossType type;
  float lo, hi;
  bool binary_labels;
};
const std::vector<LossCase>& loss_cases();
// The tests' descriptor: weight 0.5, label smoothing 0.1 for soft-max cross entropy.
LossDescriptor loss_descriptor_for(const LossCase& c, ReductionType reduction);
// Random labels for `c` and label weights in [0, 2), with element 3 weighing 0.
struct LossCaseLabels {
  std::vector<float> labels, weights;
  LossLabels loss_labels;
};
LossCaseLabels loss_labels_for(const LossCase& c, const ImageShape& shape, std::mt19937& rng);

// Synthetic training data for small classifiers: n images of 6x6x2, the class (of 3) being
// the quadrant with the brightest channel-0 pixel.
struct Batch {
  Image images;
  LossLabels labels;
};
Batch synthetic_batch(int n, std::mt19937& rng);

// A small classifier for synthetic_batch: conv 3x3 (2 -> 4) -> relu -> max-pool 2 ->
// fully connected (-> 3) -> soft-max cross-entropy.
struct SmallNet {
  static ConvolutionDescriptor conv_descriptor() { return ConvolutionDescriptor(3, 3, 2, 4); }
  static ConvolutionDescriptor fc_descriptor() { return ConvolutionDescriptor(3, 3, 4, 3); }

  std::shared_ptr<ImageNode> input = std::make_shared<ImageNode>("image");
  std::shared_ptr<ConvolutionNode> conv;
  std::shared_ptr<FullyConnectedNode> fc;
  std::shared_ptr<LossNode> loss;

  SmallNet(std::shared_ptr<ConvolutionDataSource> conv_source,
           std::shared_ptr<ConvolutionDataSource> fc_source) {
    conv = std::make_shared<ConvolutionNode>(input, std::move(conv_source));
    auto relu = std::make_shared<NeuronNode>(conv->result_image(),
                                             NeuronDescriptor::make(NeuronType::relu));
    auto pool = std::make_shared<MaxPoolingNode>(relu->result_image(), 2);
    fc = std::make_shared<FullyConnectedNode>(pool->result_image(), std::move(fc_source));
    loss = std::make_shared<LossNode>(
        fc->result_image(), LossDescriptor(LossType::softmax_cross_entropy, ReductionType::mean));
  }

  // The training graph on `device`, no result image needed.
  Graph training_graph(Device device, GraphOptions options = {}) const {
    const auto terminals = loss->training_graph();
    return Graph(device, terminals, std::vector<bool>(terminals.size(), false), options);
  }
};

// SmallNet with a trained batch normalization after its convolution: conv -> batch
// normalization -> relu -> max-pool -> fully connected -> soft-max cross-entropy, every
// parameter trained by `optimizer` (for checkpoint and saved-graph resume tests).
struct BatchNormNet {
  std::shared_ptr<TrainableDataSource> conv, fc;
  std::shared_ptr<BatchNormalizationDataSource> bn;
  std::shared_ptr<LossNode> loss;

  explicit BatchNormNet(const std::shared_ptr<const Optimizer>& optimizer,
                        float bn_momentum = 0.1f) {
    conv = TrainableDataSource::uniform("conv", SmallNet::conv_descriptor(), 0.4f, 0.05f, 3,
                                        optimizer);
    fc = TrainableDataSource::uniform("fc", SmallNet::fc_descriptor(), 0.4f, 0.05f, 4, optimizer);
    bn = BatchNormalizationDataSource::identity("bn", 4, optimizer, bn_momentum);
    auto input = std::make_shared<ImageNode>("image");
    auto c = std::make_shared<ConvolutionNode>(input, conv);
    auto b = std::make_shared<BatchNormalizationNode>(c->result_image(), bn);
    auto relu =
        std::make_shared<NeuronNode>(b->result_image(), NeuronDescriptor::make(NeuronType::relu));
    auto pool = std::make_shared<MaxPoolingNode>(relu->result_image(), 2);
    auto f = std::make_shared<FullyConnectedNode>(pool->result_image(), fc);
    loss = std::make_shared<LossNode>(
        f->result_image(), LossDescriptor(LossType::softmax_cross_entropy, ReductionType::mean));
  }
  Graph training_graph() const {
    const auto terminals = loss->training_graph();
    return Graph(Device::cpu_reference(), terminals, std::vector<bool>(terminals.size(), false));
  }
};

}  // namespace cnngraph::testing
