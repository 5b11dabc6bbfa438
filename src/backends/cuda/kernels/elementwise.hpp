// Launchers of kernels/elementwise.cu: element-wise passes: conversions, neurons, the epilogue,
// additions and the broadcasting arithmetic, affine maps, transposes, channel padding and the
// sub-pixel shuffle. Counts are elements; `type` is the element type of the images.
#pragma once

#include "backends/cuda/cuda_common.hpp"

namespace cnngraph::detail::cuda {

void convert(const void* src, DataType from, void* dst, DataType to, std::size_t count,
             cudaStream_t stream);
void neuron(DataType type, const DeviceNeuron& n, const void* src, void* dst, std::size_t count,
            int channels, cudaStream_t stream);
// dst = epilogue(dst) per element, channel = index % channels.
void epilogue(DataType type, const DeviceEpilogue& e, void* dst, std::size_t count, int channels,
              cudaStream_t stream);
// With `relu`, dst = max(a + b, 0) (training fusion).
void add(DataType type, const void* a, const void* b, void* dst, std::size_t count,
         cudaStream_t stream, bool relu = false);
// dst = a (operation) b, each source broadcast to dst_shape along the dimensions where its
// size is 1 (ArithmeticOp).
void arithmetic(DataType type, ArithmeticOperation operation, const void* a,
                const ImageShape& a_shape, const void* b, const ImageShape& b_shape, void* dst,
                const ImageShape& dst_shape, cudaStream_t stream);
// dst = src * scale[c] + shift[c], scale and shift f32 on the device.
void affine(DataType type, const void* src, const float* scale, const float* shift, void* dst,
            std::size_t count, int channels, cudaStream_t stream);
// dst[n][j][i] = src[n][i][j] for `batch` matrices of rows x cols (NHWC <-> NCHW). With
// `epilogue`, each result element also goes through it, its channel being its source row
// (NCHW -> NHWC: the convolution's bias and post-ops in the same pass).
void transpose_batched(DataType type, const void* src, void* dst, int batch, int rows, int cols,
                       cudaStream_t stream, const DeviceEpilogue* epilogue = nullptr);
// dst (pixels x to_channels) = src (pixels x from_channels) followed by zero channels.
void pad_channels(DataType type, const void* src, int from_channels, void* dst, int to_channels,
                  std::size_t pixels, cudaStream_t stream);
// Grouped OHWI weights with their two channel axes swapped: dst[g][a][t][b] =
// src[g][b][t][a] for `groups` groups of a x b channels over `taps` kernel taps (a transposed
// convolution's weights and its adjoint convolution's), converted from src_type to dst_type.
void swap_weight_channels(DataType src_type, const void* src, DataType dst_type, void* dst,
                          int groups, int a, int b, int taps, cudaStream_t stream);
void sub_pixel_shuffle(DataType type, const void* conv, const ImageShape& conv_shape, int factor,
                       SubPixelOrder order, void* dst, cudaStream_t stream);
// The inverse (space to depth), for the gradient: `shuffled` back into `conv`'s shape.
void sub_pixel_unshuffle(DataType type, const void* shuffled, const ImageShape& conv_shape,
                         int factor, SubPixelOrder order, void* conv, cudaStream_t stream);

}  // namespace cnngraph::detail::cuda
