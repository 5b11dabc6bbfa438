// cuDNN's two backward operations of a convolution (graph API), autotuned and cached like
// the forward: backward data (dx), shared by a convolution's input gradient
// (convolution_gradient.cpp) and the transposed convolution (convolution_transpose.cpp), and
// backward filter (dw), a convolution's weight gradient.
#include "backends/cuda/convolution/convolution_backward.hpp"

#include "backends/cuda/cudnn/cudnn_graph.hpp"

namespace cnngraph::detail::cuda {

namespace {

enum Uid : std::int64_t { kDx = 1, kW = 2, kDy = 3 };

// cuDNN's two backward operations of a convolution, over the image (x or dx), the weights
// (w or dw) and dy, with uids kDx, kW and kDy.
struct BackwardOperation {
  cudnnBackendDescriptorType_t type;
  cudnnBackendAttributeName_t image, weights, dy, conv, alpha, beta;
  const char* problem;  // names the plan in the cache
};
const BackwardOperation kBackwardData{CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR,
                                      CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX,
                                      CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W,
                                      CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY,
                                      CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC,
                                      CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA,
                                      CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA,
                                      "conv_bwd_data "};
const BackwardOperation kBackwardFilter{
    CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR,
    CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X,
    CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW,
    CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY,
    CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC,
    CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA,
    CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA,
    "conv_bwd_filter "};

// The plan of `operation` for `forward`, all tensors in the storage type, autotuned and
// cached like the forward; null when no engine takes it. Autotuning runs the candidates on
// scratch images (bytes 0x3C, as for the forward convolution) and `weights` where given
// (else scratch weights too).
std::shared_ptr<Plan> backward_plan(const BackwardOperation& operation,
                                    const ConvolutionOp& forward, const GraphOptions& options,
                                    Context& context, void* weights) {
  const ImageShape& x = forward.src_shapes[0];
  const ImageShape dy = forward.convolution_shape();
  const cudnnDataType_t io = cudnn_type(context.storage);
  const cudnnDataType_t compute = CUDNN_DATA_FLOAT;
  auto conv = convolution_descriptor(forward, compute);
  if (!conv) return nullptr;
  const int group_channels = forward.input_channels / forward.groups;
  auto x_tensor = make_tensor(kDx, io, x.batch, x.channels, x.height, x.width);
  auto w_tensor = make_tensor(kW, io, forward.output_channels, group_channels,
                              forward.kernel_height, forward.kernel_width);
  auto dy_tensor = make_tensor(kDy, io, dy.batch, dy.channels, dy.height, dy.width);
  auto op = std::make_shared<Descriptor>(operation.type);
  cudnnBackendDescriptor_t xh = x_tensor->get(), wh = w_tensor->get(), dyh = dy_tensor->get(),
                           ch = conv->get();
  const float alpha = 1.0f, beta = 0.0f;
  op->set(operation.image, CUDNN_TYPE_BACKEND_DESCRIPTOR, &xh)
      .set(operation.weights, CUDNN_TYPE_BACKEND_DESCRIPTOR, &wh)
      .set(operation.dy, CUDNN_TYPE_BACKEND_DESCRIPTOR, &dyh)
      .set(operation.conv, CUDNN_TYPE_BACKEND_DESCRIPTOR, &ch)
      .set(operation.alpha, CUDNN_TYPE_FLOAT, &alpha)
      .set(operation.beta, CUDNN_TYPE_FLOAT, &beta);
  if (!op->try_finalize()) return nullptr;

  PlanTimer timer;
  std::vector<std::shared_ptr<std::byte[]>> scratch;
  std::vector<void*> pointers;
  if (options.autotune) {
    const std::size_t element = size_of(context.storage);
    const std::size_t weight_count = std::size_t(forward.output_channels) * group_channels *
                                     forward.kernel_height * forward.kernel_width;
    for (std::size_t elements : {x.elements(), weights ? 0 : weight_count, dy.elements()}) {
      scratch.push_back(elements ? context.memory->allocate(elements * element, "autotuning")
                                 : nullptr);
      if (elements) {
        check(cudaMemsetAsync(scratch.back().get(), 0x3C, elements * element, context.stream),
              "cudaMemsetAsync");
      }
    }
    pointers = {scratch[0].get(), weights ? weights : scratch[1].get(), scratch[2].get()};
    timer = [&](const Plan& candidate, double best_ms) {
      return time_plan(candidate, context.cudnn, context.stream, *context.memory, {kDx, kW, kDy},
                       pointers, best_ms);
    };
  }
  auto plan = find_plan(context.cudnn, {op}, io == CUDNN_DATA_FLOAT, options,
                        operation.problem + convolution_problem(forward, io, compute),
                        options.autotune ? &timer : nullptr);
  if (!plan) return nullptr;
  plan->keep.insert(plan->keep.end(), {x_tensor, w_tensor, dy_tensor, conv});
  context.reserve_workspace(static_cast<std::size_t>(plan->workspace_bytes));
  return plan;
}

}  // namespace

std::shared_ptr<Plan> backward_data_plan(const ConvolutionOp& forward, const GraphOptions& options,
                                         Context& context, const DeviceWeights& weights) {
  return backward_plan(kBackwardData, forward, options, context, weights.weights.get());
}

std::shared_ptr<Plan> backward_filter_plan(const ConvolutionOp& forward,
                                           const GraphOptions& options, Context& context) {
  return backward_plan(kBackwardFilter, forward, options, context, nullptr);
}

void run_backward_filter(const Plan& plan, Context& context, const void* x, void* diff_weights,
                         const void* diff_dst, std::vector<void*>& pointers) {
  pointers = {const_cast<void*>(x), diff_weights, const_cast<void*>(diff_dst)};
  plan.execute(context.cudnn, {kDx, kW, kDy}, pointers, context.workspace.get());
}

void run_backward_data(const Plan& plan, Context& context, const DeviceWeights& weights,
                       const void* diff_dst, void* diff_src, std::vector<void*>& pointers) {
  pointers = {diff_src, weights.weights.get(), const_cast<void*>(diff_dst)};
  plan.execute(context.cudnn, {kDx, kW, kDy}, pointers, context.workspace.get());
}

}  // namespace cnngraph::detail::cuda
