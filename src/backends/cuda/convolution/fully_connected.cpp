// Fully connected layers on CUDA through cuBLASLt: one matrix product per batch with the
// bias (and a relu) in its epilogue. In cuBLASLt's column-major terms the result
// dst^T[O x N] = W[K x O]^T * src^T[K x N], where K = the source's H * W * C. Their
// gradients are two more products, dx^T[K x N] = W[K x O] * dy^T[O x N] and the weight
// gradient dW^T[K x O] = x^T[K x N] * dy[N x O] (written in f32 directly), and the bias
// gradient our per-channel sums; cuDNN's convolution kernels took a 7x7 "convolution" over
// a 7x7 image for what is a matrix product.
#include <cublasLt.h>

#include <cstdio>
#include <optional>
#include <string>

#include "backends/candidates.hpp"
#include "backends/cuda/cuda_kernels.hpp"
#include "backends/cuda/kernels/channel_reduction.hpp"
#include "backends/cuda/kernels/elementwise.hpp"
#include "cnngraph/errors.hpp"
#include "env_knobs.hpp"

namespace cnngraph::detail::cuda {

namespace {

cudaDataType_t cuda_type(DataType type) {
  switch (type) {
    case DataType::f16:
      return CUDA_R_16F;
    case DataType::bf16:
      return CUDA_R_16BF;
    default:
      return CUDA_R_32F;
  }
}

template <typename Handle, typename Destroy>
struct Owned {
  Handle handle = nullptr;
  Destroy destroy;
  ~Owned() {
    if (handle) destroy(handle);
  }
};

// cuBLASLt's first algorithm for a product whose D has C's layout, its workspace bounded by
// the options (at most 32 MB, reserved in the context); Unsupported naming `what` when
// there is none.
cublasLtMatmulHeuristicResult_t choose_algorithm(Context& context, const GraphOptions& options,
                                                 cublasLtMatmulDesc_t matmul,
                                                 cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                                 cublasLtMatrixLayout_t c, std::size_t& workspace,
                                                 const std::string& what) {
  Owned<cublasLtMatmulPreference_t, decltype(&cublasLtMatmulPreferenceDestroy)> preference{
      nullptr, cublasLtMatmulPreferenceDestroy};
  check(cublasLtMatmulPreferenceCreate(&preference.handle), "cublasLtMatmulPreferenceCreate");
  workspace = options.workspace_limit_bytes
                  ? std::min<std::size_t>(options.workspace_limit_bytes, 32u << 20)
                  : 32u << 20;
  cublasLtMatmulPreferenceSetAttribute(preference.handle, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                       &workspace, sizeof workspace);
  cublasLtMatmulHeuristicResult_t heuristic{};
  int found = 0;
  if (cublasLtMatmulAlgoGetHeuristic(context.cublas, matmul, a, b, c, c, preference.handle, 1,
                                     &heuristic, &found) != CUBLAS_STATUS_SUCCESS ||
      found == 0) {
    throw Unsupported(what + ": cuBLASLt has no algorithm for this product");
  }
  context.reserve_workspace(workspace);
  return heuristic;
}

class CublasLtFullyConnected : public Kernel {
 public:
  CublasLtFullyConnected(const ConvolutionOp& op, const GraphOptions& options, Context& context)
      : op_(op), context_(context) {
    weights_ = device_weights(*op.weights, context);
    // A 1x1 convolution is the same product over pixels: N = every pixel, K = the channels.
    const ImageShape& in = op.src_shapes[0];
    const std::uint64_t N = op.fully_connected ? std::uint64_t(in.batch)
                                               : std::uint64_t(in.batch) * in.height * in.width;
    const std::uint64_t O = std::uint64_t(op.output_channels);
    const std::uint64_t K =
        op.fully_connected ? in.elements_per_image() : std::uint64_t(in.channels);
    const cudaDataType_t type = cuda_type(context.storage);
    const bool half_accumulator =
        context.storage == DataType::f16 && op.accumulator == AccumulatorPrecision::half;
    const cublasComputeType_t compute =
        half_accumulator                               ? CUBLAS_COMPUTE_16F
        : options.precision == Precision::tf32_allowed ? CUBLAS_COMPUTE_32F_FAST_TF32
        : context.storage == DataType::f32             ? CUBLAS_COMPUTE_32F_PEDANTIC
                                                       : CUBLAS_COMPUTE_32F;
    scale_type_ = half_accumulator ? CUDA_R_16F : CUDA_R_32F;
    check(cublasLtMatmulDescCreate(&matmul_.handle, compute, scale_type_),
          "cublasLtMatmulDescCreate");
    const cublasOperation_t transpose = CUBLAS_OP_T, none = CUBLAS_OP_N;
    cublasLtMatmulDescSetAttribute(matmul_.handle, CUBLASLT_MATMUL_DESC_TRANSA, &transpose,
                                   sizeof transpose);
    cublasLtMatmulDescSetAttribute(matmul_.handle, CUBLASLT_MATMUL_DESC_TRANSB, &none, sizeof none);
    // The bias and a leading relu (not leaky) go into cuBLASLt's epilogue; a leading residual
    // sum is its C term (beta = 1), added with the bias before any later post-op.
    cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    std::size_t first_post = 0;
    if (op.weights->has_bias) epilogue = CUBLASLT_EPILOGUE_BIAS;
    if (!op.post_ops.empty() && op.post_ops[0].kind == PostOp::Kind::neuron &&
        op.post_ops[0].neuron.type == NeuronType::relu && op.post_ops[0].neuron.a == 0.0f) {
      epilogue = op.weights->has_bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU;
      first_post = 1;
    } else if (!op.post_ops.empty() && op.post_ops[0].kind == PostOp::Kind::sum) {
      residual_ = true;
      first_post = 1;
    }
    cublasLtMatmulDescSetAttribute(matmul_.handle, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue,
                                   sizeof epilogue);
    fused_ = epilogue != CUBLASLT_EPILOGUE_DEFAULT || residual_;
    check(cublasLtMatrixLayoutCreate(&a_.handle, type, K, O, K), "cublasLtMatrixLayoutCreate");
    check(cublasLtMatrixLayoutCreate(&b_.handle, type, K, N, K), "cublasLtMatrixLayoutCreate");
    check(cublasLtMatrixLayoutCreate(&c_.handle, type, O, N, O), "cublasLtMatrixLayoutCreate");
    heuristic_ = choose_algorithm(context, options, matmul_.handle, a_.handle, b_.handle, c_.handle,
                                  workspace_, op.name + " (fully connected)");
    weights_pointer_ = weights_->weights.get();
    bias_ = weights_->bias.get();
    if (op.weights->has_bias) {
      cublasLtMatmulDescSetAttribute(matmul_.handle, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias_,
                                     sizeof bias_);
    }
    // What cuBLASLt could not fuse runs in the epilogue kernel.
    has_epilogue_ = make_epilogue(op, context, *weights_, !fused_, first_post, epilogue_, slopes_);
  }

