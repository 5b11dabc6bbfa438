// Image storage and the element-type conversions used at graph boundaries.
#include "cnngraph/image.hpp"

#include <bit>
#include <cmath>
#include <cstring>
#include <new>

#include "cnngraph/errors.hpp"
#include "core/device_memory.hpp"

namespace cnngraph {

namespace detail {
void throw_bad_element_count(const ImageShape& shape) {
  throw InvalidArgument("image shape " + to_string(shape) +
                        ": sizes must not be negative and the element count must not exceed " +
                        std::to_string(ImageShape::max_elements));
}
}  // namespace detail

std::size_t size_of(DataType type) {
  switch (type) {
    case DataType::f32:
      return 4;
    case DataType::f16:
    case DataType::bf16:
      return 2;
    case DataType::u8:
      return 1;
  }
  return 0;
}

std::string to_string(DataType type) {
  switch (type) {
    case DataType::f32:
      return "f32";
    case DataType::f16:
      return "f16";
    case DataType::bf16:
      return "bf16";
    case DataType::u8:
      return "u8";
  }
  return "?";
}

std::string to_string(const ImageShape& s) {
  return "n" + std::to_string(s.batch) + "h" + std::to_string(s.height) + "w" +
         std::to_string(s.width) + "c" + std::to_string(s.channels);
}

std::uint16_t float_to_half(float value) {
  // IEEE binary16 with round to nearest even, handling subnormals, infinities and NaN.
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
  const std::uint32_t sign = (bits >> 16) & 0x8000u;
  const std::uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude >= 0x7f800000u) {  // inf or NaN
    return static_cast<std::uint16_t>(sign | 0x7c00u | (magnitude > 0x7f800000u ? 0x200u : 0u));
  }
  if (magnitude >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // overflow
  if (magnitude < 0x38800000u) {  // subnormal half (or zero)
    // Scale into the subnormal range; float arithmetic rounds to nearest even for us.
    const float scaled = std::bit_cast<float>(magnitude) * 16777216.0f;  // * 2^24
    return static_cast<std::uint16_t>(sign | static_cast<std::uint32_t>(std::nearbyint(scaled)));
  }
  const std::uint32_t rounding = 0xfffu + ((magnitude >> 13) & 1u);
  return static_cast<std::uint16_t>(sign | ((magnitude - 0x38000000u + rounding) >> 13));
}

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1fu;
  const std::uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) {
    const float value = static_cast<float>(mantissa) / 16777216.0f;  // mantissa * 2^-24
    return sign ? -value : value;
  }
  if (exponent == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

std::uint16_t float_to_bfloat16(float value) {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((bits >> 16) | 0x40u);
  const std::uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<std::uint16_t>((bits + rounding) >> 16);
}

float bfloat16_to_float(std::uint16_t bits) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16);
}

namespace {

void check_shape(const ImageShape& shape) {
  if (shape.batch <= 0 || shape.height <= 0 || shape.width <= 0 || shape.channels <= 0) {
    throw InvalidArgument("Image: every size must be positive, got " + to_string(shape));
  }
  (void)shape.elements();  // throws for a count that does not fit
}

void store(DataType type, std::byte* dst, std::size_t i, float v) {
  switch (type) {
    case DataType::f32:
      std::memcpy(dst + 4 * i, &v, 4);
      break;
    case DataType::f16: {
      const std::uint16_t h = float_to_half(v);
      std::memcpy(dst + 2 * i, &h, 2);
      break;
    }
    case DataType::bf16: {
      const std::uint16_t h = float_to_bfloat16(v);
      std::memcpy(dst + 2 * i, &h, 2);
      break;
    }
    case DataType::u8: {
      const float clamped = std::fmin(std::fmax(v, 0.0f), 1.0f);
      dst[i] = static_cast<std::byte>(std::lround(clamped * 255.0f));
      break;
    }
  }
}

float load(DataType type, const std::byte* src, std::size_t i) {
  switch (type) {
    case DataType::f32: {
      float v;
      std::memcpy(&v, src + 4 * i, 4);
      return v;
    }
    case DataType::f16:
    case DataType::bf16: {
      std::uint16_t h;
      std::memcpy(&h, src + 2 * i, 2);
      return type == DataType::f16 ? half_to_float(h) : bfloat16_to_float(h);
    }
    case DataType::u8:
      return static_cast<float>(std::to_integer<int>(src[i])) / 255.0f;
  }
  return 0.0f;
}

}  // namespace

Image::Image(ImageShape shape, DataType type) : shape_(shape), type_(type) {
  check_shape(shape);
  // max_elements keeps this product inside size_t.
  const std::size_t bytes = shape.elements() * size_of(type);
  try {
    storage_ = std::shared_ptr<std::byte[]>(new std::byte[bytes]());
  } catch (const std::bad_alloc&) {
    throw DeviceError("Image " + to_string(shape) + " " + to_string(type) + ": cannot allocate " +
                      std::to_string(bytes) + " bytes of host memory");
  }
}

