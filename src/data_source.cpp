// The ready-made data sources: in-memory arrays and safetensors files.
#include "cnngraph/data_source.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "cnngraph/checked_math.hpp"
#include "cnngraph/errors.hpp"
#include "cnngraph/weights_file.hpp"

namespace cnngraph {

namespace {

template <typename T>
std::vector<std::byte> as_bytes(const std::vector<T>& values) {
  std::vector<std::byte> bytes(values.size() * sizeof(T));
  if (!bytes.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

std::string counts(std::size_t expected, std::size_t got) {
  return "expected " + std::to_string(expected) + ", got " + std::to_string(got);
}

}  // namespace

ArrayDataSource::ArrayDataSource(std::string label, ConvolutionDescriptor descriptor,
                                 std::vector<float> weights, std::vector<float> bias)
    : ArrayDataSource(std::move(label), std::move(descriptor), DataType::f32, as_bytes(weights),
                      std::move(bias), QuantizationType::none, {}) {}

ArrayDataSource::ArrayDataSource(std::string label, ConvolutionDescriptor descriptor, DataType type,
                                 std::vector<std::byte> bytes, std::vector<float> bias,
                                 QuantizationType quantization,
                                 std::vector<float> quantization_data)
    : label_(std::move(label)),
      descriptor_(std::move(descriptor)),
      type_(type),
      bytes_(std::move(bytes)),
      bias_(std::move(bias)),
      quantization_(quantization),
      quantization_data_(std::move(quantization_data)) {
  const std::string context = "ArrayDataSource '" + label_ + "'";
  descriptor_.validate(context);
  if (quantization_ == QuantizationType::binary) {
    const std::size_t words = bit_packed_word_count(descriptor_);
    if (bytes_.size() != words * sizeof(std::uint32_t)) {
      throw InvalidArgument(context + ": bit-packed weights: word count " +
                            counts(words, bytes_.size() / sizeof(std::uint32_t)) +
                            " ([output][kernel_height][kernel_width][ceil(input per group / 32)])");
    }
  } else if (const std::size_t expected = descriptor_.weight_count();
             bytes_.size() % size_of(type_) != 0 || bytes_.size() / size_of(type_) != expected) {
    throw InvalidArgument(context + ": weights count " +
                          counts(expected, bytes_.size() / size_of(type_)));
  }
  if (!bias_.empty() &&
      bias_.size() != static_cast<std::size_t>(descriptor_.output_feature_channels)) {
    throw InvalidArgument(context + ": bias count " +
                          counts(descriptor_.output_feature_channels, bias_.size()));
  }
  if (quantization_ == QuantizationType::linear &&
      quantization_data_.size() !=
          2 * static_cast<std::size_t>(descriptor_.output_feature_channels)) {
    throw InvalidArgument(
        context + ": ranges need 2 floats per output channel, " +
        counts(2 * descriptor_.output_feature_channels, quantization_data_.size()));
  }
}

std::shared_ptr<ArrayDataSource> ArrayDataSource::from_16bit(std::string label,
                                                             ConvolutionDescriptor descriptor,
                                                             DataType type,
                                                             std::vector<std::uint16_t> weights,
                                                             std::vector<float> bias) {
  if (type != DataType::f16 && type != DataType::bf16) {
    throw InvalidArgument("ArrayDataSource::from_16bit '" + label + "': type must be f16 or bf16");
  }
  return std::shared_ptr<ArrayDataSource>(
      new ArrayDataSource(std::move(label), std::move(descriptor), type, as_bytes(weights),
                          std::move(bias), QuantizationType::none, {}));
}

std::shared_ptr<ArrayDataSource> ArrayDataSource::quantized_linear(
    std::string label, ConvolutionDescriptor descriptor, std::vector<std::uint8_t> weights,
    std::vector<float> ranges, std::vector<float> bias) {
  return std::shared_ptr<ArrayDataSource>(
      new ArrayDataSource(std::move(label), std::move(descriptor), DataType::u8, as_bytes(weights),
                          std::move(bias), QuantizationType::linear, std::move(ranges)));
}

std::shared_ptr<ArrayDataSource> ArrayDataSource::quantized_lookup_table(
    std::string label, ConvolutionDescriptor descriptor, std::vector<std::uint8_t> weights,
    std::array<float, 256> table, std::vector<float> bias) {
  return std::shared_ptr<ArrayDataSource>(new ArrayDataSource(
      std::move(label), std::move(descriptor), DataType::u8, as_bytes(weights), std::move(bias),
      QuantizationType::lookup_table, std::vector<float>(table.begin(), table.end())));
}

std::shared_ptr<ArrayDataSource> ArrayDataSource::bit_packed(std::string label,
                                                             ConvolutionDescriptor descriptor,
                                                             std::vector<std::uint32_t> words,
                                                             std::vector<float> bias) {
  return std::shared_ptr<ArrayDataSource>(
      new ArrayDataSource(std::move(label), std::move(descriptor), DataType::u8, as_bytes(words),
                          std::move(bias), QuantizationType::binary, {}));
}

std::size_t bit_packed_word_count(const ConvolutionDescriptor& d) {
  const std::int64_t per_group = d.input_feature_channels / std::max(1, d.groups);
  const auto words = detail::checked_size_product(
      {d.output_feature_channels, d.kernel_height, d.kernel_width, (per_group + 31) / 32});
  if (!words) {
    throw InvalidArgument("bit_packed_word_count: output_feature_channels " +
                          std::to_string(d.output_feature_channels) + " * kernel " +
                          std::to_string(d.kernel_height) + "x" + std::to_string(d.kernel_width) +
                          " * words per tap overflows or is negative");
  }
  return *words;
}

bool ConvolutionDataSource::update(const ConvolutionGradientState& gradient,
                                   const WeightsAndBiasesState&) {
  throw Unsupported(gradient.node_label + ": data source '" + label() +
                    "' does not implement update(), which TrainingStyle::cpu needs "
                    "(use TrainableDataSource, or set training_style to device or none)");
}

std::shared_ptr<WeightsAndBiasesState> ConvolutionDataSource::update_on_device(
    const UpdateContext&, const ConvolutionGradientState& gradient,
    const std::shared_ptr<WeightsAndBiasesState>&) {
  throw Unsupported(gradient.node_label + ": data source '" + label() +
                    "' does not implement update_on_device(), which TrainingStyle::device needs "
                    "(use TrainableDataSource, or set training_style to cpu or none)");
}

std::shared_ptr<ConvolutionDataSource> ArrayDataSource::copy() const {
  return std::shared_ptr<ArrayDataSource>(new ArrayDataSource(
      label_, descriptor_, type_, bytes_, bias_, quantization_, quantization_data_));
}

FileDataSource::FileDataSource(std::filesystem::path path, ConvolutionDescriptor descriptor,
                               std::string tensor_prefix, std::string label)
    : path_(std::move(path)),
      descriptor_(std::move(descriptor)),
      prefix_(std::move(tensor_prefix)),
      label_(label.empty() ? path_.filename().string() + (prefix_.empty() ? "" : ":" + prefix_)
                           : std::move(label)) {
  descriptor_.validate("FileDataSource '" + label_ + "'");
}

bool FileDataSource::load() {
  const std::string where = "FileDataSource '" + label_ + "' (" + path_.string() + ")";
  auto tensors = read_weights_file(path_);
  const auto find = [&](const std::string& name) -> Tensor* {
    auto it = tensors.find(prefix_ + name);
    return it == tensors.end() ? nullptr : &it->second;
  };
  Tensor* weights = find("weight");
  if (!weights) throw DataSourceError(where + ": no tensor '" + prefix_ + "weight'");
  const ConvolutionDescriptor& d = descriptor_;
  const std::vector<std::int64_t> expected_shape = {d.output_feature_channels, d.kernel_height,
                                                    d.kernel_width,
                                                    d.input_feature_channels / d.groups};
  if (weights->shape != expected_shape) {
    std::string got;
    for (auto v : weights->shape) got += (got.empty() ? "" : ",") + std::to_string(v);
    throw DataSourceError(
        where + ": tensor '" + prefix_ + "weight' has shape [" + got + "], the descriptor needs [" +
        std::to_string(expected_shape[0]) + "," + std::to_string(expected_shape[1]) + "," +
        std::to_string(expected_shape[2]) + "," + std::to_string(expected_shape[3]) + "] (OHWI)");
  }
  std::vector<float> bias;
  if (Tensor* b = find("bias")) {
    if (b->elements() != static_cast<std::size_t>(d.output_feature_channels)) {
      throw DataSourceError(where + ": tensor '" + prefix_ + "bias' " +
                            counts(d.output_feature_channels, b->elements()) + " elements");
    }
    bias = b->to_floats();
  }
  QuantizationType quantization = QuantizationType::none;
  std::vector<float> quantization_data;
  if (weights->type == DataType::u8) {
    if (Tensor* ranges = find("weight_ranges")) {
      if (ranges->elements() != 2 * static_cast<std::size_t>(d.output_feature_channels)) {
        throw DataSourceError(where + ": 'weight_ranges' needs 2 floats per output channel");
      }
      quantization = QuantizationType::linear;
      quantization_data = ranges->to_floats();
    } else if (Tensor* table = find("weight_lookup_table")) {
      if (table->elements() != 256) {
        throw DataSourceError(where + ": 'weight_lookup_table' needs 256 floats");
      }
      quantization = QuantizationType::lookup_table;
      quantization_data = table->to_floats();
    } else {
      throw DataSourceError(where + ": U8 weights need 'weight_ranges' or 'weight_lookup_table'");
    }
  }
  type_ = weights->type;
  weights_ = std::move(weights->bytes);
  bias_ = std::move(bias);
  quantization_ = quantization;
  quantization_data_ = std::move(quantization_data);
  return true;
}

void FileDataSource::purge() {
  weights_ = {};
  bias_ = {};
  quantization_data_ = {};
}

std::shared_ptr<ConvolutionDataSource> FileDataSource::copy() const {
  return std::make_shared<FileDataSource>(path_, descriptor_, prefix_, label_);
}

}  // namespace cnngraph
