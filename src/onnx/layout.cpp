// Layout helpers: ONNX's NCHW weights and window rules in cnngraph's NHWC terms.
#include <cstddef>

#include "onnx/importer.hpp"

namespace cnngraph::onnx::detail {

std::vector<float> oihw_to_ohwi(const std::vector<float>& w, int o, int i, int h, int wd) {
  std::vector<float> out(w.size());
  for (int a = 0; a < o; ++a)
    for (int c = 0; c < i; ++c)
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < wd; ++x)
          out[((static_cast<std::size_t>(a) * h + y) * wd + x) * i + c] =
              w[((static_cast<std::size_t>(a) * i + c) * h + y) * wd + x];
  return out;
}

std::vector<float> gemm_to_ohwi(const std::vector<float>& b, bool transposed, int outputs,
                                int channels, int height, int width, float alpha) {
  const std::size_t k = static_cast<std::size_t>(channels) * height * width;
  std::vector<float> out(k * outputs);
  for (int o = 0; o < outputs; ++o)
    for (int c = 0; c < channels; ++c)
      for (int y = 0; y < height; ++y)
        for (int x = 0; x < width; ++x) {
          const std::size_t onnx_k = (static_cast<std::size_t>(c) * height + y) * width + x;
          const std::size_t from = transposed ? o * k + onnx_k : onnx_k * outputs + o;
          out[((static_cast<std::size_t>(o) * height + y) * width + x) * channels + c] =
              alpha * b[from];
        }
  return out;
}

int window_result_size(int in, int dilated_kernel, int stride, int pad_before, int pad_after,
                       bool ceil_mode) {
  const long long span = static_cast<long long>(in) + pad_before + pad_after - dilated_kernel;
  if (span < 0) return 0;
  long long out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
  if (ceil_mode && (out - 1) * stride >= static_cast<long long>(in) + pad_before) --out;
  return static_cast<int>(out);
}

PaddingPolicy explicit_padding(int pad_top, int pad_bottom, int pad_left, int pad_right,
                               bool ceil_mode) {
  return PaddingPolicy::make_custom([=](AxisGeometry& x, AxisGeometry& y) {
    x.result_size =
        window_result_size(x.source_size, x.kernel_size, x.stride, pad_left, pad_right, ceil_mode);
    x.pad_before = pad_left;
    y.result_size =
        window_result_size(y.source_size, y.kernel_size, y.stride, pad_top, pad_bottom, ceil_mode);
    y.pad_before = pad_top;
  });
}

}  // namespace cnngraph::onnx::detail
