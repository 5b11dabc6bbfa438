#include "op_cases.hpp"

#include <algorithm>
#include <set>
#include <sstream>
#include <stdexcept>

#include "cuda_support.hpp"
#include "neuron_cases.hpp"

namespace cnngraph::testing {

namespace {

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, separator)) parts.push_back(part);
  return parts;
}

std::vector<float> numbers(const std::string& text) {
  std::vector<float> values;
  for (const std::string& part : split(text, ',')) values.push_back(std::stof(part));
  return values;
}

[[noreturn]] void bad(const ProblemString& p, const std::string& what) {
  throw std::invalid_argument("problem '" + p.text() + "': " + what);
}

// pad=SIZE[/ALIGN][/ODD]: SIZE same|valid|full, ALIGN c|tl|br (centred, top-left,
// bottom-right; default c), ODD tl|br (where a centred odd pixel goes; default tl).
// pad=T,B,L,R[/ceil]: explicit pads (top, bottom, left, right), ONNX's ceil_mode with /ceil.
PaddingPolicy padding_of(const ProblemString& p, const PaddingPolicy& fallback) {
  const auto text = p.option("pad");
  if (!text) return fallback;
  const auto parts = split(*text, '/');
  PaddingPolicy policy;
  if (parts.empty()) bad(p, "empty pad");
  if (parts[0].find(',') != std::string::npos) {
    const auto amounts = split(parts[0], ',');
    if (amounts.size() != 4 || parts.size() > 2 || (parts.size() == 2 && parts[1] != "ceil"))
      bad(p, "pad '" + *text + "' (explicit pads are T,B,L,R[/ceil])");
    return PaddingPolicy::explicit_padding(std::stoi(amounts[0]), std::stoi(amounts[1]),
                                           std::stoi(amounts[2]), std::stoi(amounts[3]),
                                           parts.size() == 2);
  }
  if (parts[0] == "same")
    policy.size = PaddingSize::same;
  else if (parts[0] == "valid")
    policy.size = PaddingSize::valid;
  else if (parts[0] == "full")
    policy.size = PaddingSize::full;
  else
    bad(p, "pad size '" + parts[0] + "'");
  if (parts.size() > 1) {
    if (parts[1] == "c")
      policy.alignment = PaddingAlignment::centered;
    else if (parts[1] == "tl")
      policy.alignment = PaddingAlignment::top_left;
    else if (parts[1] == "br")
      policy.alignment = PaddingAlignment::bottom_right;
    else
      bad(p, "pad alignment '" + parts[1] + "'");
  }
  if (parts.size() > 2) {
    if (parts[2] == "tl")
      policy.remainder = PaddingRemainder::top_left;
    else if (parts[2] == "br")
      policy.remainder = PaddingRemainder::bottom_right;
    else
      bad(p, "pad remainder '" + parts[2] + "'");
  }
  if (parts.size() > 3) bad(p, "pad '" + *text + "'");
  return policy;
}

std::optional<NeuronType> neuron_type_named(const std::string& name) {
  for (int t = 0; t <= static_cast<int>(NeuronType::silu); ++t)
    if (to_string(static_cast<NeuronType>(t)) == name) return static_cast<NeuronType>(t);
  return std::nullopt;
}

// A neuron word: `type` (MPS's defaults; prelu: slopes 0.1, 0.2, ... per channel) or
// `type=a[,b[,c]]` (prelu: the slopes).
NeuronDescriptor neuron_of(const std::string& name, const std::string& value, int channels) {
  const NeuronType type = *neuron_type_named(name);
  if (type == NeuronType::prelu) {
    if (!value.empty()) return NeuronDescriptor::make_prelu(numbers(value));
    std::vector<float> slopes(channels);
    for (int c = 0; c < channels; ++c) slopes[c] = 0.1f * (c + 1);
    return NeuronDescriptor::make_prelu(slopes);
  }
  if (value.empty()) return NeuronDescriptor::make(type);
  const auto v = numbers(value);
  return NeuronDescriptor::make(type, v[0], v.size() > 1 ? v[1] : 0.0f, v.size() > 2 ? v[2] : 0.0f);
}

// The op's own neuron (fused into a convolution's descriptor, or a neuron node's).
std::optional<NeuronDescriptor> own_neuron(const ProblemString& p, int channels) {
  std::optional<NeuronDescriptor> found;
  const auto take = [&](const std::string& name, const std::string& value) {
    if (!neuron_type_named(name)) return;
    if (found) bad(p, "two neurons");
    found = neuron_of(name, value, channels);
  };
  for (const auto& f : p.flags) take(f, "");
  for (const auto& [key, value] : p.options) take(key, value);
  return found;
}

// x=int: integers in [-3, 3] (ties and zeros); x=lo:hi; default uniform in [-1, 1].
Image input_image(const ProblemString& p, const ImageShape& shape, std::mt19937& rng) {
  const std::string range = p.option_or("x", "-1:1");
  if (range == "int") {
    std::uniform_int_distribution<int> level(-3, 3);
    std::vector<float> values(shape.elements());
    for (float& v : values) v = static_cast<float>(level(rng));
    return Image::from_floats(shape, values);
  }
  const auto bounds = split(range, ':');
  if (bounds.size() != 2) bad(p, "x range '" + range + "'");
  return Image::from_floats(
      shape, random_floats(shape.elements(), rng, std::stof(bounds[0]), std::stof(bounds[1])));
}

std::pair<float, float> weight_range(const ProblemString& p) {
  const auto bounds = split(p.option_or("wt", "-1:1"), ':');
  if (bounds.size() != 2) bad(p, "wt range");
  return {std::stof(bounds[0]), std::stof(bounds[1])};
}

