// The CUDA backend's own behaviour: its kernel choices (NCHW f32, the padded stem, depthwise
// vector widths, transposed convolutions through cuDNN, the plan cache), chains checked in
// every precision, neurons at extreme inputs, loss and dropout over recorded runs, recorded
// CUDA graphs, device images, errors and concurrency. Every op against the reference in every
// precision: the op cases of backend_ops_test. On a machine without a GPU every test but the
// first skips, saying so.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "cuda_support.hpp"
#include "gradient_support.hpp"
#include "neuron_cases.hpp"
#include "support.hpp"

using namespace cnngraph;
using namespace cnngraph::testing;

namespace {

// Runs `result` on the reference and on CUDA in every precision; checks they agree.
void expect_cuda_matches_reference(const std::shared_ptr<ImageNode>& result,
                                   const std::vector<Image>& sources, double scale = 1.0,
                                   const std::string& what = "") {
  const Image expected = run_on(Device::cpu_reference(), result, sources);
  for (const PrecisionCase& p : kPrecisions) {
    const Image actual = run_on(Device::cuda(), result, sources, options_for(p.precision));
    EXPECT_FALSE(actual.is_on_host());
    EXPECT_LE(max_relative_error(actual.converted_to(DataType::f32), expected), p.tolerance * scale)
        << what << " " << p.name;
  }
}

std::shared_ptr<ImageNode> conv(std::shared_ptr<ImageNode> src,
                                std::shared_ptr<ConvolutionDataSource> weights,
                                PaddingPolicy padding = PaddingPolicy::same()) {
  auto node = std::make_shared<ConvolutionNode>(std::move(src), std::move(weights));
  node->padding_policy = std::move(padding);
  return node->result_image();
}

}  // namespace

TEST(CudaDevice, AbsentGpuOrBackendIsAClearDeviceError) {
  if (Device::cuda_device_count() > 0) {
    EXPECT_THROW(Device::cuda(Device::cuda_device_count()), DeviceError);
    return;
  }
  EXPECT_THROW(Device::cuda(), DeviceError);
}

TEST(CudaDevice, MemoryStatisticsAreForCudaDevicesOnly) {
  EXPECT_THROW(Device::cpu().memory_statistics(), Unsupported);
  EXPECT_THROW(Device::cpu_reference().reset_peak_memory(), Unsupported);
}

TEST(CudaDevice, MemoryStatisticsCountBlocksInUseTheirPeakAndTheDriversShare) {
  REQUIRE_GPU();
  const Device gpu = Device::cuda();
  gpu.reset_peak_memory();
  const DeviceMemoryStatistics before = gpu.memory_statistics();
  EXPECT_EQ(before.peak_bytes_in_use, before.bytes_in_use);
  EXPECT_GE(before.bytes_reserved, before.bytes_in_use);
  const std::size_t bytes = 3 * 1024 * 1024;  // a multiple of the 512-byte rounding
  {
    const Image image =
        Image::from_floats({1, 1, 1, int(bytes / 4)}, std::vector<float>(bytes / 4)).to(gpu);
    const DeviceMemoryStatistics holding = gpu.memory_statistics();
    EXPECT_EQ(holding.bytes_in_use, before.bytes_in_use + bytes);
    EXPECT_EQ(holding.peak_bytes_in_use, holding.bytes_in_use);
    EXPECT_GE(holding.bytes_reserved, holding.bytes_in_use);
  }
  const DeviceMemoryStatistics after = gpu.memory_statistics();
  EXPECT_EQ(after.bytes_in_use, before.bytes_in_use);  // the block went back to the cache
  EXPECT_EQ(after.peak_bytes_in_use, before.bytes_in_use + bytes);
  EXPECT_GE(after.bytes_reserved, before.bytes_in_use + bytes);  // cached, still reserved
  gpu.reset_peak_memory();
  EXPECT_EQ(gpu.memory_statistics().peak_bytes_in_use, after.bytes_in_use);
}

