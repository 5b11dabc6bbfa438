// Descriptors (neuron, convolution, batch normalization), optimizers, the library's own
// data sources with weights to and from NumPy (copied), and ConvolutionDataSource
// subclassed in Python.
#include <nanobind/trampoline.h>

#include <sstream>
#include <type_traits>

#include "bindings.hpp"

namespace cnngraph::python {

namespace {

std::string number(double value) {
  std::ostringstream s;
  s << value;
  return s.str();
}

std::string neuron_repr(const NeuronDescriptor& n) {
  std::string text = "NeuronDescriptor(NeuronType." + to_string(n.type) + ", a=" + number(n.a) +
                     ", b=" + number(n.b) + ", c=" + number(n.c);
  if (!n.prelu_slopes.empty()) {
    text += ", prelu_slopes=[" + std::to_string(n.prelu_slopes.size()) + " values]";
  }
  return text + ")";
}

NeuronDescriptor make_neuron(NeuronType type, std::optional<float> a, std::optional<float> b,
                             std::optional<float> c, std::optional<std::vector<float>> slopes) {
  NeuronDescriptor n = NeuronDescriptor::make(type);
  if (a) n.a = *a;
  if (b) n.b = *b;
  if (c) n.c = *c;
  if (slopes) n.prelu_slopes = std::move(*slopes);
  return n;
}

std::string descriptor_repr(const ConvolutionDescriptor& d) {
  std::ostringstream s;
  s << "ConvolutionDescriptor(kernel_width=" << d.kernel_width
    << ", kernel_height=" << d.kernel_height
    << ", input_feature_channels=" << d.input_feature_channels
    << ", output_feature_channels=" << d.output_feature_channels << ", stride_x=" << d.stride_x
    << ", stride_y=" << d.stride_y << ", dilation_x=" << d.dilation_x
    << ", dilation_y=" << d.dilation_y << ", groups=" << d.groups;
  if (d.sub_pixel_scale_factor != 1) {
    s << ", sub_pixel_scale_factor=" << d.sub_pixel_scale_factor
      << ", sub_pixel_order=SubPixelOrder." << to_string(d.sub_pixel_order);
  }
  if (d.neuron.type != NeuronType::none) s << ", neuron=" << neuron_repr(d.neuron);
  if (d.batch_normalization) s << ", batch_normalization=...";
  s << ")";
  return s.str();
}

// Weights in OHWI order: a 4-D array must have exactly that shape; any other array is read
// in C order and its length checked by the data source.
std::vector<float> weights_of(const AnyArray& array, const ConvolutionDescriptor& d,
                              const std::string& what) {
  if (array.ndim() == 4) {
    const std::size_t expected[4] = {
        static_cast<std::size_t>(d.output_feature_channels),
        static_cast<std::size_t>(d.kernel_height), static_cast<std::size_t>(d.kernel_width),
        static_cast<std::size_t>(d.groups > 0 ? d.input_feature_channels / d.groups : 0)};
    for (std::size_t i = 0; i < 4; ++i) {
      if (array.shape(i) != expected[i]) {
        throw ShapeError(what + ": weights of shape (" + std::to_string(array.shape(0)) + ", " +
                         std::to_string(array.shape(1)) + ", " + std::to_string(array.shape(2)) +
                         ", " + std::to_string(array.shape(3)) + "); the descriptor needs OHWI (" +
                         std::to_string(expected[0]) + ", " + std::to_string(expected[1]) + ", " +
                         std::to_string(expected[2]) + ", " + std::to_string(expected[3]) + ")");
      }
    }
  } else if (array.ndim() != 1) {
    throw ShapeError(what + ": weights with " + std::to_string(array.ndim()) +
                     " dimensions; pass them OHWI (4-D) or flat (1-D)");
  }
  return floats_of(array, what + " weights");
}

std::vector<float> bias_of(const std::optional<AnyArray>& array, const std::string& what) {
  if (!array) return {};
  if (array->ndim() != 1) {
    throw ShapeError(what + ": bias with " + std::to_string(array->ndim()) +
                     " dimensions; pass one value per output channel (1-D)");
  }
  return floats_of(*array, what + " bias");
}

std::vector<std::size_t> ohwi_shape(const ConvolutionDescriptor& d) {
  return {static_cast<std::size_t>(d.output_feature_channels),
          static_cast<std::size_t>(d.kernel_height), static_cast<std::size_t>(d.kernel_width),
          static_cast<std::size_t>(d.input_feature_channels / d.groups)};
}

std::shared_ptr<const Optimizer> optimizer_or_default(std::shared_ptr<Optimizer> optimizer) {
  if (optimizer) return optimizer;
  return std::make_shared<SgdOptimizer>();
}

// A Python subclass of ConvolutionDataSource. The library calls a source from its own
// threads with the GIL released (a run releases it), so every call takes the GIL. What
// Python raises becomes a DataSourceError with the Python message: no Python exception
// crosses the library. The arrays weights() and bias_terms() return are held from there to
// purge(), checked against data_type() and descriptor() first.
class PyConvolutionDataSource : public ConvolutionDataSource {
 public:
  NB_TRAMPOLINE(ConvolutionDataSource);

