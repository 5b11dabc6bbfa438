// The table of ONNX operator converters, keyed by op type. Each takes the node and the
// values it reads and returns the values it makes, or throws Refusal with the reason.
#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "cnngraph/trainable_data_source.hpp"
#include "onnx/importer.hpp"

namespace cnngraph::onnx::detail {
namespace {

using ::onnx::AttributeProto;
using ::onnx::NodeProto;

std::string name_of(const NodeProto& node) {
  if (!node.name().empty() || node.output_size() == 0) return node.name();
  return node.output(0);
}

void known_attributes(const NodeProto& node, std::initializer_list<const char*> known) {
  for (const auto& a : node.attribute())
    if (std::none_of(known.begin(), known.end(), [&](const char* k) { return a.name() == k; }))
      throw Refusal{"attribute '" + a.name() + "' is not supported"};
}

const AttributeProto* find_attribute(const NodeProto& node, const std::string& name) {
  for (const auto& a : node.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

std::int64_t int_attribute(const NodeProto& node, const std::string& name, std::int64_t fallback) {
  const auto* a = find_attribute(node, name);
  return a ? a->i() : fallback;
}

float float_attribute(const NodeProto& node, const std::string& name, float fallback) {
  const auto* a = find_attribute(node, name);
  return a ? a->f() : fallback;
}

std::vector<std::int64_t> ints_attribute(const NodeProto& node, const std::string& name,
                                         std::vector<std::int64_t> fallback) {
  const auto* a = find_attribute(node, name);
  return a ? std::vector<std::int64_t>(a->ints().begin(), a->ints().end()) : fallback;
}

std::string string_attribute(const NodeProto& node, const std::string& name, std::string fallback) {
  const auto* a = find_attribute(node, name);
  return a ? a->s() : fallback;
}

bool has_input(const NodeProto& node, int i) {
  return node.input_size() > i && !node.input(i).empty();
}

const Value& image_input(const NodeProto& node, Context& context, int i) {
  if (!has_input(node, i)) throw Refusal{"input " + std::to_string(i) + " is missing"};
  const auto it = context.values.find(node.input(i));
  if (it == context.values.end())
    throw Refusal{"input '" + node.input(i) + "' is a constant, not a computed tensor"};
  return it->second;
}

const ::onnx::TensorProto& constant_input(const NodeProto& node, Context& context, int i) {
  const auto it = context.constants.find(node.input(i));
  if (it == context.constants.end())
    throw Refusal{"input '" + node.input(i) + "' must be an initializer or Constant"};
  return *it->second;
}

// An image-shaped value: a flattened map reads in another order, so only element-wise
// operators and Gemm take it, unless it is 1 x 1.
const Value& map_input(const NodeProto& node, Context& context, int i) {
  const Value& v = image_input(node, context, i);
  if (v.flat && v.height * v.width != 1)
    throw Refusal{"reads the flattened " + std::to_string(v.channels) + "x" +
                  std::to_string(v.height) + "x" + std::to_string(v.width) +
                  " map (only a Gemm can take ONNX's NCHW flattening order)"};
  return v;
}

void one_output(const NodeProto& node) {
  for (int i = 1; i < node.output_size(); ++i)
    if (!node.output(i).empty()) throw Refusal{"output " + std::to_string(i) + " is not supported"};
}

std::vector<Value> same_as(const Value& source, std::shared_ptr<ImageNode> image) {
  Value v = source;
  v.image = std::move(image);
  return {v};
}

std::shared_ptr<const Optimizer> optimizer_of(const Context& context) {
  if (context.options.optimizer) return context.options.optimizer;
  return std::make_shared<SgdOptimizer>();
}

// A data source of its own for each weighted node, labelled by the weight initializer's name.
// A later node reading the same initializer gets "<name>@<node>": checkpoints and saved graphs
// name tensors by label, and refuse one source used by two nodes. Training would untie the
// copies, so a trainable import refuses shared initializers.
std::shared_ptr<ConvolutionDataSource> make_source(Context& context, const NodeProto& node,
                                                   const std::string& initializer,
                                                   const ConvolutionDescriptor& descriptor,
                                                   std::vector<float> weights,
                                                   std::vector<float> bias) {
  std::string label = initializer;
  if (const auto first = context.weight_users.find(initializer);
      first != context.weight_users.end()) {
    if (context.options.trainable)
      throw Refusal{"its weights " + initializer + " are also node '" + first->second +
                    "''s; training would untie them (import without trainable to copy them)"};
    label = initializer + "@" + name_of(node);
  } else {
    context.weight_users[initializer] = name_of(node);
  }
  if (context.model.weights.count(label))
    throw Refusal{"weights label '" + label + "' is taken (two nodes of one name)"};
  std::shared_ptr<ConvolutionDataSource> source;
  if (context.options.trainable)
    source = std::make_shared<TrainableDataSource>(label, descriptor, std::move(weights),
                                                   std::move(bias), optimizer_of(context));
  else
    source =
        std::make_shared<ArrayDataSource>(label, descriptor, std::move(weights), std::move(bias));
  context.model.weights[label] = source;
  return source;
}

template <typename NodeType>
void set_style(NodeType& node, const Context& context) {
  node.training_style = context.options.trainable ? TrainingStyle::device : TrainingStyle::none;
}

int to_int(std::int64_t v, const std::string& what) {
  if (v < 1 || v > std::numeric_limits<int>::max())
    throw Refusal{what + " " + std::to_string(v) + " is out of range"};
  return static_cast<int>(v);
}

// The window attributes Conv, MaxPool and AveragePool share, as explicit pads.
struct Window {
  int kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  bool ceil_mode = false;
  int out_h = 0, out_w = 0;
};

Window read_window(const NodeProto& node, const Value& in, std::vector<std::int64_t> kernel) {
  if (kernel.size() != 2) throw Refusal{"only 2-D windows are supported"};
  Window w;
  w.kernel_h = to_int(kernel[0], "kernel height");
  w.kernel_w = to_int(kernel[1], "kernel width");
  const auto strides = ints_attribute(node, "strides", {1, 1});
  const auto dilations = ints_attribute(node, "dilations", {1, 1});
  if (strides.size() != 2 || dilations.size() != 2)
    throw Refusal{"strides and dilations need 2 entries"};
  w.stride_h = to_int(strides[0], "stride");
  w.stride_w = to_int(strides[1], "stride");
  w.dilation_h = to_int(dilations[0], "dilation");
  w.dilation_w = to_int(dilations[1], "dilation");
  w.ceil_mode = int_attribute(node, "ceil_mode", 0) != 0;
  const long long kh = (w.kernel_h - 1LL) * w.dilation_h + 1,
                  kw = (w.kernel_w - 1LL) * w.dilation_w + 1;
  if (kh > in.height + 1000000LL || kw > in.width + 1000000LL) throw Refusal{"window too large"};
  const std::string auto_pad = string_attribute(node, "auto_pad", "NOTSET");
  if (auto_pad == "NOTSET") {
    const auto pads = ints_attribute(node, "pads", {0, 0, 0, 0});
    if (pads.size() != 4) throw Refusal{"pads need 4 entries"};
    for (auto p : pads)
      if (p < 0 || p > 1000000) throw Refusal{"pad " + std::to_string(p) + " is not supported"};
    w.pad_top = static_cast<int>(pads[0]);
    w.pad_left = static_cast<int>(pads[1]);
    w.pad_bottom = static_cast<int>(pads[2]);
    w.pad_right = static_cast<int>(pads[3]);
  } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    const auto split = [&](int in_size, int stride, long long k, int& before, int& after) {
      const long long out = (in_size + stride - 1) / stride;
      const long long total = std::max(0LL, (out - 1) * stride + k - in_size);
      const long long small = total / 2;
      before = static_cast<int>(auto_pad == "SAME_UPPER" ? small : total - small);
      after = static_cast<int>(total - before);
    };
    split(in.height, w.stride_h, kh, w.pad_top, w.pad_bottom);
    split(in.width, w.stride_w, kw, w.pad_left, w.pad_right);
  } else if (auto_pad != "VALID") {
    throw Refusal{"auto_pad '" + auto_pad + "' is not supported"};
  }
  w.out_h = window_result_size(in.height, static_cast<int>(kh), w.stride_h, w.pad_top, w.pad_bottom,
                               w.ceil_mode);
  w.out_w = window_result_size(in.width, static_cast<int>(kw), w.stride_w, w.pad_left, w.pad_right,
                               w.ceil_mode);
  if (w.out_h < 1 || w.out_w < 1) throw Refusal{"the window leaves an empty result"};
  return w;
}

std::vector<Value> convert_conv(const NodeProto& node, Context& context) {
  known_attributes(node, {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"});
  const Value& x = map_input(node, context, 0);
  const auto& w_tensor = constant_input(node, context, 1);
  if (w_tensor.dims_size() != 4) throw Refusal{"only 2-D convolutions (4-D weights) are supported"};
  const int out = to_int(w_tensor.dims(0), "output channels");
  const int in_per_group = to_int(w_tensor.dims(1), "input channels");
  const int kh = to_int(w_tensor.dims(2), "kernel height"),
            kw = to_int(w_tensor.dims(3), "kernel width");
  const int groups = to_int(int_attribute(node, "group", 1), "group");
  if (static_cast<long long>(in_per_group) * groups != x.channels || out % groups != 0)
    throw Refusal{"weights " + w_tensor.name() + " do not fit " + std::to_string(x.channels) +
                  " input channels in " + std::to_string(groups) + " groups"};
  const auto kernel = ints_attribute(node, "kernel_shape", {kh, kw});
  if (kernel.size() != 2 || kernel[0] != kh || kernel[1] != kw)
    throw Refusal{"kernel_shape differs from the weights"};
  const Window win = read_window(node, x, kernel);
  ConvolutionDescriptor d(kw, kh, x.channels, out);
  d.groups = groups;
  d.stride_x = win.stride_w;
  d.stride_y = win.stride_h;
  d.dilation_x = win.dilation_w;
  d.dilation_y = win.dilation_h;
  std::vector<float> bias;
  if (has_input(node, 2)) {
    bias = tensor_floats(constant_input(node, context, 2), context.folder);
    if (bias.size() != static_cast<std::size_t>(out))
      throw Refusal{"bias length differs from the output channels"};
  }
  auto weights = oihw_to_ohwi(tensor_floats(w_tensor, context.folder), out, in_per_group, kh, kw);
  auto conv = std::make_shared<ConvolutionNode>(
      x.image, make_source(context, node, w_tensor.name(), d, std::move(weights), std::move(bias)));
  conv->label = name_of(node);
  conv->padding_policy = PaddingPolicy::explicit_padding(win.pad_top, win.pad_bottom, win.pad_left,
                                                         win.pad_right, false);
  set_style(*conv, context);
  return {Value{conv->result_image(), out, win.out_h, win.out_w, false}};
}

// ONNX ConvTranspose weights [C_in][C_out / group][kh][kw] to the transpose's OHWI
// [C_out][kh][kw][C_in / group]: w[g * Og + o][r][s][i] = W[g * Ig + i][o][r][s], no flip.
std::vector<float> iohw_to_ohwi(const std::vector<float>& w, int groups, int in, int out_per_group,
                                int kh, int kw) {
  const int in_per_group = in / groups;
  std::vector<float> out(w.size());
  for (int g = 0; g < groups; ++g)
    for (int i = 0; i < in_per_group; ++i)
      for (int o = 0; o < out_per_group; ++o)
        for (int r = 0; r < kh; ++r)
          for (int c = 0; c < kw; ++c) {
            const std::size_t from =
                ((static_cast<std::size_t>(g * in_per_group + i) * out_per_group + o) * kh + r) *
                    kw +
                c;
            const std::size_t to =
                ((static_cast<std::size_t>(g * out_per_group + o) * kh + r) * kw + c) *
                    in_per_group +
                i;
            out[to] = w[from];
          }
  return out;
}

// One axis of an ONNX ConvTranspose: the full result (in - 1) * stride + dilated kernel, less
// pad_begin and pad_end, plus output_padding zeros at the end.
struct TransposeAxis {
  int full = 0, begin = 0, end = 0, extra = 0, out = 0;
};

TransposeAxis transpose_axis(const std::string& auto_pad, int in, int stride, long long dilated,
                             std::int64_t pad_begin, std::int64_t pad_end,
                             std::int64_t output_padding, std::int64_t output_shape) {
  TransposeAxis a;
  const long long full = (static_cast<long long>(in) - 1) * stride + dilated;
  if (full > (1 << 24)) throw Refusal{"the result is too large"};
  if (output_padding < 0 || output_padding >= std::max<long long>(stride, dilated))
    throw Refusal{"output_padding " + std::to_string(output_padding) +
                  " must be below the stride or the dilation"};
  a.full = static_cast<int>(full);
  long long begin = pad_begin, end = pad_end;
  if (output_shape > 0 || auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    const long long target = output_shape > 0 ? output_shape : static_cast<long long>(in) * stride;
    if (target > (1 << 24)) throw Refusal{"output_shape is too large"};
    const long long total = full + output_padding - target;
    if (total < 0) {
      // A larger output_shape than the full result: zeros at the end, as output_padding.
      begin = end = 0;
      output_padding = target - full;
    } else if (auto_pad == "SAME_UPPER") {
      begin = total / 2;
      end = total - begin;
    } else {
      end = total / 2;
      begin = total - end;
    }
  } else if (auto_pad == "VALID") {
    begin = end = 0;
  }
  if (begin < 0 || end < 0 || begin > (1 << 24) || end > (1 << 24))
    throw Refusal{"pads must lie in [0, 2^24]"};
  a.begin = static_cast<int>(begin);
  a.end = static_cast<int>(end);
  a.extra = static_cast<int>(output_padding);
  const long long out = full - begin - end + output_padding;
  if (out < 1) throw Refusal{"the pads leave an empty result"};
  a.out = static_cast<int>(out);
  return a;
}

// cnngraph's transpose makes the full result (its padding policy `full`); ONNX's pads crop it
// and output_padding extends it with zeros. A depthwise convolution whose kernel is 1 at tap
// (pad_top, pad_left) and 0 elsewhere does both exactly (a product with 1 and sums of zeros):
// result pixel p reads full pixel p + pad, and windows past the full result read its padding.
// The bias goes to that crop when output_padding reaches beyond the full result, where ONNX
// adds it too.
std::vector<Value> convert_conv_transpose(const NodeProto& node, Context& context) {
  known_attributes(node, {"auto_pad", "dilations", "group", "kernel_shape", "output_padding",
                          "output_shape", "pads", "strides"});
  const Value& x = map_input(node, context, 0);
  const auto& w_tensor = constant_input(node, context, 1);
  if (w_tensor.dims_size() != 4)
    throw Refusal{"only 2-D transposed convolutions (4-D weights) are supported"};
  const int in = to_int(w_tensor.dims(0), "input channels");
  const int out_per_group = to_int(w_tensor.dims(1), "output channels per group");
  const int kh = to_int(w_tensor.dims(2), "kernel height"),
            kw = to_int(w_tensor.dims(3), "kernel width");
  const int groups = to_int(int_attribute(node, "group", 1), "group");
  if (in != x.channels || in % groups != 0)
    throw Refusal{"weights " + w_tensor.name() + " [" + std::to_string(in) + ", ...] do not fit " +
                  std::to_string(x.channels) + " input channels in " + std::to_string(groups) +
                  " groups"};
  const long long out_channels = static_cast<long long>(out_per_group) * groups;
  const int out = to_int(out_channels, "output channels");
  const auto kernel = ints_attribute(node, "kernel_shape", {kh, kw});
  if (kernel.size() != 2 || kernel[0] != kh || kernel[1] != kw)
    throw Refusal{"kernel_shape differs from the weights"};
  const auto strides = ints_attribute(node, "strides", {1, 1});
  const auto dilations = ints_attribute(node, "dilations", {1, 1});
  const auto pads = ints_attribute(node, "pads", {0, 0, 0, 0});
  const auto output_padding = ints_attribute(node, "output_padding", {0, 0});
  const auto output_shape = ints_attribute(node, "output_shape", {0, 0});
  if (strides.size() != 2 || dilations.size() != 2 || pads.size() != 4 ||
      output_padding.size() != 2 || output_shape.size() != 2)
    throw Refusal{"strides, dilations, output_padding and output_shape need 2 entries, pads 4"};
  const std::string auto_pad = string_attribute(node, "auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "VALID" && auto_pad != "SAME_UPPER" &&
      auto_pad != "SAME_LOWER")
    throw Refusal{"auto_pad '" + auto_pad + "' is not supported"};
  for (auto v : output_shape)
    if (v < 0) throw Refusal{"output_shape " + std::to_string(v) + " is negative"};
  ConvolutionDescriptor d(kw, kh, in, out);
  d.groups = groups;
  d.stride_y = to_int(strides[0], "stride");
  d.stride_x = to_int(strides[1], "stride");
  d.dilation_y = to_int(dilations[0], "dilation");
  d.dilation_x = to_int(dilations[1], "dilation");
  const long long dkh = (kh - 1LL) * d.dilation_y + 1, dkw = (kw - 1LL) * d.dilation_x + 1;
  if (dkh > (1 << 24) || dkw > (1 << 24)) throw Refusal{"window too large"};
  const TransposeAxis ay = transpose_axis(auto_pad, x.height, d.stride_y, dkh, pads[0], pads[2],
                                          output_padding[0], output_shape[0]);
  const TransposeAxis ax = transpose_axis(auto_pad, x.width, d.stride_x, dkw, pads[1], pads[3],
                                          output_padding[1], output_shape[1]);
  std::vector<float> bias;
  if (has_input(node, 2)) {
    bias = tensor_floats(constant_input(node, context, 2), context.folder);
    if (bias.size() != static_cast<std::size_t>(out))
      throw Refusal{"bias length differs from the output channels"};
  }
  const bool crop = ay.begin || ay.end || ay.extra || ax.begin || ax.end || ax.extra;
  // The crop's kernel reaches from the start to pad_begin: within the dilated kernel (a pad
  // past it crops whole contributions away) and of a size the import can allocate.
  if (ay.begin >= dkh || ax.begin >= dkw)
    throw Refusal{"pads at the start must be below the dilated kernel (" + std::to_string(dkh) +
                  " x " + std::to_string(dkw) + ")"};
  if ((ay.begin + 1LL) * (ax.begin + 1LL) * out > (1LL << 26))
    throw Refusal{"the crop of pads " + std::to_string(ay.begin) + " and " +
                  std::to_string(ax.begin) + " needs more than 2^26 weights"};
  const bool bias_on_crop = !bias.empty() && (ay.extra > ay.end || ax.extra > ax.end);
  std::vector<float> crop_bias;
  if (bias_on_crop) crop_bias = std::move(bias);
  auto weights =
      iohw_to_ohwi(tensor_floats(w_tensor, context.folder), groups, in, out_per_group, kh, kw);
  auto transpose = std::make_shared<ConvolutionTransposeNode>(
      x.image, nullptr,
      make_source(context, node, w_tensor.name(), d, std::move(weights), std::move(bias)));
  transpose->label = name_of(node);
  transpose->padding_policy = PaddingPolicy::full();
  set_style(*transpose, context);
  if (!crop) return {Value{transpose->result_image(), out, ay.out, ax.out, false}};

  ConvolutionDescriptor cd(ax.begin + 1, ay.begin + 1, out, out);
  cd.groups = out;
  std::vector<float> one_hot(static_cast<std::size_t>(out) * cd.kernel_width * cd.kernel_height);
  for (int c = 0; c < out; ++c)
    one_hot[(static_cast<std::size_t>(c) * cd.kernel_height + ay.begin) * cd.kernel_width +
            ax.begin] = 1.0f;
  auto crop_source = std::make_shared<ArrayDataSource>(name_of(node) + "/crop", cd,
                                                       std::move(one_hot), std::move(crop_bias));
  auto cropped = std::make_shared<ConvolutionNode>(transpose->result_image(), crop_source);
  cropped->label = name_of(node) + "/crop";
  cropped->training_style = TrainingStyle::none;
  const int out_h = ay.out, out_w = ax.out;
  cropped->padding_policy = PaddingPolicy::make_custom([=](AxisGeometry& gx, AxisGeometry& gy) {
    gx.result_size = out_w;
    gx.pad_before = 0;
    gy.result_size = out_h;
    gy.pad_before = 0;
  });
  return {Value{cropped->result_image(), out, out_h, out_w, false}};
}

std::vector<Value> neuron(const NodeProto& node, NeuronDescriptor descriptor, const Value& x) {
  auto n = std::make_shared<NeuronNode>(x.image, std::move(descriptor));
  n->label = name_of(node);
  return same_as(x, n->result_image());
}

std::vector<Value> neuron(const NodeProto& node, Context& context, NeuronDescriptor descriptor) {
  return neuron(node, std::move(descriptor), image_input(node, context, 0));
}

std::vector<Value> convert_relu(const NodeProto& node, Context& context) {
  known_attributes(node, {});
  return neuron(node, context, NeuronDescriptor::make(NeuronType::relu, 0.0f));
}

std::vector<Value> convert_leaky_relu(const NodeProto& node, Context& context) {
  known_attributes(node, {"alpha"});
  return neuron(node, context,
                NeuronDescriptor::make(NeuronType::relu, float_attribute(node, "alpha", 0.01f)));
}

std::vector<Value> convert_sigmoid(const NodeProto& node, Context& context) {
  known_attributes(node, {});
  return neuron(node, context, NeuronDescriptor::make(NeuronType::sigmoid));
}

std::vector<Value> convert_tanh(const NodeProto& node, Context& context) {
  known_attributes(node, {});
  return neuron(node, context, NeuronDescriptor::make(NeuronType::tanh, 1.0f, 1.0f));
}

std::vector<Value> convert_clip(const NodeProto& node, Context& context) {
  float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
  if (context.opset < 11) {
    known_attributes(node, {"min", "max"});
    lo = float_attribute(node, "min", lo);
    hi = float_attribute(node, "max", hi);
  } else {
    known_attributes(node, {});
    const auto scalar = [&](int i) {
      const auto v = tensor_floats(constant_input(node, context, i), context.folder);
      if (v.size() != 1) throw Refusal{"min and max must be scalars"};
      return v[0];
    };
    if (has_input(node, 1)) lo = scalar(1);
    if (has_input(node, 2)) hi = scalar(2);
  }
  if (lo != 0.0f || !std::isfinite(hi) || hi <= 0.0f)
    throw Refusal{"only Clip(min 0, max > 0) (a ReLU-N) is supported"};
  return neuron(node, context, NeuronDescriptor::make(NeuronType::relu_n, 0.0f, hi));
}

std::vector<Value> convert_elu(const NodeProto& node, Context& context) {
  known_attributes(node, {"alpha"});
  return neuron(node, context,
                NeuronDescriptor::make(NeuronType::elu, float_attribute(node, "alpha", 1.0f)));
}

// gamma * elu_alpha(x): an ELU, then a linear neuron (cnngraph has no fused SELU).
std::vector<Value> convert_selu(const NodeProto& node, Context& context) {
  known_attributes(node, {"alpha", "gamma"});
  const float alpha = float_attribute(node, "alpha", 1.67326319217681884765625f);
  const float gamma = float_attribute(node, "gamma", 1.05070102214813232421875f);
  const Value& x = image_input(node, context, 0);
  auto elu = std::make_shared<NeuronNode>(x.image, NeuronDescriptor::make(NeuronType::elu, alpha));
  elu->label = name_of(node) + "/elu";
  auto scale = std::make_shared<NeuronNode>(
      elu->result_image(), NeuronDescriptor::make(NeuronType::linear, gamma, 0.0f));
  scale->label = name_of(node);
  return same_as(x, scale->result_image());
}

std::vector<Value> convert_hard_sigmoid(const NodeProto& node, Context& context) {
  known_attributes(node, {"alpha", "beta"});
  return neuron(
      node, context,
      NeuronDescriptor::make(NeuronType::hard_sigmoid, float_attribute(node, "alpha", 0.2f),
                             float_attribute(node, "beta", 0.5f)));
}

std::vector<Value> convert_softplus(const NodeProto& node, Context& context) {
  known_attributes(node, {});
  return neuron(node, context, NeuronDescriptor::make(NeuronType::soft_plus, 1.0f, 1.0f));
}

std::vector<Value> convert_softsign(const NodeProto& node, Context& context) {
  known_attributes(node, {});
  return neuron(node, context, NeuronDescriptor::make(NeuronType::soft_sign));
}

std::vector<Value> convert_abs(const NodeProto& node, Context& context) {
  known_attributes(node, {});
  return neuron(node, context, NeuronDescriptor::make(NeuronType::absolute));
}

std::vector<Value> convert_gelu(const NodeProto& node, Context& context) {
  known_attributes(node, {"approximate"});
  const std::string approximate = string_attribute(node, "approximate", "none");
  if (approximate != "none")
    throw Refusal{"approximate = '" + approximate +
                  "' is not supported (cnngraph's gelu is the exact erf form)"};
  return neuron(node, context, NeuronDescriptor::make(NeuronType::gelu));
}

// The slope broadcasts against [N, C, H, W] from the right, so per channel it is [C, 1, 1]
// or [1, C, 1, 1] (PyTorch's form); [K] or [1, K] on a 2-D [N, K]; or a single value.
std::vector<Value> convert_prelu(const NodeProto& node, Context& context) {
  known_attributes(node, {});
  const Value& x = map_input(node, context, 0);
  const auto& slope_tensor = constant_input(node, context, 1);
  auto slopes = tensor_floats(slope_tensor, context.folder);
  if (slopes.size() == 1)
    return neuron(node, context, NeuronDescriptor::make(NeuronType::relu, slopes[0]));
  std::vector<std::int64_t> dims(slope_tensor.dims().begin(), slope_tensor.dims().end());
  while (!dims.empty() && dims.front() == 1) dims.erase(dims.begin());
  const std::size_t trailing = x.flat ? 0 : 2;  // the H and W axes after C
  const bool per_channel =
      slopes.size() == static_cast<std::size_t>(x.channels) && dims.size() == 1 + trailing &&
      std::all_of(dims.begin() + 1, dims.end(), [](std::int64_t d) { return d == 1; });
  if (!per_channel)
    throw Refusal{"slope " + slope_tensor.name() + " must be one value or one per channel (" +
                  std::string(x.flat ? "[C]" : "[C, 1, 1]") + ")"};
  return neuron(node, context, NeuronDescriptor::make_prelu(std::move(slopes)));
}

std::string dims_text(const std::vector<std::int64_t>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

// The ONNX shape of a value: [N, C, H, W], or [N, K] when flattened.
std::string shape_text(const Value& v) {
  if (v.flat)
    return "[N, " + std::to_string(static_cast<long long>(v.channels) * v.height * v.width) + "]";
  return dims_text({v.channels, v.height, v.width}).insert(1, "N, ");
}

// primary (op) secondary for two computed tensors. ONNX aligns dims from the right, so two
// [N, C, H, W] tensors broadcast as cnngraph's NHWC images do (each dim equal or 1; the batch
// is the graph's). A 2-D [N, K] keeps its map's NHWC order, so it meets only the same map or
// a single value per image ([N, 1]); 2-D against 4-D aligns K with W, which cnngraph has no
// image for.
template <typename NodeType>
std::vector<Value> broadcast_arithmetic(const NodeProto& node, const Value& a, const Value& b) {
  if (a.flat != b.flat)
    throw Refusal{"a " + shape_text(a) + " and a " + shape_text(b) +
                  " tensor: ONNX aligns a 2-D tensor's K with the W of a 4-D one"};
  Value result = a;
  if (a.flat) {
    const bool same = a.channels == b.channels && a.height == b.height && a.width == b.width;
    const bool a_one = a.channels * a.height * a.width == 1,
               b_one = b.channels * b.height * b.width == 1;
    if (!same && !a_one && !b_one)
      throw Refusal{"2-D tensors " + shape_text(a) + " and " + shape_text(b) +
                    " must be of one map or one of them [N, 1]"};
    if (a_one) result = b;
  } else {
    const auto dim = [&](int x, int y, const char* what) {
      if (x != y && x != 1 && y != 1)
        throw Refusal{"shapes " + shape_text(a) + " and " + shape_text(b) + " do not broadcast (" +
                      what + ")"};
      return std::max(x, y);
    };
    result.channels = dim(a.channels, b.channels, "C");
    result.height = dim(a.height, b.height, "H");
    result.width = dim(a.width, b.width, "W");
  }
  auto n = std::make_shared<NodeType>(a.image, b.image);
  n->label = name_of(node);
  result.image = n->result_image();
  return {result};
}

// An arithmetic node with one constant operand, as x * scale + shift: a single value is a
// linear neuron, one value per channel a depthwise 1 x 1 convolution (trainable like other
// weights). The constant is input `constant_index`; x the other.
struct AffineConstant {
  float scale_sign = 1.0f;  // x's factor before the constant's: -1 for c - x
  bool multiplies = false;  // the constant scales (Mul, Div) rather than shifts (Add, Sub)
  bool inverts = false;     // Div: x * (1 / c)
  bool negates = false;     // Sub(x, c): x + (-c)
};

std::vector<Value> arithmetic_with_constant(const NodeProto& node, Context& context,
                                            int constant_index, AffineConstant form) {
  const Value& x = image_input(node, context, 1 - constant_index);
  const auto& tensor = constant_input(node, context, constant_index);
  auto values = tensor_floats(tensor, context.folder);
  std::vector<std::int64_t> dims(tensor.dims().begin(), tensor.dims().end());
  const std::size_t rank = x.flat ? 2 : 4;
  if (dims.size() > rank)
    throw Refusal{"constant " + node.input(constant_index) + " " + dims_text(dims) +
                  " has more dims than the tensor " + shape_text(x)};
  for (auto& v : values) {
    if (form.inverts) v = 1.0f / v;
    if (form.negates) v = -v;
  }
  const auto scale_and_shift = [&](float c, float& scale, float& shift) {
    scale = form.multiplies ? form.scale_sign * c : form.scale_sign;
    shift = form.multiplies ? 0.0f : c;
  };
  if (values.size() == 1) {
    float scale = 0, shift = 0;
    scale_and_shift(values[0], scale, shift);
    // A chain of scalar operations (x * a + b, then * c) is one linear neuron: fewer nodes,
    // and oneDNN's convolutions mis-compute two linear post-ops in a row.
    if (const auto* previous = dynamic_cast<const NeuronNode*>(x.image->producer());
        previous && previous->neuron().type == NeuronType::linear) {
      Value source = x;
      source.image = previous->source_images()[0];
      return neuron(node,
                    NeuronDescriptor::make(NeuronType::linear, scale * previous->neuron().a,
                                           scale * previous->neuron().b + shift),
                    source);
    }
    return neuron(node, NeuronDescriptor::make(NeuronType::linear, scale, shift), x);
  }
  while (!dims.empty() && dims.front() == 1) dims.erase(dims.begin());
  const std::size_t trailing = x.flat ? 0 : 2;  // the H and W axes after C
  // A flattened map's [K] runs in NCHW order: per channel only on a 1 x 1 map.
  const bool per_channel =
      values.size() == static_cast<std::size_t>(x.channels) && dims.size() == 1 + trailing &&
      (!x.flat || x.height * x.width == 1) &&
      std::all_of(dims.begin() + 1, dims.end(), [](std::int64_t d) { return d == 1; });
  if (!per_channel)
    throw Refusal{"constant " + node.input(constant_index) + " " +
                  dims_text({tensor.dims().begin(), tensor.dims().end()}) + " on a " +
                  shape_text(x) + " tensor must be one value or one per channel (" +
                  std::string(x.flat ? "[C] or [1, C]" : "[C, 1, 1] or [1, C, 1, 1]") + ")"};
  const int c = x.channels;
  std::vector<float> weights(values.size()), bias(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) scale_and_shift(values[i], weights[i], bias[i]);
  ConvolutionDescriptor d(1, 1, c, c);
  d.groups = c;
  const std::string label = tensor.name().empty() ? node.input(constant_index) : tensor.name();
  auto conv = std::make_shared<ConvolutionNode>(
      x.image, make_source(context, node, label, d, std::move(weights), std::move(bias)));
  conv->label = name_of(node);
  conv->padding_policy = PaddingPolicy::explicit_padding(0, 0, 0, 0, false);
  set_style(*conv, context);
  return same_as(x, conv->result_image());
}

bool is_constant(const NodeProto& node, const Context& context, int i) {
  return has_input(node, i) && context.constants.count(node.input(i)) > 0;
}

enum class Arithmetic { add, sub, mul, div };

template <typename NodeType>
std::vector<Value> arithmetic(const NodeProto& node, Context& context, Arithmetic op) {
  // Opsets before 7 had broadcast and axis attributes; the importer starts at 7.
  known_attributes(node, {});
  one_output(node);
  if (node.input_size() != 2) throw Refusal{"needs 2 inputs"};
  const bool c0 = is_constant(node, context, 0), c1 = is_constant(node, context, 1);
  if (c0 && c1) throw Refusal{"both inputs are constants (only shape constants are folded)"};
  if (!c0 && !c1) {
    const Value& a = image_input(node, context, 0);
    const Value& b = image_input(node, context, 1);
    return broadcast_arithmetic<NodeType>(node, a, b);
  }
  const int k = c0 ? 0 : 1;
  AffineConstant form;
  switch (op) {
    case Arithmetic::add:
      break;
    case Arithmetic::sub:
      if (k == 0)
        form.scale_sign = -1.0f;  // c - x
      else
        form.negates = true;  // x - c
      break;
    case Arithmetic::mul:
      form.multiplies = true;
      break;
    case Arithmetic::div:
      if (k == 0)
        throw Refusal{
            "a constant divided by a computed tensor is not supported (cnngraph has no "
            "reciprocal neuron)"};
      form.multiplies = form.inverts = true;
      break;
  }
  return arithmetic_with_constant(node, context, k, form);
}

std::vector<Value> convert_add(const NodeProto& node, Context& context) {
  return arithmetic<AdditionNode>(node, context, Arithmetic::add);
}

std::vector<Value> convert_sub(const NodeProto& node, Context& context) {
  return arithmetic<SubtractionNode>(node, context, Arithmetic::sub);
}

// True when `gate` is Sigmoid(x): x * gate is then one SiLU neuron, which a convolution
// before it fuses, instead of two passes over the map.
bool is_sigmoid_of(const Value& gate, const Value& x) {
  const auto* n = dynamic_cast<const NeuronNode*>(gate.image->producer());
  return n && n->neuron().type == NeuronType::sigmoid && n->source_images().size() == 1 &&
         n->source_images()[0] == x.image && !gate.flat && !x.flat && gate.channels == x.channels &&
         gate.height == x.height && gate.width == x.width;
}

std::vector<Value> convert_mul(const NodeProto& node, Context& context) {
  if (node.input_size() == 2 && !is_constant(node, context, 0) && !is_constant(node, context, 1) &&
      node.attribute_size() == 0) {
    const Value& a = image_input(node, context, 0);
    const Value& b = image_input(node, context, 1);
    for (const auto& [x, gate] : {std::pair{&a, &b}, std::pair{&b, &a}})
      if (is_sigmoid_of(*gate, *x)) {
        one_output(node);
        auto silu =
            std::make_shared<NeuronNode>(x->image, NeuronDescriptor::make(NeuronType::silu));
        silu->label = name_of(node);
        return same_as(*x, silu->result_image());
      }
  }
  return arithmetic<MultiplicationNode>(node, context, Arithmetic::mul);
}

std::vector<Value> convert_div(const NodeProto& node, Context& context) {
  return arithmetic<DivisionNode>(node, context, Arithmetic::div);
}

// x * hard_sigmoid(x) with alpha 1/6 and beta 1/2: a neuron, then a product with x.
std::vector<Value> convert_hard_swish(const NodeProto& node, Context& context) {
  known_attributes(node, {});
  const Value& x = image_input(node, context, 0);
  auto gate = std::make_shared<NeuronNode>(
      x.image, NeuronDescriptor::make(NeuronType::hard_sigmoid, 1.0f / 6.0f, 0.5f));
  gate->label = name_of(node) + "/hard_sigmoid";
  auto product = std::make_shared<MultiplicationNode>(x.image, gate->result_image());
  product->label = name_of(node);
  return same_as(x, product->result_image());
}

std::vector<Value> convert_batch_normalization(const NodeProto& node, Context& context) {
  known_attributes(
      node, {"epsilon", "momentum", "spatial", "is_test", "training_mode", "consumed_inputs"});
  one_output(node);
  if (int_attribute(node, "spatial", 1) != 1) throw Refusal{"spatial = 0 is not supported"};
  if (int_attribute(node, "training_mode", 0) != 0)
    throw Refusal{"training_mode = 1 is not supported (a training graph trains it)"};
  const Value& x = map_input(node, context, 0);
  BatchNormalizationParameters p;
  p.gamma = tensor_floats(constant_input(node, context, 1), context.folder);
  p.beta = tensor_floats(constant_input(node, context, 2), context.folder);
  p.mean = tensor_floats(constant_input(node, context, 3), context.folder);
  p.variance = tensor_floats(constant_input(node, context, 4), context.folder);
  p.epsilon = float_attribute(node, "epsilon", 1e-5f);
  for (const auto* v : {&p.gamma, &p.beta, &p.mean, &p.variance})
    if (v->size() != static_cast<std::size_t>(x.channels))
      throw Refusal{"parameters do not have one entry per channel"};
  // ONNX's momentum weighs the running average; cnngraph's weighs the batch.
  const float momentum = 1.0f - float_attribute(node, "momentum", 0.9f);
  if (!(momentum > 0.0f && momentum <= 1.0f)) throw Refusal{"momentum must lie in [0, 1)"};
  auto source = std::make_shared<BatchNormalizationDataSource>(
      name_of(node), std::move(p), context.options.trainable ? optimizer_of(context) : nullptr,
      momentum);
  context.model.batch_normalizations[name_of(node)] = source;
  auto bn = std::make_shared<BatchNormalizationNode>(x.image, source);
  bn->label = name_of(node);
  set_style(*bn, context);
  return same_as(x, bn->result_image());
}

std::vector<Value> convert_pool(const NodeProto& node, Context& context, PoolingType type) {
  if (type == PoolingType::max)
    known_attributes(node, {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads",
                            "storage_order", "strides"});
  else
    known_attributes(node, {"auto_pad", "ceil_mode", "count_include_pad", "dilations",
                            "kernel_shape", "pads", "strides"});
  one_output(node);
  const Value& x = map_input(node, context, 0);
  const auto kernel = ints_attribute(node, "kernel_shape", {});
  const Window win = read_window(node, x, kernel);
  if (win.dilation_h != 1 || win.dilation_w != 1) throw Refusal{"dilated pooling is not supported"};
  auto pool = std::make_shared<PoolingNode>(x.image, type, win.kernel_w, win.kernel_h, win.stride_w,
                                            win.stride_h);
  // count_include_pad = 1 divides by the window's pixels within the padded image; ceil mode's
  // windows past its end count only up to it.
  if (type == PoolingType::average && int_attribute(node, "count_include_pad", 0) != 0) {
    pool->set_counts_padding(true);
    pool->set_counted_padding_end(win.pad_bottom, win.pad_right);
  }
  pool->label = name_of(node);
  pool->padding_policy = PaddingPolicy::explicit_padding(win.pad_top, win.pad_bottom, win.pad_left,
                                                         win.pad_right, win.ceil_mode);
  return {Value{pool->result_image(), x.channels, win.out_h, win.out_w, false}};
}

std::vector<Value> convert_max_pool(const NodeProto& node, Context& context) {
  return convert_pool(node, context, PoolingType::max);
}

std::vector<Value> convert_average_pool(const NodeProto& node, Context& context) {
  return convert_pool(node, context, PoolingType::average);
}

std::vector<Value> convert_global_average_pool(const NodeProto& node, Context& context) {
  known_attributes(node, {});
  const Value& x = map_input(node, context, 0);
  auto pool = std::make_shared<GlobalAveragePoolingNode>(x.image);
  pool->label = name_of(node);
  return {Value{pool->result_image(), x.channels, 1, 1, false}};
}

std::vector<Value> convert_global_max_pool(const NodeProto& node, Context& context) {
  known_attributes(node, {});
  const Value& x = map_input(node, context, 0);
  auto pool = std::make_shared<GlobalMaxPoolingNode>(x.image);
  pool->label = name_of(node);
  return {Value{pool->result_image(), x.channels, 1, 1, false}};
}

// Constant padding over H and W (both sides) and C (after the last channel): a PaddingNode.
// Before opset 11 the pads and value are attributes; from 11 inputs (pads int64, an optional
// scalar constant_value), and from 18 an optional axes input names the padded axes.
std::vector<Value> convert_pad(const NodeProto& node, Context& context) {
  std::vector<std::int64_t> pads;
  float value = 0.0f;
  std::vector<std::int64_t> axes;
  if (context.opset < 11) {
    known_attributes(node, {"mode", "pads", "value"});
    pads = ints_attribute(node, "pads", {});
    value = float_attribute(node, "value", 0.0f);
  } else {
    known_attributes(node, {"mode"});
    if (!has_input(node, 1)) throw Refusal{"input pads is missing"};
    pads = tensor_ints(constant_input(node, context, 1), context.folder);
    if (has_input(node, 2)) {
      const auto v = tensor_floats(constant_input(node, context, 2), context.folder);
      if (v.size() != 1) throw Refusal{"constant_value must be a single value"};
      value = v[0];
    }
    if (has_input(node, 3)) {
      if (context.opset < 18) throw Refusal{"input axes needs opset 18"};
      axes = tensor_ints(constant_input(node, context, 3), context.folder);
    }
  }
  const std::string mode = string_attribute(node, "mode", "constant");
  if (mode != "constant")
    throw Refusal{"mode '" + mode + "' is not supported (only constant padding)"};
  const Value& x = map_input(node, context, 0);
  const std::int64_t rank = x.flat ? 2 : 4;
  if (axes.empty())
    for (std::int64_t a = 0; a < rank; ++a) axes.push_back(a);
  if (pads.size() != 2 * axes.size())
    throw Refusal{"pads has " + std::to_string(pads.size()) + " entries for " +
                  std::to_string(axes.size()) + " axes"};
  std::vector<std::int64_t> before(rank, 0), after(rank, 0);
  std::vector<bool> seen(rank, false);
  for (std::size_t i = 0; i < axes.size(); ++i) {
    std::int64_t a = axes[i] < 0 ? axes[i] + rank : axes[i];
    if (a < 0 || a >= rank || seen[a])
      throw Refusal{"axis " + std::to_string(axes[i]) + " is out of range or repeated"};
    seen[a] = true;
    before[a] = pads[i];
    after[a] = pads[i + axes.size()];
  }
  for (std::int64_t a = 0; a < rank; ++a)
    if (before[a] < 0 || after[a] < 0 || before[a] > (1 << 24) || after[a] > (1 << 24))
      throw Refusal{"pads " + dims_text(pads) +
                    ": only non-negative pads (up to 2^24) are "
                    "supported (a negative pad crops)"};
  if (before[0] || after[0]) throw Refusal{"padding the batch is not supported"};
  if (before[1])
    throw Refusal{
        "padding before the first channel is not supported (PaddingNode adds "
        "channels after the last)"};
  if (x.flat && x.height * x.width != 1 && after[1])
    throw Refusal{"padding a flattened map is not supported (its NCHW order)"};
  PaddingAmounts amounts;
  amounts.channels_after = static_cast<int>(after[1]);
  if (!x.flat) {
    amounts.top = static_cast<int>(before[2]);
    amounts.bottom = static_cast<int>(after[2]);
    amounts.left = static_cast<int>(before[3]);
    amounts.right = static_cast<int>(after[3]);
  }
  Value result = x;
  result.channels = to_int(static_cast<long long>(x.channels) + amounts.channels_after, "channels");
  result.height = to_int(static_cast<long long>(x.height) + amounts.top + amounts.bottom, "height");
  result.width = to_int(static_cast<long long>(x.width) + amounts.left + amounts.right, "width");
  auto pad = std::make_shared<PaddingNode>(x.image, amounts, value);
  pad->label = name_of(node);
  result.image = pad->result_image();
  return {result};
}

// ONNX's window over channels c - floor((size - 1) / 2) to c + ceil((size - 1) / 2) is
// cnngraph's for an odd size only; both divide alpha by the nominal size.
std::vector<Value> convert_lrn(const NodeProto& node, Context& context) {
  known_attributes(node, {"alpha", "beta", "bias", "size"});
  const Value& x = map_input(node, context, 0);
  const auto* size = find_attribute(node, "size");
  if (!size) throw Refusal{"attribute 'size' is missing"};
  const int n = to_int(size->i(), "size");
  if (n % 2 == 0)
    throw Refusal{"an even size (" + std::to_string(n) +
                  ") is not supported: ONNX's window takes one more channel after c, cnngraph's "
                  "one more before"};
  auto lrn = std::make_shared<CrossChannelNormalizationNode>(x.image, n);
  lrn->alpha = float_attribute(node, "alpha", 1e-4f);
  lrn->beta = float_attribute(node, "beta", 0.75f);
  lrn->delta = float_attribute(node, "bias", 1.0f);
  lrn->label = name_of(node);
  return same_as(x, lrn->result_image());
}

// A mean over H and W: a global average pooling; keepdims = 0 makes the 2-D [N, C].
std::vector<Value> convert_reduce_mean(const NodeProto& node, Context& context) {
  std::vector<std::int64_t> axes;
  if (context.opset >= 18) {
    known_attributes(node, {"keepdims", "noop_with_empty_axes"});
    if (has_input(node, 1)) axes = tensor_ints(constant_input(node, context, 1), context.folder);
    if (axes.empty() && int_attribute(node, "noop_with_empty_axes", 0) != 0)
      throw Refusal{"noop_with_empty_axes = 1 without axes is not supported"};
  } else {
    known_attributes(node, {"axes", "keepdims"});
    axes = ints_attribute(node, "axes", {});
  }
  const Value& x = map_input(node, context, 0);
  if (x.flat) throw Refusal{"only a mean over the H and W of a 4-D tensor is supported"};
  for (auto& a : axes) a = a < 0 ? a + 4 : a;
  std::sort(axes.begin(), axes.end());
  if (axes != std::vector<std::int64_t>{2, 3})
    throw Refusal{"only a mean over axes [2, 3] (H and W) is supported"};
  auto pool = std::make_shared<GlobalAveragePoolingNode>(x.image);
  pool->label = name_of(node);
  const bool keep = int_attribute(node, "keepdims", 1) != 0;
  return {Value{pool->result_image(), x.channels, 1, 1, !keep}};
}

Value flattened(const Value& x) {
  Value v = x;
  v.flat = true;
  return v;
}

std::vector<Value> convert_flatten(const NodeProto& node, Context& context) {
  known_attributes(node, {"axis"});
  const Value& x = image_input(node, context, 0);
  if (int_attribute(node, "axis", 1) != 1) throw Refusal{"only axis = 1 is supported"};
  return {flattened(x)};
}

std::vector<Value> convert_reshape(const NodeProto& node, Context& context) {
  known_attributes(node, {"allowzero"});
  const Value& x = image_input(node, context, 0);
  const auto shape = tensor_ints(constant_input(node, context, 1), context.folder);
  const long long k = static_cast<long long>(x.channels) * x.height * x.width;
  // allowzero = 1 (PyTorch 2.11 writes it) differs only for a 0 in the shape, which then
  // means an empty dimension: refused below.
  const bool allowzero = int_attribute(node, "allowzero", 0) != 0;
  if (shape.size() == 2 && ((shape[0] == 0 && !allowzero) || shape[0] == -1 || shape[0] >= 1) &&
      (shape[1] == -1 || shape[1] == k) && !(shape[0] == -1 && shape[1] == -1))
    return {flattened(x)};
  std::string asked;
  for (const auto d : shape) asked += (asked.empty() ? "" : ", ") + std::to_string(d);
  throw Refusal{"only a Reshape to [N, -1] or [N, " + std::to_string(k) +
                "] (a Flatten) is supported, not to [" + asked + "]"};
}

// A fully connected layer on `a` (a 2-D tensor: flattened or 1 x 1) with the matrix `b_tensor`
// (K x O, or O x K when `trans_b`) scaled by alpha, and an optional bias: Gemm and MatMul.
std::vector<Value> fully_connected(const NodeProto& node, Context& context, const Value& a,
                                   const ::onnx::TensorProto& b_tensor, bool trans_b, float alpha,
                                   std::vector<float> bias) {
  if (!a.flat && a.height * a.width != 1) throw Refusal{"input A is not a 2-D tensor"};
  if (b_tensor.dims_size() != 2) throw Refusal{"B must be a matrix"};
  const long long k = static_cast<long long>(a.channels) * a.height * a.width;
  const std::int64_t b_k = trans_b ? b_tensor.dims(1) : b_tensor.dims(0);
  const int outputs = to_int(trans_b ? b_tensor.dims(0) : b_tensor.dims(1), "outputs");
  if (b_k != k)
    throw Refusal{"B has " + std::to_string(b_k) + " rows for " + std::to_string(k) + " inputs"};
  if (bias.size() == 1) bias.assign(outputs, bias[0]);
  if (!bias.empty() && bias.size() != static_cast<std::size_t>(outputs))
    throw Refusal{"C must broadcast along the outputs only"};
  auto weights = gemm_to_ohwi(tensor_floats(b_tensor, context.folder), trans_b, outputs, a.channels,
                              a.height, a.width, alpha);
  ConvolutionDescriptor d(a.width, a.height, a.channels, outputs);
  auto fc = std::make_shared<FullyConnectedNode>(
      a.image, make_source(context, node, b_tensor.name(), d, std::move(weights), std::move(bias)));
  fc->label = name_of(node);
  set_style(*fc, context);
  return {Value{fc->result_image(), outputs, 1, 1, true}};
}

std::vector<Value> convert_gemm(const NodeProto& node, Context& context) {
  known_attributes(node, {"alpha", "beta", "transA", "transB", "broadcast"});
  if (int_attribute(node, "transA", 0) != 0) throw Refusal{"transA = 1 is not supported"};
  const Value& a = image_input(node, context, 0);
  std::vector<float> bias;
  if (has_input(node, 2)) {
    const auto& c = constant_input(node, context, 2);
    if (c.dims_size() > 1 && c.dims(0) != 1)
      throw Refusal{"C must broadcast along the outputs only"};
    bias = tensor_floats(c, context.folder);
    const float beta = float_attribute(node, "beta", 1.0f);
    for (auto& v : bias) v *= beta;
  }
  return fully_connected(node, context, a, constant_input(node, context, 1),
                         int_attribute(node, "transB", 0) != 0,
                         float_attribute(node, "alpha", 1.0f), std::move(bias));
}

std::vector<Value> convert_mat_mul(const NodeProto& node, Context& context) {
  known_attributes(node, {});
  const Value& a = image_input(node, context, 0);
  return fully_connected(node, context, a, constant_input(node, context, 1), false, 1.0f, {});
}

// Softmax and LogSoftmax: over the channels only. Before opset 13 ONNX flattens from `axis`
// (default 1), which is the channels when the map is 1 x 1; from 13 `axis` is one axis.
template <typename NodeType>
std::vector<Value> softmax_over_channels(const NodeProto& node, Context& context) {
  known_attributes(node, {"axis"});
  const Value& x = map_input(node, context, 0);
  const std::int64_t rank = x.flat ? 2 : 4;
  const std::int64_t fallback = context.opset >= 13 ? -1 : 1;
  std::int64_t axis = int_attribute(node, "axis", fallback);
  if (axis < 0) axis += rank;
  const bool channels = (axis == 1 && (context.opset >= 13 || x.height * x.width == 1)) ||
                        (rank == 4 && x.height * x.width == 1 && axis >= 1);
  if (!channels)
    throw Refusal{"only a " + node.op_type() + " over the channels is supported, not axis " +
                  std::to_string(int_attribute(node, "axis", fallback))};
  auto s = std::make_shared<NodeType>(x.image);
  s->label = name_of(node);
  return same_as(x, s->result_image());
}

std::vector<Value> convert_softmax(const NodeProto& node, Context& context) {
  return softmax_over_channels<SoftMaxNode>(node, context);
}

std::vector<Value> convert_log_softmax(const NodeProto& node, Context& context) {
  return softmax_over_channels<LogSoftMaxNode>(node, context);
}

std::vector<Value> convert_concat(const NodeProto& node, Context& context) {
  known_attributes(node, {"axis"});
  std::vector<std::shared_ptr<ImageNode>> images;
  Value first = map_input(node, context, 0);
  long long channels = 0;
  for (int i = 0; i < node.input_size(); ++i) {
    const Value& v = map_input(node, context, i);
    if (v.height != first.height || v.width != first.width || v.flat != first.flat)
      throw Refusal{"inputs differ in height or width"};
    images.push_back(v.image);
    channels += v.channels;
  }
  std::int64_t axis = int_attribute(node, "axis", 1);
  if (axis < 0) axis += first.flat ? 2 : 4;
  if (axis != 1) throw Refusal{"only a concatenation along the channels is supported"};
  auto c = std::make_shared<ConcatenationNode>(std::move(images));
  c->label = name_of(node);
  first.image = c->result_image();
  first.channels = to_int(channels, "channels");
  return {first};
}

std::vector<Value> convert_identity(const NodeProto& node, Context& context) {
  return {image_input(node, context, 0)};
}

std::vector<Value> convert_dropout(const NodeProto& node, Context& context) {
  known_attributes(node, {"ratio", "seed", "is_test"});
  one_output(node);
  if (has_input(node, 2)) {
    const auto& mode = constant_input(node, context, 2);
    const bool training = (mode.int32_data_size() > 0 && mode.int32_data(0) != 0) ||
                          (!mode.raw_data().empty() && mode.raw_data()[0] != 0);
    if (training) throw Refusal{"training_mode = true is not supported"};
  }
  return {image_input(node, context, 0)};
}

struct Entry {
  const char* op_type;
  Converter convert;
};

constexpr Entry converters[] = {
    {"Conv", convert_conv},
    {"Relu", convert_relu},
    {"LeakyRelu", convert_leaky_relu},
    {"Sigmoid", convert_sigmoid},
    {"Tanh", convert_tanh},
    {"Clip", convert_clip},
    {"Add", convert_add},
    {"BatchNormalization", convert_batch_normalization},
    {"MaxPool", convert_max_pool},
    {"AveragePool", convert_average_pool},
    {"GlobalAveragePool", convert_global_average_pool},
    {"Flatten", convert_flatten},
    {"Reshape", convert_reshape},
    {"Gemm", convert_gemm},
    {"Softmax", convert_softmax},
    {"Concat", convert_concat},
    {"Identity", convert_identity},
    {"Dropout", convert_dropout},
    {"ConvTranspose", convert_conv_transpose},
    {"PRelu", convert_prelu},
    {"Elu", convert_elu},
    {"Selu", convert_selu},
    {"HardSigmoid", convert_hard_sigmoid},
    {"Softplus", convert_softplus},
    {"Softsign", convert_softsign},
    {"Abs", convert_abs},
    {"Gelu", convert_gelu},
    {"LRN", convert_lrn},
    {"MatMul", convert_mat_mul},
    {"LogSoftmax", convert_log_softmax},
    {"ReduceMean", convert_reduce_mean},
    {"Sub", convert_sub},
    {"Mul", convert_mul},
    {"Div", convert_div},
    {"HardSwish", convert_hard_swish},
    {"GlobalMaxPool", convert_global_max_pool},
    {"Pad", convert_pad},
};

}  // namespace

Converter find_converter(const std::string& op_type) {
  for (const auto& e : converters)
    if (op_type == e.op_type) return e.convert;
  return nullptr;
}

}  // namespace cnngraph::onnx::detail
