// Image nodes, padding policies and every forward filter node (losses and gradient nodes are
// in training.cpp). Filter nodes are made with std::make_shared (nb::new_), as the C++ API
// requires: a filter's result_image keeps the filter and everything it reads alive.
#include <sstream>

#include "bindings.hpp"

namespace cnngraph::python {

namespace {

// How a node's repr and error messages name an image: a source by its handle, an
// intermediate by the filter that makes it.
std::string image_name(const ImageNode& image) {
  if (const FilterNode* producer = image.producer()) return producer->display_name();
  return "'" + image.handle + "'";
}

std::string number_text(double value) {
  std::ostringstream s;
  s << value;
  return s.str();
}

// A node's attributes, from its visit_attributes(): as a dict, and as the text of its repr
// (which leaves out the defaults nobody sets: centred padding, false flags).
class AttributeCollector : public AttributeVisitor {
 public:
  void node(const std::string&, const std::string& label) override {
    if (!label.empty()) add_text("label", "'" + label + "'");
  }
  void input(const std::string& name, const ImageNode& image) override {
    add_text(name, image_name(image));
  }
  void link(const std::string& name, const FilterNode& node) override {
    values[name.c_str()] = node.display_name();
    add_text(name, node.display_name());
  }
  void integer(const std::string& name, std::int64_t value) override {
    values[name.c_str()] = value;
    add_text(name, std::to_string(value));
  }
  void number(const std::string& name, double value) override {
    values[name.c_str()] = value;
    add_text(name, number_text(value));
  }
  void flag(const std::string& name, bool value) override {
    values[name.c_str()] = value;
    if (value) add_text(name, "True");
  }
  void text(const std::string& name, const std::string& value) override {
    values[name.c_str()] = value;
    if ((name == "padding_alignment" && value == "centered") ||
        (name == "padding_remainder" && value == "top_left")) {
      return;
    }
    add_text(name, "'" + value + "'");
  }
  void numbers(const std::string& name, const std::vector<float>& list) override {
    values[name.c_str()] = list;
    if (!list.empty()) add_text(name, "[" + std::to_string(list.size()) + " values]");
  }

  nb::dict values;
  std::string repr_text;

