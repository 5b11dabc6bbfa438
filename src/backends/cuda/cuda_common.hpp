// What every part of the CUDA backend shares: error checks that become DeviceError, the
// per-graph context (stream, library handles, workspace), and the launchers of our own
// kernels (defined in the .cu files).
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.hpp"
#include "backends/device_memory.hpp"

namespace cnngraph::detail::cuda {

// Throw DeviceError("<what>: <library's message>") on failure.
void check(cudaError_t status, const std::string& what);
void check(cudnnStatus_t status, const std::string& what);
void check(cublasStatus_t status, const std::string& what);

// Process-wide resources. Destroying a cuDNN or cuBLASLt handle and freeing pinned host
// memory synchronize the whole device; done while another thread of the process captures a
// CUDA graph, that crashed the process. So a graph takes its stream and handles from a
// pool and gives them back when it is destroyed, pinned blocks are cached likewise, and
// neither is ever destroyed while the process runs.
struct StreamHandles {
  cudaStream_t stream = nullptr;
  cudnnHandle_t cudnn = nullptr;  // bound to `stream`
  cublasLtHandle_t cublas = nullptr;
};
StreamHandles acquire_stream_handles(int device);
// Once nothing is pending on handles.stream.
void release_stream_handles(int device, StreamHandles handles) noexcept;
// Page-locked host memory (kept for reuse when let go of).
std::shared_ptr<std::byte[]> allocate_pinned(std::size_t bytes, const std::string& what);

// Held (shared) around each capture of a CUDA graph; what must never overlap one (making
// library handles, freeing device memory) holds it exclusively.
class CaptureScope {
 public:
  CaptureScope();
  ~CaptureScope();
  CaptureScope(const CaptureScope&) = delete;
  CaptureScope& operator=(const CaptureScope&) = delete;
};

// One per graph: kernels enqueue on `stream`. Compilation may grow the shared workspace;
// kernels read `workspace` when they run, never keep it.
struct Context {
  int device = 0;
  cudaStream_t stream = nullptr;
  cudnnHandle_t cudnn = nullptr;
  cublasLtHandle_t cublas = nullptr;
  DeviceMemory* memory = nullptr;
  DataType storage = DataType::f32;
  std::shared_ptr<std::byte[]> workspace;
  std::size_t workspace_bytes = 0;
  // The run's batch counter in pinned host memory (DeviceExecution::set_batch writes it);
  // kernels copy it to the device on their stream, which a recording replays.
  std::shared_ptr<std::byte[]> pinned;  // holds `batch` and `loss_scale`
  std::uint64_t* batch = nullptr;
  // The loss scale likewise (DeviceExecution::set_loss_scale; 1 unless training scales).
  float* loss_scale = nullptr;

