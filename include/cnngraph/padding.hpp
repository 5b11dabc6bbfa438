// PaddingPolicy: how a filter's result size and kernel placement are chosen (MPSNNPadding,
// MPSNNDefaultPadding and MPSNNPaddingMethod).
#pragma once

#include <functional>

namespace cnngraph {

// Result size rule, per axis. K is the dilated window, s the stride.
enum class PaddingSize {
  valid,  // every tap inside the source: ceil((in - K + 1) / s)
  same,   // ceil(in / s)
  full,   // any tap inside the source: ceil((in + K - 1) / s)
  custom  // the policy's callback decides
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

}  // namespace cnngraph
