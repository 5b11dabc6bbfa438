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
  return static_cast<int>(
      explicit_result_size(in, dilated_kernel, stride, pad_before, pad_after, ceil_mode));
}

}  // namespace cnngraph::onnx::detail
