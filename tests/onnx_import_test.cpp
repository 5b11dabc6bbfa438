// ONNX import: models written by tests/onnx/make_models.py (ctest fixture OnnxModels) run
// on cpu_reference and cpu against numpy's results; errors; training an imported model.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "cnngraph/cnngraph.hpp"
#include "cnngraph/onnx.hpp"
#include "onnx_test_support.hpp"

namespace cnngraph {
namespace {

std::filesystem::path models() {
  const char* dir = std::getenv("CNNGRAPH_ONNX_MODELS");
  return dir ? std::filesystem::path(dir) : std::filesystem::path(CNNGRAPH_ONNX_MODELS_DIR);
}

void expect_close(const std::vector<float>& got, const std::vector<float>& want,
                  const std::string& where) {
  ASSERT_EQ(got.size(), want.size()) << where;
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], 1e-4 * std::max(1.0f, std::abs(want[i])))
        << where << " element " << i;
}

void run_model(const std::string& name) {
  const auto imported = onnx::import(models() / (name + ".onnx"));
  std::vector<int> in_shape, out_shape;
  const auto x = read_npy(models() / (name + ".input.npy"), in_shape);
  const auto y = read_npy(models() / (name + ".expected.npy"), out_shape);
  ASSERT_EQ(imported.inputs.size(), 1u);
  ASSERT_EQ(imported.outputs.size(), 1u);
  ASSERT_EQ(in_shape.size(), 4u);
  const ImageShape shape{in_shape[0], in_shape[2], in_shape[3], in_shape[1]};
  for (const Device& device : devices()) {
    Graph graph(device, imported.outputs[0]);
    const Image result = graph.run({Image::from_nchw(shape, x)})[0];
    expect_close(out_shape.size() == 4 ? result.to_nchw() : result.to_floats(), y,
                 name + " on " + device.name());
  }
}

TEST(OnnxImport, ConvReluPoolMatchesNumpy) { run_model("conv_relu_pool"); }
TEST(OnnxImport, ResidualBlockWithBatchNormMatchesNumpy) { run_model("residual_bn"); }
TEST(OnnxImport, LeNetGemmReadsTheFlattenedMapInNchwOrder) { run_model("lenet"); }
TEST(OnnxImport, AReshapeWithAllowzeroAsPyTorchWritesItFlattens) { run_model("reshape_allowzero"); }
TEST(OnnxImport, DepthwiseConvWithClipAsReluSixMatchesNumpy) { run_model("depthwise"); }
TEST(OnnxImport, AsymmetricPadsDilationAndGemmWithoutTransposeMatchNumpy) {
  run_model("asymmetric");
}

TEST(OnnxImport, SamePadsConcatCeilModeAndAFoldedViewBeforeGemmMatchNumpy) {
  run_model("branches");
}
TEST(OnnxImport, Opset9ClipAttributesAndPaddedAveragePoolMatchNumpy) { run_model("opset9"); }
TEST(OnnxImport, Opset21ModelImports) { run_model("opset21"); }
TEST(OnnxImport, ExternalDataNextToTheModelIsRead) { run_model("external"); }

