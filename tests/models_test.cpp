// The model zoo (examples/models): ResNet-50, MobileNetV2, EfficientNet-B0 and the binary
// ResNet-18 build, run on the CPU devices and agree with the reference backend; the binary
// ResNet-18 trains; their weight loading names bad tensors; and, on a
// GPU machine with the files bench/export_torchvision.py writes, their logits on CUDA match
// PyTorch's in fp32 and fp16.
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "logits_compare.hpp"
#include "models.hpp"
#include "support.hpp"

using namespace cnngraph;
using namespace cnngraph::testing;

namespace {

// The logits of a batch of 2 random images on the oneDNN device and on the reference, or
// why there is no oneDNN device (`skipped`).
struct CpuLogits {
  std::vector<float> actual, expected;
  std::string skipped;
};
CpuLogits logits_on_cpu_devices(const models::Network& net, int size, unsigned seed) {
  std::mt19937 rng(seed);
  const Image x = random_image({2, size, size, 3}, rng);
  const Image expected = run_on(Device::cpu_reference(), net.logits, {x});
  EXPECT_EQ(expected.shape(), (ImageShape{2, 1, 1, 10}));
  try {
    return {run_on(Device::cpu(), net.logits, {x}).to_floats(), expected.to_floats(), ""};
  } catch (const DeviceError& e) {
    return {{}, {}, std::string("no oneDNN CPU device in this build: ") + e.what()};
  }
}

void expect_cpu_devices_agree(const models::Network& net, int size) {
  const CpuLogits logits = logits_on_cpu_devices(net, size, 3);
  if (!logits.skipped.empty()) GTEST_SKIP() << logits.skipped;
  EXPECT_LE(relative_to_largest(logits.actual, logits.expected), 1e-4);
}

}  // namespace

TEST(Models, ResNet50RunsOnTheCpuDevicesAndTheyAgree) {
  // 32 x 32 pixels: every layer at a small size (the last stage is 1 x 1).
  expect_cpu_devices_agree(models::resnet50(models::random_tensors(1), 32, 10), 32);
}

TEST(Models, MobileNetV2RunsOnTheCpuDevicesAndTheyAgree) {
  expect_cpu_devices_agree(models::mobilenet_v2(models::random_tensors(2), 32, 10), 32);
}

TEST(Models, EfficientNetB0RunsOnTheCpuDevicesAndTheyAgree) {
  // 32 x 32 pixels: the last two stages run at 1 x 1, where squeeze-and-excitation pools a
  // single pixel and the 5x5 depthwise kernels read mostly padding.
  expect_cpu_devices_agree(models::efficientnet_b0(models::random_tensors(3), 32, 10), 32);
}

TEST(Models, BinaryResNet18RunsOnTheCpuDevicesAndTheyAgree) {
  // Width 32 (32 to 256 channels: one to eight words of bits; half the width and a quarter
  // of the reference's time) at 32 x 32 pixels (the last stage at 1 x 1). The XNOR sums are
  // exact integers on both devices; the float layers around them (stem, batch norms,
  // shortcuts, sums) differ by rounding, about 1e-7. That changes a logit only through a
  // binarized value within rounding of 0 whose sign flips (+-2 in one integer sum, spread by
  // the layers after it), which happens rarely and depends on the CPU's kernels: so most
  // logits must agree as the float models' do, and all of them to a few percent.
  const models::Network net = models::binary_resnet18(models::random_tensors(4), 32, 10, 32);
  const CpuLogits logits = logits_on_cpu_devices(net, 32, 5);
  if (!logits.skipped.empty()) GTEST_SKIP() << logits.skipped;
  const std::vector<float>& a = logits.actual;
  const std::vector<float>& b = logits.expected;
  ASSERT_EQ(a.size(), b.size());
  double largest = 0;
  for (const float v : b) largest = std::max(largest, std::abs(double(v)));
  std::size_t close = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    close += std::abs(double(a[i]) - b[i]) <= 1e-4 * largest;
  EXPECT_GE(close * 10, a.size() * 9) << close << " of " << a.size() << " logits within 1e-4";
  EXPECT_LE(relative_to_largest(a, b), 0.05);
}

