#include "gradient_support.hpp"

#include <cmath>

namespace cnngraph::testing {

std::shared_ptr<RecordingSource> RecordingSource::random(const ConvolutionDescriptor& d,
                                                         std::mt19937& rng) {
  return std::make_shared<RecordingSource>(d, random_floats(d.weight_count(), rng),
                                           random_floats(d.output_feature_channels, rng));
}

Image run_named(Graph& graph, const std::map<std::string, Image>& inputs) {
  std::vector<Image> sources;
  for (const auto& handle : graph.source_image_handles())
    sources.push_back(inputs.at(handle->handle));
  return graph.run(sources)[0];
}

namespace {
double weighted_sum(const Image& y, const Image& dy) {
  const auto a = y.to_floats(), b = dy.to_floats();
  double sum = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) sum += static_cast<double>(a[i]) * b[i];
  return sum;
}
}  // namespace

void check_input_gradients(
    const std::function<std::shared_ptr<FilterNode>(std::vector<std::shared_ptr<ImageNode>>)>& make,
    const std::vector<ImageShape>& shapes, unsigned seed, float lo, float hi, double tolerance,
    int samples) {
  std::mt19937 rng(seed);
  std::vector<std::shared_ptr<ImageNode>> xs;
  std::map<std::string, Image> inputs;
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    xs.push_back(std::make_shared<ImageNode>("x" + std::to_string(i)));
    inputs["x" + std::to_string(i)] =
        Image::from_floats(shapes[i], random_floats(shapes[i].elements(), rng, lo, hi));
  }
  const auto forward = make(xs);
  Graph forward_graph(Device::cpu_reference(), forward->result_image());
  const Image y = run_named(forward_graph, inputs);
  auto dy_node = std::make_shared<ImageNode>("dy");
  inputs["dy"] = random_image(y.shape(), rng);
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    SCOPED_TRACE(forward->display_name() + ", gradient of source " + std::to_string(i));
    auto gradient = forward->gradient_filter_for(i, dy_node);
    Graph gradient_graph(Device::cpu_reference(), gradient->result_image());
    const auto analytic = run_named(gradient_graph, inputs).to_floats();
    ASSERT_EQ(analytic.size(), shapes[i].elements());
    const std::string name = "x" + std::to_string(i);
    std::vector<float> x = inputs[name].to_floats();
    const float h = 1e-2f * (hi - lo) / 2.0f;
    std::uniform_int_distribution<std::size_t> pick(0, x.size() - 1);
    for (int s = 0; s < samples; ++s) {
      const std::size_t k = s < static_cast<int>(x.size()) && x.size() <= 24 ? s : pick(rng);
      const float saved = x[k];
      double values[2];
      for (int side = 0; side < 2; ++side) {
        x[k] = saved + (side ? -h : h);
        auto perturbed = inputs;
        perturbed[name] = Image::from_floats(shapes[i], x);
        values[side] = weighted_sum(run_named(forward_graph, perturbed), inputs["dy"]);
      }
      x[k] = saved;
      const double numeric = (values[0] - values[1]) / (2.0 * h);
      EXPECT_NEAR(analytic[k], numeric, tolerance * (1.0 + std::fabs(numeric))) << "element " << k;
    }
  }
}

const std::vector<LossCase>& loss_cases() {
  static const std::vector<LossCase> cases = {
      {LossType::mean_absolute_error, -1, 1, false},
      {LossType::mean_squared_error, -1, 1, false},
      {LossType::softmax_cross_entropy, -2, 2, false},
      {LossType::sigmoid_cross_entropy, -2, 2, true},
      {LossType::categorical_cross_entropy, 0.1f, 1, false},
      {LossType::hinge, -0.5f, 0.5f, true},
      {LossType::huber, -3, 3, false},
      {LossType::cosine_distance, -1, 1, false},
      {LossType::log, 0.1f, 0.9f, true},
      {LossType::kullback_leibler_divergence, -2, 0, false},
  };
  return cases;
}

LossDescriptor loss_descriptor_for(const LossCase& c, ReductionType reduction) {
  LossDescriptor descriptor(c.type, reduction);
  descriptor.weight = 0.5f;
  descriptor.label_smoothing = c.type == LossType::softmax_cross_entropy ? 0.1f : 0.0f;
  return descriptor;
}

LossCaseLabels loss_labels_for(const LossCase& c, const ImageShape& shape, std::mt19937& rng) {
  std::vector<float> labels = random_floats(shape.elements(), rng, 0.1f, 1.0f);
  if (c.binary_labels) {
    for (float& l : labels) l = l > 0.55f ? 1.0f : 0.0f;
  }
  std::vector<float> weights = random_floats(shape.elements(), rng, 0.0f, 2.0f);
  weights[3] = 0.0f;
  LossLabels loss_labels(Image::from_floats(shape, labels), Image::from_floats(shape, weights));
  return {std::move(labels), std::move(weights), std::move(loss_labels)};
}

Batch synthetic_batch(int n, std::mt19937& rng) {
  std::vector<float> pixels = random_floats(static_cast<std::size_t>(n) * 6 * 6 * 2, rng, 0, 0.3f);
  std::vector<int> classes(n);
  for (int i = 0; i < n; ++i) {
    classes[i] = static_cast<int>(rng() % 3);
    const int y = classes[i] == 1 ? 4 : 1, x = classes[i] == 2 ? 4 : 1;
    pixels[((static_cast<std::size_t>(i) * 6 + y) * 6 + x) * 2] = 1.0f;
  }
  return {Image::from_floats({n, 6, 6, 2}, pixels), LossLabels::from_classes(classes, 3)};
}

}  // namespace cnngraph::testing
