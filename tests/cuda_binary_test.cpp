// Binary convolution on CUDA: the 1-bit tensor-core kernel and the CUDA-core popcount kernel
// (CNNGRAPH_CUDA_BINARY forces one) against the reference bit for bit on integer-valued
// images, over randomized shapes; and bit-packed images between binary layers on the device,
// equal to the same graph in floats and to the reference. Skips without a GPU, saying so.
#include <cstdlib>

#include "cuda_support.hpp"
#include "support.hpp"

using namespace cnngraph;
using namespace cnngraph::testing;

namespace {

int pick(std::mt19937& rng, std::initializer_list<int> values) {
  std::uniform_int_distribution<std::size_t> at(0, values.size() - 1);
  return *(values.begin() + at(rng));
}

int count_of(const std::string& text, const std::string& word) {
  int count = 0;
  for (std::size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1))
    ++count;
  return count;
}

struct Layer {
  BinaryConvolutionType type;
  int kernel, stride, dilation, outputs;
  bool same_padding, input_terms;
};

// A binary convolution of `in` channels with integer biases and output terms, so that every
// result is an integer (or a half) and exact in every precision the sums fit.
std::shared_ptr<ImageNode> binary_layer(std::shared_ptr<ImageNode> src, int in, const Layer& l,
                                        std::mt19937& rng) {
  ConvolutionDescriptor d(l.kernel, l.kernel, in, l.outputs);
  d.stride_x = d.stride_y = l.stride;
  d.dilation_x = d.dilation_y = l.dilation;
  std::vector<float> bias(l.outputs);
  for (float& b : bias) b = static_cast<float>(pick(rng, {-2, 0, 1}));
  auto weights =
      std::make_shared<ArrayDataSource>("w", d, random_floats(d.weight_count(), rng), bias);
  BinaryConvolutionTerms terms;
  if (l.input_terms) {
    terms.input_bias = std::vector<float>(in, 0.5f);
    terms.input_scale = std::vector<float>(in, -2.0f);
  }
  terms.output_scale = std::vector<float>(l.outputs, 2.0f);
  terms.output_bias = std::vector<float>(l.outputs, -1.0f);
  auto node = std::make_shared<BinaryConvolutionNode>(std::move(src), weights, 0.5f, l.type,
                                                      BinaryConvolutionFlags{false}, terms);
  if (l.same_padding) node->padding_policy = PaddingPolicy::same();
  return node->result_image();
}

std::string describe_layer(const Layer& l) {
  return std::string(l.type == BinaryConvolutionType::xnor ? " xnor" : " and") + " k" +
         std::to_string(l.kernel) + " s" + std::to_string(l.stride) + " d" +
         std::to_string(l.dilation) + " o" + std::to_string(l.outputs) +
         (l.same_padding ? " same" : " valid") + (l.input_terms ? " terms" : "");
}

class ForcedBinaryKernel {
 public:
  explicit ForcedBinaryKernel(const char* kernel) { ::setenv("CNNGRAPH_CUDA_BINARY", kernel, 1); }
  ~ForcedBinaryKernel() { ::unsetenv("CNNGRAPH_CUDA_BINARY"); }
};

}  // namespace

// One layer, either kernel, f32 and f16 graphs: channel counts of part of a word, one word,
// a word and a bit, several words; 1x1, 3x3 and 5x5 windows; strides, dilation, both
// paddings (the tensor-core kernel's border correction), batch > 1, partial blocks of
// pixels and of output channels.
TEST(CudaBinaryConvolution, BothKernelsEqualTheReferenceBitForBit) {
  REQUIRE_GPU();
  std::mt19937 rng(101);
  for (int trial = 0; trial < 24; ++trial) {
    Layer l{};
    l.type = pick(rng, {0, 1}) ? BinaryConvolutionType::xnor : BinaryConvolutionType::and_;
    l.kernel = pick(rng, {1, 3, 3, 5});
    l.stride = pick(rng, {1, 2});
    l.dilation = l.kernel > 1 ? pick(rng, {1, 1, 2}) : 1;
    l.outputs = pick(rng, {5, 8, 64, 72, 130});
    l.same_padding = pick(rng, {0, 1, 1}) == 1;
    l.input_terms = pick(rng, {0, 1}) == 1;
    // Sums stay below 2048, so that f16 results are exact too.
    const int channels = l.kernel == 5 ? pick(rng, {3, 32, 65}) : pick(rng, {3, 32, 64, 65, 200});
    const ImageShape shape{pick(rng, {1, 2, 3}), pick(rng, {11, 12, 17}), pick(rng, {9, 14}),
                           channels};
    auto x = std::make_shared<ImageNode>("x");
    const auto result = binary_layer(x, channels, l, rng);
    const Image input = integer_image(shape, rng);
    const std::string what = "n" + std::to_string(shape.batch) + " " +
                             std::to_string(shape.height) + "x" + std::to_string(shape.width) +
                             "x" + std::to_string(channels) + describe_layer(l);
    for (const char* kernel : {"mma", "popc"}) {
      ForcedBinaryKernel forced(kernel);
      for (const Precision precision : {Precision::f32, Precision::f16}) {
        const GraphOptions options = options_for(precision);
        const auto expected = run_on(Device::cpu_reference(), result, {input}, options);
        Graph graph(Device::cuda(), result, true, options);
        const Image actual = graph.run({input})[0];
        const std::string implementation = std::string("cuda:binary_convolution_") + kernel;
        EXPECT_NE(graph.describe().find(implementation), std::string::npos) << what << "\n"
                                                                            << graph.describe();
        EXPECT_EQ(actual.to_floats(), expected.to_floats())
            << what << " " << kernel << (precision == Precision::f16 ? " f16" : " f32");
      }
    }
  }
}