TEST(OnnxImport, AModelOfANewerIrVersionThanTheLibrarysImports) {
  // PyTorch 2.11 writes IR version 10; the helper API here writes 8, as the model's first
  // field (tag 0x08, then the version), which this test raises to 10.
  std::ifstream in(models() / "conv_relu_pool.onnx", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GE(bytes.size(), 2u);
  ASSERT_EQ(bytes[0], '\x08');
  ASSERT_LE(bytes[1], '\x08');
  bytes[1] = '\x0a';
  const auto path = std::filesystem::temp_directory_path() / "cnngraph_ir10.onnx";
  std::ofstream(path, std::ios::binary) << bytes;
  const onnx::ImportedModel model = onnx::import(path);
  EXPECT_EQ(model.outputs.size(), 1u);
  std::filesystem::remove(path);
}

TEST(OnnxImport, ExternalDataOutsideTheModelsFolderIsRefused) {
  try {
    onnx::import(models() / "escaping.onnx");
    FAIL() << "no error";
  } catch (const DataSourceError& e) {
    EXPECT_NE(std::string(e.what()).find("leaves the model's folder"), std::string::npos)
        << e.what();
  }
}

TEST(OnnxImport, OpsetAboveTwentyOneIsRefused) {
  try {
    onnx::import(models() / "opset22.onnx");
    FAIL() << "no error";
  } catch (const Unsupported& e) {
    EXPECT_NE(std::string(e.what()).find("opset 22"), std::string::npos) << e.what();
  }
}

TEST(OnnxImport, ConvWeightsBecomeOhwiDataSourcesNamedByInitializer) {
  const auto imported = onnx::import(models() / "lenet.onnx");
  EXPECT_EQ(imported.opset, 13);
  ASSERT_EQ(imported.weights.count("w1"), 1u);
  ASSERT_EQ(imported.weights.count("fw"), 1u);
  EXPECT_EQ(imported.weights.at("fw")->descriptor().kernel_width, 7);
  EXPECT_EQ(imported.weights.at("fw")->descriptor().input_feature_channels, 64);
  EXPECT_NE(dynamic_cast<ArrayDataSource*>(imported.weights.at("w1").get()), nullptr);
  ASSERT_EQ(imported.input_shapes.size(), 1u);
  EXPECT_EQ(imported.input_shapes[0], (ImageShape{1, 28, 28, 1}));
  EXPECT_EQ(imported.inputs[0]->handle, "x");
}

TEST(OnnxImport, EveryUnsupportedNodeIsListedInOneError) {
  try {
    onnx::import(models() / "unsupported.onnx");
    FAIL() << "no error";
  } catch (const Unsupported& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("node 'erf' (Erf): operator not supported"), std::string::npos) << m;
    EXPECT_NE(m.find("node 'flat2' (Flatten): only axis = 1"), std::string::npos) << m;
    EXPECT_NE(m.find("node 'gemm' (Gemm): transA = 1"), std::string::npos) << m;
    EXPECT_NE(m.find("input 'x16': only FLOAT tensor inputs"), std::string::npos) << m;
    EXPECT_NE(m.find(": 4 unsupported parts:"), std::string::npos) << m;
    // Only their sources failed.
    EXPECT_EQ(m.find("'relu'"), std::string::npos) << m;
    EXPECT_EQ(m.find("conv16"), std::string::npos) << m;
  }
}

TEST(OnnxImport, ConvTransposeWithPadsAndPerChannelPReluMatchesNumpy) {
  run_model("conv_transpose");
}
TEST(OnnxImport, ConvTransposeGroupsDilationAndOutputPaddingMatchNumpy) {
  run_model("conv_transpose_groups");
}
TEST(OnnxImport, ConvTransposeSameUpperMatchesNumpy) { run_model("conv_transpose_same"); }

TEST(OnnxImport, ConvTransposeWeightsBecomeOhwiPerGroup) {
  // ONNX [C_in = 4][C_out / group = 3][3][2], group 2: cnngraph's [6][3][2][2].
  const auto imported = onnx::import(models() / "conv_transpose_groups.onnx");
  const auto& source = imported.weights.at("w");
  const auto d = source->descriptor();
  EXPECT_EQ(d.input_feature_channels, 4);
  EXPECT_EQ(d.output_feature_channels, 6);
  EXPECT_EQ(d.groups, 2);
  EXPECT_EQ(d.kernel_height, 3);
  EXPECT_EQ(d.kernel_width, 2);
}

TEST(OnnxImport, EluSeluHardSigmoidSoftplusSoftsignAbsAndScalarPReluMatchNumpy) {
  run_model("activations");
}
TEST(OnnxImport, LrnReduceMeanWithoutKeepdimsMatMulAndLogSoftmaxMatchNumpy) {
  run_model("lrn_mean_matmul");
}
TEST(OnnxImport, Opset18ReduceMeanAxesInputMatchesNumpy) { run_model("opset18_ops"); }
TEST(OnnxImport, Opset19AveragePoolDilationsAttributeMatchesNumpy) { run_model("opset19_ops"); }
TEST(OnnxImport, Opset20GeluMatchesNumpy) { run_model("opset20_ops"); }
TEST(OnnxImport, Opset21OperatorsMatchNumpy) { run_model("opset21_ops"); }

TEST(OnnxImport, AnInitializerSharedByTwoConvolutionsGivesEachASourceOfItsOwnLabel) {
  run_model("shared_weights");
  const auto imported = onnx::import(models() / "shared_weights.onnx");
  ASSERT_EQ(imported.weights.size(), 2u);
  ASSERT_EQ(imported.weights.count("w"), 1u);
  ASSERT_EQ(imported.weights.count("w@conv2"), 1u);
  EXPECT_EQ(imported.weights.at("w")->label(), "w");
  EXPECT_EQ(imported.weights.at("w@conv2")->label(), "w@conv2");
  EXPECT_NE(imported.weights.at("w"), imported.weights.at("w@conv2"));
}

TEST(OnnxImport, ASharedInitializerIsRefusedForTrainingWhichWouldUntieIt) {
  onnx::ImportOptions options;
  options.trainable = true;
  try {
    onnx::import(models() / "shared_weights.onnx", options);
    FAIL() << "no error";
  } catch (const Unsupported& e) {
    EXPECT_NE(std::string(e.what()).find("node 'conv2' (Conv): its weights w are also node "
                                         "'conv1''s; training would untie them"),
              std::string::npos)
        << e.what();
  }
}