  void run(const KernelArgs& args) override {
    const float one = 1.0f, zero = 0.0f;
    const std::uint16_t half_one = 0x3c00, half_zero = 0;
    const void* alpha = scale_type_ == CUDA_R_16F ? static_cast<const void*>(&half_one) : &one;
    const void* beta = scale_type_ == CUDA_R_16F ? static_cast<const void*>(&half_zero) : &zero;
    const void* c = args.dst;
    if (residual_) {
      beta = alpha;
      c = args.srcs[1];
    }
    check(cublasLtMatmul(context_.cublas, matmul_.handle, alpha, weights_pointer_, a_.handle,
                         args.srcs[0], b_.handle, beta, c, c_.handle, args.dst, c_.handle,
                         &heuristic_.algo, context_.workspace.get(), workspace_, context_.stream),
          op_.name + ": cublasLtMatmul");
    if (has_epilogue_) {
      epilogue_.residual = args.srcs.size() > 1 ? args.srcs[1] : nullptr;
      epilogue(context_.storage, epilogue_, args.dst, op_.dst_shape.elements(),
               op_.dst_shape.channels, context_.stream);
    }
  }
  std::string implementation() const override {
    return std::string("cublaslt:matmul") + (fused_ ? "+epilogue" : "") +
           (residual_ ? "+sum" : "") + (epilogue_.count ? " +post-ops" : "");
  }