  // Makes the workspace at least `bytes` (at compile time, never while running).
  void reserve_workspace(std::size_t bytes);
  // Device memory owned by a kernel (weights, scratch), filled from the host when given.
  std::shared_ptr<std::byte[]> upload(const void* host, std::size_t bytes, const std::string& what);
  // Host floats converted to the storage type, in device memory.
  std::shared_ptr<std::byte[]> upload_as_storage(const std::vector<float>& values,
                                                 const std::string& what);
};

// A neuron for device code: NeuronDescriptor's numbers with the prelu slopes on the device.
struct DeviceNeuron {
  NeuronType type = NeuronType::none;
  float a = 0, b = 0, c = 0;
  const float* slopes = nullptr;
};

// A post-op chain for the epilogue kernel: up to kMaxPostOps neurons and sums, in order.
// Kernels take it as `const __grid_constant__ DeviceEpilogue`: as a plain parameter, the
// run-time indexing of its post-ops made every thread copy its 120 bytes to local memory
// first (ncu on the H100: a transpose moved 391 MB for 102, a bf16 bias pass 1.06 GB for
// 51 MB).
constexpr int kMaxPostOps = 4;
struct DeviceEpilogue {
  const void* bias = nullptr;  // storage type, one per channel; null: none
  int count = 0;
  bool is_sum[kMaxPostOps] = {};
  DeviceNeuron neuron[kMaxPostOps];
  const void* residual = nullptr;  // for sums, same layout as dst
};

// Launchers (the .cu files). Counts are elements; `type` is the element type of the images.
void convert(const void* src, DataType from, void* dst, DataType to, std::size_t count,
             cudaStream_t stream);
void neuron(DataType type, const DeviceNeuron& n, const void* src, void* dst, std::size_t count,
            int channels, cudaStream_t stream);
// dst = epilogue(dst) per element, channel = index % channels.
void epilogue(DataType type, const DeviceEpilogue& e, void* dst, std::size_t count, int channels,
              cudaStream_t stream);
void add(DataType type, const void* a, const void* b, void* dst, std::size_t count,
         cudaStream_t stream);
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
// Gradients (training_ops.cu). diff_src = diff_dst * neuron'(src), channel = index % channels.
void neuron_gradient(DataType type, const DeviceNeuron& n, const void* diff_dst, const void* src,
                     void* diff_src, std::size_t count, int channels, cudaStream_t stream);
// diff_src (op.dst_shape) from diff_dst (op.src_shapes[0]) and the forward src. Max
// pooling first records each window's maximum in `argmax` (pooling_argmax_bytes of device
// memory; null where that is 0, and then each source element scans its windows itself).
std::size_t pooling_argmax_bytes(const PoolingGradientOp& op);
void pooling_gradient(DataType type, const PoolingGradientOp& op, const void* diff_dst,
                      const void* src, void* diff_src, void* argmax, cudaStream_t stream);
// dst = src * mask / keep, the mask of kernels/dropout_mask.hpp for the batch at *batch.
void dropout(DataType type, float keep_probability, std::uint64_t seed, const std::uint64_t* batch,
             const void* src, void* dst, std::size_t count, cudaStream_t stream);
// From diff_dst and the forward dst (the soft-max or log-soft-max itself).
void softmax_gradient(DataType type, bool logarithmic, const void* diff_dst, const void* dst,
                      void* diff_src, std::size_t pixels, int channels, cudaStream_t stream);
// Per-channel sums over NHWC pixels in a fixed order (channel_reduction.cu); `scratch`
// holds channel_reduction_scratch_bytes(pixels, channels). sums[c] = scale * sum of src.
std::size_t channel_reduction_scratch_bytes(std::size_t pixels, int channels);
void channel_sums(DataType type, const void* src, std::size_t pixels, int channels, float scale,
                  float* sums, float* scratch, cudaStream_t stream);
// Batch normalization in training mode, statistics and parameters f32 on the device: the
// batch's mean and biased variance; dst = (src - mean) / sqrt(variance + epsilon) * gamma
// + beta; and the gradient (diff_src, and the sums of dy and dy * xhat as beta's and
// gamma's gradients).
void batch_statistics(DataType type, const void* src, std::size_t pixels, int channels, float* mean,
                      float* variance, float* scratch, cudaStream_t stream);
void batch_normalize(DataType type, const void* src, const float* mean, const float* variance,
                     const float* gamma, const float* beta, float epsilon, void* dst,
                     std::size_t pixels, int channels, float* scratch, cudaStream_t stream);
void batch_normalization_gradient(DataType type, const void* diff_dst, const void* src,
                                  const float* mean, const float* variance, const float* gamma,
                                  float epsilon, void* diff_src, float* gamma_gradient,
                                  float* beta_gradient, std::size_t pixels, int channels,
                                  float* scratch, cudaStream_t stream);
void sub_pixel_shuffle(DataType type, const void* conv, const ImageShape& conv_shape, int factor,
                       SubPixelOrder order, void* dst, cudaStream_t stream);
void pooling(DataType type, const PoolingOp& op, const void* src, void* dst, cudaStream_t stream);
void softmax(DataType type, bool logarithmic, const void* src, void* dst, std::size_t pixels,
             int channels, cudaStream_t stream);
void local_response_normalization(DataType type, const CrossChannelNormalizationOp& op,
                                  const void* src, void* dst, cudaStream_t stream);
// Its gradient from diff_dst and the forward src; `scratch` holds 2 f32 per element.
void local_response_normalization_gradient(DataType type, const CrossChannelNormalizationOp& op,
                                           const void* diff_dst, const void* src, void* diff_src,
                                           float* scratch, cudaStream_t stream);
// The direct convolution for what cuDNN does not take: f32 accumulation, then the epilogue.
void direct_convolution(DataType type, const ConvolutionOp& op, const void* src,
                        const void* weights, const DeviceEpilogue& e, void* dst,
                        cudaStream_t stream);

// Depthwise convolution (groups == input channels == output channels), weights in
// [kernel_y][kernel_x][channel] order; images under 2^31 elements.
void depthwise_convolution(DataType type, const ConvolutionOp& op, const void* src,
                           const void* weights_hwc, const DeviceEpilogue& e, void* dst,
                           cudaStream_t stream);

// Binary convolution's weights on the device (binary_convolution.cu).
struct BinaryWeights {
  const unsigned* bits = nullptr;     // [tap][word][output]: bit set where the weight is >= 0
  int words = 0;                      // 32-bit words per tap (group channels / 32, rounded up)
  const float* bias = nullptr;        // f32 per output channel
  const float* input_bias = nullptr;  // the terms, f32 on the device, or null
  const float* input_scale = nullptr;
  const float* output_bias = nullptr;
  const float* output_scale = nullptr;
};

}  // namespace cnngraph::detail::cuda