  DataType data_type() const override {
    return guarded("data_type()", [&] {
      nb::object value = value_of("data_type");
      if (!value.is_valid()) return DataType::f32;
      DataType type;
      if (!nb::try_cast(value, type)) throw returned_wrong_type("data_type()", value, "DataType");
      return type;
    });
  }

  ConvolutionDescriptor descriptor() const override {
    return guarded("descriptor()", [&] {
      nb::object value = required("descriptor");
      ConvolutionDescriptor d;
      if (!nb::try_cast(value, d)) {
        throw returned_wrong_type("descriptor()", value, "ConvolutionDescriptor");
      }
      return d;
    });
  }

  const void* weights() const override {
    return guarded("weights()", [&]() -> const void* {
      nb::object value = required("weights");
      const AnyArray array = array_of(value, "weights()");
      const DataType type = data_type();
      const ConvolutionDescriptor d = descriptor();
      check_dtype(array, type);
      const std::size_t count = d.weight_count();
      if (array.size() != count) {
        throw DataSourceError(where() + ": weights() returned " + std::to_string(array.size()) +
                              " elements; the descriptor needs " + std::to_string(count) +
                              " (OHWI " + ohwi_text(d) + ")");
      }
      weights_array_ = value;
      weights_bytes_ = count * size_of(type);
      return array.data();
    });
  }

  const float* bias_terms() const override {
    return guarded("bias_terms()", [&]() -> const float* {
      nb::object value = value_of("bias_terms");
      if (!value.is_valid() || value.is_none()) return nullptr;
      const AnyArray array = array_of(value, "bias_terms()");
      if (!same_dtype(array.dtype(), nb::dtype<float>())) {
        throw DataSourceError(where() + ": bias_terms() returned a " + dtype_name(array.dtype()) +
                              " array; biases are float32");
      }
      const auto channels = static_cast<std::size_t>(descriptor().output_feature_channels);
      if (array.size() != channels) {
        throw DataSourceError(where() + ": bias_terms() returned " + std::to_string(array.size()) +
                              " elements; the descriptor has output_feature_channels " +
                              std::to_string(channels));
      }
      bias_array_ = value;
      bias_count_ = channels;
      return static_cast<const float*>(array.data());
    });
  }

  std::optional<std::size_t> weights_size_in_bytes() const override { return weights_bytes_; }
  std::optional<std::size_t> bias_terms_count() const override { return bias_count_; }

  bool load() override {
    // The library names the source and the node around what this throws.
    nb::gil_scoped_acquire gil;
    try {
      nb::object result = required("load");
      return result.is_none() || PyObject_IsTrue(result.ptr()) == 1;
    } catch (nb::python_error& e) {
      throw DataSourceError(python_message(e));
    }
  }