TEST(Models, BinaryResNet18TrainsOnTheCpuWithTheStraightThroughEstimator) {
  // A narrow network (width 16: 16 to 128 channels, a sixteenth of the parameters) so that
  // the steps are quick, at 64 x 64 pixels: the last stage's batch norms then see 2 x 2
  // pixels a sample. One fixed batch, learned by heart. A binary network's loss is a step
  // function of its shadow weights, so it jumps from step to step; the last steps' mean
  // must be well below the first loss.
  auto adam = std::make_shared<AdamOptimizer>(OptimizerDescriptor{1e-2f});
  const models::Network net =
      models::binary_resnet18(models::Parameters{models::random_tensors(6), adam}, 64, 10, 16);
  auto loss = std::make_shared<LossNode>(
      net.logits, LossDescriptor(LossType::softmax_cross_entropy, ReductionType::mean));
  const auto terminals = loss->training_graph();
  Graph graph(Device::cpu(), terminals, std::vector<bool>(terminals.size(), false));
  std::mt19937 rng(7);
  const Image x = random_image({2, 64, 64, 3}, rng);
  const std::vector<int> classes = {1, 4};
  const LossLabels labels = LossLabels::from_classes(classes, 10);
  std::vector<float> losses;
  for (int step = 0; step < 12; ++step) {
    losses.push_back(graph.run({x}, {labels}).loss());
    ASSERT_TRUE(std::isfinite(losses.back())) << "step " << step;
  }
  const double last = (losses[9] + losses[10] + losses[11]) / 3;
  std::string curve;
  for (const float v : losses) curve += " " + std::to_string(v);
  EXPECT_LT(last * 3, losses[0]) << "losses:" << curve;
}

TEST(Models, MissingOrMisshapenWeightsNameTheTensor) {
  std::map<std::string, Tensor> tensors;
  tensors["conv1.weight"] = Tensor::from_floats({64, 3, 7, 7}, std::vector<float>(64 * 3 * 49));
  try {
    models::resnet50(models::tensors_from(tensors));
    ADD_FAILURE() << "a misshapen tensor was accepted";
  } catch (const DataSourceError& e) {
    EXPECT_NE(std::string(e.what()).find("conv1.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[64, 7, 7, 3]"), std::string::npos) << e.what();
  }
  tensors["conv1.weight"] = Tensor::from_floats({64, 7, 7, 3}, std::vector<float>(64 * 3 * 49));
  try {
    models::resnet50(models::tensors_from(tensors));
    ADD_FAILURE() << "a missing tensor was not reported";
  } catch (const DataSourceError& e) {
    EXPECT_NE(std::string(e.what()).find("bn1.running_mean"), std::string::npos) << e.what();
  }
}

// On the GPU machine: CNNGRAPH_TORCHVISION_DIR holds <model>.safetensors and
// <model>_check.safetensors from bench/export_torchvision.py.
class TorchvisionLogits : public ::testing::TestWithParam<const char*> {};

TEST_P(TorchvisionLogits, MatchPyTorchOnCudaInF32AndF16) {
  const std::string model = GetParam();
  const char* dir = std::getenv("CNNGRAPH_TORCHVISION_DIR");
  if (Device::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA GPU on this machine";
  if (!dir || !std::filesystem::exists(std::filesystem::path(dir) / (model + "_check.safetensors")))
    GTEST_SKIP() << "CNNGRAPH_TORCHVISION_DIR has no " << model
                 << " export (run bench/export_torchvision.py " << model << " DIR)";
  const auto weights = read_weights_file(std::filesystem::path(dir) / (model + ".safetensors"));
  auto check = read_weights_file(std::filesystem::path(dir) / (model + "_check.safetensors"));
  const Tensor& input = check.at("input");
  const ImageShape shape{static_cast<int>(input.shape[0]), static_cast<int>(input.shape[1]),
                         static_cast<int>(input.shape[2]), static_cast<int>(input.shape[3])};
  const Image x = Image::from_floats(shape, input.to_floats());
  const models::Network net = model == "resnet50" ? models::resnet50(models::tensors_from(weights))
                              : model == "mobilenet_v2"
                                  ? models::mobilenet_v2(models::tensors_from(weights))
                                  : models::efficientnet_b0(models::tensors_from(weights));
  // fp32 (no TF32 on either side): summation order only. fp16: fp16 images between layers
  // on both sides, each rounding differently, over 50+ layers.
  const std::pair<Precision, const char*> cases[] = {{Precision::f32, "logits_f32"},
                                                     {Precision::f16, "logits_f16"}};
  for (const auto& [precision, name] : cases) {
    GraphOptions options;
    options.precision = precision;
    const Image logits = run_on(Device::cuda(), net.logits, {x}, options);
    const double error = relative_to_largest(logits.converted_to(DataType::f32).to_floats(),
                                             check.at(name).to_floats());
    EXPECT_LE(error, precision == Precision::f32 ? 1e-3 : 3e-2) << model << " " << name;
    std::printf("%s %s: max |cnngraph - torch| / max |torch| = %.2e\n", model.c_str(), name, error);
  }
}

INSTANTIATE_TEST_SUITE_P(Models, TorchvisionLogits,
                         ::testing::Values("resnet50", "mobilenet_v2", "efficientnet_b0"));