 private:
  void add_text(const std::string& name, const std::string& value) {
    std::string key = name;
    for (char& c : key) {
      if (c == ' ') c = '_';
    }
    repr_text += (repr_text.empty() ? "" : ", ") + key + "=" + value;
  }
};

template <typename T>
std::shared_ptr<T> finish(std::shared_ptr<T> node, const std::string& label,
                          const std::optional<PaddingPolicy>& padding = std::nullopt) {
  node->label = label;
  if (padding) node->padding_policy = *padding;
  return node;
}

const char* size_name(PaddingSize size) {
  switch (size) {
    case PaddingSize::valid:
      return "valid";
    case PaddingSize::same:
      return "same";
    case PaddingSize::full:
      return "full";
    case PaddingSize::custom:
      return "custom";
    case PaddingSize::explicit_pads:
      return "explicit_pads";
  }
  return "?";
}

std::string padding_repr(const PaddingPolicy& p) {
  if (p.size == PaddingSize::explicit_pads) {
    return "PaddingPolicy.explicit_padding(top=" + std::to_string(p.pads.top) +
           ", bottom=" + std::to_string(p.pads.bottom) + ", left=" + std::to_string(p.pads.left) +
           ", right=" + std::to_string(p.pads.right) +
           (p.pads.ceil_mode ? ", ceil_mode=True)" : ")");
  }
  std::string text = std::string("PaddingPolicy(size=PaddingSize.") + size_name(p.size);
  if (p.alignment != PaddingAlignment::centered) {
    text += p.alignment == PaddingAlignment::top_left ? ", alignment=PaddingAlignment.top_left"
                                                      : ", alignment=PaddingAlignment.bottom_right";
  }
  if (p.remainder != PaddingRemainder::top_left) {
    text += ", remainder=PaddingRemainder.bottom_right";
  }
  return text + ")";
}

std::string floats_repr(const std::vector<float>& values) {
  std::string text = "[";
  for (std::size_t i = 0; i < values.size(); ++i) {
    text += (i ? ", " : "") + number_text(values[i]);
  }
  return text + "]";
}

std::string amounts_repr(const PaddingAmounts& a) {
  return "PaddingAmounts(top=" + std::to_string(a.top) + ", bottom=" + std::to_string(a.bottom) +
         ", left=" + std::to_string(a.left) + ", right=" + std::to_string(a.right) +
         ", channels_after=" + std::to_string(a.channels_after) + ")";
}

// A filter's node as Python holds it: the shared_ptr that keeps the graph alive.
template <typename T>
std::shared_ptr<T> shared_node(const T* node) {
  if (!node) return nullptr;
  return std::static_pointer_cast<T>(std::const_pointer_cast<FilterNode>(node->shared_from_this()));
}

// What sizes a transposed convolution: nothing, a forward ConvolutionNode (its gradient
// state), or a ConvolutionGradientStateNode. The state class is bound with the training
// nodes; it is looked up when the call is made, so this file does not depend on it.
std::shared_ptr<ConvolutionGradientStateNode> transpose_state_of(nb::handle sized_by) {
  if (sized_by.is_none()) return nullptr;
  std::shared_ptr<ConvolutionNode> convolution;
  if (nb::try_cast(sized_by, convolution) && convolution) {
    return convolution->convolution_gradient_state();
  }
  std::shared_ptr<ConvolutionGradientStateNode> state;
  if (nb::try_cast(sized_by, state) && state) return state;
  throw nb::type_error(
      ("ConvolutionTransposeNode: convolution_gradient_state must be a ConvolutionNode, its "
       "convolution_gradient_state or None, not " +
       nb::cast<std::string>(nb::str(sized_by.type().attr("__name__"))))
          .c_str());
}

// The local response normalizations' alpha, beta and delta, as keyword arguments.
template <typename T>
std::shared_ptr<T> with_response(std::shared_ptr<T> node, float alpha, float beta, float delta) {
  node->alpha = alpha;
  node->beta = beta;
  node->delta = delta;
  return node;
}

}  // namespace

std::shared_ptr<ImageNode> image_of(const Source& source) {
  if (const auto* image = std::get_if<std::shared_ptr<ImageNode>>(&source)) {
    if (!*image) throw InvalidArgument("the source image is None");
    return *image;
  }
  const auto& filter = std::get<std::shared_ptr<FilterNode>>(source);
  if (!filter) throw InvalidArgument("the source filter is None");
  return filter->result_image();
}

std::vector<std::shared_ptr<ImageNode>> images_of(const std::vector<Source>& sources) {
  std::vector<std::shared_ptr<ImageNode>> images;
  images.reserve(sources.size());
  for (const auto& source : sources) images.push_back(image_of(source));
  return images;
}

void bind_nodes(nb::module_& m) {
  nb::enum_<PaddingSize>(m, "PaddingSize")
      .value("valid", PaddingSize::valid)
      .value("same", PaddingSize::same)
      .value("full", PaddingSize::full)
      .value("custom", PaddingSize::custom)
      .value("explicit_pads", PaddingSize::explicit_pads);
  nb::enum_<PaddingAlignment>(m, "PaddingAlignment")
      .value("centered", PaddingAlignment::centered)
      .value("top_left", PaddingAlignment::top_left)
      .value("bottom_right", PaddingAlignment::bottom_right);
  nb::enum_<PaddingRemainder>(m, "PaddingRemainder")
      .value("top_left", PaddingRemainder::top_left)
      .value("bottom_right", PaddingRemainder::bottom_right);

  nb::class_<ExplicitPads>(m, "ExplicitPads")
      .def_rw("top", &ExplicitPads::top)
      .def_rw("bottom", &ExplicitPads::bottom)
      .def_rw("left", &ExplicitPads::left)
      .def_rw("right", &ExplicitPads::right)
      .def_rw("ceil_mode", &ExplicitPads::ceil_mode);

  nb::class_<PaddingPolicy>(m, "PaddingPolicy",
                            "How a filter's result size and kernel placement are chosen.")
      .def(
          "__init__",
          [](PaddingPolicy* self, PaddingSize size, PaddingAlignment alignment,
             PaddingRemainder remainder) {
            if (size == PaddingSize::custom || size == PaddingSize::explicit_pads) {
              throw InvalidArgument(
                  "PaddingPolicy: size custom needs a callback (not bound to Python yet) and "
                  "explicit_pads their amounts: use PaddingPolicy.explicit_padding()");
            }
            auto* p = new (self) PaddingPolicy(PaddingPolicy::with_size(size));
            p->alignment = alignment;
            p->remainder = remainder;
          },
          "size"_a = PaddingSize::same, "alignment"_a = PaddingAlignment::centered,
          "remainder"_a = PaddingRemainder::top_left)
      .def_static("same", &PaddingPolicy::same, "MPS's default: same, centred.")
      .def_static("valid", &PaddingPolicy::valid)
      .def_static("full", &PaddingPolicy::full)
      .def_static("tensorflow_same", &PaddingPolicy::tensorflow_same,
                  "TensorFlow's SAME: the odd pixel goes bottom-right.")
      .def_static("explicit_padding", &PaddingPolicy::explicit_padding, "top"_a, "bottom"_a,
                  "left"_a, "right"_a, "ceil_mode"_a = false,
                  "Fixed pads on each side (ONNX's pads, PyTorch's padding).")
      .def_ro("size", &PaddingPolicy::size)
      .def_rw("alignment", &PaddingPolicy::alignment)
      .def_rw("remainder", &PaddingPolicy::remainder)
      .def_ro("pads", &PaddingPolicy::pads)
      .def("__repr__", &padding_repr);

  nb::class_<ImageNode>(m, "ImageNode",
                        "An image in a graph: a source (graph input) when no filter makes it.")
      .def(nb::new_(
               [](std::string handle) { return std::make_shared<ImageNode>(std::move(handle)); }),
           "handle"_a = "")
      .def_rw("handle", &ImageNode::handle)
      .def_rw("format", &ImageNode::format, nb::arg("format").none(),
              "Storage type of this image; None means the graph's precision.")
      .def_rw("export_from_graph", &ImageNode::export_from_graph)
      .def_rw("stop_gradient", &ImageNode::stop_gradient)
      .def_prop_ro(
          "producer",
          [](const ImageNode& image) -> std::shared_ptr<FilterNode> {
            const FilterNode* producer = image.producer();
            if (!producer) return nullptr;
            return std::const_pointer_cast<FilterNode>(producer->shared_from_this());
          },
          "The filter that makes this image, or None for a graph source.")
      .def_prop_ro("is_source", &ImageNode::is_source)
      .def_prop_ro("is_labels", &ImageNode::is_labels)
      .def("__repr__", [](const ImageNode& image) {
        if (image.is_source()) return "ImageNode('" + image.handle + "')";
        return "ImageNode(result of " + image.producer()->display_name() + ")";
      });

  nb::enum_<TrainingStyle>(m, "TrainingStyle")
      .value("none", TrainingStyle::none)
      .value("cpu", TrainingStyle::cpu)
      .value("device", TrainingStyle::device);
  nb::enum_<AccumulatorPrecision>(m, "AccumulatorPrecision")
      .value("half", AccumulatorPrecision::half)
      .value("single", AccumulatorPrecision::single);

  nb::class_<FilterNode>(m, "FilterNode", "The base of every filter node.")
      .def_prop_ro("result_image", &FilterNode::result_image)
      .def_prop_ro("source_images", &FilterNode::source_images)
      .def_rw("label", &FilterNode::label)
      .def_rw("padding_policy", &FilterNode::padding_policy)
      .def_prop_rw(
          "export_from_graph",
          [](const FilterNode& node) { return node.result_image()->export_from_graph; },
          [](FilterNode& node, bool value) { node.result_image()->export_from_graph = value; },
          "Keep the result image and return it with the results (result_image's flag).")
      .def_prop_rw(
          "stop_gradient",
          [](const FilterNode& node) { return node.result_image()->stop_gradient; },
          [](FilterNode& node, bool value) { node.result_image()->stop_gradient = value; },
          "A training graph propagates no gradient past the result (result_image's flag).")
      .def_prop_ro("kind", &FilterNode::kind)
      .def_prop_ro("display_name", &FilterNode::display_name)
      .def_prop_ro("is_trainable", &FilterNode::is_trainable)
      .def(
          "attributes",
          [](const FilterNode& node) {
            AttributeCollector collector;
            node.visit_attributes(collector);
            return collector.values;
          },
          "The node's attributes by name, as describe() and saved graphs list them.")
      .def("__repr__", [](nb::handle self) {
        const auto& node = nb::cast<const FilterNode&>(self);
        AttributeCollector collector;
        node.visit_attributes(collector);
        return nb::cast<std::string>(self.type().attr("__name__")) + "(" + collector.repr_text +
               ")";
      });

  nb::class_<WeightedNode, FilterNode>(m, "WeightedNode",
                                       "A node whose convolution weights come from a data source.")
      .def_rw("training_style", &WeightedNode::training_style)
      .def_prop_ro("weights", &WeightedNode::weights);

  nb::class_<ConvolutionNode, WeightedNode>(m, "ConvolutionNode")
      .def(nb::new_([](const Source& source, std::shared_ptr<ConvolutionDataSource> weights,
                       const std::string& label, std::optional<PaddingPolicy> padding) {
             return finish(std::make_shared<ConvolutionNode>(image_of(source), std::move(weights)),
                           label, padding);
           }),
           "source"_a, "weights"_a, nb::kw_only(), "label"_a = "", "padding_policy"_a = nb::none(),
           "A convolution of `source` (an image node or a filter) with the data source's "
           "weights; padding same and centred unless padding_policy says otherwise.")
      .def_rw("accumulator_precision", &ConvolutionNode::accumulator_precision);

  nb::class_<FullyConnectedNode, ConvolutionNode>(m, "FullyConnectedNode")
      .def(nb::new_([](const Source& source, std::shared_ptr<ConvolutionDataSource> weights,
                       const std::string& label) {
             return finish(
                 std::make_shared<FullyConnectedNode>(image_of(source), std::move(weights)), label);
           }),
           "source"_a, "weights"_a, nb::kw_only(), "label"_a = "",
           "A convolution whose kernel covers the whole source; the result is 1x1.");

  nb::class_<NeuronNode, FilterNode>(m, "NeuronNode")
      .def(nb::new_([](const Source& source,
                       const std::variant<NeuronDescriptor, NeuronType>& neuron,
                       const std::string& label) {
             NeuronDescriptor descriptor =
                 std::holds_alternative<NeuronType>(neuron)
                     ? NeuronDescriptor::make(std::get<NeuronType>(neuron))
                     : std::get<NeuronDescriptor>(neuron);
             return finish(std::make_shared<NeuronNode>(image_of(source), std::move(descriptor)),
                           label);
           }),
           "source"_a, "neuron"_a, nb::kw_only(), "label"_a = "",
           "An activation: a NeuronDescriptor, or a NeuronType with MPS's default parameters.")
      .def_prop_ro("neuron", &NeuronNode::neuron);

  nb::enum_<PoolingType>(m, "PoolingType")
      .value("max", PoolingType::max)
      .value("average", PoolingType::average);

  nb::class_<PoolingNode, FilterNode>(m, "PoolingNode")
      .def_prop_ro("type", &PoolingNode::type)
      .def_prop_ro("kernel_width", &PoolingNode::kernel_width)
      .def_prop_ro("kernel_height", &PoolingNode::kernel_height)
      .def_prop_ro("stride_x", &PoolingNode::stride_x)
      .def_prop_ro("stride_y", &PoolingNode::stride_y)
      .def_prop_rw("counts_padding", &PoolingNode::counts_padding, &PoolingNode::set_counts_padding,
                   "Average pooling: divide by the window's pixels in the padded image.")
      .def("set_counted_padding_end", &PoolingNode::set_counted_padding_end, "bottom"_a, "right"_a,
           "With counts_padding: where the counted padded image ends below and right of the "
           "source (ONNX's end pads).")
      .def_prop_ro("counted_padding_bottom", &PoolingNode::counted_padding_bottom)
      .def_prop_ro("counted_padding_right", &PoolingNode::counted_padding_right);

  const char* pooling_doc =
      "A filter_size x filter_size window with stride filter_size, or the window and strides "
      "given; padding same unless padding_policy says otherwise.";
  nb::class_<MaxPoolingNode, PoolingNode>(m, "MaxPoolingNode")
      .def(nb::new_([](const Source& source, int filter_size, const std::string& label,
                       std::optional<PaddingPolicy> padding) {
             return finish(std::make_shared<MaxPoolingNode>(image_of(source), filter_size), label,
                           padding);
           }),
           "source"_a, "filter_size"_a, nb::kw_only(), "label"_a = "",
           "padding_policy"_a = nb::none(), pooling_doc)
      .def(nb::new_([](const Source& source, int kernel_width, int kernel_height, int stride_x,
                       int stride_y, const std::string& label,
                       std::optional<PaddingPolicy> padding) {
             return finish(std::make_shared<MaxPoolingNode>(image_of(source), kernel_width,
                                                            kernel_height, stride_x, stride_y),
                           label, padding);
           }),
           "source"_a, "kernel_width"_a, "kernel_height"_a, "stride_x"_a, "stride_y"_a,
           nb::kw_only(), "label"_a = "", "padding_policy"_a = nb::none());
  nb::class_<AveragePoolingNode, PoolingNode>(m, "AveragePoolingNode")
      .def(nb::new_([](const Source& source, int filter_size, const std::string& label,
                       std::optional<PaddingPolicy> padding) {
             return finish(std::make_shared<AveragePoolingNode>(image_of(source), filter_size),
                           label, padding);
           }),
           "source"_a, "filter_size"_a, nb::kw_only(), "label"_a = "",
           "padding_policy"_a = nb::none(), pooling_doc)
      .def(nb::new_([](const Source& source, int kernel_width, int kernel_height, int stride_x,
                       int stride_y, const std::string& label,
                       std::optional<PaddingPolicy> padding) {
             return finish(std::make_shared<AveragePoolingNode>(image_of(source), kernel_width,
                                                                kernel_height, stride_x, stride_y),
                           label, padding);
           }),
           "source"_a, "kernel_width"_a, "kernel_height"_a, "stride_x"_a, "stride_y"_a,
           nb::kw_only(), "label"_a = "", "padding_policy"_a = nb::none());

  nb::class_<GlobalAveragePoolingNode, FilterNode>(m, "GlobalAveragePoolingNode")
      .def(nb::new_([](const Source& source, const std::string& label) {
             return finish(std::make_shared<GlobalAveragePoolingNode>(image_of(source)), label);
           }),
           "source"_a, nb::kw_only(), "label"_a = "");
  nb::class_<GlobalMaxPoolingNode, FilterNode>(m, "GlobalMaxPoolingNode")
      .def(nb::new_([](const Source& source, const std::string& label) {
             return finish(std::make_shared<GlobalMaxPoolingNode>(image_of(source)), label);
           }),
           "source"_a, nb::kw_only(), "label"_a = "");

  nb::enum_<ArithmeticOperation>(m, "ArithmeticOperation")
      .value("addition", ArithmeticOperation::addition)
      .value("subtraction", ArithmeticOperation::subtraction)
      .value("multiplication", ArithmeticOperation::multiplication)
      .value("division", ArithmeticOperation::division);
  nb::class_<ArithmeticNode, FilterNode>(m, "ArithmeticNode",
                                         "primary (op) secondary, element-wise, broadcasting.")
      .def_prop_ro("operation", &ArithmeticNode::operation);
  nb::class_<AdditionNode, ArithmeticNode>(m, "AdditionNode")
      .def(nb::new_([](const Source& primary, const Source& secondary, const std::string& label) {
             return finish(std::make_shared<AdditionNode>(image_of(primary), image_of(secondary)),
                           label);
           }),
           "primary"_a, "secondary"_a, nb::kw_only(), "label"_a = "");
  nb::class_<SubtractionNode, ArithmeticNode>(m, "SubtractionNode")
      .def(nb::new_([](const Source& primary, const Source& secondary, const std::string& label) {
             return finish(
                 std::make_shared<SubtractionNode>(image_of(primary), image_of(secondary)), label);
           }),
           "primary"_a, "secondary"_a, nb::kw_only(), "label"_a = "");
  nb::class_<MultiplicationNode, ArithmeticNode>(m, "MultiplicationNode")
      .def(nb::new_([](const Source& primary, const Source& secondary, const std::string& label) {
             return finish(
                 std::make_shared<MultiplicationNode>(image_of(primary), image_of(secondary)),
                 label);
           }),
           "primary"_a, "secondary"_a, nb::kw_only(), "label"_a = "");
  nb::class_<DivisionNode, ArithmeticNode>(m, "DivisionNode")
      .def(nb::new_([](const Source& primary, const Source& secondary, const std::string& label) {
             return finish(std::make_shared<DivisionNode>(image_of(primary), image_of(secondary)),
                           label);
           }),
           "primary"_a, "secondary"_a, nb::kw_only(), "label"_a = "");

  nb::class_<SoftMaxNode, FilterNode>(m, "SoftMaxNode", "Soft-max over the channels of each pixel.")
      .def(nb::new_([](const Source& source, const std::string& label) {
             return finish(std::make_shared<SoftMaxNode>(image_of(source)), label);
           }),
           "source"_a, nb::kw_only(), "label"_a = "");
  nb::class_<LogSoftMaxNode, FilterNode>(m, "LogSoftMaxNode")
      .def(nb::new_([](const Source& source, const std::string& label) {
             return finish(std::make_shared<LogSoftMaxNode>(image_of(source)), label);
           }),
           "source"_a, nb::kw_only(), "label"_a = "");

  nb::class_<ConcatenationNode, FilterNode>(m, "ConcatenationNode",
                                            "Joins images of one size along channels.")
      .def(nb::new_([](const std::vector<Source>& sources, const std::string& label) {
             return finish(std::make_shared<ConcatenationNode>(images_of(sources)), label);
           }),
           "sources"_a, nb::kw_only(), "label"_a = "");
  nb::class_<ReshapeNode, FilterNode>(m, "ReshapeNode",
                                      "Same elements (NHWC order), new height, width, channels.")
      .def(nb::new_([](const Source& source, int height, int width, int channels,
                       const std::string& label) {
             return finish(std::make_shared<ReshapeNode>(image_of(source), height, width, channels),
                           label);
           }),
           "source"_a, "height"_a, "width"_a, "channels"_a, nb::kw_only(), "label"_a = "")
      .def_prop_ro("height", &ReshapeNode::height)
      .def_prop_ro("width", &ReshapeNode::width)
      .def_prop_ro("channels", &ReshapeNode::channels);

  nb::class_<PaddingAmounts>(m, "PaddingAmounts",
                             "How far a PaddingNode extends an image on each side.")
      .def(
          "__init__",
          [](PaddingAmounts* self, int top, int bottom, int left, int right, int channels_after) {
            new (self) PaddingAmounts{top, bottom, left, right, channels_after};
          },
          nb::kw_only(), "top"_a = 0, "bottom"_a = 0, "left"_a = 0, "right"_a = 0,
          "channels_after"_a = 0)
      .def_rw("top", &PaddingAmounts::top)
      .def_rw("bottom", &PaddingAmounts::bottom)
      .def_rw("left", &PaddingAmounts::left)
      .def_rw("right", &PaddingAmounts::right)
      .def_rw("channels_after", &PaddingAmounts::channels_after,
              "Feature channels added after the last.")
      .def("__repr__", &amounts_repr);
  nb::class_<PaddingNode, FilterNode>(
      m, "PaddingNode",
      "Constant padding: the source surrounded by `amounts` rows, columns (and channels after "
      "the last) of `value` (ONNX Pad, constant mode; PyTorch's ConstantPad2d).")
      .def(nb::new_([](const Source& source, const PaddingAmounts& amounts, float value,
                       const std::string& label) {
             return finish(std::make_shared<PaddingNode>(image_of(source), amounts, value), label);
           }),
           "source"_a, "amounts"_a, "value"_a = 0.0f, nb::kw_only(), "label"_a = "")
      .def(nb::new_([](const Source& source, int top, int bottom, int left, int right,
                       int channels_after, float value, const std::string& label) {
             return finish(std::make_shared<PaddingNode>(
                               image_of(source),
                               PaddingAmounts{top, bottom, left, right, channels_after}, value),
                           label);
           }),
           "source"_a, nb::kw_only(), "top"_a = 0, "bottom"_a = 0, "left"_a = 0, "right"_a = 0,
           "channels_after"_a = 0, "value"_a = 0.0f, "label"_a = "",
           "The amounts as keyword arguments.")
      .def_prop_ro("amounts", &PaddingNode::amounts)
      .def_prop_ro("value", &PaddingNode::value);

  nb::class_<BatchNormalizationNode, FilterNode>(
      m, "BatchNormalizationNode",
      "Batch normalization: the batch's statistics in a training graph through it, the data "
      "source's running averages everywhere else.")
      .def(nb::new_([](const Source& source,
                       const std::variant<std::shared_ptr<BatchNormalizationDataSource>,
                                          BatchNormalizationParameters>& parameters,
                       const std::string& label) {
             auto image = image_of(source);
             std::shared_ptr<BatchNormalizationNode> node;
             if (const auto* fixed = std::get_if<BatchNormalizationParameters>(&parameters)) {
               node = std::make_shared<BatchNormalizationNode>(std::move(image), *fixed);
             } else {
               node = std::make_shared<BatchNormalizationNode>(
                   std::move(image),
                   std::get<std::shared_ptr<BatchNormalizationDataSource>>(parameters));
             }
             return finish(std::move(node), label);
           }),
           "source"_a, "data_source"_a, nb::kw_only(), "label"_a = "",
           "data_source: a BatchNormalizationDataSource, or BatchNormalizationParameters (fixed: "
           "a data source of its own without an optimizer).")
      .def_rw("training_style", &BatchNormalizationNode::training_style)
      .def_prop_ro("data_source", &BatchNormalizationNode::data_source)
      .def_prop_ro("parameters", &BatchNormalizationNode::parameters,
                   "The data source's current parameters (a copy).");

  nb::class_<ConvolutionTransposeNode, WeightedNode>(
      m, "ConvolutionTransposeNode",
      "The adjoint (transpose) of a convolution; the data source describes the transpose "
      "itself (input_feature_channels are the channels it reads).")
      .def(nb::new_([](const Source& source, std::shared_ptr<ConvolutionDataSource> weights,
                       nb::handle sized_by, const std::string& label,
                       std::optional<PaddingPolicy> padding) {
             return finish(std::make_shared<ConvolutionTransposeNode>(
                               image_of(source), transpose_state_of(sized_by), std::move(weights)),
                           label, padding);
           }),
           "source"_a, "weights"_a, nb::arg("convolution_gradient_state").none() = nb::none(),
           nb::kw_only(), "label"_a = "", "padding_policy"_a = nb::none(),
           "convolution_gradient_state: a forward ConvolutionNode (or its gradient state) whose "
           "source size the result takes exactly; None sizes it by padding_policy (default "
           "same).")
      .def_prop_ro(
          "sized_by",
          [](const ConvolutionTransposeNode& node) { return shared_node(node.sized_by()); },
          "The forward convolution whose source size the result takes, or None.");

  nb::enum_<BinaryConvolutionType>(m, "BinaryConvolutionType")
      .value("binary_weights", BinaryConvolutionType::binary_weights,
             "Weights sign(w), the input at full precision.")
      .value("xnor", BinaryConvolutionType::xnor, "Input and weights both +1/-1.")
      .value("and_", BinaryConvolutionType::and_, "Input and weights both 1/0.");
  nb::class_<BinaryConvolutionFlags>(m, "BinaryConvolutionFlags")
      .def(
          "__init__",
          [](BinaryConvolutionFlags* self, bool use_beta_scaling) {
            new (self) BinaryConvolutionFlags{use_beta_scaling};
          },
          nb::kw_only(), "use_beta_scaling"_a = false)
      .def_rw("use_beta_scaling", &BinaryConvolutionFlags::use_beta_scaling,
              "Multiply each output pixel by the window's mean |input| (XNOR-Net's K).")
      .def("__repr__", [](const BinaryConvolutionFlags& f) {
        return std::string("BinaryConvolutionFlags(use_beta_scaling=") +
               (f.use_beta_scaling ? "True" : "False") + ")";
      });
  nb::class_<BinaryConvolutionTerms>(
      m, "BinaryConvolutionTerms",
      "Per input / output channel terms of a binary convolution; empty means none.")
      .def(
          "__init__",
          [](BinaryConvolutionTerms* self, std::vector<float> input_bias,
             std::vector<float> input_scale, std::vector<float> output_bias,
             std::vector<float> output_scale) {
            new (self) BinaryConvolutionTerms{std::move(input_bias), std::move(input_scale),
                                              std::move(output_bias), std::move(output_scale)};
          },
          nb::kw_only(), "input_bias"_a = std::vector<float>{},
          "input_scale"_a = std::vector<float>{}, "output_bias"_a = std::vector<float>{},
          "output_scale"_a = std::vector<float>{})
      .def_rw("input_bias", &BinaryConvolutionTerms::input_bias)
      .def_rw("input_scale", &BinaryConvolutionTerms::input_scale)
      .def_rw("output_bias", &BinaryConvolutionTerms::output_bias)
      .def_rw("output_scale", &BinaryConvolutionTerms::output_scale)
      .def("__repr__", [](const BinaryConvolutionTerms& t) {
        return "BinaryConvolutionTerms(input_bias=" + floats_repr(t.input_bias) +
               ", input_scale=" + floats_repr(t.input_scale) +
               ", output_bias=" + floats_repr(t.output_bias) +
               ", output_scale=" + floats_repr(t.output_scale) + ")";
      });

  const char* binary_doc =
      "y = (scale_value * beta * S(x', w) + bias) * output_scale + output_bias, with S the "
      "binary sum of `type` and x' = (x + input_bias) * input_scale; padding valid unless "
      "padding_policy says otherwise.";
  nb::class_<BinaryConvolutionNode, WeightedNode>(m, "BinaryConvolutionNode")
      .def(nb::new_([](const Source& source, std::shared_ptr<ConvolutionDataSource> weights,
                       float scale_value, BinaryConvolutionType type,
                       const BinaryConvolutionFlags& flags, const BinaryConvolutionTerms& terms,
                       const std::string& label, std::optional<PaddingPolicy> padding) {
             return finish(
                 std::make_shared<BinaryConvolutionNode>(image_of(source), std::move(weights),
                                                         scale_value, type, flags, terms),
                 label, padding);
           }),
           "source"_a, "weights"_a, "scale_value"_a, "type"_a, nb::kw_only(),
           "flags"_a = BinaryConvolutionFlags{}, "terms"_a = BinaryConvolutionTerms{},
           "label"_a = "", "padding_policy"_a = nb::none(), binary_doc)
      .def_prop_ro("scale_value", &BinaryConvolutionNode::scale_value)
      .def_prop_ro("type", &BinaryConvolutionNode::type)
      .def_prop_ro("flags", &BinaryConvolutionNode::flags)
      .def_prop_ro("terms", &BinaryConvolutionNode::terms);
  nb::class_<BinaryFullyConnectedNode, BinaryConvolutionNode>(m, "BinaryFullyConnectedNode")
      .def(nb::new_([](const Source& source, std::shared_ptr<ConvolutionDataSource> weights,
                       float scale_value, BinaryConvolutionType type,
                       const BinaryConvolutionFlags& flags, const BinaryConvolutionTerms& terms,
                       const std::string& label) {
             return finish(
                 std::make_shared<BinaryFullyConnectedNode>(image_of(source), std::move(weights),
                                                            scale_value, type, flags, terms),
                 label);
           }),
           "source"_a, "weights"_a, "scale_value"_a, "type"_a, nb::kw_only(),
           "flags"_a = BinaryConvolutionFlags{}, "terms"_a = BinaryConvolutionTerms{},
           "label"_a = "", "A binary convolution whose kernel covers the whole source; 1x1.");

  nb::class_<LocalResponseNormalizationNode, FilterNode>(
      m, "LocalResponseNormalizationNode",
      "out = in * (delta + alpha / N * sum(in^2 over the window))^-beta; alpha >= 0, "
      "delta > 0 (checked when the graph is compiled).")
      .def_rw("alpha", &LocalResponseNormalizationNode::alpha)
      .def_rw("beta", &LocalResponseNormalizationNode::beta)
      .def_rw("delta", &LocalResponseNormalizationNode::delta);
  nb::class_<CrossChannelNormalizationNode, LocalResponseNormalizationNode>(
      m, "CrossChannelNormalizationNode",
      "Local response normalization across kernel_size channels (PyTorch's "
      "LocalResponseNorm(size, alpha, beta, k=delta)).")
      .def(nb::new_([](const Source& source, int kernel_size, float alpha, float beta, float delta,
                       const std::string& label) {
             return finish(with_response(std::make_shared<CrossChannelNormalizationNode>(
                                             image_of(source), kernel_size),
                                         alpha, beta, delta),
                           label);
           }),
           "source"_a, "kernel_size"_a, nb::kw_only(), "alpha"_a = 1.0f, "beta"_a = 5.0f,
           "delta"_a = 1.0f, "label"_a = "")
      .def_prop_ro("kernel_size", &CrossChannelNormalizationNode::kernel_size);
  nb::class_<SpatialNormalizationNode, LocalResponseNormalizationNode>(
      m, "SpatialNormalizationNode",
      "Local response normalization over a kernel_width x kernel_height window of each "
      "channel.")
      .def(nb::new_([](const Source& source, int kernel_width, int kernel_height, float alpha,
                       float beta, float delta, const std::string& label) {
             return finish(with_response(std::make_shared<SpatialNormalizationNode>(
                                             image_of(source), kernel_width, kernel_height),
                                         alpha, beta, delta),
                           label);
           }),
           "source"_a, "kernel_width"_a, "kernel_height"_a, nb::kw_only(), "alpha"_a = 1.0f,
           "beta"_a = 5.0f, "delta"_a = 1.0f, "label"_a = "")
      .def_prop_ro("kernel_width", &SpatialNormalizationNode::kernel_width)
      .def_prop_ro("kernel_height", &SpatialNormalizationNode::kernel_height);

  nb::class_<DropoutNode, FilterNode>(
      m, "DropoutNode",
      "Keeps each element with probability keep_probability, scaled by 1 / keep_probability; "
      "the mask is a function of (seed, the graph's batch count, element index).")
      .def(nb::new_([](const Source& source, float keep_probability, std::uint64_t seed,
                       const std::string& label) {
             return finish(std::make_shared<DropoutNode>(image_of(source), keep_probability, seed),
                           label);
           }),
           "source"_a, "keep_probability"_a, "seed"_a = 1, nb::kw_only(), "label"_a = "")
      .def_prop_ro("keep_probability", &DropoutNode::keep_probability)
      .def_prop_ro("seed", &DropoutNode::seed);
}

}  // namespace cnngraph::python