// Chains of two and three xnor / and layers on the device: the images between them are
// bit-packed (describe() says bits_out), written by the tensor-core kernel's epilogue with
// the next layer's input terms, and the results equal the same graph with every image in
// floats (CNNGRAPH_BIT_PACKING=off) and the reference, exactly.
TEST(CudaBinaryConvolution, BitPackedImagesBetweenLayersEqualFloatsAndTheReference) {
  REQUIRE_GPU();
  std::mt19937 rng(103);
  for (int trial = 0; trial < 12; ++trial) {
    const int channels = pick(rng, {3, 64, 65, 130});
    const int layer_count = pick(rng, {2, 3});
    auto x = std::make_shared<ImageNode>("x");
    std::shared_ptr<ImageNode> image = x;
    int in = channels;
    std::string what = std::to_string(channels) + " channels";
    for (int i = 0; i < layer_count; ++i) {
      Layer l{};
      l.type = pick(rng, {0, 1}) ? BinaryConvolutionType::xnor : BinaryConvolutionType::and_;
      l.kernel = pick(rng, {1, 3});
      l.stride = i == 0 ? pick(rng, {1, 2}) : 1;
      l.dilation = l.kernel == 3 ? pick(rng, {1, 2}) : 1;
      l.outputs = pick(rng, {6, 32, 66, 72, 128});
      l.same_padding = true;
      l.input_terms = i > 0 && pick(rng, {0, 1}) == 1;
      image = binary_layer(image, in, l, rng);
      in = l.outputs;
      what += " ->" + describe_layer(l);
    }
    const ImageShape shape{pick(rng, {1, 2, 3}), pick(rng, {7, 9}), pick(rng, {6, 11}), channels};
    const Image input = integer_image(shape, rng);
    for (const Precision precision : {Precision::f32, Precision::f16}) {
      const GraphOptions options = options_for(precision);
      Graph packed(Device::cuda(), image, true, options);
      const auto bits = packed.run({input})[0].to_floats();
      EXPECT_EQ(count_of(packed.describe(), "bits_out"), layer_count - 1) << what << "\n"
                                                                          << packed.describe();
      ::setenv("CNNGRAPH_BIT_PACKING", "off", 1);
      Graph unpacked(Device::cuda(), image, true, options);
      const auto floats = unpacked.run({input})[0].to_floats();
      ::unsetenv("CNNGRAPH_BIT_PACKING");
      EXPECT_EQ(count_of(unpacked.describe(), "bits_out"), 0);
      EXPECT_EQ(bits, floats) << what;
      EXPECT_EQ(bits, run_on(Device::cpu_reference(), image, {input}, options).to_floats()) << what;
    }
  }
}

// With the popcount kernel forced, nothing is bit-packed on the device (only the tensor-core
// kernel reads and writes bits), and the chain still equals the reference.
TEST(CudaBinaryConvolution, ThePopcountKernelKeepsImagesInFloats) {
  REQUIRE_GPU();
  std::mt19937 rng(107);
  auto x = std::make_shared<ImageNode>("x");
  const Layer l{BinaryConvolutionType::xnor, 3, 1, 1, 64, true, false};
  const auto result = binary_layer(binary_layer(x, 64, l, rng), 64, l, rng);
  const Image input = integer_image({2, 8, 8, 64}, rng);
  ForcedBinaryKernel forced("popc");
  Graph graph(Device::cuda(), result);
  const Image y = graph.run({input})[0];
  EXPECT_EQ(count_of(graph.describe(), "bits_out"), 0) << graph.describe();
  EXPECT_EQ(y.to_floats(), run_on(Device::cpu_reference(), result, {input}).to_floats());
}
