// torchvision models exported to ONNX by PyTorch (bench/export_onnx_torchvision.py, on the
// machine where torch is installed), imported by cnngraph and run on every device there,
// against ONNX Runtime's and PyTorch's outputs for the same input. Without the folder
// CNNGRAPH_ONNX_TORCHVISION_DIR names, each case skips and says how to make it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "cnngraph/cnngraph.hpp"
#include "cnngraph/onnx.hpp"
#include "logits_compare.hpp"

namespace cnngraph {
namespace {

using testing::relative_to_largest;

// How many images get the same top class in both.
int top1_agreements(const std::vector<float>& a, const std::vector<float>& b, int batch) {
  const std::size_t classes = a.size() / static_cast<std::size_t>(batch);
  int same = 0;
  for (int n = 0; n < batch; ++n) {
    const auto first = static_cast<std::ptrdiff_t>(n * classes);
    const auto last = first + static_cast<std::ptrdiff_t>(classes);
    same += std::max_element(a.begin() + first, a.begin() + last) - (a.begin() + first) ==
            std::max_element(b.begin() + first, b.begin() + last) - (b.begin() + first);
  }
  return same;
}

struct DeviceRun {
  Device device;
  Precision precision;
  const char* name;
  double tolerance;  // relative_to_largest against ONNX Runtime
};

class TorchvisionOnnx : public ::testing::TestWithParam<const char*> {};

TEST_P(TorchvisionOnnx, ImportedModelMatchesOnnxRuntimeAndPyTorchOnEveryDevice) {
  const std::string stem = GetParam();
  const char* dir = std::getenv("CNNGRAPH_ONNX_TORCHVISION_DIR");
  const std::filesystem::path folder = dir ? dir : "";
  if (!dir || !std::filesystem::exists(folder / (stem + "_check.safetensors")))
    GTEST_SKIP() << "CNNGRAPH_ONNX_TORCHVISION_DIR has no " << stem
                 << " export (run bench/export_onnx_torchvision.py DIR where torch is installed)";
  auto check = read_weights_file(folder / (stem + "_check.safetensors"));
  const Tensor& input = check.at("input");  // NCHW
  const int batch = static_cast<int>(input.shape[0]);
  onnx::ImportOptions options;
  options.batch = batch;
  const onnx::ImportedModel model = onnx::import(folder / (stem + ".onnx"), options);
  ASSERT_EQ(model.inputs.size(), 1u);
  ASSERT_EQ(model.outputs.size(), 1u);
  const Image x = Image::from_nchw(model.input_shapes[0], input.to_floats());
  const std::vector<float> ort = check.at("ort_f32").to_floats();
  const std::vector<float> torch32 = check.at("torch_f32").to_floats();

  // f32: summation order only (TF32 off everywhere). f16: f16 images between layers, each
  // side rounding differently over 20 to 80 layers.
  std::vector<DeviceRun> runs{{Device::cpu_reference(), Precision::f32, "reference f32", 1e-4}};
  try {
    runs.push_back({Device::cpu(), Precision::f32, "cpu f32", 1e-3});
  } catch (const DeviceError&) {
  }
  if (Device::cuda_device_count() > 0) {
    runs.push_back({Device::cuda(), Precision::f32, "cuda f32", 1e-3});
    runs.push_back({Device::cuda(), Precision::f16, "cuda f16", 3e-2});
  }
  for (const DeviceRun& run : runs) {
    const bool small = stem.rfind("resnet18", 0) == 0 || stem.rfind("mobilenet", 0) == 0 ||
                       stem.rfind("squeezenet", 0) == 0;
    if (run.device.kind() == DeviceKind::cpu_reference && !small)
      continue;  // the reference backend is slow: the smaller models are enough there
    GraphOptions graph_options;
    graph_options.precision = run.precision;
    Graph graph(run.device, model.outputs[0], true, graph_options);
    const Image y = graph.run({x})[0];
    const std::vector<float> got = y.converted_to(DataType::f32).to_floats();
    ASSERT_EQ(got.size(), ort.size()) << stem << " " << run.name;
    const double vs_ort = relative_to_largest(got, ort);
    const double vs_torch = relative_to_largest(
        got, run.precision == Precision::f16 ? check.at("torch_f16").to_floats() : torch32);
    std::printf("%s %s: max |cnngraph - ort| / max |ort| = %.2e, vs torch %.2e, top-1 %d of %d\n",
                stem.c_str(), run.name, vs_ort, vs_torch, top1_agreements(got, ort, batch), batch);
    EXPECT_LE(vs_ort, run.tolerance) << stem << " " << run.name;
    EXPECT_LE(vs_torch, run.tolerance) << stem << " " << run.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, TorchvisionOnnx,
                         ::testing::Values("resnet18_dynamo", "resnet18_torchscript",
                                           "resnet50_dynamo", "resnet50_torchscript",
                                           "mobilenet_v2_dynamo", "mobilenet_v2_torchscript",
                                           "squeezenet1_1_dynamo", "squeezenet1_1_torchscript",
                                           "alexnet_dynamo", "alexnet_torchscript",
                                           "googlenet_dynamo", "googlenet_torchscript",
                                           "efficientnet_b0_dynamo", "efficientnet_b0_torchscript"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace cnngraph
