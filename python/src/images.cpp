// Element types, image shapes, images (to and from NumPy, copying), devices, precisions and
// graph options.
#include <cstring>
#include <sstream>

#include "bindings.hpp"

namespace cnngraph::python {

namespace {

constexpr nb::dlpack::dtype float16_dtype{static_cast<std::uint8_t>(nb::dlpack::dtype_code::Float),
                                          16, 1};

bool same_dtype(const nb::dlpack::dtype& a, const nb::dlpack::dtype& b) {
  return a.code == b.code && a.bits == b.bits && a.lanes == b.lanes;
}

// The image element type that stores an array's elements as they are.
DataType data_type_of(const AnyArray& array) {
  const auto dtype = array.dtype();
  if (same_dtype(dtype, nb::dtype<float>())) return DataType::f32;
  if (same_dtype(dtype, float16_dtype)) return DataType::f16;
  if (same_dtype(dtype, nb::dtype<std::uint8_t>())) return DataType::u8;
  throw InvalidArgument("Image: the array's dtype is " + dtype_name(dtype) +
                        "; an image takes float32, float16 or uint8 (normalized: v / 255) "
                        "elements (convert with array.astype(numpy.float32))");
}

nb::dlpack::dtype dlpack_dtype(DataType type) {
  switch (type) {
    case DataType::f32:
      return nb::dtype<float>();
    case DataType::f16:
      return float16_dtype;
    case DataType::u8:
      return nb::dtype<std::uint8_t>();
    case DataType::bf16:
      break;
  }
  throw Unsupported("Image: NumPy has no element type for " + to_string(type));
}

std::string shape_text(const AnyArray& array) {
  std::string text = "(";
  for (std::size_t i = 0; i < array.ndim(); ++i) {
    text += (i ? ", " : "") + std::to_string(array.shape(i));
  }
  return text + (array.ndim() == 1 ? ",)" : ")");
}

// Copies between NHWC and NCHW order, element by element of `size` bytes.
void transpose_copy(const std::byte* from, std::byte* to, const ImageShape& shape, std::size_t size,
                    bool nchw_to_nhwc) {
  const std::size_t n = shape.batch, h = shape.height, w = shape.width, c = shape.channels;
  for (std::size_t b = 0; b < n; ++b) {
    for (std::size_t k = 0; k < c; ++k) {
      for (std::size_t y = 0; y < h; ++y) {
        for (std::size_t x = 0; x < w; ++x) {
          const std::size_t nchw = ((b * c + k) * h + y) * w + x;
          const std::size_t nhwc = ((b * h + y) * w + x) * c + k;
          if (nchw_to_nhwc) {
            std::memcpy(to + nhwc * size, from + nchw * size, size);
          } else {
            std::memcpy(to + nchw * size, from + nhwc * size, size);
          }
        }
      }
    }
  }
}

Image image_from_array(const AnyArray& array, bool nchw, std::optional<DataType> type,
                       std::optional<Device> device) {
  const char* layout =
      nchw ? "NCHW (batch, channels, height, width)" : "NHWC (batch, height, width, channels)";
  if (array.ndim() != 4) {
    throw ShapeError("Image: the array has " + std::to_string(array.ndim()) +
                     " dimensions, shape " + shape_text(array) + "; an image is 4-dimensional, " +
                     layout);
  }
  for (std::size_t i = 0; i < 4; ++i) {
    if (array.shape(i) == 0 || array.shape(i) > static_cast<std::size_t>(INT32_MAX)) {
      throw ShapeError("Image: the array's shape " + shape_text(array) + " has dimension " +
                       std::to_string(i) + " of " + std::to_string(array.shape(i)) +
                       "; every dimension of an image must be from 1 to 2^31 - 1");
    }
  }
  const DataType stored = data_type_of(array);
  require_host_c_contiguous(array, "Image");
  const auto d = [&](std::size_t i) { return static_cast<int>(array.shape(i)); };
  const ImageShape shape =
      nchw ? ImageShape{d(0), d(2), d(3), d(1)} : ImageShape{d(0), d(1), d(2), d(3)};
  Image image(shape, stored);
  const auto* from = static_cast<const std::byte*>(array.data());
  if (nchw) {
    transpose_copy(from, image.data(), shape, size_of(stored), true);
  } else {
    std::memcpy(image.data(), from, image.size_in_bytes());
  }
  if (type && *type != stored) image = image.converted_to(*type);
  if (device) image = image.to(*device);
  return image;
}

nb::object image_to_numpy(const Image& image, bool nchw) {
  if (image.empty()) throw InvalidArgument("Image.numpy: the image is empty");
  Image host = image.is_on_host() ? image : image.to(Device::cpu());
  if (host.data_type() == DataType::bf16) host = host.converted_to(DataType::f32);
  const ImageShape& s = host.shape();
  const std::size_t bytes = host.size_in_bytes();
  auto buffer = std::make_unique<std::byte[]>(bytes);
  if (nchw) {
    transpose_copy(host.data(), buffer.get(), s, size_of(host.data_type()), false);
  } else {
    std::memcpy(buffer.get(), host.data(), bytes);
  }
  const auto u = [](int v) { return static_cast<std::size_t>(v); };
  const std::size_t shape[4] = {u(s.batch), nchw ? u(s.channels) : u(s.height),
                                nchw ? u(s.height) : u(s.width), nchw ? u(s.width) : u(s.channels)};
  std::byte* data = buffer.get();
  nb::capsule owner(buffer.release(),
                    [](void* p) noexcept { delete[] static_cast<std::byte*>(p); });
  return nb::cast(
      nb::ndarray<nb::numpy>(data, 4, shape, owner, nullptr, dlpack_dtype(host.data_type())));
}

Device device_from_name(const std::string& name) {
  if (name == "cpu") return Device::cpu();
  if (name == "cpu_reference") return Device::cpu_reference();
  if (name == "cuda") return Device::cuda(0);
  if (name.rfind("cuda:", 0) == 0) {
    const std::string index = name.substr(5);
    if (!index.empty() && index.size() < 6 &&
        index.find_first_not_of("0123456789") == std::string::npos) {
      return Device::cuda(std::stoi(index));
    }
  }
  throw InvalidArgument("Device: unknown device '" + name +
                        "'; expected 'cpu', 'cpu_reference', 'cuda' or 'cuda:<index>'");
}

std::string device_repr(const Device& device) {
  switch (device.kind()) {
    case DeviceKind::cpu:
      return "Device.cpu()";
    case DeviceKind::cpu_reference:
      return "Device.cpu_reference()";
    case DeviceKind::cuda:
      return "Device.cuda(" + std::to_string(device.index()) + ")";
  }
  return "Device(?)";
}

const char* precision_name(Precision precision) {
  switch (precision) {
    case Precision::f32:
      return "f32";
    case Precision::tf32_allowed:
      return "tf32_allowed";
    case Precision::f16:
      return "f16";
    case Precision::bf16:
      return "bf16";
  }
  return "?";
}

std::string options_repr(const GraphOptions& o) {
  std::ostringstream s;
  const auto flag = [](bool b) { return b ? "True" : "False"; };
  s << "GraphOptions(precision=Precision." << precision_name(o.precision)
    << ", deterministic=" << flag(o.deterministic)
    << ", workspace_limit_bytes=" << o.workspace_limit_bytes
    << ", cuda_graphs=" << flag(o.cuda_graphs) << ", autotune=" << flag(o.autotune)
    << ", plan_cache_file='" << o.plan_cache_file << "', verbose=" << flag(o.verbose)
    << ", flush_denormals=" << flag(o.flush_denormals)
    << ", initial_loss_scale=" << o.initial_loss_scale
    << ", loss_scale_growth_interval=" << o.loss_scale_growth_interval
    << ", max_compiled_sizes=" << o.max_compiled_sizes << ")";
  return s.str();
}

}  // namespace

std::string dtype_name(const nb::dlpack::dtype& dtype) {
  using Code = nb::dlpack::dtype_code;
  const auto code = static_cast<Code>(dtype.code);
  if (code == Code::Bool) return "bool";
  const char* kind = code == Code::Int       ? "int"
                     : code == Code::UInt    ? "uint"
                     : code == Code::Float   ? "float"
                     : code == Code::Bfloat  ? "bfloat"
                     : code == Code::Complex ? "complex"
                                             : "an unusual type of ";
  return kind + std::to_string(dtype.bits);
}

void require_host_c_contiguous(const AnyArray& array, const std::string& what) {
  if (array.device_type() != nb::device::cpu::value) {
    throw Unsupported(what +
                      ": the array is not in host memory; copy it to the host first "
                      "(arrays on a GPU are taken without a copy in a later version)");
  }
  std::int64_t expected = 1;
  for (std::size_t i = array.ndim(); i-- > 0;) {
    if (array.shape(i) != 1 && array.stride(i) != expected) {
      throw InvalidArgument(what + ": the array is not C-contiguous (shape " + shape_text(array) +
                            "); pass numpy.ascontiguousarray(array)");
    }
    expected *= static_cast<std::int64_t>(array.shape(i));
  }
}

std::vector<float> floats_of(const AnyArray& array, const std::string& what) {
  require_host_c_contiguous(array, what);
  const auto dtype = array.dtype();
  const std::size_t n = array.size();
  std::vector<float> values(n);
  if (same_dtype(dtype, nb::dtype<float>())) {
    std::memcpy(values.data(), array.data(), n * sizeof(float));
  } else if (same_dtype(dtype, nb::dtype<double>())) {
    const auto* from = static_cast<const double*>(array.data());
    for (std::size_t i = 0; i < n; ++i) values[i] = static_cast<float>(from[i]);
  } else if (same_dtype(dtype, float16_dtype)) {
    const auto* from = static_cast<const std::uint16_t*>(array.data());
    for (std::size_t i = 0; i < n; ++i) values[i] = half_to_float(from[i]);
  } else {
    throw InvalidArgument(what + ": the array's dtype is " + dtype_name(dtype) +
                          "; expected float32 (float16 and float64 are converted)");
  }
  return values;
}

nb::object numpy_floats(const std::vector<float>& values, std::vector<std::size_t> shape) {
  auto buffer = std::make_unique<float[]>(values.size());
  std::memcpy(buffer.get(), values.data(), values.size() * sizeof(float));
  float* data = buffer.get();
  nb::capsule owner(buffer.release(), [](void* p) noexcept { delete[] static_cast<float*>(p); });
  return nb::cast(nb::ndarray<nb::numpy, float>(data, shape.size(), shape.data(), owner));
}

void bind_images(nb::module_& m) {
  nb::enum_<DataType>(m, "DataType", "Element type of an image or of weights.")
      .value("f32", DataType::f32)
      .value("f16", DataType::f16)
      .value("bf16", DataType::bf16)
      .value("u8", DataType::u8, "normalized: the byte v means v / 255");

  nb::enum_<DeviceKind>(m, "DeviceKind")
      .value("cpu", DeviceKind::cpu)
      .value("cpu_reference", DeviceKind::cpu_reference)
      .value("cuda", DeviceKind::cuda);

  nb::class_<Device>(m, "Device",
                     "Where a graph runs: Device.cpu(), Device.cpu_reference(), "
                     "Device.cuda(index), or Device('cuda:1').")
      .def(
          "__init__",
          [](Device* self, const std::string& name) { new (self) Device(device_from_name(name)); },
          "name"_a)
      .def_static("cpu", &Device::cpu, "The fast CPU backend (oneDNN).")
      .def_static("cpu_reference", &Device::cpu_reference,
                  "Plain loops in double precision: the oracle the other backends are tested "
                  "against.")
      .def_static("cuda", &Device::cuda, "index"_a = 0,
                  "An NVIDIA GPU; DeviceError when this build has no CUDA backend or the GPU is "
                  "absent.")
      .def_static("cuda_device_count", &Device::cuda_device_count,
                  "How many CUDA devices this build can use (0 without the CUDA backend).")
      .def_prop_ro("kind", &Device::kind)
      .def_prop_ro("index", &Device::index)
      .def_prop_ro("name", &Device::name)
      .def("__eq__", [](const Device& a, const Device& b) { return a == b; })
      .def("__hash__",
           [](const Device& d) {
             return nb::hash(nb::make_tuple(static_cast<int>(d.kind()), d.index()));
           })
      .def("__repr__", &device_repr)
      .def("__str__", &Device::name);

  nb::class_<ImageShape>(m, "ImageShape", "The size of a batch of images (NHWC).")
      .def(
          "__init__",
          [](ImageShape* self, int batch, int height, int width, int channels) {
            new (self) ImageShape{batch, height, width, channels};
          },
          "batch"_a, "height"_a, "width"_a, "channels"_a)
      .def_rw("batch", &ImageShape::batch)
      .def_rw("height", &ImageShape::height)
      .def_rw("width", &ImageShape::width)
      .def_rw("channels", &ImageShape::channels)
      .def("elements", &ImageShape::elements)
      .def("elements_per_image", &ImageShape::elements_per_image)
      .def("__eq__", [](const ImageShape& a, const ImageShape& b) { return a == b; })
      .def("__iter__",
           [](const ImageShape& s) {
             return nb::make_tuple(s.batch, s.height, s.width, s.channels).attr("__iter__")();
           })
      .def("__repr__",
           [](const ImageShape& s) {
             return "ImageShape(batch=" + std::to_string(s.batch) +
                    ", height=" + std::to_string(s.height) + ", width=" + std::to_string(s.width) +
                    ", channels=" + std::to_string(s.channels) + ")";
           })
      .def("__str__", [](const ImageShape& s) { return to_string(s); });

  nb::class_<Image>(m, "Image",
                    "A batch of images in NHWC layout on a device. Made from a NumPy array "
                    "(copied) or zero-filled from a shape; numpy() copies it out.")
      .def(nb::init<ImageShape, DataType>(), "shape"_a, "data_type"_a = DataType::f32,
           "A zero-filled batch of `shape`.")
      .def(
          "__init__",
          [](Image* self, const AnyArray& array, bool nchw, std::optional<DataType> data_type,
             std::optional<Device> device) {
            new (self) Image(image_from_array(array, nchw, data_type, device));
          },
          "array"_a, nb::kw_only(), "nchw"_a = false, "data_type"_a = nb::none(),
          "device"_a = nb::none(),
          "A copy of a 4-D C-contiguous float32, float16 or uint8 array: NHWC, or NCHW with "
          "nchw=True. data_type converts the elements, device copies the image there.")
      .def_prop_ro("shape", &Image::shape)
      .def_prop_ro("data_type", &Image::data_type)
      .def_prop_ro("device", &Image::device)
      .def_prop_ro("size_in_bytes", &Image::size_in_bytes)
      .def_prop_ro("is_on_host", &Image::is_on_host)
      .def("to", &Image::to, "device"_a, "A copy on `device` (this image when already there).")
      .def("converted_to", &Image::converted_to, "data_type"_a,
           "A host copy in another element type.")
      .def("numpy", &image_to_numpy, nb::kw_only(), "nchw"_a = false,
           "A NumPy copy: NHWC (or NCHW with nchw=True), float32, float16 or uint8 as stored "
           "(bf16 as float32).")
      .def(
          "__array__",
          [](const Image& image, nb::handle dtype, nb::handle) {
            nb::object array = image_to_numpy(image, false);
            return dtype.is_none() ? array : array.attr("astype")(dtype);
          },
          "dtype"_a = nb::none(), "copy"_a = nb::none())
      .def("__repr__", [](const Image& image) {
        if (image.empty()) return std::string("Image()");
        return "Image(" + to_string(image.shape()) + ", " + to_string(image.data_type()) + ", " +
               image.device().name() + ")";
      });

  nb::enum_<Precision>(m, "Precision", "Arithmetic of intermediates and filters.")
      .value("f32", Precision::f32)
      .value("tf32_allowed", Precision::tf32_allowed)
      .value("f16", Precision::f16)
      .value("bf16", Precision::bf16);

  nb::class_<GraphOptions>(m, "GraphOptions", "The options a Graph is compiled with.")
      .def(
          "__init__",
          [](GraphOptions* self, Precision precision, bool deterministic,
             std::size_t workspace_limit_bytes, bool cuda_graphs, bool autotune,
             std::string plan_cache_file, bool verbose, bool flush_denormals,
             float initial_loss_scale, int loss_scale_growth_interval,
             std::size_t max_compiled_sizes) {
            new (self) GraphOptions{precision,
                                    deterministic,
                                    workspace_limit_bytes,
                                    cuda_graphs,
                                    autotune,
                                    std::move(plan_cache_file),
                                    verbose,
                                    flush_denormals,
                                    initial_loss_scale,
                                    loss_scale_growth_interval,
                                    max_compiled_sizes};
          },
          nb::kw_only(), "precision"_a = Precision::f32, "deterministic"_a = false,
          "workspace_limit_bytes"_a = 0, "cuda_graphs"_a = true, "autotune"_a = false,
          "plan_cache_file"_a = "", "verbose"_a = false, "flush_denormals"_a = true,
          "initial_loss_scale"_a = 65536.0f, "loss_scale_growth_interval"_a = 2000,
          "max_compiled_sizes"_a = 16)
      .def_rw("precision", &GraphOptions::precision)
      .def_rw("deterministic", &GraphOptions::deterministic)
      .def_rw("workspace_limit_bytes", &GraphOptions::workspace_limit_bytes)
      .def_rw("cuda_graphs", &GraphOptions::cuda_graphs)
      .def_rw("autotune", &GraphOptions::autotune)
      .def_rw("plan_cache_file", &GraphOptions::plan_cache_file)
      .def_rw("verbose", &GraphOptions::verbose)
      .def_rw("flush_denormals", &GraphOptions::flush_denormals)
      .def_rw("initial_loss_scale", &GraphOptions::initial_loss_scale)
      .def_rw("loss_scale_growth_interval", &GraphOptions::loss_scale_growth_interval)
      .def_rw("max_compiled_sizes", &GraphOptions::max_compiled_sizes)
      .def("__repr__", &options_repr);
}

}  // namespace cnngraph::python
