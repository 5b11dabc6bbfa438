// The data-source protocol: load once, purge after copying, failures, sharing, files.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "support.hpp"

using namespace cnngraph;
using namespace cnngraph::testing;

namespace {

// Counts calls and can be told to fail.
class CountingSource : public ConvolutionDataSource {
 public:
  enum class Failure { none, returns_false, throws };
  explicit CountingSource(Failure failure = Failure::none) : failure(failure) {}
  DataType data_type() const override { return DataType::f32; }
  ConvolutionDescriptor descriptor() const override { return ConvolutionDescriptor(3, 3, 2, 3); }
  const void* weights() const override { return loaded ? data.data() : nullptr; }
  bool load() override {
    ++loads;
    if (loaded) ++double_loads;
    if (failure == Failure::returns_false) return false;
    if (failure == Failure::throws) throw std::runtime_error("disk on fire");
    data.assign(3 * 3 * 3 * 2, 0.25f);
    loaded = true;
    return true;
  }
  void purge() override {
    ++purges;
    data.clear();
    loaded = false;
  }
  std::string label() const override { return "counting"; }
  std::shared_ptr<ConvolutionDataSource> copy() const override {
    return std::make_shared<CountingSource>(failure);
  }

  Failure failure;
  std::atomic<int> loads{0}, purges{0}, double_loads{0};
  bool loaded = false;
  std::vector<float> data;
};

// Buffers as long as the test says, each declared through the protocol's size methods.
class SizedSource : public ConvolutionDataSource {
 public:
  SizedSource(DataType type, QuantizationType quantization, std::size_t weight_bytes,
              std::size_t bias, std::size_t table)
      : type(type),
        quantization(quantization),
        bytes(weight_bytes, std::byte{0}),
        bias(bias, 0.0f),
        table(table, 0.0f) {}
  DataType data_type() const override { return type; }
  ConvolutionDescriptor descriptor() const override { return ConvolutionDescriptor(3, 3, 2, 4); }
  const void* weights() const override { return bytes.data(); }
  const float* bias_terms() const override { return bias.empty() ? nullptr : bias.data(); }
  bool load() override { return true; }
  void purge() override {}
  std::string label() const override { return "sized"; }
  std::shared_ptr<ConvolutionDataSource> copy() const override {
    return std::make_shared<SizedSource>(*this);
  }
  QuantizationType weights_quantization_type() const override { return quantization; }
  const float* ranges_for_u8_kernel() const override { return table.data(); }
  const float* lookup_table_for_u8_kernel() const override { return table.data(); }
  std::optional<std::size_t> weights_size_in_bytes() const override { return bytes.size(); }
  std::optional<std::size_t> bias_terms_count() const override { return bias.size(); }
  std::optional<std::size_t> ranges_for_u8_kernel_count() const override { return table.size(); }
  std::optional<std::size_t> lookup_table_for_u8_kernel_count() const override {
    return table.size();
  }
  SizedSource(const SizedSource& other)
      : ConvolutionDataSource(),
        type(other.type),
        quantization(other.quantization),
        bytes(other.bytes),
        bias(other.bias),
        table(other.table) {}

  DataType type;
  QuantizationType quantization;
  std::vector<std::byte> bytes;
  std::vector<float> bias, table;
};

// The message of the DataSourceError that compiling a graph of `node` throws ("" if none).
std::string compile_error(const std::shared_ptr<FilterNode>& node) {
  try {
    Graph graph(Device::cpu_reference(), node->result_image());
    std::mt19937 rng(3);
    graph.run({random_image({1, 5, 5, 2}, rng)});
  } catch (const DataSourceError& e) {
    return e.what();
  }
  return "";
}

std::filesystem::path temp_path(const std::string& name) {
  const char* dir = std::getenv("CNNGRAPH_TEST_TMP");
  return std::filesystem::path(dir ? dir : "/tmp") / name;
}

}  // namespace

