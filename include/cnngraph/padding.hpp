// PaddingPolicy: how a filter's result size and kernel placement are chosen (MPSNNPadding,
// MPSNNDefaultPadding and MPSNNPaddingMethod).
#pragma once

#include <cstdint>
#include <functional>

namespace cnngraph {

// Result size rule, per axis. K is the dilated window, s the stride.
enum class PaddingSize {
  valid,   // every tap inside the source: ceil((in - K + 1) / s)
  same,    // ceil(in / s)
  full,    // any tap inside the source: ceil((in + K - 1) / s)
  custom,  // the policy's callback decides
  // The pads given (PaddingPolicy::pads), as ONNX and PyTorch place windows:
  // floor((in + before + after - K) / s) + 1, or with ceil_mode rounded up, less a last
  // window that would start in the padding after the image.
  explicit_pads
};

// The amounts of PaddingSize::explicit_pads, in pixels; each at least 0.
struct ExplicitPads {
  int top = 0, bottom = 0, left = 0, right = 0;
  bool ceil_mode = false;
  bool operator==(const ExplicitPads&) const = default;
};

// Where the padding goes.
enum class PaddingAlignment { centered, top_left, bottom_right };

// With centred alignment and an odd amount of padding: which side gets the extra pixel.
enum class PaddingRemainder { top_left, bottom_right };

// One axis of a filter's placement over its source.
struct AxisGeometry {
  int source_size = 0;
  int result_size = 0;
  int kernel_size = 1;  // the dilated window
  int stride = 1;
  int pad_before = 0;  // zero (or clamped) pixels before the first source pixel
  int pad_after = 0;   // pixels the last window reaches past the end; may be negative
};

struct PaddingPolicy {
  PaddingSize size = PaddingSize::same;
  PaddingAlignment alignment = PaddingAlignment::centered;
  PaddingRemainder remainder = PaddingRemainder::top_left;
  // For PaddingSize::custom: gets the standard computation (done with size `same` and the
  // alignment above) for each axis, and may change result_size and pad_before. pad_after
  // is recomputed from them.
  std::function<void(AxisGeometry& x, AxisGeometry& y)> custom;
  // For PaddingSize::explicit_pads. Unlike a callback, these are saved with a graph.
  ExplicitPads pads;

  // MPS's default for convolution: same, centred, remainder top-left.
  static PaddingPolicy same() { return {}; }
  static PaddingPolicy valid() { return with_size(PaddingSize::valid); }
  static PaddingPolicy full() { return with_size(PaddingSize::full); }
  // TensorFlow's SAME: the odd pixel goes bottom-right.
  static PaddingPolicy tensorflow_same() {
    PaddingPolicy p;
    p.remainder = PaddingRemainder::bottom_right;
    return p;
  }
  static PaddingPolicy with_size(PaddingSize size) {
    PaddingPolicy p;
    p.size = size;
    return p;
  }
  // Fixed pads on each side (ONNX's `pads`, PyTorch's `padding`), with ONNX's ceil_mode.
  static PaddingPolicy explicit_padding(int top, int bottom, int left, int right,
                                        bool ceil_mode = false) {
    PaddingPolicy p;
    p.size = PaddingSize::explicit_pads;
    p.pads = {top, bottom, left, right, ceil_mode};
    return p;
  }
  static PaddingPolicy make_custom(std::function<void(AxisGeometry&, AxisGeometry&)> fn) {
    PaddingPolicy p;
    p.size = PaddingSize::custom;
    p.custom = std::move(fn);
    return p;
  }
};

// The standard geometry of one axis for a forward filter (MPS's DestSize and Offset).
// Throws ShapeError when the result would be empty, InvalidArgument when the dilated window
// or the windows' span do not fit an int.
AxisGeometry forward_axis_geometry(int source_size, int kernel, int stride, int dilation,
                                   PaddingSize size, PaddingAlignment alignment,
                                   PaddingRemainder remainder);

// The result size of windows placed with explicit pads (PaddingSize::explicit_pads) over one
// axis; 0 when not one window fits. `dilated_kernel` is the dilated window.
std::int64_t explicit_result_size(std::int64_t source_size, std::int64_t dilated_kernel,
                                  std::int64_t stride, std::int64_t pad_before,
                                  std::int64_t pad_after, bool ceil_mode);

}  // namespace cnngraph