Image Image::wrap(ImageShape shape, DataType type, std::byte* data, const Device& device,
                  std::shared_ptr<const void> owner) {
  const std::string what =
      "Image::wrap(" + to_string(shape) + " " + to_string(type) + " on " + device.name() + ")";
  check_shape(shape);
  if (!data) throw InvalidArgument(what + ": the data pointer is null");
  const auto address = reinterpret_cast<std::uintptr_t>(data);
  if (address % size_of(type) != 0) {
    throw InvalidArgument(what + ": the data pointer is not aligned to the element size (" +
                          std::to_string(size_of(type)) + " bytes)");
  }
  if (device.kind() == DeviceKind::cuda) detail::device_memory(device)->check_readable(data, what);
  Image image;
  image.shape_ = shape;
  image.type_ = type;
  image.device_ = device.kind() == DeviceKind::cuda ? device : Device::cpu();
  // The aliasing constructor: the image points at `data` and shares ownership of `owner`.
  image.storage_ = std::shared_ptr<std::byte[]>(std::move(owner), data);
  return image;
}

Image Image::wrap(ImageShape shape, DataType type, std::byte* data, const Device& device,
                  std::function<void(std::byte*)> deleter) {
  std::shared_ptr<const void> owner;
  if (deleter) {
    // Made first, so that the memory is released when wrap throws as well.
    owner = std::shared_ptr<const void>(data, [deleter = std::move(deleter)](const void* p) {
      deleter(static_cast<std::byte*>(const_cast<void*>(p)));
    });
  }
  return wrap(shape, type, data, device, std::move(owner));
}

Image Image::from_floats(ImageShape shape, std::span<const float> nhwc, DataType type) {
  Image image(shape, type);
  if (nhwc.size() != shape.elements()) {
    throw InvalidArgument("Image::from_floats: " + to_string(shape) + " needs " +
                          std::to_string(shape.elements()) + " values, got " +
                          std::to_string(nhwc.size()));
  }
  if (type == DataType::f32) {
    std::memcpy(image.data(), nhwc.data(), nhwc.size_bytes());
  } else {
    for (std::size_t i = 0; i < nhwc.size(); ++i) store(type, image.data(), i, nhwc[i]);
  }
  return image;
}

Image Image::from_nchw(ImageShape shape, std::span<const float> nchw, DataType type) {
  if (nchw.size() != shape.elements()) {
    throw InvalidArgument("Image::from_nchw: " + to_string(shape) + " needs " +
                          std::to_string(shape.elements()) + " values, got " +
                          std::to_string(nchw.size()));
  }
  std::vector<float> nhwc(nchw.size());
  const std::size_t H = shape.height, W = shape.width, C = shape.channels;
  for (std::size_t n = 0; n < static_cast<std::size_t>(shape.batch); ++n)
    for (std::size_t c = 0; c < C; ++c)
      for (std::size_t p = 0; p < H * W; ++p)
        nhwc[(n * H * W + p) * C + c] = nchw[(n * C + c) * H * W + p];
  return from_floats(shape, nhwc, type);
}

Image Image::to(const Device& device) const {
  if (empty()) return Image();
  const bool to_host = device.kind() != DeviceKind::cuda;
  if (to_host && is_on_host()) return *this;
  if (device == device_) return *this;
  const std::size_t bytes = size_in_bytes();
  if (to_host) {
    auto host = std::shared_ptr<std::byte[]>(new std::byte[bytes]);
    detail::device_memory(device_)->copy_to_host(host.get(), data(), bytes);
    return detail::ImageAccess::make(shape_, type_, Device::cpu(), std::move(host));
  }
  // Between two GPUs the copy goes through the host: simple, and rare.
  const Image source = is_on_host() ? *this : to(Device::cpu());
  detail::DeviceMemory* memory = detail::device_memory(device);
  auto storage = memory->allocate(bytes, "Image::to(" + device.name() + ")");
  memory->copy_to_device(storage.get(), source.data(), bytes);
  return detail::ImageAccess::make(shape_, type_, device, std::move(storage));
}

std::vector<float> Image::to_floats() const {
  if (!empty() && !is_on_host()) return to(Device::cpu()).to_floats();
  std::vector<float> out(empty() ? 0 : shape_.elements());
  if (type_ == DataType::f32) {
    if (!out.empty()) std::memcpy(out.data(), data(), out.size() * 4);
  } else {
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = load(type_, data(), i);
  }
  return out;
}

std::vector<float> Image::to_nchw() const {
  const std::vector<float> nhwc = to_floats();
  std::vector<float> nchw(nhwc.size());
  const std::size_t H = shape_.height, W = shape_.width, C = shape_.channels;
  for (std::size_t n = 0; n < static_cast<std::size_t>(shape_.batch); ++n)
    for (std::size_t c = 0; c < C; ++c)
      for (std::size_t p = 0; p < H * W; ++p)
        nchw[(n * C + c) * H * W + p] = nhwc[(n * H * W + p) * C + c];
  return nchw;
}

Image Image::converted_to(DataType type) const {
  if (type == type_ && is_on_host()) return *this;
  if (type == type_) return to(Device::cpu());
  return from_floats(shape_, to_floats(), type);
}

}  // namespace cnngraph