TEST(OnnxImport, EveryRefusalOfTheNewConvertersIsListedInOneError) {
  try {
    onnx::import(models() / "unsupported_converters.onnx");
    FAIL() << "no error";
  } catch (const Unsupported& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("node 'gelu_tanh' (Gelu): approximate = 'tanh' is not supported"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("node 'lrn_even' (LRN): an even size (4)"), std::string::npos) << m;
    EXPECT_NE(m.find("node 'mean_c' (ReduceMean): only a mean over axes [2, 3]"), std::string::npos)
        << m;
    EXPECT_NE(m.find("node 'prelu_w' (PRelu): slope slope_w must be one value or one per channel"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("node 'div_c' (Div): a constant divided by a computed tensor is not "
                     "supported"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("node 'up3d' (ConvTranspose): only 2-D transposed convolutions"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("node 'mul_w' (Mul): constant along_w [4] on a [N, 2, 4, 4] tensor must be "
                     "one value or one per channel"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("node 'pad_reflect' (Pad): mode 'reflect' is not supported"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("node 'pad_c_before' (Pad): padding before the first channel"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("node 'pad_negative' (Pad): pads [0, 0, -1, 0, 0, 0, 0, 0]: only "
                     "non-negative pads"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("node 'add_2d_4d' (Add): a [N, 2, 4, 4] and a [N, 2] tensor"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find(": 11 unsupported parts:"), std::string::npos) << m;
  }
}

TEST(OnnxImport, SiluAndSqueezeExcitationMultiplicationsMatchNumpy) { run_model("se_silu"); }
TEST(OnnxImport, HardSwishMatchesNumpy) { run_model("hard_swish"); }
TEST(OnnxImport, PerChannelAndScalarConstantArithmeticMatchesNumpy) {
  run_model("normalize_constants");
}
TEST(OnnxImport, ConstantArithmeticOnATwoDimensionalTensorMatchesNumpy) {
  run_model("flat_constants");
}
TEST(OnnxImport, MulSubAndDivOfTwoBroadcastComputedTensorsMatchNumpy) {
  run_model("broadcast_computed");
}
TEST(OnnxImport, GlobalMaxPoolMatchesNumpy) { run_model("global_max_pool"); }
TEST(OnnxImport, PadAttributesBeforeOpset11MatchNumpy) { run_model("pad_opset9"); }
TEST(OnnxImport, PadInputsOfOpset13MatchNumpy) { run_model("pad_opset13"); }
TEST(OnnxImport, PadAxesInputOfOpset18MatchesNumpy) { run_model("pad_opset18"); }
TEST(OnnxImport, AveragePoolCountingPaddingWithCeilModeMatchesNumpy) {
  run_model("average_pool_count_include_pad");
}
TEST(OnnxImport, ConvWeightsThroughIdentityAreFoldedIntoConstants) {
  run_model("identity_weights");
  const auto imported = onnx::import(models() / "identity_weights.onnx");
  ASSERT_EQ(imported.weights.size(), 1u);
  EXPECT_EQ(imported.weights.count("w"), 1u);
}

TEST(OnnxImport, XTimesSigmoidOfXIsOneSiluNeuronAndAGateStaysAMultiplication) {
  const auto imported = onnx::import(models() / "se_silu.onnx");
  const FilterNode* excite = imported.outputs[0]->producer();
  ASSERT_NE(excite, nullptr);
  EXPECT_EQ(excite->kind(), "multiplication");  // s * sigmoid(expand(...)): not s's sigmoid
  const FilterNode* silu = excite->source_images()[0]->producer();
  ASSERT_NE(silu, nullptr);
  EXPECT_EQ(silu->kind(), "neuron_silu");
  EXPECT_EQ(silu->label, "silu");
}

TEST(OnnxImport, AnAddOfTwoEqualShapesIsAPlainAdditionNode) {
  const auto imported = onnx::import(models() / "residual_bn.onnx");
  const FilterNode* relu = imported.outputs[0]->producer();
  ASSERT_NE(relu, nullptr);
  const FilterNode* add = relu->source_images()[0]->producer();
  ASSERT_NE(dynamic_cast<const AdditionNode*>(add), nullptr);
  EXPECT_EQ(add->kind(), "addition");
}

TEST(OnnxImport, PerChannelConstantsBecomeTrainableDepthwiseConvolutions) {
  onnx::ImportOptions options;
  options.trainable = true;
  const auto imported = onnx::import(models() / "normalize_constants.onnx", options);
  // The scalars are neurons; the four per-channel constants are weights.
  ASSERT_EQ(imported.weights.size(), 4u);
  for (const char* name : {"mean", "std", "scale", "shift"}) {
    ASSERT_EQ(imported.weights.count(name), 1u) << name;
    const auto& source = imported.weights.at(name);
    EXPECT_EQ(source->label(), name);
    EXPECT_EQ(source->descriptor().groups, 3) << name;
    EXPECT_EQ(source->descriptor().kernel_width, 1) << name;
    EXPECT_NE(dynamic_cast<TrainableDataSource*>(source.get()), nullptr) << name;
  }
}

TEST(OnnxImport, AConvOfATwoDimensionalInputIsRefusedNotCrashed) {
  try {
    onnx::import(models() / "conv_of_2d_input.onnx");
    FAIL() << "no error";
  } catch (const Unsupported& e) {
    EXPECT_NE(std::string(e.what()).find("node 'conv' (Conv): weights w do not fit 5 input "
                                         "channels"),
              std::string::npos)
        << e.what();
  }
}

TEST(OnnxImport, MalformedFileIsRefused) {
  EXPECT_THROW(onnx::import(models() / "malformed.onnx"), DataSourceError);
}

TEST(OnnxImport, MissingFileIsRefusedNamingIt) {
  try {
    onnx::import(models() / "no_such_model.onnx");
    FAIL() << "no error";
  } catch (const DataSourceError& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_model.onnx: no such file"), std::string::npos);
  }
}

TEST(OnnxImport, OpsetBelowSevenIsRefused) {
  try {
    onnx::import(models() / "opset6.onnx");
    FAIL() << "no error";
  } catch (const Unsupported& e) {
    EXPECT_NE(std::string(e.what()).find("opset 6"), std::string::npos) << e.what();
  }
}

TEST(OnnxImport, TrainingGraphOnAnImportedModelChangesItsWeights) {
  std::vector<int> in_shape;
  const auto x = read_npy(models() / "lenet.input.npy", in_shape);
  const ImageShape shape{in_shape[0], in_shape[2], in_shape[3], in_shape[1]};
  for (const Device& device : devices()) {
    onnx::ImportOptions options;
    options.trainable = true;
    options.optimizer = std::make_shared<SgdOptimizer>(OptimizerDescriptor{0.05f});
    const auto imported = onnx::import(models() / "lenet.onnx", options);
    auto* fc = dynamic_cast<TrainableDataSource*>(imported.weights.at("fw").get());
    ASSERT_NE(fc, nullptr);
    const auto before = fc->current_weights();
    // A cross entropy on the logits: the Gemm that feeds the model's softmax.
    auto gemm = imported.outputs[0]->producer()->source_images()[0];
    auto loss = std::make_shared<LossNode>(
        gemm, LossDescriptor{LossType::softmax_cross_entropy, ReductionType::mean});
    const auto results = loss->training_graph();
    Graph training(device, results, std::vector<bool>(results.size(), false));
    const std::vector<int> classes{3, 7};
    const auto r =
        training.run({Image::from_nchw(shape, x)}, {LossLabels::from_classes(classes, 10)});
    EXPECT_TRUE(std::isfinite(r.loss())) << device.name();
    EXPECT_NE(fc->current_weights(), before) << device.name();
  }
}

TEST(OnnxImport, TrainingAResidualBlockUpdatesItsConvolutionsAndBatchNorms) {
  std::vector<int> in_shape;
  const auto x = read_npy(models() / "residual_bn.input.npy", in_shape);
  const ImageShape shape{in_shape[0], in_shape[2], in_shape[3], in_shape[1]};
  onnx::ImportOptions options;
  options.trainable = true;
  const auto imported = onnx::import(models() / "residual_bn.onnx", options);
  ASSERT_EQ(imported.batch_normalizations.count("bn1"), 1u);
  const auto& bn = imported.batch_normalizations.at("bn1");
  const auto gamma_before = bn->parameters().gamma;
  auto* conv = dynamic_cast<TrainableDataSource*>(imported.weights.at("w1").get());
  ASSERT_NE(conv, nullptr);
  const auto before = conv->current_weights();
  auto loss = std::make_shared<LossNode>(
      imported.outputs[0], LossDescriptor{LossType::mean_squared_error, ReductionType::mean});
  const auto results = loss->training_graph();
  // The fastest device at hand: the GPU where there is one.
  Graph training(devices().back(), results, std::vector<bool>(results.size(), false));
  const Image input = Image::from_nchw(shape, x);
  const auto r = training.run({input}, {LossLabels(Image(input.shape()))});
  EXPECT_TRUE(std::isfinite(r.loss()));
  EXPECT_NE(conv->current_weights(), before);
  EXPECT_EQ(bn->update_count(), 1u);
  EXPECT_NE(bn->parameters().gamma, gamma_before);
}

}  // namespace
}  // namespace cnngraph