  void purge() override {
    guarded("purge()", [&] {
      release_arrays();
      value_of("purge");
    });
  }

  std::string label() const override {
    return guarded("label()", [&] {
      nb::object value = value_of("label");
      if (!value.is_valid()) return type_name(nb_trampoline.base());
      std::string text;
      if (!nb::try_cast(value, text)) throw returned_wrong_type("label()", value, "str");
      return text;
    });
  }

  std::shared_ptr<ConvolutionDataSource> copy() const override {
    return guarded("copy()", [&] {
      nb::object value = required("copy");
      std::shared_ptr<ConvolutionDataSource> copied;
      if (!nb::try_cast(value, copied) || !copied) {
        throw returned_wrong_type("copy()", value, "ConvolutionDataSource");
      }
      return copied;
    });
  }

  bool update(const ConvolutionGradientState& gradient,
              const WeightsAndBiasesState& source_state) override {
    bool overridden = false;
    const bool changed = guarded("update()", [&] {
      nb::object method = member("update");
      if (!method.is_valid()) return false;
      overridden = true;
      // Copies: Python may keep them past the call.
      nb::object result = method(nb::cast(gradient, nb::rv_policy::copy),
                                 nb::cast(source_state, nb::rv_policy::copy));
      return PyObject_IsTrue(result.ptr()) == 1;
    });
    return overridden ? changed : ConvolutionDataSource::update(gradient, source_state);
  }

 private:
  static bool same_dtype(const nb::dlpack::dtype& a, const nb::dlpack::dtype& b) {
    return a.code == b.code && a.bits == b.bits && a.lanes == b.lanes;
  }

  static std::string type_name(nb::handle object) {
    return nb::cast<std::string>(object.type().attr("__name__"));
  }

  static std::string python_message(const nb::python_error& e) {
    return type_name(e.value()) + ": " + nb::cast<std::string>(nb::str(e.value()));
  }

  static std::string ohwi_text(const ConvolutionDescriptor& d) {
    const auto shape = ohwi_shape(d);
    return std::to_string(shape[0]) + "x" + std::to_string(shape[1]) + "x" +
           std::to_string(shape[2]) + "x" + std::to_string(shape[3]);
  }

  // "Python data source 'conv1' (Conv1Source)", for messages; the GIL is held.
  std::string where() const {
    std::string name;
    try {
      nb::object value = value_of("label");
      if (value.is_valid()) name = nb::cast<std::string>(nb::str(value));
    } catch (const std::exception&) {  // a failing label() must not hide the real error
    }
    const std::string type = type_name(nb_trampoline.base());
    return "Python data source '" + (name.empty() ? type : name) + "' (" + type + ")";
  }

  // Runs `body` with the GIL; Python's exceptions become DataSourceError naming the source.
  template <typename Body>
  std::invoke_result_t<Body&> guarded(const char* method, Body&& body) const {
    nb::gil_scoped_acquire gil;
    if (!gil.is_valid()) {
      throw DataSourceError(std::string("Python data source: ") + method +
                            " called while the interpreter shuts down");
    }
    try {
      return body();
    } catch (nb::python_error& e) {
      throw DataSourceError(where() + ": " + method + " raised " + python_message(e));
    }
  }

  // The subclass's own `name` (a method, a property or a plain attribute, on the class or
  // the instance), or an invalid object where it leaves `name` to this class.
  nb::object member(const char* name) const {
    nb::handle self = nb_trampoline.base();
    nb::handle base = nb::type<ConvolutionDataSource>();
    bool found = false;
    for (nb::handle cls : self.type().attr("__mro__")) {
      if (cls.is(base)) break;
      if (PyMapping_HasKeyString(cls.attr("__dict__").ptr(), name)) {
        found = true;
        break;
      }
    }
    if (!found) {
      nb::object dict = nb::getattr(self, "__dict__", nb::none());
      found = !dict.is_none() && PyMapping_HasKeyString(dict.ptr(), name);
    }
    return found ? nb::object(self.attr(name)) : nb::object();
  }