TEST(DataSource, LoadedOnceWhenCompilingAndPurgedAfterCopy) {
  auto source = std::make_shared<CountingSource>();
  auto conv = std::make_shared<ConvolutionNode>(std::make_shared<ImageNode>(), source);
  Graph graph(Device::cpu(), conv->result_image());
  EXPECT_EQ(source->loads, 0);
  std::mt19937 rng(1);
  for (int batch : {1, 2, 3}) graph.run({random_image({batch, 5, 5, 2}, rng)});
  EXPECT_EQ(source->loads, 1);
  EXPECT_EQ(source->purges, 1);
  EXPECT_FALSE(source->loaded);
  graph.reload_from_data_sources();
  graph.run({random_image({1, 5, 5, 2}, rng)});
  EXPECT_EQ(source->loads, 2);
  EXPECT_EQ(source->purges, 2);
}

TEST(DataSource, FailingLoadNamesNodeAndLabelAndGraphStaysUsable) {
  for (auto failure : {CountingSource::Failure::returns_false, CountingSource::Failure::throws}) {
    auto source = std::make_shared<CountingSource>(failure);
    auto conv = std::make_shared<ConvolutionNode>(std::make_shared<ImageNode>(), source);
    conv->label = "stem";
    Graph graph(Device::cpu(), conv->result_image());
    std::mt19937 rng(2);
    const Image input = random_image({1, 4, 4, 2}, rng);
    try {
      graph.run({input});
      FAIL() << "expected DataSourceError";
    } catch (const DataSourceError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("'stem'"), std::string::npos) << what;
      EXPECT_NE(what.find("'counting'"), std::string::npos) << what;
      if (failure == CountingSource::Failure::throws) {
        EXPECT_NE(what.find("disk on fire"), std::string::npos);
      }
    }
    source->failure = CountingSource::Failure::none;
    EXPECT_EQ(graph.run({input})[0].shape(), (ImageShape{1, 4, 4, 3}));
  }
}

TEST(DataSource, SharedSourceServesTwoGraphsOnTwoThreads) {
  auto source = std::make_shared<CountingSource>();
  auto src = std::make_shared<ImageNode>();
  auto a = std::make_shared<ConvolutionNode>(src, source);
  auto b = std::make_shared<ConvolutionNode>(
      a->result_image(), std::make_shared<ArrayDataSource>("b", ConvolutionDescriptor(1, 1, 3, 2),
                                                           std::vector<float>(6, 1.0f)));
  auto c = std::make_shared<ConvolutionNode>(b->result_image(), source);  // same source twice
  std::mt19937 rng(3);
  const Image input = random_image({2, 6, 6, 2}, rng);
  const Image expected = run_on(Device::cpu_reference(), c->result_image(), {input});
  EXPECT_EQ(source->double_loads, 0);
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        Graph graph(Device::cpu(), c->result_image());
        if (max_relative_error(graph.run({input})[0], expected) < 1e-5) ++good;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good, 10);
  EXPECT_EQ(source->double_loads, 0) << "load() ran while another load was active";
  EXPECT_EQ(source->loads, source->purges);
}

TEST(DataSource, CopyIsIndependent) {
  std::mt19937 rng(4);
  auto source = random_source(ConvolutionDescriptor(2, 2, 1, 1), rng);
  auto copy = source->copy();
  EXPECT_EQ(copy->label(), source->label());
  EXPECT_NE(copy->weights(), source->weights());
  EXPECT_EQ(std::memcmp(copy->weights(), source->weights(), 4 * sizeof(float)), 0);
}

