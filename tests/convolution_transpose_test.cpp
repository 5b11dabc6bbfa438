// Transposed convolution (src/ops/convolution_transpose.cpp): the adjoint of a convolution,
// its size rules with and without a gradient state, gradients against finite differences, bad
// input, an autoencoder that trains. The CPU and CUDA backends against the reference: the
// tconv cases of backend_ops_test.
#include <cmath>

#include "gradient_support.hpp"

using namespace cnngraph;
using namespace cnngraph::testing;

namespace {

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double sum = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) sum += double(a[i]) * b[i];
  return sum;
}

// conv_w[i][r][s][o] = w[o][r][s][i] per group: the forward convolution a transpose undoes.
std::vector<float> adjoint_of(const std::vector<float>& w, const ConvolutionDescriptor& t) {
  const int G = t.groups, Og = t.output_feature_channels / G, Ig = t.input_feature_channels / G;
  const int taps = t.kernel_width * t.kernel_height;
  std::vector<float> out(w.size());
  for (int g = 0; g < G; ++g)
    for (int o = 0; o < Og; ++o)
      for (int k = 0; k < taps; ++k)
        for (int i = 0; i < Ig; ++i)
          out[((g * Ig + i) * taps + k) * Og + o] = w[((g * Og + o) * taps + k) * Ig + i];
  return out;
}

}  // namespace

TEST(ConvolutionTranspose, IsTheAdjointAndTakesTheForwardSourceSizeFromTheGradientState) {
  std::mt19937 rng(71);
  int checked = 0;
  for (const ConvCase& c : random_convolution_cases(40, 72)) {
    SCOPED_TRACE(c.name());
    // The forward convolution: c.in_channels -> c.out_channels.
    const ConvolutionDescriptor fd = c.descriptor();
    const auto fw = random_floats(fd.weight_count(), rng);
    auto forward_source = std::make_shared<ArrayDataSource>("forward", fd, fw);
    // The transpose reads out_channels and makes in_channels, with the adjoint's weights.
    ConvolutionDescriptor td = fd;
    td.input_feature_channels = fd.output_feature_channels;
    td.output_feature_channels = fd.input_feature_channels;
    auto transpose_source = std::make_shared<ArrayDataSource>("transpose", td, adjoint_of(fw, fd));
    // adjoint_of(w, fd) maps forward weights to transpose weights: w_t[o=i][k][j] = w[j][k][i].
    auto x_node = std::make_shared<ImageNode>("x");
    auto conv = std::make_shared<ConvolutionNode>(x_node, forward_source);
    conv->padding_policy = c.padding;
    auto y_node = std::make_shared<ImageNode>("y");
    auto transpose = std::make_shared<ConvolutionTransposeNode>(
        y_node, conv->convolution_gradient_state(), transpose_source);
    const Image x = random_image({c.batch, c.height, c.width, c.in_channels}, rng);
    Image conv_x;
    try {
      conv_x = run_on(Device::cpu_reference(), conv->result_image(), {x});
    } catch (const ShapeError&) {
      continue;  // an empty forward result: nothing to transpose
    }
    const Image y = random_image(conv_x.shape(), rng);
    for (const Device device : {Device::cpu_reference(), Device::cpu()}) {
      Graph graph(device, transpose->result_image());
      const Image t = run_named(graph, {{"x", x}, {"y", y}});
      ASSERT_EQ(t.shape(), x.shape()) << device.name();
      const double lhs = dot(conv_x.to_floats(), y.to_floats());
      const double rhs = dot(x.to_floats(), t.to_floats());
      EXPECT_NEAR(lhs, rhs, 1e-4 * (1 + std::fabs(lhs))) << device.name();
    }
    ++checked;
  }
  EXPECT_GE(checked, 30);
}

