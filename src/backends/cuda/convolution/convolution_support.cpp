// What every CUDA convolution kernel shares: the device copies of the weights, the
// epilogue of bias and post-ops for our kernel (and its neurons, which other kernels use too), and
// the cuDNN convolution descriptor and plan-cache name of a planned convolution, and the timing of
// whole convolution kernels that autotuning compares.
#include "backends/cuda/cuda_kernels.hpp"
#include "backends/cuda/cudnn/cudnn_graph.hpp"
#include "backends/cuda/kernels/elementwise.hpp"
#include "cnngraph/errors.hpp"
#include "env_knobs.hpp"

namespace cnngraph::detail::cuda {

namespace {

// The paddings cuDNN gets for `op` (y, then x), and whether they were made symmetric.
struct CudnnPadding {
  std::int64_t pre[2], post[2];
  bool symmetric = false;
  bool valid = false;
};

CudnnPadding cudnn_padding(const ConvolutionOp& op) {
  CudnnPadding p{{op.y.pad_before, op.x.pad_before}, {}};
  const AxisGeometry* axes[2] = {&op.y, &op.x};
  const auto cudnn_size = [&](int i, std::int64_t post) {
    const AxisGeometry& axis = *axes[i];
    return (axis.source_size + p.pre[i] + post - axis.kernel_size) / axis.stride + 1;
  };
  // Experimental (docs/design.md): a "same" padding of a stride-2 layer puts its odd row at
  // the top (1 before, 0 after), and few cuDNN engines take unequal paddings. Padding the
  // end as much as the start changes nothing where the size rule still gives the planned
  // result: no window reaches the added rows.
  const char* knob = knobs::read(knobs::cuda_symmetric_padding);
  const bool symmetric = knob && std::string(knob) == "on";
  p.valid = true;
  for (int i = 0; i < 2; ++i) {
    // cuDNN takes no negative padding. A window that stops short of the end (PyTorch's
    // 1x1 stride-2 shortcut over an even size) is zero padding whenever cuDNN's size rule,
    // (in + pre + post - window) / stride + 1, still gives the planned result.
    p.post[i] = std::max(0, axes[i]->pad_after);
    if (symmetric && p.post[i] < p.pre[i] && cudnn_size(i, p.pre[i]) == axes[i]->result_size) {
      p.post[i] = p.pre[i];
      p.symmetric = true;
    }
    p.valid = p.valid && p.pre[i] >= 0 && cudnn_size(i, p.post[i]) == axes[i]->result_size;
  }
  return p;
}

}  // namespace

DescriptorPtr convolution_descriptor(const ConvolutionOp& op, cudnnDataType_t compute) {
  auto conv = std::make_shared<Descriptor>(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
  const std::int64_t dims = 2;
  const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  const CudnnPadding padding = cudnn_padding(op);
  if (!padding.valid) return nullptr;
  const std::int64_t* pre = padding.pre;
  const std::int64_t* post = padding.post;
  const std::int64_t strides[2] = {op.y.stride, op.x.stride};
  const std::int64_t dilations[2] = {op.dilation_y, op.dilation_x};
  conv->set(CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, &dims)
      .set(CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, &compute)
      .set(CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, &mode)
      .set(CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, pre, 2)
      .set(CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, post, 2)
      .set(CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, strides, 2)
      .set(CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, dilations, 2);
  if (!conv->try_finalize()) return nullptr;
  return conv;
}

DescriptorPtr convolution_forward(const DescriptorPtr& x, const DescriptorPtr& w,
                                  const DescriptorPtr& y, const DescriptorPtr& conv) {
  auto forward =
      std::make_shared<Descriptor>(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR);
  cudnnBackendDescriptor_t xh = x->get(), wh = w->get(), yh = y->get(), ch = conv->get();
  const float alpha = 1.0f, beta = 0.0f;
  forward->set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, CUDNN_TYPE_BACKEND_DESCRIPTOR, &xh)
      .set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, CUDNN_TYPE_BACKEND_DESCRIPTOR, &wh)
      .set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, CUDNN_TYPE_BACKEND_DESCRIPTOR, &yh)
      .set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, &ch)
      .set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, &alpha)
      .set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, &beta);
  if (!forward->try_finalize()) return nullptr;
  return forward;
}