TEST(FileDataSource, ReadsSafetensorsWrittenByTheLibrary) {
  const auto path = temp_path("file_source.safetensors");
  ConvolutionDescriptor d(3, 3, 2, 4);
  std::mt19937 rng(5);
  const auto w = random_floats(4 * 9 * 2, rng), b = random_floats(4, rng);
  write_weights_file(path, {{"conv1.weight", Tensor::from_floats({4, 3, 3, 2}, w)},
                            {"conv1.bias", Tensor::from_floats({4}, b)}});
  auto file_source = std::make_shared<FileDataSource>(path, d, "conv1.");
  auto array_source = std::make_shared<ArrayDataSource>("a", d, w, b);
  auto src = std::make_shared<ImageNode>();
  const Image input = random_image({2, 5, 5, 2}, rng);
  const auto from_file = run_on(
      Device::cpu(), std::make_shared<ConvolutionNode>(src, file_source)->result_image(), {input});
  const auto from_array = run_on(
      Device::cpu(), std::make_shared<ConvolutionNode>(src, array_source)->result_image(), {input});
  EXPECT_EQ(from_file.to_floats(), from_array.to_floats());
  EXPECT_FALSE(file_source->is_loaded()) << "purge() must release the file's weights";
}

TEST(FileDataSource, ReadsQuantizedAndHalfWeights) {
  const auto path = temp_path("quantized.safetensors");
  ConvolutionDescriptor d(1, 1, 2, 1);
  Tensor q;
  q.type = DataType::u8;
  q.shape = {1, 1, 1, 2};
  q.bytes = {std::byte{0}, std::byte{255}};
  write_weights_file(
      path, {{"weight", q}, {"weight_ranges", Tensor::from_floats({1, 2}, {-2.0f, 2.0f})}});
  auto result = std::make_shared<ConvolutionNode>(std::make_shared<ImageNode>(),
                                                  std::make_shared<FileDataSource>(path, d))
                    ->result_image();
  EXPECT_EQ(run_on(Device::cpu_reference(), result,
                   {Image::from_floats({1, 1, 1, 2}, std::vector<float>{1.0f, 10.0f})})
                .to_floats()[0],
            -2.0f + 20.0f);
}

TEST(FileDataSource, MissingFileOrWrongShapeIsADataSourceError) {
  ConvolutionDescriptor d(3, 3, 2, 4);
  auto missing = std::make_shared<ConvolutionNode>(
      std::make_shared<ImageNode>(),
      std::make_shared<FileDataSource>(temp_path("does_not_exist.safetensors"), d));
  Graph graph(Device::cpu(), missing->result_image());
  EXPECT_THROW(graph.compile({{1, 4, 4, 2}}), DataSourceError);

  const auto path = temp_path("wrong_shape.safetensors");
  write_weights_file(path, {{"weight", Tensor::from_floats({4, 3, 3, 1}, std::vector<float>(36))}});
  auto wrong = std::make_shared<ConvolutionNode>(std::make_shared<ImageNode>(),
                                                 std::make_shared<FileDataSource>(path, d));
  Graph wrong_graph(Device::cpu(), wrong->result_image());
  try {
    wrong_graph.compile({{1, 4, 4, 2}});
    FAIL();
  } catch (const DataSourceError& e) {
    EXPECT_NE(std::string(e.what()).find("[4,3,3,2]"), std::string::npos) << e.what();
  }
}