  // member(name), called when it is a method.
  nb::object value_of(const char* name) const {
    nb::object value = member(name);
    if (value.is_valid() && PyCallable_Check(value.ptr())) return value();
    return value;
  }

  nb::object required(const char* name) const {
    nb::object value = value_of(name);
    if (!value.is_valid()) {
      throw DataSourceError(where() + ": the subclass does not define " + name +
                            "(), which every ConvolutionDataSource needs");
    }
    return value;
  }

  DataSourceError returned_wrong_type(const char* method, const nb::object& value,
                                      const char* expected) const {
    return DataSourceError(where() + ": " + method + " returned " + type_name(value) +
                           "; expected " + expected);
  }

  AnyArray array_of(const nb::object& value, const char* method) const {
    AnyArray array;
    if (!nb::try_cast(value, array)) throw returned_wrong_type(method, value, "a NumPy array");
    try {
      require_host_c_contiguous(array, where() + ": " + method);
    } catch (const Error& e) {
      throw DataSourceError(e.what());
    }
    return array;
  }

  void check_dtype(const AnyArray& array, DataType type) const {
    nb::dlpack::dtype expected;
    const char* name = "";
    switch (type) {
      case DataType::f32:
        expected = nb::dtype<float>();
        name = "float32";
        break;
      case DataType::f16:
        expected = {static_cast<std::uint8_t>(nb::dlpack::dtype_code::Float), 16, 1};
        name = "float16";
        break;
      case DataType::bf16:
        expected = nb::dtype<std::uint16_t>();
        name = "uint16 (the bfloat16 bit patterns)";
        break;
      case DataType::u8:
        throw DataSourceError(where() +
                              ": data_type() is u8; quantized weights cannot come from Python "
                              "yet (give f32, f16 or bf16 weights)");
    }
    if (!same_dtype(array.dtype(), expected)) {
      throw DataSourceError(where() + ": weights() returned a " + dtype_name(array.dtype()) +
                            " array; data_type() is " + to_string(type) + ", which needs " + name);
    }
  }

  void release_arrays() const {
    weights_array_ = nb::object();
    bias_array_ = nb::object();
    weights_bytes_.reset();
    bias_count_.reset();
  }