 private:
  const ConvolutionOp& op_;
  Context& context_;
  std::shared_ptr<DeviceWeights> weights_;
  const void* weights_pointer_ = nullptr;
  const void* bias_ = nullptr;
  cudaDataType_t scale_type_ = CUDA_R_32F;
  Owned<cublasLtMatmulDesc_t, decltype(&cublasLtMatmulDescDestroy)> matmul_{
      nullptr, cublasLtMatmulDescDestroy};
  Owned<cublasLtMatrixLayout_t, decltype(&cublasLtMatrixLayoutDestroy)> a_{
      nullptr, cublasLtMatrixLayoutDestroy},
      b_{nullptr, cublasLtMatrixLayoutDestroy}, c_{nullptr, cublasLtMatrixLayoutDestroy};
  cublasLtMatmulHeuristicResult_t heuristic_{};
  std::size_t workspace_ = 0;
  bool fused_ = false;
  bool residual_ = false;
  bool has_epilogue_ = false;
  DeviceEpilogue epilogue_;
  std::vector<std::shared_ptr<std::byte[]>> slopes_;
};

// One matrix product D = op(A) * op(B) in column-major terms, its algorithm chosen once by
// cuBLASLt's heuristic. A and B are in `in` type, D in `out` type.
class Matmul {
 public:
  Matmul(Context& context, const GraphOptions& options, const std::string& what, bool transpose_b,
         std::uint64_t m, std::uint64_t n, std::uint64_t k, cudaDataType_t in, cudaDataType_t out)
      : context_(context), what_(what) {
    const cublasComputeType_t compute = options.precision == Precision::tf32_allowed
                                            ? CUBLAS_COMPUTE_32F_FAST_TF32
                                        : in == CUDA_R_32F ? CUBLAS_COMPUTE_32F_PEDANTIC
                                                           : CUBLAS_COMPUTE_32F;
    check(cublasLtMatmulDescCreate(&matmul_.handle, compute, CUDA_R_32F),
          "cublasLtMatmulDescCreate");
    const cublasOperation_t none = CUBLAS_OP_N, b_op = transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasLtMatmulDescSetAttribute(matmul_.handle, CUBLASLT_MATMUL_DESC_TRANSA, &none, sizeof none);
    cublasLtMatmulDescSetAttribute(matmul_.handle, CUBLASLT_MATMUL_DESC_TRANSB, &b_op, sizeof b_op);
    check(cublasLtMatrixLayoutCreate(&a_.handle, in, m, k, m), "cublasLtMatrixLayoutCreate");
    check(cublasLtMatrixLayoutCreate(&b_.handle, in, transpose_b ? n : k, transpose_b ? k : n,
                                     transpose_b ? n : k),
          "cublasLtMatrixLayoutCreate");
    check(cublasLtMatrixLayoutCreate(&d_.handle, out, m, n, m), "cublasLtMatrixLayoutCreate");
    heuristic_ = choose_algorithm(context, options, matmul_.handle, a_.handle, b_.handle, d_.handle,
                                  workspace_, what);
  }

  void run(const void* a, const void* b, void* d) const {
    const float one = 1.0f, zero = 0.0f;
    check(cublasLtMatmul(context_.cublas, matmul_.handle, &one, a, a_.handle, b, b_.handle, &zero,
                         d, d_.handle, d, d_.handle, &heuristic_.algo, context_.workspace.get(),
                         workspace_, context_.stream),
          what_ + ": cublasLtMatmul");
  }

 private:
  Context& context_;
  std::string what_;
  Owned<cublasLtMatmulDesc_t, decltype(&cublasLtMatmulDescDestroy)> matmul_{
      nullptr, cublasLtMatmulDescDestroy};
  Owned<cublasLtMatrixLayout_t, decltype(&cublasLtMatrixLayoutDestroy)> a_{
      nullptr, cublasLtMatrixLayoutDestroy},
      b_{nullptr, cublasLtMatrixLayoutDestroy}, d_{nullptr, cublasLtMatrixLayoutDestroy};
  cublasLtMatmulHeuristicResult_t heuristic_{};
  std::size_t workspace_ = 0;
};

// srcs: dy [N x O], x [N x K]; dst: dx [N x K]. Weight and bias gradients into the
// node's DeviceTrainingBuffers when it is trained.
class CublasLtFullyConnectedGradient : public Kernel {
 public:
  CublasLtFullyConnectedGradient(const ConvolutionGradientOp& op, const GraphOptions& options,
                                 Context& context)
      : op_(op), context_(context) {
    const ConvolutionOp& f = op.forward;
    const int N = f.dst_shape.batch, O = f.output_channels;
    const std::uint64_t K = f.src_shapes[0].elements_per_image();
    const cudaDataType_t type = cuda_type(context.storage);
    weights_ = device_weights(*f.weights, context);
    if (op.input_gradient)
      data_.emplace(context, options, op.name + " (input gradient)", false, K, N, O, type, type);
    if (op.parameters) {
      trained_ = device_training_buffers(*f.weights, context);
      filter_.emplace(context, options, op.name + " (weight gradient)", true, K, O, N, type,
                      CUDA_R_32F);
      if (f.weights->has_bias) {
        scratch_ = context.memory->allocate(channel_reduction_scratch_bytes(N, O),
                                            op.name + " bias gradient");
      }
    }
  }

