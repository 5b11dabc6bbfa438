// Image: a dense batch of images in NHWC layout (MPSImageBatch / MPSImage).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cnngraph/checked_math.hpp"
#include "cnngraph/device.hpp"

namespace cnngraph {

struct ImageShape;

namespace detail {
struct ImageAccess;
// Throws InvalidArgument naming `shape`: a negative size, or more than max_elements.
[[noreturn]] void throw_bad_element_count(const ImageShape& shape);
}  // namespace detail

// Element type of an image or of weights. u8 is normalized: the byte v means v / 255
// (Apple's unorm8).
enum class DataType { f32, f16, bf16, u8 };

std::size_t size_of(DataType type);
std::string to_string(DataType type);

// The size of one batch of images: batch, height, width, feature channels.
struct ImageShape {
  int batch = 0;
  int height = 0;
  int width = 0;
  int channels = 0;

  // The most elements a shape may have, so that its size in bytes in any element type (and
  // a double-precision copy) fits in memory addresses.
  static constexpr std::size_t max_elements =
      static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max()) / 8;

  // Both throw InvalidArgument for a negative size or a count above max_elements (instead
  // of a product that wraps around).
  std::size_t elements() const {
    const auto n = detail::checked_size_product({batch, height, width, channels});
    if (!n || *n > max_elements) detail::throw_bad_element_count(*this);
    return *n;
  }
  std::size_t elements_per_image() const {
    const auto n = detail::checked_size_product({height, width, channels});
    if (!n || *n > max_elements) detail::throw_bad_element_count(*this);
    return *n;
  }
  bool operator==(const ImageShape&) const = default;
  auto operator<=>(const ImageShape&) const = default;
};

// "n2h28w28c1": the compact problem string used in messages, tests and benchmarks.
std::string to_string(const ImageShape& shape);

// Host-memory conversions between element types (round to nearest even).
std::uint16_t float_to_half(float value);
float half_to_float(std::uint16_t bits);
std::uint16_t float_to_bfloat16(float value);
float bfloat16_to_float(std::uint16_t bits);

// A batch of images. It lives on a device: the CPU devices keep images in host memory, a
// CUDA device in its GPU memory. Copying between devices is explicit (to()); so is copying
// in and out of host buffers (from_floats, from_nchw, to_floats). Copies of an Image share
// its storage.
class Image {
 public:
  Image() = default;
  // A zero-filled batch. Throws InvalidArgument for non-positive sizes or more than
  // ImageShape::max_elements, DeviceError when the host memory cannot be had.
  Image(ImageShape shape, DataType type = DataType::f32);

  // NHWC floats, converted to `type`.
  static Image from_floats(ImageShape shape, std::span<const float> nhwc,
                           DataType type = DataType::f32);
  // NCHW floats (PyTorch's layout), transposed to NHWC.
  static Image from_nchw(ImageShape shape, std::span<const float> nchw,
                         DataType type = DataType::f32);

  // An image over memory the caller already has, with no copy: `data` holds
  // shape.elements() elements of `type` in NHWC order, in host memory for a CPU `device` or
  // in the GPU memory of a CUDA `device` (of that device, or managed memory). `owner` is
  // what keeps that memory alive (an array, a tensor, a pool's block): the image and every
  // copy of it share it, and the last of them to go releases it. With a null owner the
  // caller (who omits the argument) promises the memory outlives every copy of the image.
  // The rules while any copy lives:
  // - the memory stays valid; the library reads a wrapped graph source and never writes it
  //   (results are images of their own), so a read-only buffer may be wrapped;
  // - the caller does not change the memory while a run reading it is in flight (run_async
  //   included); CUDA memory written on another stream must be complete before run() is
  //   called (synchronize that stream first);
  // - `data` is aligned to the element size. A CUDA graph reads a wrapped source in place
  //   when it is 256-byte aligned (as the library's own images are) and copies it on the
  //   device otherwise.
  // Throws InvalidArgument for a null or misaligned pointer, a bad shape, or (on a CUDA
  // device) memory that is not that device's; DeviceError when the device is unavailable.
  static Image wrap(ImageShape shape, DataType type, std::byte* data, const Device& device,
                    std::shared_ptr<const void> owner = {});
  // The same, with `deleter(data)` called when the last copy goes (also when wrap throws).
  static Image wrap(ImageShape shape, DataType type, std::byte* data, const Device& device,
                    std::function<void(std::byte*)> deleter);

  const ImageShape& shape() const { return shape_; }
  DataType data_type() const { return type_; }
  bool empty() const { return storage_ == nullptr; }
  std::size_t size_in_bytes() const { return shape_.elements() * size_of(type_); }

  // Where the storage lives: Device::cpu() for host memory (any CPU device reads it).
  const Device& device() const { return device_; }
  bool is_on_host() const { return device_.kind() != DeviceKind::cuda; }
  // A copy on `device` (this image itself when it is already there, or when both are CPU
  // devices). Throws DeviceError when the device is unavailable or out of memory.
  Image to(const Device& device) const;

  // Raw NHWC storage of data_type() elements: a host pointer, or for a CUDA image a device
  // pointer (pass it to CUDA code; never dereference it on the host).
  std::byte* data() { return storage_.get(); }
  const std::byte* data() const { return storage_.get(); }

  // All elements as NHWC floats (converted from the storage type; copied from the device
  // first for a CUDA image).
  std::vector<float> to_floats() const;
  // All elements as NCHW floats.
  std::vector<float> to_nchw() const;
  // A host copy of this image in another element type (this image itself if the type
  // matches and it is on the host).
  Image converted_to(DataType type) const;
  // True when no other Image shares this storage (a graph may then reuse it for its next
  // result instead of allocating).
  bool storage_is_unique() const { return storage_ && storage_.use_count() == 1; }

 private:
  ImageShape shape_{};
  DataType type_ = DataType::f32;
  std::shared_ptr<std::byte[]> storage_;
  Device device_ = Device::cpu();
  friend struct detail::ImageAccess;
};

}  // namespace cnngraph