TEST(CudaConvolution, StrictF32InNchwMatchesTheReference) {
  REQUIRE_GPU();
  // Autotuning may run strict fp32 convolutions in NCHW (transposes around cuDNN);
  // CNNGRAPH_CUDA_F32_LAYOUT=nchw forces that path here, whatever it measures.
  setenv("CNNGRAPH_CUDA_F32_LAYOUT", "nchw", 1);
  std::mt19937 rng(47);
  int nchw = 0;
  for (const ConvCase& c : random_convolution_cases(16, 4711)) {
    ConvolutionDescriptor d = c.descriptor();
    if (rng() % 2) d.neuron = NeuronDescriptor::make(NeuronType::relu);
    auto src = std::make_shared<ImageNode>();
    auto result = conv(src, random_source(d, rng), c.padding);
    const Image x = random_image({c.batch, c.height, c.width, c.in_channels}, rng);
    Graph gpu(Device::cuda(), result);
    const Image actual = gpu.run({x})[0];
    nchw += gpu.describe().find("cudnn:nchw") != std::string::npos;
    EXPECT_LE(max_relative_error(actual, run_on(Device::cpu_reference(), result, {x})), 1e-4)
        << c.name() << "\n"
        << gpu.describe();
  }
  // A residual sum and relu after the transpose back.
  auto src = std::make_shared<ImageNode>();
  auto sum = std::make_shared<AdditionNode>(
      conv(src, random_source(ConvolutionDescriptor(3, 3, 8, 8), rng)), src);
  auto relu =
      std::make_shared<NeuronNode>(sum->result_image(), NeuronDescriptor::make(NeuronType::relu));
  const Image x = random_image({3, 7, 9, 8}, rng);
  Graph gpu(Device::cuda(), relu->result_image());
  EXPECT_LE(max_relative_error(gpu.run({x})[0],
                               run_on(Device::cpu_reference(), relu->result_image(), {x})),
            1e-4);
  EXPECT_NE(gpu.describe().find("cudnn:nchw"), std::string::npos) << gpu.describe();
  unsetenv("CNNGRAPH_CUDA_F32_LAYOUT");
  EXPECT_GE(nchw, 8) << "too few convolutions took the NCHW path";
}

TEST(CudaConvolution, StemOverThreeColoursPaddedToFourMatchesTheReference) {
  REQUIRE_GPU();
  // A network's first layer: its source padded to 4 channels (chosen by autotuning when
  // faster; forced here) must still give the convolution over the 3.
  setenv("CNNGRAPH_CUDA_STEM_PADDING", "always", 1);
  std::mt19937 rng(43);
  ConvolutionDescriptor d(7, 7, 3, 32);
  d.stride_x = d.stride_y = 2;
  d.neuron = NeuronDescriptor::make(NeuronType::relu);
  auto src = std::make_shared<ImageNode>();
  auto result = conv(src, random_source(d, rng));
  const Image x = random_image({3, 37, 41, 3}, rng);
  const Image expected = run_on(Device::cpu_reference(), result, {x});
  for (Precision precision :
       {Precision::f16, Precision::bf16, Precision::tf32_allowed, Precision::f32}) {
    Graph gpu(Device::cuda(), result, true, options_for(precision));
    const Image actual = gpu.run({x})[0].converted_to(DataType::f32);
    const double tolerance = precision == Precision::f16    ? 2e-2
                             : precision == Precision::bf16 ? 8e-2
                             : precision == Precision::f32  ? 1e-4
                                                            : 2e-2;
    EXPECT_LE(max_relative_error(actual, expected), tolerance) << gpu.describe();
    EXPECT_NE(gpu.describe().find("channels 3->4"), std::string::npos) << gpu.describe();
  }
  unsetenv("CNNGRAPH_CUDA_STEM_PADDING");
}

TEST(CudaConvolution, DepthwiseSubPixelDilatedAndHalfAccumulation) {
  REQUIRE_GPU();
  std::mt19937 rng(3);
  auto src = std::make_shared<ImageNode>();
  ConvolutionDescriptor depthwise(3, 3, 8, 16);
  depthwise.groups = 8;
  depthwise.dilation_x = depthwise.dilation_y = 2;
  ConvolutionDescriptor sub_pixel(3, 3, 16, 12);
  sub_pixel.sub_pixel_scale_factor = 2;
  auto d = conv(src, random_source(depthwise, rng));
  auto s = conv(d, random_source(sub_pixel, rng));
  const Image x = random_image({2, 7, 5, 8}, rng);
  expect_cuda_matches_reference(s, {x}, 2.0);
  // Both channel orders of the sub-pixel shuffle kernel (MPS's is the default).
  sub_pixel.set_sub_pixel(2, SubPixelOrder::pixel_shuffle);
  expect_cuda_matches_reference(conv(d, random_source(sub_pixel, rng)), {x}, 2.0,
                                "pixel_shuffle order");
  ConvolutionDescriptor sub_pixel3(3, 3, 8, 18);
  for (const SubPixelOrder order : {SubPixelOrder::depth_to_space, SubPixelOrder::pixel_shuffle}) {
    sub_pixel3.set_sub_pixel(3, order);
    expect_cuda_matches_reference(conv(src, random_source(sub_pixel3, rng)), {x}, 2.0,
                                  to_string(order) + " s=3");
  }
  auto half =
      std::make_shared<ConvolutionNode>(src, random_source(ConvolutionDescriptor(3, 3, 8, 8), rng));
  half->accumulator_precision = AccumulatorPrecision::half;
  const Image expected = run_on(Device::cpu_reference(), half->result_image(), {x});
  const Image actual =
      run_on(Device::cuda(), half->result_image(), {x}, options_for(Precision::f16));
  EXPECT_LE(max_relative_error(actual, expected), 3e-2);
}