BatchNormalizationParameters random_batch_normalization(int channels, std::mt19937& rng) {
  BatchNormalizationParameters bn;
  bn.mean = random_floats(channels, rng, -0.5f, 0.5f);
  bn.variance = random_floats(channels, rng, 0.5f, 2.0f);
  bn.gamma = random_floats(channels, rng, 0.5f, 1.5f);
  bn.beta = random_floats(channels, rng, -0.5f, 0.5f);
  return bn;
}

// The descriptor of conv, tconv and binconv: r (kernel), c -> k, s, d, g.
ConvolutionDescriptor descriptor_of(const ProblemString& p) {
  const auto [kh, kw] = p.dim2('r', {1, 1});
  ConvolutionDescriptor d(kw, kh, p.dim('c'), p.dim('k'));
  const auto [sy, sx] = p.dim2('s', {1, 1});
  const auto [dy, dx] = p.dim2('d', {1, 1});
  d.stride_x = sx;
  d.stride_y = sy;
  d.dilation_x = dx;
  d.dilation_y = dy;
  d.groups = p.dim('g', 1);
  return d;
}

// Float weights: recorded (their gradients compared) with `train`, plain ones otherwise.
std::shared_ptr<ConvolutionDataSource> weights_of(const ProblemString& p,
                                                  const ConvolutionDescriptor& d, OpGraph& graph,
                                                  std::mt19937& rng) {
  const auto [lo, hi] = weight_range(p);
  std::vector<float> weights = random_floats(d.weight_count(), rng, lo, hi);
  std::vector<float> bias =
      p.flag("nobias") ? std::vector<float>{} : random_floats(d.output_feature_channels, rng);
  if (p.flag("train")) {
    graph.recording = std::make_shared<RecordingSource>(d, std::move(weights), std::move(bias));
    return graph.recording;
  }
  return std::make_shared<ArrayDataSource>("weights", d, std::move(weights), std::move(bias));
}

void set_training_style(const ProblemString& p, WeightedNode& node) {
  node.training_style = p.flag("train") ? TrainingStyle::cpu : TrainingStyle::none;
}

std::shared_ptr<FilterNode> build_op(const ProblemString& p, OpGraph& graph, std::mt19937& rng) {
  const auto x = [&](std::size_t i) { return graph.sources.at(i); };
  const std::string& op = p.op;
  const int c = p.has('c') ? p.dim('c') : 0;
  if (op == "conv") {
    ConvolutionDescriptor d = descriptor_of(p);
    if (auto neuron = own_neuron(p, d.output_feature_channels)) d.neuron = *neuron;
    if (const auto f = p.option("subpixel")) d.set_sub_pixel(std::stoi(*f));
    if (const auto f = p.option("pixel_shuffle"))
      d.set_sub_pixel(std::stoi(*f), SubPixelOrder::pixel_shuffle);
    if (p.flag("bn")) {
      auto bn = random_batch_normalization(d.output_feature_channels, rng);
      d.set_batch_normalization(bn.mean, bn.variance, bn.gamma, bn.beta, bn.epsilon);
    }
    auto node = std::make_shared<ConvolutionNode>(x(0), weights_of(p, d, graph, rng));
    node->padding_policy = padding_of(p, node->padding_policy);
    if (p.option_or("acc", "single") == "half")
      node->accumulator_precision = AccumulatorPrecision::half;
    set_training_style(p, *node);
    return node;
  }
  if (op == "fc") {
    ConvolutionDescriptor d(p.dim('w'), p.dim('h'), c, p.dim('k'));
    if (auto neuron = own_neuron(p, d.output_feature_channels)) d.neuron = *neuron;
    auto node = std::make_shared<FullyConnectedNode>(x(0), weights_of(p, d, graph, rng));
    set_training_style(p, *node);
    return node;
  }
  if (op == "tconv") {
    const ConvolutionDescriptor d = descriptor_of(p);
    auto node =
        std::make_shared<ConvolutionTransposeNode>(x(0), nullptr, weights_of(p, d, graph, rng));
    node->padding_policy = padding_of(p, node->padding_policy);
    set_training_style(p, *node);
    return node;
  }
  if (op == "binconv") {
    const ConvolutionDescriptor d = descriptor_of(p);
    const std::string type_name = p.option_or("type", "xnor");
    const BinaryConvolutionType type = type_name == "xnor"  ? BinaryConvolutionType::xnor
                                       : type_name == "and" ? BinaryConvolutionType::and_
                                       : type_name == "weights"
                                           ? BinaryConvolutionType::binary_weights
                                           : (bad(p, "binary type"), BinaryConvolutionType::xnor);
    auto weights = weights_of(p, d, graph, rng);
    BinaryConvolutionTerms terms;
    if (p.flag("terms")) {
      terms.input_bias = random_floats(d.input_feature_channels, rng, -0.5f, 0.5f);
      terms.input_scale = random_floats(d.input_feature_channels, rng, 0.5f, 1.5f);
      terms.output_bias = random_floats(d.output_feature_channels, rng);
      terms.output_scale = random_floats(d.output_feature_channels, rng, 0.5f, 2.0f);
    }
    auto node = std::make_shared<BinaryConvolutionNode>(
        x(0), std::move(weights), static_cast<float>(p.number_or("scale", 0.5)), type,
        BinaryConvolutionFlags{p.flag("beta")}, std::move(terms));
    node->padding_policy = padding_of(p, node->padding_policy);
    set_training_style(p, *node);
    return node;
  }
  if (op == "maxpool" || op == "avgpool") {
    const auto [kh, kw] = p.dim2('r', {2, 2});
    const auto [sy, sx] = p.dim2('s', {kh, kw});
    auto node = std::make_shared<PoolingNode>(
        x(0), op == "maxpool" ? PoolingType::max : PoolingType::average, kw, kh, sx, sy);
    node->padding_policy = padding_of(p, node->padding_policy);
    if (p.flag("countpad")) node->set_counts_padding(true);
    if (const auto end = p.option("padend")) {
      const auto v = numbers(*end);
      if (v.size() != 2) bad(p, "padend=BOTTOM,RIGHT");
      node->set_counted_padding_end(static_cast<int>(v[0]), static_cast<int>(v[1]));
    }
    return node;
  }
  if (op == "constpad") {
    PaddingAmounts amounts;
    amounts.top = static_cast<int>(p.number_or("top", 0));
    amounts.bottom = static_cast<int>(p.number_or("bottom", 0));
    amounts.left = static_cast<int>(p.number_or("left", 0));
    amounts.right = static_cast<int>(p.number_or("right", 0));
    amounts.channels_after = static_cast<int>(p.number_or("chan", 0));
    return std::make_shared<PaddingNode>(x(0), amounts,
                                         static_cast<float>(p.number_or("value", 0)));
  }
  if (op == "gap") return std::make_shared<GlobalAveragePoolingNode>(x(0));
  if (op == "gmp") return std::make_shared<GlobalMaxPoolingNode>(x(0));
  if (op == "neuron") {
    const auto neuron = own_neuron(p, c);
    if (!neuron) bad(p, "no neuron");
    return std::make_shared<NeuronNode>(x(0), *neuron);
  }
  if (op == "bn")
    return std::make_shared<BatchNormalizationNode>(x(0), random_batch_normalization(c, rng));
  if (op == "lrn" || op == "spatial_lrn") {
    std::shared_ptr<LocalResponseNormalizationNode> node;
    if (op == "lrn") {
      node = std::make_shared<CrossChannelNormalizationNode>(
          x(0), static_cast<int>(p.number_or("size", 5)));
    } else {
      const auto [kh, kw] = p.dim2('r', {3, 3});
      node = std::make_shared<SpatialNormalizationNode>(x(0), kw, kh);
    }
    node->alpha = static_cast<float>(p.number_or("alpha", node->alpha));
    node->beta = static_cast<float>(p.number_or("beta", node->beta));
    node->delta = static_cast<float>(p.number_or("delta", node->delta));
    return node;
  }
  if (op == "softmax") return std::make_shared<SoftMaxNode>(x(0));
  if (op == "logsoftmax") return std::make_shared<LogSoftMaxNode>(x(0));
  if (op == "add") return std::make_shared<AdditionNode>(x(0), x(1));
  if (op == "sub") return std::make_shared<SubtractionNode>(x(0), x(1));
  if (op == "mul") return std::make_shared<MultiplicationNode>(x(0), x(1));
  if (op == "div") return std::make_shared<DivisionNode>(x(0), x(1));
  if (op == "concat") return std::make_shared<ConcatenationNode>(graph.sources);
  if (op == "reshape") {
    const auto to = split(p.option_or("to", ""), 'x');
    if (to.size() != 3) bad(p, "to=HxWxC");
    return std::make_shared<ReshapeNode>(x(0), std::stoi(to[0]), std::stoi(to[1]),
                                         std::stoi(to[2]));
  }
  if (op == "dropout")
    return std::make_shared<DropoutNode>(x(0), static_cast<float>(p.number_or("keep", 0.5)),
                                         static_cast<std::uint64_t>(p.number_or("seed", 1)));
  bad(p, "unknown op '" + op + "'");
}

}  // namespace