TEST(ConvolutionTranspose, WithoutAStateFollowsTheReverseFilterRule) {
  std::mt19937 rng(73);
  for (const auto& [policy, style] :
       {std::pair{PaddingPolicy::valid(), -1}, std::pair{PaddingPolicy::same(), 0},
        std::pair{PaddingPolicy::full(), 1}}) {
    for (const int stride : {1, 2, 3}) {
      for (const int kernel : {1, 3, 4}) {
        ConvolutionDescriptor td(kernel, kernel, 5, 3);
        td.stride_x = td.stride_y = stride;
        auto source = std::make_shared<ArrayDataSource>(
            "t", td, random_floats(td.weight_count(), rng), random_floats(3, rng));
        auto y_node = std::make_shared<ImageNode>("y");
        auto transpose = std::make_shared<ConvolutionTransposeNode>(y_node, nullptr, source);
        transpose->padding_policy = policy;
        const int in = 6;
        const int expected = (in - 1) * stride + 1 + style * (kernel - 1);
        const Image y = random_image({2, in, in + 1, 5}, rng);
        const Image t = run_on(Device::cpu(), transpose->result_image(), {y});
        EXPECT_EQ(t.shape(),
                  (ImageShape{2, expected, (in + 1 - 1) * stride + 1 + style * (kernel - 1), 3}))
            << "style " << style << " stride " << stride << " kernel " << kernel;
      }
    }
  }
}

TEST(ConvolutionTranspose, InputGradientMatchesFiniteDifferences) {
  std::mt19937 rng(74);
  ConvolutionDescriptor td(3, 3, 4, 2);
  td.stride_x = td.stride_y = 2;
  auto source = std::make_shared<ArrayDataSource>("t", td, random_floats(td.weight_count(), rng),
                                                  random_floats(2, rng));
  check_input_gradients(
      [&](std::vector<std::shared_ptr<ImageNode>> x) {
        auto node = std::make_shared<ConvolutionTransposeNode>(x[0], nullptr, source);
        node->training_style = TrainingStyle::none;  // an ArrayDataSource is not trainable
        return node;
      },
      {{2, 3, 4, 4}}, 75);
}

TEST(ConvolutionTranspose, BadInputIsAClearError) {
  std::mt19937 rng(76);
  const ConvolutionDescriptor td(3, 3, 4, 2);
  auto source = std::make_shared<ArrayDataSource>("t", td, random_floats(td.weight_count(), rng));
  auto y = std::make_shared<ImageNode>("y");
  EXPECT_THROW(ConvolutionTransposeNode(y, nullptr, nullptr), InvalidArgument);
  auto transpose = std::make_shared<ConvolutionTransposeNode>(y, nullptr, source);
  transpose->label = "up1";
  try {
    run_on(Device::cpu(), transpose->result_image(), {random_image({1, 3, 3, 5}, rng)});
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("up1"), std::string::npos) << e.what();
  }
  // A gradient state whose convolution has another stride.
  ConvolutionDescriptor fd(3, 3, 2, 4);
  fd.stride_x = fd.stride_y = 2;
  auto x = std::make_shared<ImageNode>("x");
  auto conv = std::make_shared<ConvolutionNode>(
      x, std::make_shared<ArrayDataSource>("f", fd, random_floats(fd.weight_count(), rng)));
  auto sized = std::make_shared<ConvolutionTransposeNode>(
      conv->result_image(), conv->convolution_gradient_state(), source);
  EXPECT_THROW(run_on(Device::cpu(), sized->result_image(), {random_image({1, 6, 6, 2}, rng)}),
               InvalidArgument);
}

TEST(ConvolutionTranspose, WeightAndBiasGradientsMatchFiniteDifferencesOnBothBackends) {
  std::mt19937 rng(77);
  for (const int groups : {1, 2}) {
    ConvolutionDescriptor td(3, 2, 4, 6);  // reads 4 channels, makes 6
    td.stride_x = 2;
    td.groups = groups;
    auto source = RecordingSource::random(td, rng);
    const auto build = [&](std::shared_ptr<ImageNode> y) {
      auto node = std::make_shared<ConvolutionTransposeNode>(std::move(y), nullptr, source);
      node->training_style = TrainingStyle::cpu;
      return node;
    };
    const Image y = random_image({2, 3, 4, 4}, rng);
    auto probe = build(std::make_shared<ImageNode>("y"));
    const Image z = run_on(Device::cpu_reference(), probe->result_image(), {y});
    const Image dz = random_image(z.shape(), rng);
    const auto objective = [&] {
      auto node = build(std::make_shared<ImageNode>("y"));
      return dot(run_on(Device::cpu_reference(), node->result_image(), {y}).to_floats(),
                 dz.to_floats());
    };
    for (const Device device : {Device::cpu_reference(), Device::cpu()}) {
      SCOPED_TRACE(device.name() + " groups " + std::to_string(groups));
      auto node = build(std::make_shared<ImageNode>("y"));
      auto dz_node = std::make_shared<ImageNode>("dz");
      Graph graph(device, node->gradient_filter(dz_node)->result_image());
      source->updates = 0;
      run_named(graph, {{"y", y}, {"dz", dz}});
      ASSERT_EQ(source->updates, 1);
      const ConvolutionGradientState g = source->last_gradient;
      for (std::size_t k = 0; k < g.weights_gradient.size(); k += 5) {
        const double numeric = central_difference(source->mutable_weights(), k, 1e-2f, objective);
        EXPECT_NEAR(g.weights_gradient[k], numeric, 5e-3 * (1 + std::fabs(numeric))) << "w" << k;
      }
      for (std::size_t k = 0; k < g.bias_gradient.size(); ++k) {
        const double numeric = central_difference(source->mutable_bias(), k, 1e-2f, objective);
        EXPECT_NEAR(g.bias_gradient[k], numeric, 5e-3 * (1 + std::fabs(numeric))) << "b" << k;
      }
    }
  }
}