TEST(CudaConvolution, DepthwiseKernelMatchesTheReferenceForEveryVectorWidth) {
  REQUIRE_GPU();
  std::mt19937 rng(29);
  // Channels 5, 6, 12 and 24 take vectors of 1, 2, 4 and 8 (fp16) elements.
  for (int channels : {5, 6, 12, 24}) {
    for (int stride : {1, 2}) {
      ConvolutionDescriptor d(3, 5, channels, channels);
      d.groups = channels;
      d.stride_x = d.stride_y = stride;
      d.dilation_y = 2;
      d.neuron = NeuronDescriptor::make(NeuronType::relu_n, 0.0f, 0.5f);
      auto src = std::make_shared<ImageNode>();
      auto node = std::make_shared<ConvolutionNode>(src, random_source(d, rng));
      node->padding_policy = PaddingPolicy::same();
      Graph gpu(Device::cuda(), node->result_image());
      gpu.compile({{3, 11, 13, channels}});
      EXPECT_NE(gpu.describe().find("cuda:depthwise_convolution"), std::string::npos)
          << gpu.describe();
      const Image x = random_image({3, 11, 13, channels}, rng);
      expect_cuda_matches_reference(node->result_image(), {x}, 1.0,
                                    "depthwise c" + std::to_string(channels));
    }
  }
  // 3x3, stride 1: the kernel that computes several rows per thread (11 rows: a partial
  // block of rows at the bottom), with every padding policy.
  for (int channels : {5, 6, 12, 24}) {
    for (const PaddingPolicy& policy :
         {PaddingPolicy::same(), PaddingPolicy::valid(), PaddingPolicy::full()}) {
      ConvolutionDescriptor d(3, 3, channels, channels);
      d.groups = channels;
      d.neuron = NeuronDescriptor::make(NeuronType::relu_n, 0.0f, 0.5f);
      auto src = std::make_shared<ImageNode>();
      auto result = conv(src, random_source(d, rng), policy);
      expect_cuda_matches_reference(result, {random_image({2, 11, 9, channels}, rng)}, 1.0,
                                    "depthwise 3x3 c" + std::to_string(channels));
    }
  }
  // With a residual sum in its epilogue.
  ConvolutionDescriptor d(3, 3, 16, 16);
  d.groups = 16;
  auto src = std::make_shared<ImageNode>();
  auto sum = std::make_shared<AdditionNode>(conv(src, random_source(d, rng)), src);
  expect_cuda_matches_reference(sum->result_image(), {random_image({2, 9, 7, 16}, rng)});
}