std::string neuron_token(const NeuronDescriptor& n) {
  const std::string name = to_string(n.type);
  const auto number = [](float v) {
    std::ostringstream out;
    out << v;
    return out.str();
  };
  if (n.type == NeuronType::prelu) {
    std::string text = name + "=";
    for (std::size_t i = 0; i < n.prelu_slopes.size(); ++i)
      text += (i ? "," : "") + number(n.prelu_slopes[i]);
    return text;
  }
  const NeuronDescriptor defaults = NeuronDescriptor::make(n.type);
  if (defaults.a == n.a && defaults.b == n.b && defaults.c == n.c) return name;
  return name + "=" + number(n.a) + "," + number(n.b) + "," + number(n.c);
}

OpGraph build_problem(const ProblemString& p, std::mt19937& rng) {
  OpGraph graph;
  // The sources: one n x h x w x c image; concat: c=c0,c1,...; add, sub, mul, div: two, each
  // n x h x w x c unless src0= / src1= give its size (NxHxWxC, for broadcasting).
  std::vector<ImageShape> shapes;
  const ImageShape nhwc =
      p.op == "concat" ? ImageShape{} : ImageShape{p.dim('n'), p.dim('h'), p.dim('w'), p.dim('c')};
  if (p.op == "concat") {
    for (const float v : numbers(p.option_or("c", "")))
      shapes.push_back({p.dim('n'), p.dim('h'), p.dim('w'), static_cast<int>(v)});
  } else if (p.op == "add" || p.op == "sub" || p.op == "mul" || p.op == "div") {
    for (const char* name : {"src0", "src1"}) {
      const auto size = p.shape_option(name);
      shapes.push_back(size ? ImageShape{(*size)[0], (*size)[1], (*size)[2], (*size)[3]} : nhwc);
    }
  } else {
    shapes.push_back(nhwc);
  }
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    graph.sources.push_back(std::make_shared<ImageNode>("x" + std::to_string(i)));
    graph.inputs.push_back(input_image(p, shapes[i], rng));
  }
  graph.node = build_op(p, graph, rng);
  // The nodes that follow: +bn, +add (the op's first source), +<neuron>.
  for (const auto& [word, value] : p.post) {
    auto last = graph.node->result_image();
    if (word == "bn") {
      const int k = p.dim('k', p.dim('c'));
      graph.node =
          std::make_shared<BatchNormalizationNode>(last, random_batch_normalization(k, rng));
    } else if (word == "add") {
      graph.node = std::make_shared<AdditionNode>(last, graph.sources[0]);
    } else if (neuron_type_named(word)) {
      graph.node =
          std::make_shared<NeuronNode>(last, neuron_of(word, value, p.dim('k', p.dim('c'))));
    } else {
      bad(p, "unknown node '+" + word + "'");
    }
  }
  return graph;
}

