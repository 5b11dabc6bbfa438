// The CUDA backend's kernel factories (one table in kernels.cpp lists them in order).
#pragma once

#include "backends/cuda/cuda_common.hpp"

namespace cnngraph::detail::cuda {

using Factory = std::unique_ptr<Kernel> (*)(const Op&, const GraphOptions&, Context&);

// The first kernel of the table (kernels.cpp) that accepts the op; throws Unsupported.
std::unique_ptr<Kernel> pick_cuda_kernel(const Op& op, const GraphOptions& options,
                                         Context& context);

std::unique_ptr<Kernel> make_cudnn_convolution(const Op&, const GraphOptions&, Context&);
std::unique_ptr<Kernel> make_depthwise_convolution(const Op&, const GraphOptions&, Context&);
std::unique_ptr<Kernel> make_direct_convolution(const Op&, const GraphOptions&, Context&);
std::unique_ptr<Kernel> make_cublaslt_fully_connected(const Op&, const GraphOptions&, Context&);
// A 1x1 convolution (stride 1, no padding) as cuBLASLt's product over pixels, where
// autotuning times it faster than cuDNN's plan (or CNNGRAPH_CUDA_POINTWISE=cublaslt).
std::unique_ptr<Kernel> make_cublaslt_pointwise_convolution(const Op&, const GraphOptions&,
                                                            Context&);
std::unique_ptr<Kernel> make_cudnn_convolution_transpose(const Op&, const GraphOptions&, Context&);
std::unique_ptr<Kernel> make_cublaslt_fully_connected_gradient(const Op&, const GraphOptions&,
                                                               Context&);
std::unique_ptr<Kernel> make_cudnn_convolution_gradient(const Op&, const GraphOptions&, Context&);
std::unique_ptr<Kernel> make_cudnn_convolution_transpose_gradient(const Op&, const GraphOptions&,
                                                                  Context&);
std::unique_ptr<Kernel> make_binary_convolution(const Op&, const GraphOptions&, Context&);
// Whether the 1-bit tensor-core kernel takes a binary convolution on `device` (xnor or and,
// one group, no beta scaling, fixed weights); `why` gets the reason when not. Only that
// kernel reads and writes bit-packed images (CudaBackend::packs_bits).
bool binary_mma_takes(const BinaryConvolutionOp& op, int device, std::string* why = nullptr);
std::unique_ptr<Kernel> make_binary_convolution_gradient(const Op&, const GraphOptions&, Context&);
// Gradients (training_kernels.cpp).
std::unique_ptr<Kernel> make_neuron_gradient(const Op&, const GraphOptions&, Context&);
std::unique_ptr<Kernel> make_pooling_gradient(const Op&, const GraphOptions&, Context&);
std::unique_ptr<Kernel> make_addition_relu_gradient(const Op&, const GraphOptions&, Context&);
std::unique_ptr<Kernel> make_softmax_gradient(const Op&, const GraphOptions&, Context&);
std::unique_ptr<Kernel> make_channel_slice(const Op&, const GraphOptions&, Context&);
std::unique_ptr<Kernel> make_arithmetic_gradient(const Op&, const GraphOptions&, Context&);
std::unique_ptr<Kernel> make_dropout(const Op&, const GraphOptions&, Context&);
std::unique_ptr<Kernel> make_loss(const Op&, const GraphOptions&, Context&);  // loss.cu
// normalization_training.cpp
std::unique_ptr<Kernel> make_batch_normalization_training(const Op&, const GraphOptions&, Context&);
std::unique_ptr<Kernel> make_batch_normalization_gradient(const Op&, const GraphOptions&, Context&);
std::unique_ptr<Kernel> make_batch_normalization_addition_relu(const Op&, const GraphOptions&,
                                                               Context&);
// The NHWC cuDNN kernel for a convolution: the most fused plan, or (autotuning) the bare
// convolution plus our epilogue kernel when that measures clearly faster. Declines (null,
// with the reason) when no cuDNN engine takes it.
std::unique_ptr<Kernel> nhwc_convolution(const ConvolutionOp& op, const GraphOptions& options,
                                         Context& context);
// With autotuning in fp16, a convolution over fewer than 4 channels (a network's stem: 3
// colours) also tries its source padded with zero channels to 4, where cuDNN has dedicated
// first-layer kernels; the faster of that and `as_is` (timed whole, padding pass
// included) is returned. CNNGRAPH_CUDA_STEM_PADDING=always|never forces the choice.
std::unique_ptr<Kernel> few_channels_padded(const ConvolutionOp& op, const GraphOptions& options,
                                            Context& context, std::unique_ptr<Kernel> as_is);
// Milliseconds per run of a whole convolution kernel on scratch images (bytes 0x3C): one
// warm-up run, then the mean of three; -1 when it fails.
double time_kernel(Kernel& kernel, const ConvolutionOp& op, Context& context);
// Strict fp32 (no TF32) only, with autotuning or CNNGRAPH_CUDA_F32_LAYOUT=nchw: the NCHW
// variant of the convolution when it times faster than `nhwc` (or is forced); else `nhwc`.
std::unique_ptr<Kernel> strict_f32_layout(const ConvolutionOp& op, const GraphOptions& options,
                                          Context& context, std::unique_ptr<Kernel> nhwc);
// The device copies of a convolution's weights (OHWI) and bias in the storage type, made
// once per graph device and type (cached on the prepared weights) and shared by every
// program of the graph.
struct DeviceWeights {
  std::shared_ptr<std::byte[]> weights, bias;
};
std::shared_ptr<DeviceWeights> device_weights(const PreparedWeights& prepared, Context& context);
// A neuron for device code; its prelu slopes (if any) are uploaded and kept in `keep`.
DeviceNeuron device_neuron(const NeuronDescriptor& n, Context& context, const std::string& what,
                           std::vector<std::shared_ptr<std::byte[]>>& keep);
// The epilogue kernel's work for a convolution or fully connected op: its post-ops from
// `first` on and, when `with_bias`, the bias. Keeps the prelu slopes it uploads in `keep`.
// Returns whether there is any work.
bool make_epilogue(const ConvolutionOp& op, Context& context, const DeviceWeights& weights,
                   bool with_bias, std::size_t first, DeviceEpilogue& e,
                   std::vector<std::shared_ptr<std::byte[]>>& keep);

// A trained convolution's buffers on the device beside its DeviceWeights (the storage-type
// copy its kernels read): the f32 gradients its weight-gradient kernel leaves, and the f32
// master values an optimizer updates, which in f32 graphs are the DeviceWeights
// themselves. Made once per graph device and type, cached on the prepared weights like
// DeviceWeights (training_buffers.cpp).
struct DeviceTrainingBuffers {
  std::shared_ptr<DeviceWeights> kernel_copy;
  std::shared_ptr<std::byte[]> weights_gradient, bias_gradient;
  std::shared_ptr<std::byte[]> master_weights, master_bias;
  std::size_t weight_count = 0, bias_count = 0;
  float* weights_gradient_f32() const { return reinterpret_cast<float*>(weights_gradient.get()); }
  float* bias_gradient_f32() const { return reinterpret_cast<float*>(bias_gradient.get()); }
};
std::shared_ptr<DeviceTrainingBuffers> device_training_buffers(const PreparedWeights& prepared,
                                                               Context& context);

}  // namespace cnngraph::detail::cuda