  // Held between weights() / bias_terms() and purge(); touched only with the GIL held and
  // under library_mutex() (the library's calls).
  mutable nb::object weights_array_, bias_array_;
  mutable std::optional<std::size_t> weights_bytes_, bias_count_;
};

}  // namespace

void bind_data_sources(nb::module_& m) {
  nb::enum_<NeuronType>(m, "NeuronType", "Activation functions (NeuronDescriptor).")
      .value("none", NeuronType::none)
      .value("relu", NeuronType::relu)
      .value("linear", NeuronType::linear)
      .value("sigmoid", NeuronType::sigmoid)
      .value("hard_sigmoid", NeuronType::hard_sigmoid)
      .value("tanh", NeuronType::tanh)
      .value("absolute", NeuronType::absolute)
      .value("soft_plus", NeuronType::soft_plus)
      .value("soft_sign", NeuronType::soft_sign)
      .value("elu", NeuronType::elu)
      .value("prelu", NeuronType::prelu)
      .value("relu_n", NeuronType::relu_n)
      .value("power", NeuronType::power)
      .value("exponential", NeuronType::exponential)
      .value("logarithm", NeuronType::logarithm)
      .value("gelu", NeuronType::gelu);

  nb::class_<NeuronDescriptor>(m, "NeuronDescriptor",
                               "An activation function and its parameters a, b, c.")
      .def(
          "__init__",
          [](NeuronDescriptor* self, NeuronType type, std::optional<float> a,
             std::optional<float> b, std::optional<float> c,
             std::optional<std::vector<float>> prelu_slopes) {
            new (self) NeuronDescriptor(make_neuron(type, a, b, c, std::move(prelu_slopes)));
          },
          "type"_a = NeuronType::none, "a"_a = nb::none(), "b"_a = nb::none(), "c"_a = nb::none(),
          "prelu_slopes"_a = nb::none(),
          "The parameters not given take MPS's defaults for `type` (relu_n: a=1, b=6, ...).")
      .def_rw("type", &NeuronDescriptor::type)
      .def_rw("a", &NeuronDescriptor::a)
      .def_rw("b", &NeuronDescriptor::b)
      .def_rw("c", &NeuronDescriptor::c)
      .def_rw("prelu_slopes", &NeuronDescriptor::prelu_slopes)
      .def("validate", &NeuronDescriptor::validate, "context"_a = "NeuronDescriptor")
      .def("__repr__", &neuron_repr);

  nb::enum_<SubPixelOrder>(m, "SubPixelOrder")
      .value("depth_to_space", SubPixelOrder::depth_to_space)
      .value("pixel_shuffle", SubPixelOrder::pixel_shuffle);

  nb::class_<BatchNormalizationParameters>(m, "BatchNormalizationParameters")
      .def(
          "__init__",
          [](BatchNormalizationParameters* self, std::vector<float> mean,
             std::vector<float> variance, std::vector<float> gamma, std::vector<float> beta,
             float epsilon) {
            new (self) BatchNormalizationParameters{std::move(mean), std::move(variance),
                                                    std::move(gamma), std::move(beta), epsilon};
          },
          "mean"_a, "variance"_a, "gamma"_a, "beta"_a, "epsilon"_a = 1e-5f)
      .def_rw("mean", &BatchNormalizationParameters::mean)
      .def_rw("variance", &BatchNormalizationParameters::variance)
      .def_rw("gamma", &BatchNormalizationParameters::gamma)
      .def_rw("beta", &BatchNormalizationParameters::beta)
      .def_rw("epsilon", &BatchNormalizationParameters::epsilon)
      .def("__repr__", [](const BatchNormalizationParameters& p) {
        return "BatchNormalizationParameters(" + std::to_string(p.mean.size()) +
               " channels, epsilon=" + number(p.epsilon) + ")";
      });

  nb::class_<ConvolutionDescriptor>(m, "ConvolutionDescriptor",
                                    "A convolution's kernel, channels, strides, dilation, groups "
                                    "and fused neuron.")
      .def(
          "__init__",
          [](ConvolutionDescriptor* self, int kernel_width, int kernel_height,
             int input_feature_channels, int output_feature_channels, int stride_x, int stride_y,
             int dilation_x, int dilation_y, int groups,
             std::optional<std::variant<NeuronDescriptor, NeuronType>> neuron) {
            auto* d = new (self) ConvolutionDescriptor(
                kernel_width, kernel_height, input_feature_channels, output_feature_channels);
            d->stride_x = stride_x;
            d->stride_y = stride_y;
            d->dilation_x = dilation_x;
            d->dilation_y = dilation_y;
            d->groups = groups;
            if (neuron) {
              if (const auto* type = std::get_if<NeuronType>(&*neuron)) {
                d->set_neuron(*type);
              } else {
                d->neuron = std::get<NeuronDescriptor>(*neuron);
              }
            }
          },
          "kernel_width"_a = 1, "kernel_height"_a = 1, "input_feature_channels"_a = 1,
          "output_feature_channels"_a = 1, nb::kw_only(), "stride_x"_a = 1, "stride_y"_a = 1,
          "dilation_x"_a = 1, "dilation_y"_a = 1, "groups"_a = 1, "neuron"_a = nb::none())
      .def_static("depthwise", &ConvolutionDescriptor::depthwise, "kernel_width"_a,
                  "kernel_height"_a, "input_feature_channels"_a, "channel_multiplier"_a = 1)
      .def_rw("kernel_width", &ConvolutionDescriptor::kernel_width)
      .def_rw("kernel_height", &ConvolutionDescriptor::kernel_height)
      .def_rw("input_feature_channels", &ConvolutionDescriptor::input_feature_channels)
      .def_rw("output_feature_channels", &ConvolutionDescriptor::output_feature_channels)
      .def_rw("stride_x", &ConvolutionDescriptor::stride_x)
      .def_rw("stride_y", &ConvolutionDescriptor::stride_y)
      .def_rw("dilation_x", &ConvolutionDescriptor::dilation_x)
      .def_rw("dilation_y", &ConvolutionDescriptor::dilation_y)
      .def_rw("groups", &ConvolutionDescriptor::groups)
      .def_rw("sub_pixel_scale_factor", &ConvolutionDescriptor::sub_pixel_scale_factor)
      .def_rw("sub_pixel_order", &ConvolutionDescriptor::sub_pixel_order)
      .def_rw("neuron", &ConvolutionDescriptor::neuron)
      .def_rw("batch_normalization", &ConvolutionDescriptor::batch_normalization)
      .def(
          "set_neuron",
          [](ConvolutionDescriptor& d, NeuronType type, std::optional<float> a,
             std::optional<float> b,
             std::optional<float> c) { d.neuron = make_neuron(type, a, b, c, std::nullopt); },
          "type"_a, "a"_a = nb::none(), "b"_a = nb::none(), "c"_a = nb::none())
      .def("set_sub_pixel", &ConvolutionDescriptor::set_sub_pixel, "scale_factor"_a,
           "order"_a = SubPixelOrder::depth_to_space)
      .def("set_batch_normalization", &ConvolutionDescriptor::set_batch_normalization, "mean"_a,
           "variance"_a, "gamma"_a, "beta"_a, "epsilon"_a)
      .def("channel_multiplier", &ConvolutionDescriptor::channel_multiplier)
      .def("is_depthwise", &ConvolutionDescriptor::is_depthwise)
      .def("weight_count", &ConvolutionDescriptor::weight_count)
      .def("validate", &ConvolutionDescriptor::validate, "context"_a = "ConvolutionDescriptor")
      .def("__repr__", &descriptor_repr);

  nb::enum_<RegularizationType>(m, "RegularizationType")
      .value("none", RegularizationType::none)
      .value("l1", RegularizationType::l1)
      .value("l2", RegularizationType::l2);

  nb::class_<OptimizerDescriptor>(m, "OptimizerDescriptor")
      .def(
          "__init__",
          [](OptimizerDescriptor* self, float learning_rate, float gradient_rescale,
             bool apply_gradient_clipping, float gradient_clip_min, float gradient_clip_max,
             RegularizationType regularization_type, float regularization_scale) {
            new (self) OptimizerDescriptor{
                learning_rate,     gradient_rescale,    apply_gradient_clipping, gradient_clip_min,
                gradient_clip_max, regularization_type, regularization_scale};
          },
          nb::kw_only(), "learning_rate"_a = 0.001f, "gradient_rescale"_a = 1.0f,
          "apply_gradient_clipping"_a = false, "gradient_clip_min"_a = -1.0f,
          "gradient_clip_max"_a = 1.0f, "regularization_type"_a = RegularizationType::none,
          "regularization_scale"_a = 0.0f)
      .def_rw("learning_rate", &OptimizerDescriptor::learning_rate)
      .def_rw("gradient_rescale", &OptimizerDescriptor::gradient_rescale)
      .def_rw("apply_gradient_clipping", &OptimizerDescriptor::apply_gradient_clipping)
      .def_rw("gradient_clip_min", &OptimizerDescriptor::gradient_clip_min)
      .def_rw("gradient_clip_max", &OptimizerDescriptor::gradient_clip_max)
      .def_rw("regularization_type", &OptimizerDescriptor::regularization_type)
      .def_rw("regularization_scale", &OptimizerDescriptor::regularization_scale)
      .def("validate", &OptimizerDescriptor::validate, "where"_a = "OptimizerDescriptor");

  nb::class_<Optimizer>(m, "Optimizer",
                        "The base of SgdOptimizer, AdamOptimizer, RmsPropOptimizer.")
      .def_prop_ro("descriptor", &Optimizer::descriptor)
      .def_prop_rw("learning_rate", &Optimizer::learning_rate, &Optimizer::set_learning_rate)
      .def_prop_ro("name", &Optimizer::name)
      .def("__repr__", [](const Optimizer& o) {
        return "<" + o.name() + " optimizer, learning_rate=" + number(o.learning_rate()) + ">";
      });
  nb::class_<SgdOptimizer, Optimizer>(m, "SgdOptimizer")
      .def(nb::init<OptimizerDescriptor, float, bool>(), "descriptor"_a = OptimizerDescriptor{},
           "momentum"_a = 0.0f, "nesterov"_a = false)
      .def_prop_ro("momentum", &SgdOptimizer::momentum)
      .def_prop_ro("nesterov", &SgdOptimizer::nesterov);
  nb::class_<AdamOptimizer, Optimizer>(m, "AdamOptimizer")
      .def(nb::init<OptimizerDescriptor, double, double, float, bool>(),
           "descriptor"_a = OptimizerDescriptor{}, "beta1"_a = 0.9, "beta2"_a = 0.999,
           "epsilon"_a = 1e-8f, "amsgrad"_a = false)
      .def_prop_ro("beta1", &AdamOptimizer::beta1)
      .def_prop_ro("beta2", &AdamOptimizer::beta2)
      .def_prop_ro("epsilon", &AdamOptimizer::epsilon)
      .def_prop_ro("amsgrad", &AdamOptimizer::amsgrad);
  nb::class_<RmsPropOptimizer, Optimizer>(m, "RmsPropOptimizer")
      .def(nb::init<OptimizerDescriptor, double, float>(), "descriptor"_a = OptimizerDescriptor{},
           "decay"_a = 0.9, "epsilon"_a = 1e-8f)
      .def_prop_ro("decay", &RmsPropOptimizer::decay)
      .def_prop_ro("epsilon", &RmsPropOptimizer::epsilon);

  nb::class_<ConvolutionDataSource, PyConvolutionDataSource>(
      m, "ConvolutionDataSource",
      "Where a convolution's weights come from. Subclass it in Python: define load(), "
      "purge(), descriptor(), weights() (a NumPy array, OHWI) and, as needed, bias_terms(), "
      "data_type() (default DataType.f32), label() (default the class name), copy() and "
      "update(gradient, source_state) (TrainingStyle.cpu). Call super().__init__().")
      .def(nb::init<>())
      .def_prop_ro("label", &ConvolutionDataSource::label)
      .def_prop_ro("descriptor", &ConvolutionDataSource::descriptor)
      .def_prop_ro("data_type", &ConvolutionDataSource::data_type)
      .def("copy", &ConvolutionDataSource::copy,
           "A new, independent source with the same contents.")
      .def("__repr__", [](nb::handle self) {
        const auto& source = nb::cast<const ConvolutionDataSource&>(self);
        return "<" + nb::cast<std::string>(self.type().attr("__name__")) + " '" + source.label() +
               "'>";
      });

  nb::class_<ArrayDataSource, ConvolutionDataSource>(
      m, "ArrayDataSource", "Weights held in memory (a copy of the arrays given).")
      .def(
          "__init__",
          [](ArrayDataSource* self, std::string label, ConvolutionDescriptor descriptor,
             const AnyArray& weights, std::optional<AnyArray> bias) {
            const std::string what = "ArrayDataSource '" + label + "'";
            auto w = weights_of(weights, descriptor, what);
            auto b = bias_of(bias, what);
            new (self) ArrayDataSource(std::move(label), std::move(descriptor), std::move(w),
                                       std::move(b));
          },
          "label"_a, "descriptor"_a, "weights"_a, "bias"_a = nb::none(),
          "weights: OHWI (output, kernel_height, kernel_width, input / groups) or flat; bias: "
          "one per output channel or None. float32 (float16 and float64 are converted).");

  nb::class_<FileDataSource, ConvolutionDataSource>(
      m, "FileDataSource", "Weights read from a safetensors file when a graph is compiled.")
      .def(nb::init<std::filesystem::path, ConvolutionDescriptor, std::string, std::string>(),
           "path"_a, "descriptor"_a, "tensor_prefix"_a = "", "label"_a = "")
      .def_prop_ro("is_loaded", &FileDataSource::is_loaded);

  nb::class_<TrainableDataSource, ConvolutionDataSource>(
      m, "TrainableDataSource", "f32 weights and biases with an optimizer, trained by a graph.")
      .def(
          "__init__",
          [](TrainableDataSource* self, std::string label, ConvolutionDescriptor descriptor,
             const AnyArray& weights, std::optional<AnyArray> bias,
             std::shared_ptr<Optimizer> optimizer) {
            const std::string what = "TrainableDataSource '" + label + "'";
            auto w = weights_of(weights, descriptor, what);
            auto b = bias_of(bias, what);
            new (self) TrainableDataSource(std::move(label), std::move(descriptor), std::move(w),
                                           std::move(b), optimizer_or_default(optimizer));
          },
          "label"_a, "descriptor"_a, "weights"_a, "bias"_a = nb::none(),
          nb::arg("optimizer").none() = nb::none(),
          "As ArrayDataSource; optimizer None means SgdOptimizer().")
      .def_static(
          "uniform",
          [](std::string label, ConvolutionDescriptor descriptor, float limit, float bias_value,
             std::uint64_t seed, std::shared_ptr<Optimizer> optimizer) {
            return TrainableDataSource::uniform(std::move(label), std::move(descriptor), limit,
                                                bias_value, seed, optimizer_or_default(optimizer));
          },
          "label"_a, "descriptor"_a, "limit"_a, "bias_value"_a = 0.0f, "seed"_a = 1,
          nb::arg("optimizer").none() = nb::none(),
          "Weights uniform in [-limit, limit] from `seed`.")
      .def(
          "current_weights",
          [](const TrainableDataSource& s) {
            return numpy_floats(s.current_weights(), ohwi_shape(s.descriptor()));
          },
          "A copy of the current weights, OHWI.")
      .def(
          "current_bias",
          [](const TrainableDataSource& s) {
            const auto bias = s.current_bias();
            return numpy_floats(bias, {bias.size()});
          },
          "A copy of the current biases (empty without biases).")
      .def(
          "assign",
          [](TrainableDataSource& s, const AnyArray& weights, std::optional<AnyArray> bias) {
            const std::string what = "TrainableDataSource '" + s.label() + "'";
            s.assign(weights_of(weights, s.descriptor(), what), bias_of(bias, what));
          },
          "weights"_a, "bias"_a = nb::none(),
          "Replaces the weights and biases; graphs see them after reload_from_data_sources().")
      .def_prop_ro("optimizer", &TrainableDataSource::optimizer)
      .def_prop_ro("update_count", &TrainableDataSource::update_count);

  nb::class_<BatchNormalizationDataSource>(m, "BatchNormalizationDataSource",
                                           "A batch normalization's parameters.")
      .def(nb::init<std::string, BatchNormalizationParameters, std::shared_ptr<const Optimizer>,
                    float>(),
           "label"_a, "parameters"_a, nb::arg("optimizer").none() = nb::none(), "momentum"_a = 0.1f)
      .def_prop_ro("label", &BatchNormalizationDataSource::label)
      .def_prop_ro("channels", &BatchNormalizationDataSource::channels)
      .def_prop_ro("momentum", &BatchNormalizationDataSource::momentum)
      .def_prop_ro("parameters", &BatchNormalizationDataSource::parameters)
      .def_prop_ro("update_count", &BatchNormalizationDataSource::update_count)
      .def("__repr__", [](const BatchNormalizationDataSource& s) {
        return "<BatchNormalizationDataSource '" + s.label() + "', " +
               std::to_string(s.channels()) + " channels>";
      });
}

}  // namespace cnngraph::python
