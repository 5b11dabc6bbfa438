// Training from Python: losses (LossDescriptor, LossLabels, LossNode), training_graph() and
// the gradient filters on every filter node, the gradient node classes, and the states a
// TrainingStyle.cpu update receives (ConvolutionGradientState, WeightsAndBiasesState).
// Graph.run with labels, run_async and loss_scale are in graph.cpp.
#include <sstream>

#include "bindings.hpp"

namespace cnngraph::python {

namespace {

std::string number(double value) {
  std::ostringstream s;
  s << value;
  return s.str();
}

std::string enum_repr(nb::handle value) { return nb::cast<std::string>(nb::repr(value)); }

std::string loss_descriptor_repr(const LossDescriptor& d) {
  std::string text =
      "LossDescriptor(" + enum_repr(nb::cast(d.type)) + ", " + enum_repr(nb::cast(d.reduction));
  const LossDescriptor defaults(d.type, d.reduction);
  if (d.weight != defaults.weight) text += ", weight=" + number(d.weight);
  if (d.label_smoothing != defaults.label_smoothing) {
    text += ", label_smoothing=" + number(d.label_smoothing);
  }
  if (d.epsilon != defaults.epsilon) text += ", epsilon=" + number(d.epsilon);
  if (d.delta != defaults.delta) text += ", delta=" + number(d.delta);
  return text + ")";
}

// An Image as it is, or a NumPy array through Image(array) (copied, NHWC).
Image image_from(nb::handle value) {
  if (nb::isinstance<Image>(value)) return nb::cast<Image>(value);
  return nb::cast<Image>(nb::type<Image>()(value));
}

std::shared_ptr<FilterNode> shared_node(const FilterNode& node) {
  return std::const_pointer_cast<FilterNode>(node.weak_from_this().lock());
}

// The shared image node behind a reference the library hands a node handler: the result
// of its producer, or one of the sources of the nodes around it (a graph source).
nb::object image_object(const ImageNode& image, std::initializer_list<const FilterNode*> around) {
  if (const FilterNode* producer = image.producer()) return nb::cast(producer->result_image());
  for (const FilterNode* node : around) {
    for (const auto& source : node->source_images()) {
      if (source.get() == &image) return nb::cast(source);
    }
  }
  return nb::none();
}

std::shared_ptr<ImageNode> optional_image(const std::optional<Source>& source) {
  return source ? image_of(*source) : nullptr;
}

std::vector<std::shared_ptr<ImageNode>> training_graph(const FilterNode& node,
                                                       const std::optional<Source>& source_gradient,
                                                       nb::object handler) {
  GradientNodeHandler call_handler;
  if (!handler.is_none()) {
    if (!PyCallable_Check(handler.ptr())) {
      throw nb::type_error("training_graph: node_handler must be callable or None");
    }
    call_handler = [handler](FilterNode& gradient, const FilterNode& forward,
                             const ImageNode& forward_source, const ImageNode& gradient_source) {
      handler(shared_node(gradient), shared_node(forward),
              image_object(forward_source, {&forward, &gradient}),
              image_object(gradient_source, {&gradient, &forward}));
    };
  }
  return node.training_graph(optional_image(source_gradient), call_handler);
}

std::shared_ptr<FilterNode> forward_of(const FilterNode& node) {
  const FilterNode* forward = node.gradient_of();
  return forward ? shared_node(*forward) : nullptr;
}

// Weights-shaped floats: OHWI when they are as many as the descriptor's weights, else flat.
nb::object weights_array(const std::vector<float>& values, const ConvolutionDescriptor& d) {
  if (d.groups > 0 && values.size() == d.weight_count()) {
    return numpy_floats(values, {static_cast<std::size_t>(d.output_feature_channels),
                                 static_cast<std::size_t>(d.kernel_height),
                                 static_cast<std::size_t>(d.kernel_width),
                                 static_cast<std::size_t>(d.input_feature_channels / d.groups)});
  }
  return numpy_floats(values, {values.size()});
}

nb::object flat_array(const std::vector<float>& values) {
  return numpy_floats(values, {values.size()});
}

// Adds a method to a class bound in another file.
template <typename Func, typename... Extra>
void add_method(nb::handle cls, const char* name, Func&& f, const Extra&... extra) {
  nb::cpp_function_def(std::forward<Func>(f), nb::scope(cls), nb::name(name), nb::is_method(),
                       extra...);
}

}  // namespace

void bind_training(nb::module_& m) {
  nb::enum_<LossType>(m, "LossType", "The loss functions (include/cnngraph/loss.hpp).")
      .value("mean_absolute_error", LossType::mean_absolute_error)
      .value("mean_squared_error", LossType::mean_squared_error)
      .value("softmax_cross_entropy", LossType::softmax_cross_entropy)
      .value("sigmoid_cross_entropy", LossType::sigmoid_cross_entropy)
      .value("categorical_cross_entropy", LossType::categorical_cross_entropy)
      .value("hinge", LossType::hinge)
      .value("huber", LossType::huber)
      .value("cosine_distance", LossType::cosine_distance)
      .value("log", LossType::log)
      .value("kullback_leibler_divergence", LossType::kullback_leibler_divergence);
  nb::enum_<ReductionType>(m, "ReductionType",
                           "How a batch's per-element losses become the reported loss.")
      .value("none", ReductionType::none)
      .value("sum", ReductionType::sum)
      .value("mean", ReductionType::mean)
      .value("sum_by_non_zero_weights", ReductionType::sum_by_non_zero_weights);

  nb::class_<LossDescriptor>(m, "LossDescriptor", "A loss function, its reduction and weights.")
      .def(
          "__init__",
          [](LossDescriptor* self, LossType type, ReductionType reduction, float weight,
             float label_smoothing, float epsilon, float delta) {
            auto* d = new (self) LossDescriptor(type, reduction);
            d->weight = weight;
            d->label_smoothing = label_smoothing;
            d->epsilon = epsilon;
            d->delta = delta;
          },
          "type"_a, "reduction"_a, nb::kw_only(), "weight"_a = 1.0f, "label_smoothing"_a = 0.0f,
          "epsilon"_a = 1e-7f, "delta"_a = 1.0f,
          "weight multiplies every element's loss and gradient; label_smoothing for the "
          "cross entropies, epsilon for the log loss, delta for Huber.")
      .def_rw("type", &LossDescriptor::type)
      .def_rw("reduction", &LossDescriptor::reduction)
      .def_rw("weight", &LossDescriptor::weight)
      .def_rw("label_smoothing", &LossDescriptor::label_smoothing)
      .def_rw("epsilon", &LossDescriptor::epsilon)
      .def_rw("delta", &LossDescriptor::delta)
      .def("validate", &LossDescriptor::validate, "where"_a = "LossDescriptor")
      .def("__repr__", &loss_descriptor_repr);

  nb::class_<LossLabels>(m, "LossLabels",
                         "One batch's labels for one loss node: an image of the prediction's "
                         "shape, and optional per-element weights of the same shape.")
      .def(
          "__init__",
          [](LossLabels* self, nb::handle labels, nb::handle weights) {
            Image w = weights.is_none() ? Image() : image_from(weights);
            new (self) LossLabels(image_from(labels), std::move(w));
          },
          "labels"_a, "weights"_a = nb::none(),
          "labels and weights: Images, or NumPy arrays NHWC (float32, float16 or uint8; "
          "copied). They are stored as f32.")
      .def_static(
          "from_classes",
          [](const std::vector<int>& classes, int number_of_classes) {
            return LossLabels::from_classes(classes, number_of_classes);
          },
          "classes"_a, "number_of_classes"_a,
          "One-hot labels: class classes[i] for image i, as 1x1xnumber_of_classes images.")
      .def_prop_ro("labels", &LossLabels::labels)
      .def_prop_ro("weights",
                   [](const LossLabels& l) -> std::optional<Image> {
                     if (l.weights().empty()) return std::nullopt;
                     return l.weights();
                   })
      .def("__repr__", [](const LossLabels& l) {
        return "LossLabels(" + to_string(l.labels().shape()) +
               (l.weights().empty() ? "" : ", with weights") + ")";
      });

  nb::class_<LossNode, FilterNode>(
      m, "LossNode",
      "A loss on `source`: its result is the gradient of the loss (where training_graph "
      "starts); each run's loss value comes back in Results.losses.")
      .def(nb::new_([](const Source& source, const LossDescriptor& descriptor,
                       const std::string& label) {
             auto node = std::make_shared<LossNode>(image_of(source), descriptor);
             node->label = label;
             return node;
           }),
           "source"_a, "descriptor"_a, nb::kw_only(), "label"_a = "")
      .def_prop_ro("descriptor", &LossNode::descriptor)
      .def_prop_ro("labels", &LossNode::labels,
                   "The node through which each run's LossLabels enter (not a source image).")
      .def_prop_ro("label_weights", &LossNode::label_weights);

  nb::enum_<GradientOption>(m, "GradientOption",
                            "Which gradients a ConvolutionGradientNode computes.")
      .value("input", GradientOption::input)
      .value("weights_and_bias", GradientOption::weights_and_bias)
      .value("all", GradientOption::all);

  nb::class_<GradientNode, FilterNode>(
      m, "GradientNode",
      "The gradient of a forward node other than a convolution, made by training_graph or "
      "gradient_filter.")
      .def_prop_ro("forward", &forward_of, "The forward node this is the gradient of.")
      .def_prop_ro("source_index", &GradientNode::source_index,
                   "Which source of the forward node this is the gradient of.");
  nb::class_<ConvolutionGradientNode, FilterNode>(
      m, "ConvolutionGradientNode",
      "A convolution's (or fully connected node's) gradient: the input gradient and the "
      "weight and bias gradients that update its data source.")
      .def_prop_ro("forward", &forward_of, "The forward convolution.")
      .def_rw("gradient_option", &ConvolutionGradientNode::gradient_option);

  nb::handle filter = nb::type<FilterNode>();
  add_method(
      filter, "training_graph",
      [](const FilterNode& node, const std::optional<Source>& source_gradient,
         nb::object node_handler) { return training_graph(node, source_gradient, node_handler); },
      nb::arg("source_gradient").none() = nb::none(), nb::arg("node_handler").none() = nb::none(),
      ("Walks back from this node (usually a LossNode) and makes a gradient node for every "
       "forward node that leads to something trainable. Returns the result images of the "
       "terminal nodes: build the training Graph from them (results_are_needed False). "
       "node_handler(gradient_node, forward_node, forward_source, gradient_source) is "
       "called for each node made."));
  add_method(
      filter, "gradient_filter",
      [](const FilterNode& node, const Source& source_gradient) {
        return node.gradient_filter(image_of(source_gradient));
      },
      "source_gradient"_a, ("The gradient node for this node's first source."));
  add_method(
      filter, "gradient_filters",
      [](const FilterNode& node, const Source& source_gradient) {
        return node.gradient_filters(image_of(source_gradient));
      },
      "source_gradient"_a, ("One gradient node per source."));
  add_method(
      filter, "gradient_filter_for",
      [](const FilterNode& node, std::size_t source_index, const Source& source_gradient) {
        return node.gradient_filter_for(source_index, image_of(source_gradient));
      },
      "source_index"_a, "source_gradient"_a);
  filter.attr("gradient_of") =
      nb::module_::import_("builtins")
          .attr("property")(
              nb::cpp_function([](const FilterNode& node) { return forward_of(node); }), nb::none(),
              nb::none(),
              "For a gradient node, the forward node it differentiates; None for a "
              "forward node.");

  nb::class_<ConvolutionGradientState>(
      m, "ConvolutionGradientState",
      "What a TrainingStyle.cpu update receives: one batch's weight gradient (OHWI) and bias "
      "gradient, summed over the batch (copies).")
      .def_ro("descriptor", &ConvolutionGradientState::descriptor)
      .def_ro("node_label", &ConvolutionGradientState::node_label)
      .def_ro("batch_size", &ConvolutionGradientState::batch_size)
      .def_prop_ro("weights_gradient",
                   [](const ConvolutionGradientState& g) {
                     return weights_array(g.weights_gradient, g.descriptor);
                   })
      .def_prop_ro("bias_gradient",
                   [](const ConvolutionGradientState& g) { return flat_array(g.bias_gradient); })
      .def("__repr__", [](const ConvolutionGradientState& g) {
        return "<ConvolutionGradientState of " + g.node_label + ", batch " +
               std::to_string(g.batch_size) + ">";
      });
  nb::class_<WeightsAndBiasesState>(
      m, "WeightsAndBiasesState",
      "The weights (flat, OHWI order) and biases a batch computed with (copies).")
      .def_prop_ro("weights",
                   [](const WeightsAndBiasesState& s) { return flat_array(s.weights()); })
      .def_prop_ro("biases", [](const WeightsAndBiasesState& s) { return flat_array(s.biases()); })
      .def("__repr__", [](const WeightsAndBiasesState& s) {
        return "<WeightsAndBiasesState, " + std::to_string(s.weights().size()) + " weights, " +
               std::to_string(s.biases().size()) + " biases>";
      });

  nb::class_<LossScaleStatus>(m, "LossScaleStatus",
                              "Dynamic loss scaling's state (f16 training graphs on CUDA).")
      .def_ro("active", &LossScaleStatus::active)
      .def_ro("scale", &LossScaleStatus::scale)
      .def_ro("skipped_steps", &LossScaleStatus::skipped_steps)
      .def("__repr__", [](const LossScaleStatus& s) {
        return std::string("LossScaleStatus(active=") + (s.active ? "True" : "False") +
               ", scale=" + number(s.scale) + ", skipped_steps=" + std::to_string(s.skipped_steps) +
               ")";
      });

  // The batch normalization node is bound with the other nodes; its training_style joins it
  // here where that binding does not have it yet.
  nb::handle batch_normalization = nb::type<BatchNormalizationNode>();
  if (batch_normalization.is_valid() && !nb::hasattr(batch_normalization, "training_style")) {
    batch_normalization.attr("training_style") =
        nb::module_::import_("builtins")
            .attr("property")(
                nb::cpp_function(
                    [](const BatchNormalizationNode& node) { return node.training_style; }),
                nb::cpp_function([](BatchNormalizationNode& node, TrainingStyle style) {
                  node.training_style = style;
                }),
                nb::none(), "Whether a training graph trains gamma and beta.");
  }
}

}  // namespace cnngraph::python
