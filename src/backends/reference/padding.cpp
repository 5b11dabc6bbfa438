// Reference constant padding and its gradient (a crop): each result element from its source
// element or the fill value.
#include "backends/reference/reference_backend.hpp"

namespace cnngraph::detail {

namespace {

void padding(const PaddingOp& op, const KernelArgs& args) {
  const ImageShape& in = op.src_shapes[0];
  const ImageShape& out = op.dst_shape;
  std::size_t i = 0;
  for (int n = 0; n < out.batch; ++n)
    for (int y = 0; y < out.height; ++y)
      for (int x = 0; x < out.width; ++x)
        for (int c = 0; c < out.channels; ++c, ++i) {
          const int sy = y - op.top, sx = x - op.left;
          const bool inside =
              sy >= 0 && sy < in.height && sx >= 0 && sx < in.width && c < in.channels;
          args.dst[i] =
              inside
                  ? args.srcs[0][((static_cast<std::size_t>(n) * in.height + sy) * in.width + sx) *
                                     in.channels +
                                 c]
                  : op.value;
        }
}

}  // namespace

std::unique_ptr<Kernel> make_reference_padding(const Op& op, const GraphOptions&) {
  return function_kernel<PaddingOp>(op, "reference:padding", padding);
}

}  // namespace cnngraph::detail
