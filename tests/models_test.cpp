// The model zoo (examples/models): ResNet-50 and MobileNetV2 build, run on the CPU devices
// and agree with the reference backend; their weight loading names bad tensors; and, on a
// GPU machine with the files bench/export_torchvision.py writes, their logits on CUDA match
// PyTorch's in fp32 and fp16.
#include <cstdlib>
#include <filesystem>

#include "logits_compare.hpp"
#include "models.hpp"
#include "support.hpp"

using namespace cnngraph;
using namespace cnngraph::testing;

namespace {

void expect_cpu_devices_agree(const models::Network& net, int size) {
  std::mt19937 rng(3);
  const Image x = random_image({2, size, size, 3}, rng);
  const Image expected = run_on(Device::cpu_reference(), net.logits, {x});
  EXPECT_EQ(expected.shape(), (ImageShape{2, 1, 1, 10}));
  Image actual;
  try {
    actual = run_on(Device::cpu(), net.logits, {x});
  } catch (const DeviceError& e) {
    GTEST_SKIP() << "no oneDNN CPU device in this build: " << e.what();
  }
  EXPECT_LE(relative_to_largest(actual.to_floats(), expected.to_floats()), 1e-4);
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
