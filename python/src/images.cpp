// Element types, image shapes, images (to and from NumPy and DLPack, without a copy where
// the memory allows), devices, precisions and graph options.
#include <cstring>
#include <sstream>

#include "bindings.hpp"

namespace cnngraph::python {

namespace {

constexpr nb::dlpack::dtype float16_dtype{static_cast<std::uint8_t>(nb::dlpack::dtype_code::Float),
                                          16, 1};
constexpr nb::dlpack::dtype bfloat16_dtype{
    static_cast<std::uint8_t>(nb::dlpack::dtype_code::Bfloat), 16, 1};

bool same_dtype(const nb::dlpack::dtype& a, const nb::dlpack::dtype& b) {
  return a.code == b.code && a.bits == b.bits && a.lanes == b.lanes;
}

// The image element type that stores an array's elements as they are.
DataType data_type_of(const AnyArray& array) {
  const auto dtype = array.dtype();
  if (same_dtype(dtype, nb::dtype<float>())) return DataType::f32;
  if (same_dtype(dtype, float16_dtype)) return DataType::f16;
  if (same_dtype(dtype, nb::dtype<std::uint8_t>())) return DataType::u8;
  if (same_dtype(dtype, bfloat16_dtype)) return DataType::bf16;
  throw InvalidArgument(
      "Image: the array's dtype is " + dtype_name(dtype) +
      "; an image takes float32, float16, bfloat16 (DLPack) or uint8 "
      "(normalized: v / 255) elements (convert with array.astype(numpy.float32))");
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
      return bfloat16_dtype;
  }
  throw Unsupported("Image: no array element type for " + to_string(type));
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

// Keeps `value` (an array, an image) alive for as long as an Image's storage or an exported
// array needs it. The last holder may be a library thread, so the release takes the GIL;
// after the interpreter has gone there is nothing left to release.
template <typename T>
std::shared_ptr<const void> owner_of(T value) {
  return std::shared_ptr<const void>(new T(std::move(value)), [](const void* p) {
    auto* held = static_cast<T*>(const_cast<void*>(p));
    if (!Py_IsInitialized()) return;
    nb::gil_scoped_acquire gil;
    delete held;
  });
}

const char* layout_name(bool nchw) {
  return nchw ? "NCHW (batch, channels, height, width)" : "NHWC (batch, height, width, channels)";
}

// Whether an array's elements lie in NHWC order without gaps: a C-contiguous NHWC array, or
// an NCHW-shaped one in channels-last memory (PyTorch's torch.channels_last). Dimensions of
// size 1 may have any stride.
bool memory_is_nhwc(const AnyArray& array, bool nchw) {
  const std::size_t order[4] = {0, 1, 2, 3};
  const std::size_t channels_last[4] = {0, 2, 3, 1};
  const std::size_t* dims = nchw ? channels_last : order;
  std::int64_t expected = 1;
  for (std::size_t i = 4; i-- > 0;) {
    const std::size_t d = dims[i];
    if (array.shape(d) != 1 && array.stride(d) != expected) return false;
    expected *= static_cast<std::int64_t>(array.shape(d));
  }
  return true;
}

bool is_c_contiguous(const AnyArray& array) {
  std::int64_t expected = 1;
  for (std::size_t i = array.ndim(); i-- > 0;) {
    if (array.shape(i) != 1 && array.stride(i) != expected) return false;
    expected *= static_cast<std::int64_t>(array.shape(i));
  }
  return true;
}

// The device an array's memory is on, or Unsupported for memory images cannot live in.
Device device_of(const AnyArray& array) {
  if (array.device_type() == nb::device::cpu::value) return Device::cpu();
  if (array.device_type() == nb::device::cuda::value) return Device::cuda(array.device_id());
  throw Unsupported("Image: the array is in memory of DLPack device type " +
                    std::to_string(array.device_type()) +
                    "; an image takes host (CPU) or CUDA device memory");
}

bool same_place(const Device& a, const Device& b) {
  const bool a_host = a.kind() != DeviceKind::cuda, b_host = b.kind() != DeviceKind::cuda;
  return a_host == b_host && (a_host || a == b);
}

Image image_from_array(const AnyArray& array, bool nchw, std::optional<DataType> type,
                       std::optional<Device> device, std::optional<bool> copy) {
  const char* layout = layout_name(nchw);
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
  const Device where = device_of(array);
  const auto d = [&](std::size_t i) { return static_cast<int>(array.shape(i)); };
  const ImageShape shape =
      nchw ? ImageShape{d(0), d(2), d(3), d(1)} : ImageShape{d(0), d(1), d(2), d(3)};
  const bool nhwc_memory = memory_is_nhwc(array, nchw);
  if (!nhwc_memory && !(nchw && is_c_contiguous(array))) {
    throw InvalidArgument("Image: the array (shape " + shape_text(array) +
                          ") is not C-contiguous " + layout + (nchw ? " or channels-last" : "") +
                          "; pass numpy.ascontiguousarray(array) (or tensor.contiguous())");
  }
  auto* data = static_cast<std::byte*>(const_cast<void*>(array.data()));
  const bool aligned = reinterpret_cast<std::uintptr_t>(data) % size_of(stored) == 0;
  const bool type_kept = !type || *type == stored;
  const bool place_kept = !device || same_place(*device, where);
  if (nhwc_memory && aligned && type_kept && place_kept && copy != true) {
    // Another library's kernels may still be writing a CUDA array (DLPack hands it over
    // without its stream): wait for them before the graph reads it.
    if (where.kind() == DeviceKind::cuda) where.synchronize();
    return Image::wrap(shape, stored, data, where, owner_of(array));
  }
  if (copy == false) {
    const std::string why = !nhwc_memory ? "its NCHW elements must be transposed to NHWC"
                            : !aligned   ? "its data is not aligned to its element size"
                            : !type_kept ? "its elements must be converted to " + to_string(*type)
                                         : "it must be copied to " + device->name();
    throw InvalidArgument("Image: copy=False, but the array cannot be used without a copy: " + why);
  }
  // A host image with the array's elements in NHWC order. CUDA memory comes to the host
  // first, read as an image of the array's own dimensions (the same bytes).
  const std::byte* from = data;
  Image staged;
  if (where.kind() == DeviceKind::cuda) {
    if (!aligned) {
      throw Unsupported("Image: the CUDA array's data is not aligned to its element size");
    }
    where.synchronize();
    staged = Image::wrap({d(0), d(1), d(2), d(3)}, stored, data, where, owner_of(array))
                 .to(Device::cpu());
    from = staged.data();
  }
  Image host(shape, stored);
  if (nhwc_memory) {
    std::memcpy(host.data(), from, host.size_in_bytes());
  } else {
    transpose_copy(from, host.data(), shape, size_of(stored), true);
  }
  if (!type_kept) host = host.converted_to(*type);
  const Device target = device ? *device : where;
  return host.to(target);
}

// An array over an image's storage, which it keeps alive: NHWC, or with nchw an NCHW view
// of the same memory (strides, no copy). `framework` picks the Python type.
template <typename Framework>
nb::object array_view(const Image& image, bool nchw) {
  const ImageShape& s = image.shape();
  const auto u = [](int v) { return static_cast<std::size_t>(v); };
  const auto i = [](int v) { return static_cast<std::int64_t>(v); };
  const std::size_t nhwc_shape[4] = {u(s.batch), u(s.height), u(s.width), u(s.channels)};
  const std::size_t nchw_shape[4] = {u(s.batch), u(s.channels), u(s.height), u(s.width)};
  const std::int64_t nchw_strides[4] = {i(s.height) * i(s.width) * i(s.channels), 1,
                                        i(s.width) * i(s.channels), i(s.channels)};
  auto* held = new Image(image);
  nb::capsule owner(held, [](void* p) noexcept { delete static_cast<Image*>(p); });
  const bool cuda = !image.is_on_host();
  return nb::cast(nb::ndarray<Framework>(
      const_cast<std::byte*>(image.data()), 4, nchw ? nchw_shape : nhwc_shape, owner,
      nchw ? nchw_strides : nullptr, dlpack_dtype(image.data_type()),
      cuda ? nb::device::cuda::value : nb::device::cpu::value, cuda ? image.device().index() : 0));
}

nb::object image_to_numpy(const Image& image, bool nchw, bool copy) {
  if (image.empty()) throw InvalidArgument("Image.numpy: the image is empty");
  Image host = image.is_on_host() ? image : image.to(Device::cpu());
  if (host.data_type() == DataType::bf16) host = host.converted_to(DataType::f32);
  const bool shares = host.data() == image.data();
  if (shares && !copy) return array_view<nb::numpy>(host, nchw);
  if (shares) {
    Image own(host.shape(), host.data_type());
    std::memcpy(own.data(), host.data(), host.size_in_bytes());
    host = own;
  }
  // A copy is C-contiguous in the order asked for.
  nb::object array = array_view<nb::numpy>(host, nchw);
  return nchw ? array.attr("copy")() : array;
}

// DLPack export: the image's own memory, host or CUDA. Results of a run are complete when
// they are returned, so the consumer's stream needs no synchronization.
nb::object image_dlpack(const Image& image, nb::kwargs kwargs) {
  if (image.empty()) throw InvalidArgument("Image.__dlpack__: the image is empty");
  return array_view<nb::array_api>(image, false).attr("__dlpack__")(**kwargs);
}

nb::tuple image_dlpack_device(const Image& image) {
  if (image.is_on_host()) return nb::make_tuple(static_cast<int>(nb::device::cpu::value), 0);
  return nb::make_tuple(static_cast<int>(nb::device::cuda::value), image.device().index());
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
    << ", max_compiled_sizes=" << o.max_compiled_sizes
    << ", training_fusion=" << flag(o.training_fusion) << ")";
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
                      ": the array is not in host memory; copy it to the host first (weights, "
                      "biases and labels are read on the host; only images take GPU arrays)");
  }
  if (!is_c_contiguous(array)) {
    throw InvalidArgument(what + ": the array is not C-contiguous (shape " + shape_text(array) +
                          "); pass numpy.ascontiguousarray(array)");
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

  nb::class_<DeviceMemoryStatistics>(m, "DeviceMemoryStatistics",
                                     "What cnngraph holds of a CUDA device's memory.")
      .def_ro("bytes_in_use", &DeviceMemoryStatistics::bytes_in_use)
      .def_ro("peak_bytes_in_use", &DeviceMemoryStatistics::peak_bytes_in_use)
      .def_ro("bytes_reserved", &DeviceMemoryStatistics::bytes_reserved)
      .def("__repr__", [](const DeviceMemoryStatistics& s) {
        return "DeviceMemoryStatistics(bytes_in_use=" + std::to_string(s.bytes_in_use) +
               ", peak_bytes_in_use=" + std::to_string(s.peak_bytes_in_use) +
               ", bytes_reserved=" + std::to_string(s.bytes_reserved) + ")";
      });

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
      .def("synchronize", &Device::synchronize, nb::call_guard<nb::gil_scoped_release>(),
           "Waits until the work queued on this device (by any library of this process) is "
           "done.")
      .def("memory_statistics", &Device::memory_statistics,
           "The device memory cnngraph holds (CUDA devices; Unsupported on the CPU ones).")
      .def("reset_peak_memory", &Device::reset_peak_memory,
           "Starts the peak of memory_statistics() over from the bytes in use now.")
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
                    "A batch of images in NHWC layout on a device. Made from a NumPy array, a "
                    "DLPack tensor (PyTorch, CuPy, JAX; host or CUDA) without a copy where the "
                    "memory allows, or zero-filled from a shape.")
      .def(nb::init<ImageShape, DataType>(), "shape"_a, "data_type"_a = DataType::f32,
           "A zero-filled batch of `shape`.")
      .def(
          "__init__",
          [](Image* self, const AnyArray& array, bool nchw, std::optional<DataType> data_type,
             std::optional<Device> device, std::optional<bool> copy) {
            new (self) Image(image_from_array(array, nchw, data_type, device, copy));
          },
          "array"_a, nb::kw_only(), "nchw"_a = false, "data_type"_a = nb::none(),
          "device"_a = nb::none(), "copy"_a = nb::none(),
          "A 4-D float32, float16, bfloat16 or uint8 array or tensor: NHWC, or NCHW with "
          "nchw=True. Without a copy (the image shares the array's memory and keeps the array "
          "alive) when its elements lie in NHWC order (C-contiguous NHWC, or channels-last "
          "NCHW), aligned, and neither data_type nor device asks for a change; otherwise a "
          "copy. copy=True always copies; copy=False raises instead of copying.")
      .def_prop_ro("shape", &Image::shape)
      .def_prop_ro("data_type", &Image::data_type)
      .def_prop_ro("device", &Image::device)
      .def_prop_ro("size_in_bytes", &Image::size_in_bytes)
      .def_prop_ro("is_on_host", &Image::is_on_host)
      .def_prop_ro(
          "data_ptr",
          [](const Image& image) { return reinterpret_cast<std::uintptr_t>(image.data()); },
          "The address of the image's storage (host or device memory), as an int.")
      .def("to", &Image::to, "device"_a, "A copy on `device` (this image when already there).")
      .def("converted_to", &Image::converted_to, "data_type"_a,
           "A host copy in another element type.")
      .def("numpy", &image_to_numpy, nb::kw_only(), "nchw"_a = false, "copy"_a = false,
           "The image as a NumPy array: a view of a host image's own memory (NHWC, or with "
           "nchw=True an NCHW view with strides), which keeps the image alive; a copy for a "
           "CUDA or bf16 image (bf16 as float32), or with copy=True (C-contiguous).")
      .def(
          "__array__",
          [](const Image& image, nb::handle dtype, std::optional<bool> copy) {
            const bool shares = image.is_on_host() && image.data_type() != DataType::bf16;
            if (copy == false && (!shares || !dtype.is_none())) {
              throw InvalidArgument(
                  "Image.__array__: copy=False, but the image must be copied (it is on " +
                  image.device().name() + ", or its elements must be converted)");
            }
            nb::object array = image_to_numpy(image, false, copy.value_or(false));
            return dtype.is_none() ? array : array.attr("astype")(dtype);
          },
          "dtype"_a = nb::none(), "copy"_a = nb::none())
      .def("__dlpack__", &image_dlpack,
           "DLPack export of the image's own memory (host or CUDA, NHWC), for "
           "torch.from_dlpack and other array libraries.")
      .def("__dlpack_device__", &image_dlpack_device)
      .def("__repr__", [](const Image& image) {
        if (image.empty()) return std::string("Image()");
        return "Image(" + to_string(image.shape()) + ", " + to_string(image.data_type()) + ", " +
               image.device().name() + ")";
      });

  m.def(
      "from_dlpack",
      [](const AnyArray& array, bool nchw) {
        return image_from_array(array, nchw, std::nullopt, std::nullopt, false);
      },
      "array"_a, nb::kw_only(), "nchw"_a = false,
      "An Image sharing the memory of a DLPack tensor or array (host or CUDA) without a copy; "
      "InvalidArgument when its memory does not allow that (see Image(array)).");

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
             std::size_t max_compiled_sizes, bool training_fusion) {
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
                                    max_compiled_sizes,
                                    training_fusion};
          },
          nb::kw_only(), "precision"_a = Precision::f32, "deterministic"_a = false,
          "workspace_limit_bytes"_a = 0, "cuda_graphs"_a = true, "autotune"_a = false,
          "plan_cache_file"_a = "", "verbose"_a = false, "flush_denormals"_a = true,
          "initial_loss_scale"_a = 65536.0f, "loss_scale_growth_interval"_a = 2000,
          "max_compiled_sizes"_a = 16, "training_fusion"_a = true)
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
      .def_rw("training_fusion", &GraphOptions::training_fusion)
      .def("__repr__", &options_repr);
}

}  // namespace cnngraph::python