// Every variant of the depthwise kernel (CNNGRAPH_CUDA_DEPTHWISE forces one) against the
// reference in every precision: 3x3 and 5x5, strides 1 and 2, dilation, every padding
// policy, batch > 1, partial tiles of rows, columns and channel slices (24, 40, 72 and 136
// channels make 3 to 34 vectors of 16 bytes, and 12 to 68 pairs: one to three slices of
// the register-tiled kernel), the bias, a neuron and a residual sum fused.
TEST(CudaConvolution, EveryDepthwiseVariantMatchesTheReference) {
  REQUIRE_GPU();
  std::mt19937 rng(31);
  struct Layer {
    int channels, kernel, stride, dilation;
    PaddingPolicy padding;
    ImageShape size;
    bool residual;
  };
  const Layer layers[] = {
      {24, 3, 1, 1, PaddingPolicy::same(), {3, 13, 11, 24}, false},
      {40, 3, 2, 1, PaddingPolicy::same(), {2, 12, 17, 40}, false},
      {72, 5, 1, 1, PaddingPolicy::same(), {2, 9, 10, 72}, true},
      {24, 5, 2, 1, PaddingPolicy::valid(), {4, 15, 14, 24}, false},
      {40, 3, 1, 2, PaddingPolicy::full(), {2, 11, 13, 40}, false},
      {136, 5, 2, 2, PaddingPolicy::same(), {2, 12, 9, 136}, false},
      {24, 3, 1, 1, PaddingPolicy::same(), {2, 40, 37, 24}, true},
      {136, 5, 1, 1, PaddingPolicy::same(), {3, 7, 9, 136}, true},
      {136, 3, 2, 1, PaddingPolicy::valid(), {2, 10, 13, 136}, false},
  };
  // The register-tiled variants take undilated layers only.
  struct Variant {
    const char* name;
    bool dilated;
  };
  for (const Variant& v :
       {Variant{"untiled", true}, Variant{"tiled-r4-t256", true}, Variant{"tiled-r2-t256", true},
        Variant{"tiled-r4-t128", true}, Variant{"tiled-r2-t128", true},
        Variant{"regs-r4-c4", false}, Variant{"regs-r2-c4", false}}) {
    const char* variant = v.name;
    setenv("CNNGRAPH_CUDA_DEPTHWISE", variant, 1);
    for (const Layer& l : layers) {
      if (l.dilation > 1 && !v.dilated) continue;
      ConvolutionDescriptor d(l.kernel, l.kernel, l.channels, l.channels);
      d.groups = l.channels;
      d.stride_x = d.stride_y = l.stride;
      d.dilation_x = d.dilation_y = l.dilation;
      d.neuron = NeuronDescriptor::make(NeuronType::silu);
      auto src = std::make_shared<ImageNode>();
      std::shared_ptr<ImageNode> result = conv(src, random_source(d, rng), l.padding);
      if (l.residual) result = std::make_shared<AdditionNode>(result, src)->result_image();
      const std::string what = std::string(variant) + " c" + std::to_string(l.channels) + " " +
                               std::to_string(l.kernel) + "x" + std::to_string(l.kernel) + " s" +
                               std::to_string(l.stride) + " d" + std::to_string(l.dilation);
      for (const PrecisionCase& p : kPrecisions) {
        Graph gpu(Device::cuda(), result, true, options_for(p.precision));
        gpu.compile({l.size});
        EXPECT_NE(gpu.describe().find(std::string("cuda:depthwise_convolution ") + variant),
                  std::string::npos)
            << what << " " << p.name << "\n"
            << gpu.describe();
      }
      expect_cuda_matches_reference(result, {random_image(l.size, rng)}, 1.0, what);
    }
  }
  unsetenv("CNNGRAPH_CUDA_DEPTHWISE");
}

// A variant that cannot take a layer (here the tiled kernel on 13 channels, which fill no
// 16-byte vectors) is refused, and the layer still runs correctly elsewhere.
TEST(CudaConvolution, AForcedDepthwiseVariantThatCannotTakeTheLayerFallsBack) {
  REQUIRE_GPU();
  std::mt19937 rng(37);
  setenv("CNNGRAPH_CUDA_DEPTHWISE", "tiled-r4-t256", 1);
  ConvolutionDescriptor d(3, 3, 13, 13);
  d.groups = 13;
  auto result = conv(std::make_shared<ImageNode>(), random_source(d, rng));
  Graph gpu(Device::cuda(), result);
  gpu.compile({{2, 9, 9, 13}});
  EXPECT_EQ(gpu.describe().find("cuda:depthwise_convolution"), std::string::npos) << gpu.describe();
  expect_cuda_matches_reference(result, {random_image({2, 9, 9, 13}, rng)});
  unsetenv("CNNGRAPH_CUDA_DEPTHWISE");
}