TEST(WeightsFile, RoundTripsEveryType) {
  const auto path = temp_path("round_trip.safetensors");
  Tensor half;
  half.type = DataType::f16;
  half.shape = {2};
  const std::uint16_t bits[] = {float_to_half(1.5f), float_to_half(-2.0f)};
  half.bytes.resize(4);
  std::memcpy(half.bytes.data(), bits, 4);
  write_weights_file(path, {{"h", half}, {"f", Tensor::from_floats({2, 2}, {1, 2, 3, 4})}});
  const auto read = read_weights_file(path);
  EXPECT_EQ(read.at("f").to_floats(), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(read.at("f").shape, (std::vector<std::int64_t>{2, 2}));
  EXPECT_EQ(read.at("h").to_floats(), (std::vector<float>{1.5f, -2.0f}));
}

TEST(DataSource, BuffersShorterThanTheirDeclaredNeedAreADataSourceErrorNamingBothSizes) {
  // 4 outputs x 3 x 3 x 2 inputs = 72 weights.
  struct Case {
    DataType type;
    QuantizationType quantization;
    std::size_t weight_bytes, bias, table;
    std::string expected;  // the message names the buffer and both sizes
  };
  const std::vector<Case> cases = {
      {DataType::f32, QuantizationType::none, 72 * 4 - 4, 4, 0,
       "weights() holds 284 bytes (weights_size_in_bytes()), the descriptor needs 288"},
      {DataType::f16, QuantizationType::none, 72, 0, 0,
       "weights() holds 72 bytes (weights_size_in_bytes()), the descriptor needs 144"},
      {DataType::f32, QuantizationType::none, 72 * 4, 3, 0,
       "bias_terms() holds 3 floats (bias_terms_count()), the descriptor needs 4"},
      {DataType::u8, QuantizationType::linear, 72, 0, 7,
       "ranges_for_u8_kernel() holds 7 floats (ranges_for_u8_kernel_count()), the descriptor "
       "needs 8"},
      {DataType::u8, QuantizationType::lookup_table, 72, 0, 255,
       "lookup_table_for_u8_kernel() holds 255 floats (lookup_table_for_u8_kernel_count()), the "
       "descriptor needs 256"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.expected);
    auto source =
        std::make_shared<SizedSource>(c.type, c.quantization, c.weight_bytes, c.bias, c.table);
    auto conv = std::make_shared<ConvolutionNode>(std::make_shared<ImageNode>(), source);
    conv->label = "stem";
    const std::string message = compile_error(conv);
    EXPECT_NE(message.find("stem"), std::string::npos) << message;
    EXPECT_NE(message.find("'sized'"), std::string::npos) << message;
    EXPECT_NE(message.find(c.expected), std::string::npos) << message;
  }
  // Bit-packed binary weights: one 32-bit word per output and tap.
  auto binary = std::make_shared<BinaryConvolutionNode>(
      std::make_shared<ImageNode>(),
      std::make_shared<SizedSource>(DataType::u8, QuantizationType::binary, 35 * 4, 0, 0), 1.0f,
      BinaryConvolutionType::xnor);
  binary->training_style = TrainingStyle::none;
  EXPECT_NE(compile_error(binary).find("weights() holds 140 bytes (weights_size_in_bytes()), the "
                                       "descriptor needs 144"),
            std::string::npos);
  // Exactly the needed sizes (and longer ones) compile and run.
  for (std::size_t extra : {0, 16}) {
    auto fine = std::make_shared<ConvolutionNode>(
        std::make_shared<ImageNode>(),
        std::make_shared<SizedSource>(DataType::f32, QuantizationType::none, 288 + extra, 4, 0));
    EXPECT_EQ(compile_error(fine), "");
  }
}

TEST(DataSource, TheLibrarySourcesDeclareTheirBufferSizes) {
  const ConvolutionDescriptor d(3, 3, 2, 4);
  ArrayDataSource array("a", d, std::vector<float>(72, 0.5f), std::vector<float>(4, 0.0f));
  EXPECT_EQ(array.weights_size_in_bytes(), 288u);
  EXPECT_EQ(array.bias_terms_count(), 4u);
  auto quantized = ArrayDataSource::quantized_linear("q", d, std::vector<std::uint8_t>(72),
                                                     std::vector<float>(8, 0.0f));
  EXPECT_EQ(quantized->weights_size_in_bytes(), 72u);
  EXPECT_EQ(quantized->ranges_for_u8_kernel_count(), 8u);
  TrainableDataSource trainable("t", d, std::vector<float>(72, 0.5f), {},
                                std::make_shared<SgdOptimizer>());
  EXPECT_EQ(trainable.weights_size_in_bytes(), 288u);
  EXPECT_EQ(trainable.bias_terms_count(), 0u);
}
