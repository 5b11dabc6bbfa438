// Image nodes, padding policies and the filter nodes of the first slice of the Python API.
// Filter nodes are made with std::make_shared (nb::new_), as the C++ API requires: a
// filter's result_image keeps the filter and everything it reads alive.
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
    add_text(name, "[" + std::to_string(list.size()) + " values]");
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
                   "Average pooling: divide by the window's pixels in the padded image.");

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
}

}  // namespace cnngraph::python