TEST(CudaConvolutionTranspose, MatchesTheReferenceForEveryPaddingStrideAndGroups) {
  REQUIRE_GPU();
  std::mt19937 rng(41);
  int checked = 0;
  for (const PaddingPolicy& policy :
       {PaddingPolicy::valid(), PaddingPolicy::same(), PaddingPolicy::full()}) {
    for (const int stride : {1, 2, 3}) {
      for (const int kernel : {1, 3, 4}) {
        const int groups = kernel == 3 ? 2 : 1;
        ConvolutionDescriptor td(kernel, kernel, 6, 4);
        td.stride_x = td.stride_y = stride;
        td.groups = groups;
        if (kernel == 4) td.dilation_y = 2;  // a 7-row window: the source below has 9 rows
        auto source = std::make_shared<ArrayDataSource>(
            "t", td, random_floats(td.weight_count(), rng), random_floats(4, rng));
        auto y = std::make_shared<ImageNode>("y");
        auto transpose = std::make_shared<ConvolutionTransposeNode>(y, nullptr, source);
        transpose->padding_policy = policy;
        const Image x = random_image({2, 9, 7, 6}, rng);
        Graph gpu(Device::cuda(), transpose->result_image());
        gpu.compile({x.shape()});
        EXPECT_NE(gpu.describe().find("cudnn:backward_data"), std::string::npos) << gpu.describe();
        expect_cuda_matches_reference(
            transpose->result_image(), {x}, 1.0,
            "stride " + std::to_string(stride) + " kernel " + std::to_string(kernel));
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 27);
}

TEST(CudaPlans, AutotunedPlansAreSavedToTheCacheFileAndAForeignFileIsRefused) {
  REQUIRE_GPU();
  std::mt19937 rng(31);
  const std::string path = ::testing::TempDir() + "cnngraph_plan_cache_test.json";
  std::remove(path.c_str());
  GraphOptions options;
  options.precision = Precision::f16;
  options.autotune = true;
  options.plan_cache_file = path;
  auto src = std::make_shared<ImageNode>();
  auto result = conv(src, random_source(ConvolutionDescriptor(3, 3, 32, 32), rng));
  const Image x = random_image({2, 16, 16, 32}, rng);
  const Image expected = run_on(Device::cpu_reference(), result, {x});
  {
    Graph gpu(Device::cuda(), result, true, options);
    EXPECT_LE(max_relative_error(gpu.run({x})[0], expected), 2e-2);
    EXPECT_NE(gpu.describe().find("autotuned"), std::string::npos) << gpu.describe();
  }
  std::ifstream file(path);
  ASSERT_TRUE(file) << "no plan cache written to " << path;
  std::stringstream text;
  text << file.rdbuf();
  EXPECT_NE(text.str().find("cnngraph cuda plan cache 2"), std::string::npos);
  EXPECT_NE(text.str().find("conv_fwd"), std::string::npos);
  // A second graph finds the plan (here in the process's cache, which the file fills in a
  // new process) and computes the same.
  Graph again(Device::cuda(), result, true, options);
  EXPECT_LE(max_relative_error(again.run({x})[0], expected), 2e-2);
  EXPECT_NE(again.describe().find("cached"), std::string::npos) << again.describe();
  std::ofstream(path) << "{\"format\": \"something else\"}";
  EXPECT_THROW(Graph(Device::cuda(), result, true, options), InvalidArgument);
  std::remove(path.c_str());
}

TEST(CudaNeurons, EveryTypeMatchesTheFormulaAtExtremeInputsStandaloneFusedAndDifferentiated) {
  REQUIRE_GPU();
  const std::vector<float> inputs = extreme_neuron_inputs();
  const int count = static_cast<int>(inputs.size());
  const Image x_image = Image::from_floats({1, 1, count, 1}, inputs);
  const Image ones = Image::from_floats({1, 1, count, 1}, std::vector<float>(inputs.size(), 1));
  const GraphOptions f32 = options_for(Precision::f32);
  for (const NeuronDescriptor& neuron : extreme_neuron_cases()) {
    const std::string what = neuron_case_name(neuron);
    const auto value = [&](long double v) { return expected_neuron_value(neuron, v); };
    const auto derivative = [&](long double v) { return expected_neuron_derivative(neuron, v); };
    auto x = std::make_shared<ImageNode>("x");
    auto dy = std::make_shared<ImageNode>("dy");
    auto standalone = std::make_shared<NeuronNode>(x, neuron);
    ConvolutionDescriptor d(1, 1, 1, 1);  // weight 1, no bias: the fused neuron sees x
    d.neuron = neuron;
    auto fused = std::make_shared<ConvolutionNode>(
        x, std::make_shared<ArrayDataSource>("identity", d, std::vector<float>{1.0f}));
    fused->training_style = TrainingStyle::none;
    for (const std::shared_ptr<FilterNode>& node :
         {std::static_pointer_cast<FilterNode>(standalone),
          std::static_pointer_cast<FilterNode>(fused)}) {
      const std::string how = what + " " + node->kind();
      expect_matches_formula(
          run_on(Device::cuda(), node->result_image(), {x_image}, f32).to_floats(), inputs, value,
          2e-5, how);
      Graph gradient(Device::cuda(), node->gradient_filter(dy)->result_image(), true, f32);
      expect_matches_formula(run_named(gradient, {{"x", x_image}, {"dy", ones}}).to_floats(),
                             inputs, derivative, 2e-5, how + " gradient");
    }
  }
}

TEST(CudaLoss, EveryTypeAndReductionMatchesTheReferenceOnEveryRun) {
  REQUIRE_GPU();
  std::mt19937 rng(83);
  for (const LossCase& c : loss_cases()) {
    for (const ReductionType reduction :
         {ReductionType::none, ReductionType::sum, ReductionType::mean,
          ReductionType::sum_by_non_zero_weights}) {
      const bool sum_only = c.type == LossType::cosine_distance;  // sum or none only
      if (sum_only && reduction != ReductionType::sum && reduction != ReductionType::none) continue;
      for (const ImageShape shape : {ImageShape{3, 2, 1, 4}, ImageShape{16, 1, 1, 70}}) {
        SCOPED_TRACE(to_string(c.type) + " reduction " +
                     std::to_string(static_cast<int>(reduction)) + " channels " +
                     std::to_string(shape.channels));
        auto predictions = std::make_shared<ImageNode>("y");
        auto loss = std::make_shared<LossNode>(predictions, loss_descriptor_for(c, reduction));
        const LossLabels loss_labels = loss_labels_for(c, shape, rng).loss_labels;
        Graph reference(Device::cpu_reference(), loss->result_image());
        Graph gpu(Device::cuda(), loss->result_image());
        // Three runs: the third replays a recorded CUDA graph, which must report its own loss.
        for (int run = 0; run < 3; ++run) {
          const Image y =
              Image::from_floats(shape, random_floats(shape.elements(), rng, c.lo, c.hi));
          const auto expected = reference.run({y}, {loss_labels});
          const auto actual = gpu.run({y}, {loss_labels});
          EXPECT_LE(max_relative_error(actual[0], expected[0]), 1e-4) << "run " << run;
          EXPECT_NEAR(actual.loss(), expected.loss(), 1e-4 * (1 + std::fabs(expected.loss())))
              << "run " << run;
        }
      }
    }
  }
}

TEST(CudaDropout, ForwardAndGradientFollowTheBatchCounterOnEveryRun) {
  REQUIRE_GPU();
  // The mask depends on the graph's batch counter; the third run replays a recorded CUDA
  // graph and must still use its own batch's mask, as the reference does.
  std::mt19937 rng(97);
  const ImageShape shape{4, 6, 5, 7};
  auto x = std::make_shared<ImageNode>("x");
  auto dropout = std::make_shared<DropoutNode>(x, 0.7f, 5);
  auto dy = std::make_shared<ImageNode>("dy");
  const auto gradient = dropout->gradient_filter(dy)->result_image();
  for (const auto& result : {dropout->result_image(), gradient}) {
    for (Precision precision : {Precision::f32, Precision::f16}) {
      Graph fresh_reference(Device::cpu_reference(), result);
      Graph gpu(Device::cuda(), result, true, options_for(precision));
      for (int run = 0; run < 4; ++run) {
        // Values that f16 holds exactly, so both precisions compare tightly.
        std::vector<float> values(shape.elements());
        for (float& v : values) v = float(int(rng() % 17) - 8) / 8.0f;
        const Image image = Image::from_floats(shape, values);
        const std::map<std::string, Image> inputs{{"x", image}, {"dy", image}};
        const Image expected = run_named(fresh_reference, inputs);
        const Image actual = run_named(gpu, inputs).converted_to(DataType::f32);
        EXPECT_LE(max_relative_error(actual, expected), precision == Precision::f32 ? 1e-6 : 1e-3)
            << "run " << run;
      }
    }
  }
}

TEST(CudaGraph, RecordedRunsFollowNewInputsAndDeviceImagesAreAccepted) {
  REQUIRE_GPU();
  std::mt19937 rng(17);
  auto src = std::make_shared<ImageNode>();
  auto c1 = conv(src, random_source(ConvolutionDescriptor(3, 3, 4, 8), rng));
  auto relu = std::make_shared<NeuronNode>(c1, NeuronDescriptor::make(NeuronType::relu));
  Graph reference(Device::cpu_reference(), relu->result_image());
  Graph gpu(Device::cuda(), relu->result_image());
  for (int run = 0; run < 4; ++run) {
    const Image x = random_image({2, 6, 6, 4}, rng);
    const Image input = run % 2 ? x.to(Device::cuda()) : x;
    const Image out = gpu.run({input})[0];
    EXPECT_EQ(out.device(), Device::cuda());
    EXPECT_LE(max_relative_error(out, reference.run({x})[0]), 1e-4) << "run " << run;
  }
}

TEST(CudaGraph, ResultImagesKeptByTheCallerAreNeverOverwritten) {
  REQUIRE_GPU();
  std::mt19937 rng(37);
  auto src = std::make_shared<ImageNode>();
  auto result = conv(src, random_source(ConvolutionDescriptor(3, 3, 4, 4), rng));
  Graph reference(Device::cpu_reference(), result);
  for (Precision precision : {Precision::f32, Precision::f16}) {
    Graph gpu(Device::cuda(), result, true, options_for(precision));
    // Six runs whose results are all kept (more than the graph's output sets), then runs
    // that drop theirs at once (the sets are reused).
    std::vector<Image> inputs, kept;
    for (int run = 0; run < 10; ++run) {
      inputs.push_back(random_image({2, 5, 6, 4}, rng));
      Image out = gpu.run({inputs.back()})[0];
      if (run < 6) kept.push_back(out);
    }
    for (std::size_t i = 0; i < kept.size(); ++i) {
      EXPECT_LE(
          max_relative_error(kept[i].converted_to(DataType::f32), reference.run({inputs[i]})[0]),
          precision == Precision::f32 ? 1e-4 : 2e-2)
          << "kept result " << i;
    }
  }
}

TEST(CudaGraph, ConcurrentRunsAreSerializedAndBothRight) {
  REQUIRE_GPU();
  std::mt19937 rng(19);
  auto src = std::make_shared<ImageNode>();
  auto result = conv(src, random_source(ConvolutionDescriptor(3, 3, 8, 8), rng));
  Graph gpu(Device::cuda(), result);
  const Image a = random_image({4, 32, 32, 8}, rng), b = random_image({4, 32, 32, 8}, rng);
  auto first = gpu.run_async({a});
  auto second = gpu.run_async({b});
  const Image ra = first.get()[0], rb = second.get()[0];
  EXPECT_LE(max_relative_error(ra, run_on(Device::cpu_reference(), result, {a})), 1e-4);
  EXPECT_LE(max_relative_error(rb, run_on(Device::cpu_reference(), result, {b})), 1e-4);
}

TEST(CudaErrors, WrongDeviceImageAndOutOfMemoryAreClearErrors) {
  REQUIRE_GPU();
  std::mt19937 rng(23);
  auto src = std::make_shared<ImageNode>("pixels");
  auto result = conv(src, random_source(ConvolutionDescriptor(3, 3, 2, 2), rng, true, "w"));
  const Image on_gpu = random_image({1, 4, 4, 2}, rng).to(Device::cuda());
  Graph cpu(Device::cpu_reference(), result);
  try {
    cpu.run({on_gpu});
    ADD_FAILURE() << "a CUDA image ran on the CPU";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("cuda:0"), std::string::npos) << e.what();
  }
  Graph gpu(Device::cuda(), result);
  try {
    gpu.compile({{1 << 16, 2048, 2048, 2}});  // a terabyte of intermediates
    ADD_FAILURE() << "no out-of-memory error";
  } catch (const DeviceError& e) {
    EXPECT_NE(std::string(e.what()).find("out of memory"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("graph"), std::string::npos) << e.what();
  }
  // The graph still works at a sensible size afterwards.
  const Image x = random_image({1, 4, 4, 2}, rng);
  EXPECT_LE(max_relative_error(gpu.run({x})[0], run_on(Device::cpu_reference(), result, {x})),
            1e-4);
}

// Graphs made, run (their second run records a CUDA graph) and destroyed on eight threads at
// once, on shared data sources: destroying one graph must never disturb another thread's
// recording (library handles are pooled, never destroyed while others capture).
TEST(CudaConcurrency, GraphsMadeRunAndDestroyedOnEightThreadsStayRight) {
  REQUIRE_GPU();
  std::mt19937 rng(41);
  auto src = std::make_shared<ImageNode>();
  auto c1 = conv(src, random_source(ConvolutionDescriptor(3, 3, 4, 8), rng));
  auto relu = std::make_shared<NeuronNode>(c1, NeuronDescriptor::make(NeuronType::relu));
  auto fc = std::make_shared<FullyConnectedNode>(
      relu->result_image(), random_source(ConvolutionDescriptor(6, 6, 8, 5), rng));
  const Image x = random_image({2, 6, 6, 4}, rng);
  const Image want = run_on(Device::cpu_reference(), fc->result_image(), {x});
  std::atomic<int> wrong{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      try {
        for (int cycle = 0; cycle < 30; ++cycle) {
          Graph gpu(Device::cuda(), fc->result_image());
          for (int run = 0; run < 8; ++run) {
            if (max_relative_error(gpu.run({x})[0], want) > 1e-4) ++wrong;
          }
        }
      } catch (const std::exception& e) {
        ++failed;
        ADD_FAILURE() << e.what();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(failed.load(), 0);
}

TEST(CudaImageWrap, DeviceMemoryIsReadInPlaceAndMisalignedMemoryIsCopiedNotMisread) {
  REQUIRE_GPU();
  std::mt19937 rng(23);
  const ImageShape shape{2, 6, 5, 4};
  auto src = std::make_shared<ImageNode>();
  auto result = conv(src, random_source(ConvolutionDescriptor(3, 3, 4, 8), rng));
  const Image x = random_image(shape, rng);
  const Image expected = run_on(Device::cpu_reference(), result, {x});
  Graph gpu(Device::cuda(), result);
  // Device memory the library did not wrap itself: a block with room for an offset copy.
  const ImageShape block{1, 1, 1, static_cast<int>(shape.elements()) + 64};
  for (std::size_t offset_floats : {0u, 1u, 3u}) {
    std::vector<float> padded(offset_floats, 0.0f);
    const std::vector<float> values = x.to_floats();
    padded.insert(padded.end(), values.begin(), values.end());
    padded.resize(block.elements());
    const Image staged = Image::from_floats(block, padded).to(Device::cuda());
    std::byte* at = const_cast<std::byte*>(staged.data()) + offset_floats * 4;
    const Image wrapped =
        Image::wrap(shape, DataType::f32, at, Device::cuda(),
                    std::shared_ptr<const void>(staged.data(), [staged](auto) {}));
    EXPECT_EQ(wrapped.data(), at);
    EXPECT_LE(max_relative_error(gpu.run({wrapped})[0], expected), 1e-4)
        << "offset " << offset_floats << " floats";
  }
}

TEST(CudaImageWrap, HostMemoryWrappedAsADeviceImageIsRefused) {
  REQUIRE_GPU();
  std::vector<float> host(16, 1.0f);
  try {
    Image::wrap({1, 2, 2, 4}, DataType::f32, reinterpret_cast<std::byte*>(host.data()),
                Device::cuda());
    FAIL() << "host memory was accepted as cuda memory";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("host memory, not memory of cuda:0"), std::string::npos)
        << e.what();
  }
}

TEST(CudaGraph, DescribeCountsIntermediateBytesInTheStorageType) {
  REQUIRE_GPU();
  std::shared_ptr<ImageNode> image = std::make_shared<ImageNode>("x");
  for (int i = 0; i < 6; ++i) {
    // Neurons do not fuse with each other: six steps, each intermediate dead after one use.
    image = std::make_shared<NeuronNode>(image, NeuronDescriptor::make(NeuronType::tanh))
                ->result_image();
  }
  for (const auto& [precision, bytes] :
       {std::pair{Precision::f32, 4}, std::pair{Precision::f16, 2}}) {
    GraphOptions options;
    options.precision = precision;
    Graph graph(Device::cuda(), image, true, options);
    graph.compile({{1, 8, 8, 16}});
    const std::string text = graph.describe();
    const std::size_t one = 8 * 8 * 16 * static_cast<std::size_t>(bytes);
    EXPECT_NE(text.find("peak intermediate bytes " + std::to_string(2 * one)), std::string::npos)
        << text;
    EXPECT_NE(text.find("unshared would be " + std::to_string(5 * one)), std::string::npos) << text;
  }
}