double OpCase::tolerance(DeviceKind device, Precision precision, bool gradient) const {
  if (device == DeviceKind::cuda) {
    for (const PrecisionCase& p : kPrecisions)
      if (p.precision == precision) return p.tolerance * cuda_scale;
  }
  const double f32_tolerance = gradient ? gradient_f32 : f32;
  switch (precision) {
    case Precision::f32:
    case Precision::tf32_allowed:
      return f32_tolerance;
    case Precision::f16:  // 11-bit significands between ops, as on CUDA
      return std::max(f32_tolerance, 2e-2);
    case Precision::bf16:  // 8-bit significands; the bf16 convolution's 3e-2
      return std::max(f32_tolerance, 3e-2);
  }
  return f32_tolerance;
}

namespace {

std::string shape_dims(int n, int c, int h, int w) {
  return " n" + std::to_string(n) + " c" + std::to_string(c) + " h" + std::to_string(h) + " w" +
         std::to_string(w);
}

std::string two(const char* letter, int y, int x) {
  return std::string(" ") + letter + std::to_string(y) + (y == x ? "" : "x" + std::to_string(x));
}

std::vector<OpCase> make_cases() {
  std::vector<OpCase> cases;
  const auto add = [&](std::string problem, double f32, double gradient_f32 = -1.0,
                       double cuda_scale = 1.0) {
    cases.push_back({std::move(problem), f32, gradient_f32, cuda_scale});
  };

  // Convolution: random descriptors (dense, grouped, depthwise; strides, dilations, six
  // padding policies, batch > 1, odd sizes), every other with a fused relu. f32: oneDNN sums
  // in another order than the double reference.
  {
    int i = 0;
    for (const ConvCase& c : random_convolution_cases(24, 2024))
      add(c.name() + (i++ % 2 ? " relu" : ""), 2e-5);
    // Input gradients (backward data) on other random descriptors.
    for (const ConvCase& c : random_convolution_cases(16, 77)) add(c.name(), 2e-5, 1e-4);
  }
  add("conv n2 c4 h11 w14 k6 r2x3 s1x3 d2x1 pad=same", 2e-5);  // asymmetric stride, dilation
  add("conv n2 c32 h9 w9 k16 r3 pad=same", 2e-5);              // the bf16 convolution
  add("conv n2 c5 h9 w8 k7 r3 s2 pad=1,2,0,1", 2e-5);          // explicit, asymmetric pads
  add("conv n3 c6 h7 w7 k6 r5x3 s1x2 d1x2 g3 pad=2,2,0,2", 2e-5);
  add("conv n2 c8 h7 w5 k16 r3 d2 g8 pad=same", 2e-5);  // depthwise, dilated
  add("conv n3 c12 h11 w13 k12 r5x3 s2 d2x1 g12 pad=same relu_n=0,0.5", 2e-5);
  add("conv n2 c3 h6 w7 k4 r3 pad=same bn", 2e-5);  // the descriptor's batch norm, folded
  // Sub-pixel convolutions, both channel orders, factors 2 and 3.
  add("conv n2 c16 h7 w5 k12 r3 pad=same subpixel=2", 2e-5, -1.0, 2.0);
  add("conv n2 c16 h7 w5 k12 r3 pad=same pixel_shuffle=2", 2e-5, -1.0, 2.0);
  add("conv n2 c8 h7 w5 k18 r3 pad=same subpixel=3", 2e-5, -1.0, 2.0);
  add("conv n2 c8 h7 w5 k18 r3 pad=same pixel_shuffle=3", 2e-5, -1.0, 2.0);
  // Fused: convolution, batch norm, residual sum, relu.
  add("conv n2 c16 h9 w11 k16 r3 pad=same +bn +add +relu", 2e-5);
  // Two fused neurons whose oneDNN chains both hold a linear step (oneDNN 2.6 applied the
  // first one's twice), and two that both hold a relu.
  add("conv n2 c4 h6 w6 k5 r3 pad=same +linear=2.5,0 +linear=1,0.5", 2e-5);
  add("conv n2 c4 h6 w6 k5 r3 pad=same +linear=2.5,0 +hard_sigmoid=0.3,0.4", 2e-5);
  add("conv n2 c4 h6 w6 k5 r3 pad=same +relu +relu_n=0,0.5", 2e-5);
  // SiLU and the sigmoid after a convolution (EfficientNet's expanding 1x1 convolutions and
  // squeeze-and-excitation gates; cuDNN's pointwise swish and sigmoid on CUDA).
  add("conv n2 c24 h5 w7 k40 r1 +silu", 2e-5);
  add("conv n3 c40 h1 w1 k10 r1 +sigmoid", 2e-5);
  add("conv n2 c16 h9 w11 k24 r3 pad=same silu", 2e-5);
  add("conv n2 c16 h6 w5 k16 r1 +silu +add", 2e-5);
  add("conv n2 c16 h9 w7 k16 r3 g16 pad=same +add", 2e-5);  // depthwise with a residual
  // Depthwise layers of MobileNetV2 and EfficientNet shapes: 3x3 and 5x5, strides 1 and 2,
  // dilation, every padding policy, batch > 1, channel counts that fill 16-byte vectors in
  // every precision (the CUDA tiled kernel: 24, 40, 72; partial tiles of rows, columns and
  // channel slices) and odd ones (the untiled kernel), fused neurons and residual sums.
  add("conv n3 c24 h13 w11 k24 r3 g24 pad=same relu_n=0,6", 2e-5);
  add("conv n2 c40 h12 w17 k40 r3 s2 g40 pad=same silu", 2e-5);
  add("conv n2 c72 h9 w10 k72 r5 g72 pad=same silu", 2e-5);
  add("conv n4 c24 h15 w14 k24 r5 s2 g24 pad=same relu", 2e-5);
  add("conv n2 c40 h11 w13 k40 r3 d2 g40 pad=same", 2e-5);
  add("conv n2 c24 h12 w9 k24 r5 s2 d2 g24 pad=valid", 2e-5);
  add("conv n2 c24 h7 w8 k24 r3 g24 pad=full relu", 2e-5);
  add("conv n2 c72 h6 w6 k72 r5 g72 pad=same +add +relu", 2e-5);
  add("conv n3 c13 h9 w7 k13 r5 s2 g13 pad=same silu", 2e-5);
  add("conv n2 c7 h10 w11 k7 r3 s2 d2 g7 pad=same", 2e-5);
  add("conv n2 c136 h5 w4 k136 r3 g136 pad=same relu_n=0,6", 2e-5);

  // Transposed convolution, without a gradient state: every padding size, strides 1-3,
  // kernels 1, 3, 4 (groups and dilation on some).
  for (const char* pad : {"valid", "same", "full"})
    for (const int stride : {1, 2, 3})
      for (const int kernel : {1, 3, 4}) {
        add("tconv n2 c5 h6 w7 k3 r" + std::to_string(kernel) + " s" + std::to_string(stride) +
                " pad=" + pad,
            1e-5);
        add("tconv n2 c6 h9 w7 k4 r" + std::to_string(kernel) + " s" + std::to_string(stride) +
                (kernel == 4 ? " d2x1" : "") + (kernel == 3 ? " g2" : "") + " pad=" + pad,
            1e-5);
      }
  add("tconv n2 c6 h5 w4 k4 r3 s1 g2 pad=same", 1e-5, 1e-4);
  add("tconv n2 c6 h5 w4 k4 r3 s2 g2 pad=same", 1e-5, 1e-4);
  // Trained: the weight and bias gradients too (the adjoint's weight gradient, transposed
  // back). valid/tl pads the adjoint convolution past its window's extent.
  add("tconv n2 c6 h5 w4 k4 r3 s2 g2 pad=same train", 1e-5, 1e-4);
  add("tconv n2 c5 h6 w7 k3 r4 s1 d2x1 pad=full train", 1e-5, 1e-4);
  add("tconv n2 c5 h6 w7 k3 r3 s2 pad=valid/tl train", 1e-5, 1e-4);
  add("tconv n3 c4 h5 w5 k6 r2x3 s3x2 pad=valid/br nobias train", 1e-5, 1e-4);
  // Weight gradients of convolutions whose padding reaches past the window (windows wholly
  // in the padding): CUDA pads the source explicitly for cuDNN's backward filter.
  add("conv n2 c4 h6 w5 k3 r2 s2 pad=1,3,1,2 train", 2e-5, 1e-4);
  add("conv n2 c3 h7 w7 k5 r3 d2 pad=4,1,0,6 train", 2e-5, 1e-4);
  add("conv n3 c4 h5 w6 k4 r1x3 g2 pad=0,2,2,3 train", 2e-5, 1e-4);
  add("conv n2 c5 h6 w6 k4 r3 pad=same train", 2e-5, 1e-4);
  // Sub-pixel convolutions, trained (CUDA shuffles dy back before cuDNN's backward passes),
  // with a fused neuron in one.
  add("conv n2 c6 h5 w4 k12 r3 pad=same subpixel=2 train", 2e-5, 1e-4, 2.0);
  add("conv n2 c4 h4 w5 k18 r3 s2 pad=same pixel_shuffle=3 relu train", 2e-5, 1e-4, 2.0);

  // Binary convolution: every type, with and without the per-channel terms; the CPU
  // gradient (straight-through estimator) with weights and inputs over [-1.5, 1.5], where
  // the pass-through masks cut some (float inputs: sums of up to 6400 terms in another order,
  // 1e-4; binary_convolution_test compares integer inputs exactly).
  {
    struct Binary {
      int n, h, w, c, k, r, s, d, g;
      bool same;
    };
    const Binary binaries[] = {
        {2, 9, 8, 64, 8, 3, 1, 1, 1, true},     // one full word, border correction
        {1, 7, 7, 65, 5, 3, 2, 1, 1, false},    // a word and one bit, odd output count
        {3, 6, 11, 3, 4, 1, 1, 1, 1, false},    // 1x1, three channels
        {2, 10, 9, 130, 6, 3, 1, 2, 2, true},   // groups, dilation, 65 channels per group
        {1, 12, 12, 256, 9, 5, 2, 1, 1, true},  // several words, 5x5
    };
    for (const Binary& b : binaries)
      for (const char* type : {"xnor", "and", "weights"})
        for (const char* terms : {"", " terms"})
          add("binconv" + shape_dims(b.n, b.c, b.h, b.w) + " k" + std::to_string(b.k) + " r" +
                  std::to_string(b.r) + " s" + std::to_string(b.s) + " d" + std::to_string(b.d) +
                  " g" + std::to_string(b.g) + (b.same ? " pad=same" : "") + " type=" + type +
                  " x=-1.5:1.5 wt=-1.5:1.5 train" + terms,
              1e-4, 1e-4);
    // The gradient with beta scaling (beta held constant), trained.
    for (const char* type : {"xnor", "and", "weights"})
      add(std::string("binconv n2 c70 h8 w9 k12 r3 s2 pad=same type=") + type +
              " scale=0.25 x=-1.5:1.5 wt=-1.5:1.5 terms beta train",
          1e-4, 1e-4);
    // Channels per group that fill whole words and that do not, output counts that are
    // and are not a multiple of eight, groups, a stride; beta scaling.
    struct Shape {
      int c, k, g, s;
    };
    for (const Shape s :
         {Shape{70, 24, 1, 1}, Shape{64, 20, 1, 2}, Shape{128, 18, 2, 1}, Shape{80, 12, 2, 2}})
      for (const char* type : {"xnor", "and", "weights"})
        for (const char* beta : {"", " beta"})
          add("binconv" + shape_dims(2, s.c, 8, 9) + " k" + std::to_string(s.k) + " r3 s" +
                  std::to_string(s.s) + " g" + std::to_string(s.g) + " pad=same type=" + type +
                  " scale=0.25 terms" + beta,
              1e-5);
  }

  // Fully connected, with a fused relu and with a relu node after it.
  add("fc n1 c4 h2 w3 k7 relu", 2e-5);
  add("fc n5 c4 h2 w3 k7 relu", 2e-5);
  add("fc n5 c6 h3 w4 k33", 2e-5);
  add("fc n5 c6 h3 w4 k33 +relu", 2e-5);

  // Neurons: every type, with MPS's defaults and with parameters (power, logarithm: a
  // positive base); transcendental, so 1e-5.
  {
    std::set<std::string> seen;
    const auto neuron = [&](const std::string& dims, const NeuronDescriptor& n, double gradient) {
      const std::string problem = "neuron" + dims + " " + neuron_token(n);
      if (seen.insert(problem).second) add(problem, 1e-5, gradient);
    };
    for (int t = 0; t <= static_cast<int>(NeuronType::silu); ++t) {
      const auto type = static_cast<NeuronType>(t);
      if (type == NeuronType::prelu)
        neuron(shape_dims(2, 4, 3, 5), NeuronDescriptor::make_prelu({0.1f, 0.2f, 0.3f, 0.4f}), -1);
      else if (type == NeuronType::power || type == NeuronType::logarithm)
        neuron(shape_dims(2, 4, 3, 5), NeuronDescriptor::make(type, 1.0f, 3.0f, 2.0f), -1);
      else
        neuron(shape_dims(2, 4, 3, 5), NeuronDescriptor::make(type), -1);
    }
    for (const NeuronDescriptor& n :
         {NeuronDescriptor::make(NeuronType::relu, 0.2f),
          NeuronDescriptor::make(NeuronType::tanh, 1.7f, 0.6f),
          NeuronDescriptor::make(NeuronType::soft_plus, 2.0f, 0.5f),
          NeuronDescriptor::make(NeuronType::exponential, 1.0f, 0.5f, 3.0f)})
      neuron(shape_dims(2, 4, 3, 5), n, -1);
    // neuron_cases.hpp's parameters (for extreme inputs there), here over [-1, 1].
    for (const NeuronDescriptor& n : extreme_neuron_cases()) neuron(shape_dims(2, 1, 3, 5), n, -1);
    for (const NeuronType type :
         {NeuronType::relu, NeuronType::sigmoid, NeuronType::tanh, NeuronType::elu,
          NeuronType::soft_plus, NeuronType::hard_sigmoid, NeuronType::gelu, NeuronType::silu,
          NeuronType::relu_n, NeuronType::absolute})
      neuron(shape_dims(3, 10, 9, 7), NeuronDescriptor::make(type), -1);
    // Gradients.
    for (const NeuronDescriptor& n :
         {NeuronDescriptor::make(NeuronType::relu), NeuronDescriptor::make(NeuronType::relu, 0.1f),
          NeuronDescriptor::make(NeuronType::tanh, 1.5f, 0.5f),
          NeuronDescriptor::make(NeuronType::sigmoid),
          NeuronDescriptor::make_prelu({0.1f, 0.2f, 0.3f})})
      neuron(shape_dims(3, 3, 9, 11), n, 1e-6);
  }

  // Pooling: max and average, random kernels, strides (1-3 per axis), valid or same
  // padding, batch 1-3, odd sizes; integer inputs for the gradients (ties go to the first
  // maximum).
  {
    std::mt19937 rng(2);
    const auto pick = [&](int lo, int hi) {
      return std::uniform_int_distribution<int>(lo, hi)(rng);
    };
    for (int i = 0; i < 30; ++i) {
      const char* type = i % 2 ? "maxpool" : "avgpool";
      const int kw = pick(1, 4), kh = pick(1, 4), sx = pick(1, 3), sy = pick(1, 3);
      const int n = pick(1, 3), h = pick(4, 12), w = pick(4, 12), c = pick(1, 6);
      add(std::string(type) + shape_dims(n, c, h, w) + two("r", kh, kw) + two("s", sy, sx) +
              (i % 3 == 0 ? " pad=valid" : " pad=same"),
          2e-5);
    }
    std::uniform_int_distribution<int> size(1, 13), channels(1, 20), kernel(1, 4), stride(1, 3);
    for (int trial = 0; trial < 12; ++trial) {
      const char* type = trial % 2 ? "maxpool" : "avgpool";
      const int kw = kernel(rng), kh = kernel(rng), sx = stride(rng), sy = stride(rng);
      const int h = std::max(size(rng), kh), w = std::max(size(rng), kw), c = channels(rng);
      add(std::string(type) + shape_dims(2, c, h, w) + two("r", kh, kw) + two("s", sy, sx) +
              (trial % 3 == 0 ? " pad=valid" : "") + " x=int",
          2e-5, 1e-6);
    }
  }
  add("maxpool n3 c10 h9 w7 r2x3 s2", 2e-5);
  add("avgpool n3 c10 h9 w7 r2x3 s2", 2e-5);
  // Explicit pads (ONNX's and PyTorch's windows), with and without ceil_mode.
  add("maxpool n2 c5 h9 w8 r3 s2 pad=1,1,1,1/ceil", 2e-5);
  add("maxpool n3 c4 h7 w10 r2x3 s2x3 pad=0,1,1,0", 2e-5);
  add("avgpool n2 c6 h10 w9 r3 s2 pad=1,0,0,2/ceil", 2e-5);
  add("avgpool n1 c3 h6 w6 r2 s2 pad=0,0,0,0/ceil", 2e-5);
  add("gap n2 c4 h5 w3", 2e-5);
  // Global windows over channel counts in whole 16-byte vectors, fewer than CUDA's 32 lanes
  // a block and more (its global-pooling kernel).
  add("gap n2 c16 h7 w9", 2e-5);
  add("gap n3 c40 h11 w5", 2e-5);
  add("gap n2 c264 h3 w3", 2e-5);
  // Large images at small batches: the pixels split over several blocks an image on CUDA.
  add("gap n1 c24 h64 w60", 2e-5);
  add("gap n1 c16 h40 w37", 2e-5);
  add("maxpool n2 c8 h48 w50 r48x50 pad=valid", 2e-5);
  add("maxpool n2 c16 h6 w5 r6x5 pad=valid", 2e-5);
  add("gap n2 c10 h3 w4", 2e-5, 1e-6);
  // Average pooling counting the padding (ONNX count_include_pad = 1): same and full padding,
  // random kernels and strides; padend=0,0 ends the padded image at the source, so the last
  // windows (reaching past it, as in ceil mode) count fewer pixels.
  {
    std::mt19937 rng(5);
    const auto pick = [&](int lo, int hi) {
      return std::uniform_int_distribution<int>(lo, hi)(rng);
    };
    for (int i = 0; i < 18; ++i) {
      const int kw = pick(1, 4), kh = pick(1, 4), sx = pick(1, 3), sy = pick(1, 3);
      const int n = pick(1, 3), h = pick(4, 12), w = pick(4, 12), c = pick(1, 6);
      const char* end = i % 3 == 0 ? " padend=0,0" : i % 3 == 1 ? " padend=1,0" : "";
      add("avgpool" + shape_dims(n, c, h, w) + two("r", kh, kw) + two("s", sy, sx) +
              (i % 4 == 0 ? " pad=full" : " pad=same") + end + " countpad",
          2e-5, 1e-6);
    }
  }
  add("avgpool n3 c5 h7 w9 r3 s2 pad=same countpad", 2e-5, 1e-6);
  add("avgpool n2 c16 h8 w8 r3x2 s2x1 pad=full padend=0,1 countpad", 2e-5, 1e-6);
  add("avgpool n2 c3 h5 w5 r2 pad=valid countpad", 2e-5, 1e-6);

  // Constant padding and its crop: every side alone and together, trailing channels, odd
  // sizes, batch > 1, a fill value; channel counts that do and do not fill vectors.
  add("constpad n2 c3 h5 w7 top=1 bottom=2 left=3 right=1 value=0.5", 1e-7, 1e-7);
  add("constpad n3 c8 h4 w3 top=2", 1e-7, 1e-7);
  add("constpad n1 c5 h3 w6 right=4 value=-2", 1e-7, 1e-7);
  add("constpad n2 c4 h7 w5 left=1 bottom=3 chan=3 value=1.5", 1e-7, 1e-7);
  add("constpad n2 c16 h9 w11 top=1 bottom=1 left=1 right=1", 1e-7, 1e-7);
  add("constpad n3 c1 h1 w1 top=3 bottom=0 left=0 right=2 chan=1", 1e-7, 1e-7);
  add("constpad n2 c6 h4 w4", 1e-7, 1e-7);
  {
    std::mt19937 rng(6);
    const auto pick = [&](int lo, int hi) {
      return std::uniform_int_distribution<int>(lo, hi)(rng);
    };
    for (int i = 0; i < 8; ++i) {
      add("constpad" + shape_dims(pick(1, 3), pick(1, 9), pick(1, 9), pick(1, 9)) +
              " top=" + std::to_string(pick(0, 3)) + " bottom=" + std::to_string(pick(0, 3)) +
              " left=" + std::to_string(pick(0, 3)) + " right=" + std::to_string(pick(0, 3)) +
              (i % 2 ? " chan=" + std::to_string(pick(1, 4)) : "") + " value=0.25",
          1e-7, 1e-7);
    }
  }

  add("gmp n2 c4 h5 w3", 2e-5);
  add("gmp n3 c10 h3 w4 x=int", 2e-5, 1e-6);  // ties: the gradient goes to the first maximum
  add("gmp n2 c8 h17 w19", 2e-5, 1e-6);       // wider than one byte of window taps
  add("gmp n1 c3 h1 w1", 2e-5, 1e-6);

  // Batch normalization (inference: running statistics).
  add("bn n2 c2 h3 w3", 2e-5);
  add("bn n3 c10 h9 w7", 2e-5);

  // Cross-channel normalization: MPS's defaults, an even window, a window wider than the
  // channels, one channel, PyTorch's defaults at odd sizes, a size split over threads.
  add("lrn n2 c7 h3 w4 size=5 alpha=1 beta=5 delta=1", 1e-5, 1e-5);
  add("lrn n3 c16 h5 w2 size=4 alpha=0.5 beta=0.75 delta=2", 1e-5, 1e-5);
  add("lrn n1 c3 h2 w3 size=9 alpha=2 beta=1.5 delta=1", 1e-5, 1e-5);
  add("lrn n2 c1 h1 w1 size=1 alpha=1 beta=0.5 delta=1", 1e-5, 1e-5);
  add("lrn n4 c33 h7 w9 size=5 alpha=0.0001 beta=0.75 delta=1", 1e-5, 1e-5);
  add("lrn n8 c12 h20 w20 size=3 alpha=0.3 beta=2 delta=0.5", 1e-5, 1e-5);
  add("lrn n3 c10 h9 w7 size=5", 1e-5);
  add("lrn n2 c11 h4 w5 size=5", 1e-5, 1e-5);
  add("lrn n2 c11 h4 w5 size=4", 1e-5, 1e-5);
  // Spatial normalization.
  add("spatial_lrn n2 c3 h5 w6 r3 alpha=1 beta=5 delta=1", 1e-5, 1e-5);
  add("spatial_lrn n1 c2 h4 w7 r4x2 alpha=0.5 beta=0.75 delta=2", 1e-5, 1e-5);
  add("spatial_lrn n3 c1 h3 w3 r1x5 alpha=2 beta=1.5 delta=1", 1e-5, 1e-5);
  add("spatial_lrn n3 c10 h9 w7 r3", 1e-5);
  add("spatial_lrn n2 c3 h6 w7 r2x3", 1e-5, 1e-5);

  // Soft-max and log-soft-max over channels (exp and log in f32: 1e-5).
  for (const char* op : {"softmax", "logsoftmax"}) {
    add(std::string(op) + " n2 c7 h3 w2", 1e-5);
    add(std::string(op) + " n3 c10 h9 w7", 1e-5);
    add(std::string(op) + " n2 c10 h3 w4", 1e-5, 1e-5);
    add(std::string(op) + " n2 c70 h3 w4", 1e-5, 1e-5);
  }

  // Arithmetic, concatenation (copies: exact), reshape, dropout (a fixed seed and a fresh
  // graph: the same mask on every backend).
  add("add n3 c6 h4 w5", 2e-5, 1e-6);
  // Element-wise arithmetic with broadcasting: for each operation random sizes (odd ones,
  // batch 1-3) where each of height, width and channels is full in both sources or 1 in one
  // of them (the batch is shared: Graph::run takes sources of one batch size), the shapes
  // of squeeze-and-excitation, per-channel constants and per-pixel masks, and equal sizes.
  // Quotients over divisors in [0.5, 2]. Sums of up to 81 terms in the broadcast gradients.
  {
    std::mt19937 rng(7);
    const auto pick = [&](int lo, int hi) {
      return std::uniform_int_distribution<int>(lo, hi)(rng);
    };
    const auto size = [](int n, int h, int w, int c) {
      return std::to_string(n) + "x" + std::to_string(h) + "x" + std::to_string(w) + "x" +
             std::to_string(c);
    };
    for (const char* op : {"add", "sub", "mul", "div"}) {
      const std::string range = std::string(op) == "div" ? " x=0.5:2" : "";
      const auto arithmetic = [&](int n, int c, int h, int w, const std::string& a,
                                  const std::string& b) {
        add(std::string(op) + shape_dims(n, c, h, w) + (a.empty() ? "" : " src0=" + a) +
                (b.empty() ? "" : " src1=" + b) + range,
            2e-5, 1e-5);
      };
      for (int i = 0; i < 6; ++i) {
        const int n = pick(1, 3), h = pick(1, 9), w = pick(1, 9), c = pick(1, 13);
        int a[3] = {h, w, c}, b[3] = {h, w, c};
        for (int d = 0; d < 3; ++d) {
          const int side = pick(0, 2);  // 0: both full, 1: the primary 1, 2: the secondary 1
          if (side == 1) a[d] = 1;
          if (side == 2) b[d] = 1;
        }
        arithmetic(n, c, h, w, size(n, a[0], a[1], a[2]), size(n, b[0], b[1], b[2]));
      }
      arithmetic(2, 7, 5, 3, "", size(2, 1, 1, 7));  // squeeze-and-excitation
      arithmetic(1, 3, 9, 7, "", size(1, 1, 1, 3));  // per-channel constants
      arithmetic(3, 5, 4, 6, "", size(3, 4, 6, 1));  // a per-pixel mask
      arithmetic(2, 9, 3, 5, size(2, 1, 1, 9), "");  // the primary broadcast
      // Channel counts that CUDA's channel-broadcast kernel reads in 16-byte vectors.
      arithmetic(2, 16, 5, 3, "", size(2, 1, 1, 16));
      arithmetic(3, 24, 4, 3, size(3, 1, 1, 24), "");
      arithmetic(2, 6, 5, 5, "", "");  // equal sizes
    }
  }
  add("concat n2 h3 w3 c=2,5,1", 0.0);
  add("concat n3 h9 w7 c=10,5", 0.0);
  add("concat n2 h3 w2 c=2,5,1", 0.0, 0.0);
  add("reshape n2 c2 h4 w3 to=1x1x24", 0.0, 0.0);
  add("dropout n2 c5 h3 w3 keep=0.7 seed=5", 1e-6, 1e-6);
  add("dropout n16 c16 h16 w16 keep=0.7 seed=5", 1e-6, 1e-6);

  // Each problem once (a random draw may repeat one).
  std::vector<OpCase> unique;
  std::set<std::string> names;
  for (OpCase& c : cases)
    if (names.insert(c.problem).second) unique.push_back(std::move(c));
  return unique;
}

}  // namespace

const std::vector<OpCase>& op_cases() {
  static const std::vector<OpCase> cases = make_cases();
  return cases;
}

}  // namespace cnngraph::testing