std::string convolution_problem(const ConvolutionOp& op, cudnnDataType_t io,
                                cudnnDataType_t compute, const std::string& layout) {
  const ImageShape& in = op.src_shapes[0];
  return layout + " x=" + to_string(in) + " k=" + std::to_string(op.output_channels) + "x" +
         std::to_string(op.kernel_height) + "x" + std::to_string(op.kernel_width) +
         " g=" + std::to_string(op.groups) + " pad=" + std::to_string(op.y.pad_before) + "," +
         std::to_string(op.x.pad_before) + "," + std::to_string(op.y.pad_after) + "," +
         std::to_string(op.x.pad_after) + " s=" + std::to_string(op.y.stride) + "," +
         std::to_string(op.x.stride) + " d=" + std::to_string(op.dilation_y) + "," +
         std::to_string(op.dilation_x) + " io=" + std::to_string(io) +
         " acc=" + std::to_string(compute) + (cudnn_padding(op).symmetric ? " symmetric" : "");
}

bool make_epilogue(const ConvolutionOp& op, Context& context, const DeviceWeights& weights,
                   bool with_bias, std::size_t first, DeviceEpilogue& e,
                   std::vector<std::shared_ptr<std::byte[]>>& keep) {
  e = DeviceEpilogue{};
  if (with_bias && op.weights->has_bias) e.bias = weights.bias.get();
  if (op.post_ops.size() - first > static_cast<std::size_t>(kMaxPostOps)) {
    throw Unsupported(op.name + ": more than " + std::to_string(kMaxPostOps) +
                      " post-operations on CUDA");
  }
  for (std::size_t i = first; i < op.post_ops.size(); ++i) {
    const PostOp& post = op.post_ops[i];
    const int k = e.count++;
    e.is_sum[k] = post.kind == PostOp::Kind::sum;
    if (e.is_sum[k]) continue;
    e.neuron[k] = device_neuron(post.neuron, context, op.name, keep);
  }
  return e.bias || e.count > 0;
}

DeviceNeuron device_neuron(const NeuronDescriptor& n, Context& context, const std::string& what,
                           std::vector<std::shared_ptr<std::byte[]>>& keep) {
  DeviceNeuron device{n.type, n.a, n.b, n.c, nullptr};
  if (!n.prelu_slopes.empty()) {
    keep.push_back(context.upload(n.prelu_slopes.data(), n.prelu_slopes.size() * sizeof(float),
                                  what + " prelu slopes"));
    device.slopes = reinterpret_cast<const float*>(keep.back().get());
  }
  return device;
}

std::shared_ptr<DeviceWeights> device_weights(const PreparedWeights& prepared, Context& context) {
  const std::string key =
      "cuda" + std::to_string(context.device) + ":" + to_string(context.storage);
  std::lock_guard lock(prepared.cache_mutex);
  auto& slot = prepared.backend_cache[key];
  if (!slot) {
    auto w = std::make_shared<DeviceWeights>();
    w->weights = context.upload_as_storage(prepared.weights, prepared.source_label + " weights");
    w->bias = context.upload_as_storage(prepared.bias, prepared.source_label + " bias");
    slot = w;
  }
  return std::static_pointer_cast<DeviceWeights>(slot);
}

double time_kernel(Kernel& kernel, const ConvolutionOp& op, Context& context) {
  const std::size_t element = size_of(context.storage);
  std::vector<std::shared_ptr<std::byte[]>> blocks;
  for (std::size_t elements :
       {op.src_shapes[0].elements(), op.dst_shape.elements(), op.dst_shape.elements()}) {
    blocks.push_back(context.memory->allocate(elements * element, "autotuning"));
    check(cudaMemsetAsync(blocks.back().get(), 0x3C, elements * element, context.stream),
          "cudaMemsetAsync");
  }
  KernelArgs args;
  args.srcs = {reinterpret_cast<const float*>(blocks[0].get())};
  for (const PostOp& post : op.post_ops) {
    if (post.kind == PostOp::Kind::sum) {
      args.srcs.push_back(reinterpret_cast<const float*>(blocks[2].get()));
      break;
    }
  }
  args.dst = reinterpret_cast<float*>(blocks[1].get());
  cudaEvent_t start = nullptr, stop = nullptr;
  double ms = -1;
  try {
    check(cudaEventCreate(&start), "cudaEventCreate");
    check(cudaEventCreate(&stop), "cudaEventCreate");
    kernel.run(args);
    check(cudaEventRecord(start, context.stream), "cudaEventRecord");
    for (int i = 0; i < 3; ++i) kernel.run(args);
    check(cudaEventRecord(stop, context.stream), "cudaEventRecord");
    check(cudaEventSynchronize(stop), "timing a convolution kernel");
    float elapsed = 0;
    check(cudaEventElapsedTime(&elapsed, start, stop), "cudaEventElapsedTime");
    ms = elapsed / 3;
  } catch (const DeviceError&) {
    cudaStreamSynchronize(context.stream);
    cudaGetLastError();
  }
  if (start) cudaEventDestroy(start);
  if (stop) cudaEventDestroy(stop);
  return ms;
}

}  // namespace cnngraph::detail::cuda