  void run(const KernelArgs& args) override {
    const void* dy = args.srcs[0];
    const void* x = args.srcs[1];
    if (data_) data_->run(weights_->weights.get(), dy, args.dst);
    if (filter_) {
      filter_->run(x, dy, trained_->weights_gradient.get());
      if (scratch_) {
        channel_sums(context_.storage, dy, op_.forward.dst_shape.batch, op_.forward.output_channels,
                     1.0f, trained_->bias_gradient_f32(), reinterpret_cast<float*>(scratch_.get()),
                     context_.stream);
      }
    }
  }
  std::string implementation() const override {
    return std::string("cublaslt:fully_connected_gradient") + (data_ ? " diff_src" : "") +
           (filter_ ? " diff_weights" : "");
  }

 private:
  const ConvolutionGradientOp& op_;
  Context& context_;
  std::shared_ptr<DeviceWeights> weights_;
  std::shared_ptr<DeviceTrainingBuffers> trained_;
  std::optional<Matmul> data_, filter_;
  std::shared_ptr<std::byte[]> scratch_;
};

}  // namespace

std::unique_ptr<Kernel> make_cublaslt_fully_connected_gradient(const Op& base,
                                                               const GraphOptions& options,
                                                               Context& context) {
  const auto& op = static_cast<const ConvolutionGradientOp&>(base);
  const ConvolutionOp& f = op.forward;
  if (!f.fully_connected) return decline("not fully connected");
  if (f.groups != 1) return decline("groups > 1");
  if (f.sub_pixel != 1) return decline("sub-pixel output");
  // A fused neuron needs the recomputed forward (convolution_gradient.cpp does that).
  if (!f.post_ops.empty()) return decline("a fused neuron");
  return std::make_unique<CublasLtFullyConnectedGradient>(op, options, context);
}

std::unique_ptr<Kernel> make_cublaslt_fully_connected(const Op& base, const GraphOptions& options,
                                                      Context& context) {
  const auto& op = static_cast<const ConvolutionOp&>(base);
  if (!op.fully_connected) return decline("not fully connected");
  if (op.groups != 1) return decline("groups > 1");
  if (op.sub_pixel != 1) return decline("sub-pixel output");
  return std::make_unique<CublasLtFullyConnected>(op, options, context);
}

std::unique_ptr<Kernel> make_cublaslt_pointwise_convolution(const Op& base,
                                                            const GraphOptions& options,
                                                            Context& context) {
  const auto& op = static_cast<const ConvolutionOp&>(base);
  const bool pointwise = !op.fully_connected && op.groups == 1 && op.sub_pixel == 1 &&
                         op.kernel_height == 1 && op.kernel_width == 1 && op.x.stride == 1 &&
                         op.y.stride == 1 && op.x.pad_before == 0 && op.y.pad_before == 0 &&
                         op.x.result_size == op.x.source_size &&
                         op.y.result_size == op.y.source_size;
  if (!pointwise) return decline("not a 1x1 convolution of stride 1 without padding");
  if (op.post_ops.size() > static_cast<std::size_t>(kMaxPostOps))
    return decline("more post-ops than the epilogue kernel takes");
  // CNNGRAPH_CUDA_POINTWISE=cublaslt or cudnn forces the choice, for tests and experiments.
  if (const char* forced = knobs::read(knobs::cuda_pointwise)) {
    if (std::string(forced) == "cublaslt")
      return std::make_unique<CublasLtFullyConnected>(op, options, context);
    return decline(std::string("CNNGRAPH_CUDA_POINTWISE=") + forced);
  }
  // Without autotuning cuDNN takes it (its plans fuse more post-ops); autotuning times
  // cuBLASLt's product against cuDNN's plan, each with the passes its epilogue leaves, and
  // keeps the faster: at small batches cuBLASLt's kernels start sooner.
  if (!options.autotune) return decline("cuDNN's plan is the default without autotuning");
  std::unique_ptr<Kernel> gemm;
  try {
    gemm = std::make_unique<CublasLtFullyConnected>(op, options, context);
  } catch (const Unsupported& e) {
    return decline(e.what());
  }
  std::unique_ptr<Kernel> cudnn = make_cudnn_convolution(op, options, context);
  if (!cudnn) return gemm;
  const double gemm_ms = time_kernel(*gemm, op, context);
  const double cudnn_ms = time_kernel(*cudnn, op, context);
  if (options.verbose) {
    std::fprintf(stderr, "cnngraph: cuda: %s: 1x1 as cublaslt %.4f ms, %s %.4f ms\n",
                 op.name.c_str(), gemm_ms, cudnn->implementation().c_str(), cudnn_ms);
  }
  if (gemm_ms > 0 && (cudnn_ms <= 0 || gemm_ms < cudnn_ms)) return gemm;
  return cudnn;
}

}  // namespace cnngraph::detail::cuda