TEST(ConvolutionTranspose, AnAutoencoderTrains) {
  // conv 3x3 stride 2 (3 -> 8) -> relu -> transpose sized by the conv's gradient state
  // (8 -> 3), mean squared error against the input itself.
  auto adam = std::make_shared<AdamOptimizer>(OptimizerDescriptor{0.01f});
  ConvolutionDescriptor encoder_d(3, 3, 3, 8), decoder_d(3, 3, 8, 3);
  encoder_d.stride_x = encoder_d.stride_y = decoder_d.stride_x = decoder_d.stride_y = 2;
  auto encoder_source = TrainableDataSource::uniform("encoder", encoder_d, 0.3f, 0.0f, 1, adam);
  auto decoder_source = TrainableDataSource::uniform("decoder", decoder_d, 0.3f, 0.0f, 2, adam);
  auto input = std::make_shared<ImageNode>("image");
  auto encoder = std::make_shared<ConvolutionNode>(input, encoder_source);
  auto relu = std::make_shared<NeuronNode>(encoder->result_image(),
                                           NeuronDescriptor::make(NeuronType::relu));
  auto decoder = std::make_shared<ConvolutionTransposeNode>(
      relu->result_image(), encoder->convolution_gradient_state(), decoder_source);
  auto loss = std::make_shared<LossNode>(
      decoder->result_image(), LossDescriptor(LossType::mean_squared_error, ReductionType::mean));
  const auto terminals = loss->training_graph();
  Graph training(Device::cpu(), terminals, std::vector<bool>(terminals.size(), false));
  std::mt19937 rng(78);
  std::uniform_real_distribution<float> phase(0.0f, 6.3f);
  double first = 0, last = 0;
  for (int step = 0; step < 200; ++step) {
    // Smooth images (sums of two waves): an autoencoder can learn to reproduce them.
    const ImageShape shape{8, 9, 9, 3};  // odd size: the state resolves the ambiguity
    std::vector<float> pixels(shape.elements());
    for (int n = 0; n < shape.batch; ++n) {
      const float a = phase(rng), b = phase(rng);
      for (int h = 0; h < 9; ++h)
        for (int w = 0; w < 9; ++w)
          for (int c = 0; c < 3; ++c)
            pixels[((n * 9 + h) * 9 + w) * 3 + c] =
                0.5f * std::sin(a + 0.4f * h + c) + 0.5f * std::cos(b + 0.3f * w);
    }
    const Image images = Image::from_floats(shape, pixels);
    const float value = training.run({images}, {LossLabels(images)}).loss();
    if (step < 10) first += value / 10;
    if (step >= 190) last += value / 10;
  }
  EXPECT_LT(last * 4, first) << "first 10 steps " << first << ", last 10 " << last;
  EXPECT_EQ(decoder_source->update_count(), 200u);
  // The checkpoint holds the transpose's weights too, in its own (transpose) layout.
  const auto path = std::filesystem::temp_directory_path() / "autoencoder.safetensors";
  training.save_checkpoint(path);
  FileDataSource file(path, decoder_d, "decoder.");
  ASSERT_TRUE(file.load());
  const auto* w = static_cast<const float*>(file.weights());
  EXPECT_EQ(std::vector<float>(w, w + decoder_d.weight_count()), decoder_source->current_weights());
  std::filesystem::remove(path);
}
