// ConvolutionDataSource (MPSCNNConvolutionDataSource): where a convolution's weights come
// from, and the ready-made sources: in-memory arrays and a safetensors file.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cnngraph/descriptor.hpp"
#include "cnngraph/image.hpp"
#include "cnngraph/training_state.hpp"

namespace cnngraph {

enum class QuantizationType {
  none,
  linear,        // per output channel: weight = min + (max - min) * q / 255
  lookup_table,  // weight = table[q], 256 entries
  // Bit-packed binary weights (BinaryConvolutionNode only): weights() points at uint32
  // words, layout [output][kernel_height][kernel_width][word], 32 input channels (of the
  // group) a word, bit c of word w = channel 32 * w + c, a set bit meaning +1 and a clear
  // bit -1. data_type() is u8 (the words' bytes). bit_packed_word_count() words in all.
  binary
};

// Words of bit-packed binary weights for `descriptor` (QuantizationType::binary).
std::size_t bit_packed_word_count(const ConvolutionDescriptor& descriptor);

// The protocol a user implements. The library calls load() when a graph is compiled,
// reads descriptor(), weights() and bias_terms(), copies them into its own layout, then
// calls purge(). Calls into one source are serialized by the library, so one source may be
// shared by several nodes and graphs, from several threads.
class ConvolutionDataSource {
 public:
  virtual ~ConvolutionDataSource() = default;

  virtual DataType data_type() const = 0;
  virtual ConvolutionDescriptor descriptor() const = 0;
  // Layout [output][kernel_height][kernel_width][input / groups] of data_type() elements
  // (f16 / bf16 as their 16-bit patterns). Valid only between load() and purge().
  virtual const void* weights() const = 0;
  // output_feature_channels floats, or null for no bias.
  virtual const float* bias_terms() const { return nullptr; }
  // Make weights() and bias_terms() valid. Return false (or throw) on failure.
  virtual bool load() = 0;
  // Release what load() made.
  virtual void purge() = 0;
  virtual std::string label() const = 0;

  virtual QuantizationType weights_quantization_type() const { return QuantizationType::none; }
  // For QuantizationType::linear: 2 floats per output channel, the values that bytes 0 and
  // 255 stand for.
  virtual const float* ranges_for_u8_kernel() const { return nullptr; }
  // For QuantizationType::lookup_table: 256 floats.
  virtual const float* lookup_table_for_u8_kernel() const { return nullptr; }

  // The lengths of the buffers above as load() made them, when the source knows them. The
  // library checks each one given against what the descriptor needs before reading, and
  // throws DataSourceError naming the node, the source and both sizes; nullopt (the
  // default) leaves that buffer unchecked, read as the descriptor says.
  virtual std::optional<std::size_t> weights_size_in_bytes() const { return std::nullopt; }
  // Floats at bias_terms() (when it is not null).
  virtual std::optional<std::size_t> bias_terms_count() const { return std::nullopt; }
  // Floats at ranges_for_u8_kernel() and lookup_table_for_u8_kernel().
  virtual std::optional<std::size_t> ranges_for_u8_kernel_count() const { return std::nullopt; }
  virtual std::optional<std::size_t> lookup_table_for_u8_kernel_count() const {
    return std::nullopt;
  }

  // A new, independent source with the same contents.
  virtual std::shared_ptr<ConvolutionDataSource> copy() const = 0;

  // Training with TrainingStyle::cpu: called after each batch with the gradients on the host
  // and the weights that batch computed with. Change your own weights and return true to
  // have the graph reload them (load, copy, purge) before the next batch; false: no change.
  // A throw fails the run; the graph's weights stay as they were. The default throws
  // Unsupported: a source used with TrainingStyle::cpu must implement it.
  virtual bool update(const ConvolutionGradientState& gradient,
                      const WeightsAndBiasesState& source_state);

  // Training with TrainingStyle::device: update the weights where the graph keeps them,
  // without a host round trip (on CPU devices they are host memory). Return the state
  // holding the new weights -- `source_state` itself when updated in place -- or null for no
  // change. The default throws Unsupported.
  virtual std::shared_ptr<WeightsAndBiasesState> update_on_device(
      const UpdateContext& context, const ConvolutionGradientState& gradient,
      const std::shared_ptr<WeightsAndBiasesState>& source_state);

  // Held by the library around each load / read / purge sequence, around each update() and
  // update_on_device(), and by a CUDA graph for each run that trains a TrainableDataSource
  // on the device.
  std::mutex& library_mutex() const { return library_mutex_; }

 private:
  mutable std::mutex library_mutex_;
};

// Weights held in memory. Lengths are checked against the descriptor on construction.
class ArrayDataSource : public ConvolutionDataSource {
 public:
  ArrayDataSource(std::string label, ConvolutionDescriptor descriptor, std::vector<float> weights,
                  std::vector<float> bias = {});
  // f16 or bf16 weights as 16-bit patterns.
  static std::shared_ptr<ArrayDataSource> from_16bit(std::string label,
                                                     ConvolutionDescriptor descriptor,
                                                     DataType type,
                                                     std::vector<std::uint16_t> weights,
                                                     std::vector<float> bias = {});
  // u8 weights with per-output-channel [min, max] ranges.
  static std::shared_ptr<ArrayDataSource> quantized_linear(std::string label,
                                                           ConvolutionDescriptor descriptor,
                                                           std::vector<std::uint8_t> weights,
                                                           std::vector<float> ranges,
                                                           std::vector<float> bias = {});
  // Bit-packed binary weights (QuantizationType::binary): exactly
  // bit_packed_word_count(descriptor) words, else InvalidArgument.
  static std::shared_ptr<ArrayDataSource> bit_packed(std::string label,
                                                     ConvolutionDescriptor descriptor,
                                                     std::vector<std::uint32_t> words,
                                                     std::vector<float> bias = {});
  // u8 weights indexing a 256-entry table.
  static std::shared_ptr<ArrayDataSource> quantized_lookup_table(std::string label,
                                                                 ConvolutionDescriptor descriptor,
                                                                 std::vector<std::uint8_t> weights,
                                                                 std::array<float, 256> table,
                                                                 std::vector<float> bias = {});

  DataType data_type() const override { return type_; }
  ConvolutionDescriptor descriptor() const override { return descriptor_; }
  const void* weights() const override { return bytes_.data(); }
  const float* bias_terms() const override { return bias_.empty() ? nullptr : bias_.data(); }
  bool load() override { return true; }
  void purge() override {}
  std::string label() const override { return label_; }
  QuantizationType weights_quantization_type() const override { return quantization_; }
  const float* ranges_for_u8_kernel() const override {
    return quantization_ == QuantizationType::linear ? quantization_data_.data() : nullptr;
  }
  const float* lookup_table_for_u8_kernel() const override {
    return quantization_ == QuantizationType::lookup_table ? quantization_data_.data() : nullptr;
  }
  std::optional<std::size_t> weights_size_in_bytes() const override { return bytes_.size(); }
  std::optional<std::size_t> bias_terms_count() const override { return bias_.size(); }
  std::optional<std::size_t> ranges_for_u8_kernel_count() const override {
    return quantization_data_.size();
  }
  std::optional<std::size_t> lookup_table_for_u8_kernel_count() const override {
    return quantization_data_.size();
  }
  std::shared_ptr<ConvolutionDataSource> copy() const override;

 private:
  ArrayDataSource(std::string label, ConvolutionDescriptor descriptor, DataType type,
                  std::vector<std::byte> bytes, std::vector<float> bias,
                  QuantizationType quantization, std::vector<float> quantization_data);

  std::string label_;
  ConvolutionDescriptor descriptor_;
  DataType type_;
  std::vector<std::byte> bytes_;
  std::vector<float> bias_;
  QuantizationType quantization_;
  std::vector<float> quantization_data_;
};

// Weights read from a safetensors file by load() and released by purge(). The tensors
// (docs/weights-format.md):
//   <prefix>weight  [output, kernel_height, kernel_width, input / groups]  F32, F16, BF16 or U8
//   <prefix>bias    [output]                                               F32, optional
//   <prefix>weight_ranges        [output, 2]  F32, for linear-quantized U8 weights
//   <prefix>weight_lookup_table  [256]        F32, for table-quantized U8 weights
class FileDataSource : public ConvolutionDataSource {
 public:
  FileDataSource(std::filesystem::path path, ConvolutionDescriptor descriptor,
                 std::string tensor_prefix = "", std::string label = "");

  DataType data_type() const override { return type_; }
  ConvolutionDescriptor descriptor() const override { return descriptor_; }
  const void* weights() const override { return weights_.data(); }
  const float* bias_terms() const override { return bias_.empty() ? nullptr : bias_.data(); }
  // Throws DataSourceError naming the file and tensor when the file is missing, malformed
  // or does not match the descriptor.
  bool load() override;
  void purge() override;
  std::string label() const override { return label_; }
  QuantizationType weights_quantization_type() const override { return quantization_; }
  const float* ranges_for_u8_kernel() const override {
    return quantization_ == QuantizationType::linear ? quantization_data_.data() : nullptr;
  }
  const float* lookup_table_for_u8_kernel() const override {
    return quantization_ == QuantizationType::lookup_table ? quantization_data_.data() : nullptr;
  }
  std::optional<std::size_t> weights_size_in_bytes() const override { return weights_.size(); }
  std::optional<std::size_t> bias_terms_count() const override { return bias_.size(); }
  std::optional<std::size_t> ranges_for_u8_kernel_count() const override {
    return quantization_data_.size();
  }
  std::optional<std::size_t> lookup_table_for_u8_kernel_count() const override {
    return quantization_data_.size();
  }
  std::shared_ptr<ConvolutionDataSource> copy() const override;

  bool is_loaded() const { return !weights_.empty(); }

 private:
  std::filesystem::path path_;
  ConvolutionDescriptor descriptor_;
  std::string prefix_;
  std::string label_;
  DataType type_ = DataType::f32;
  std::vector<std::byte> weights_;
  std::vector<float> bias_;
  QuantizationType quantization_ = QuantizationType::none;
  std::vector<float> quantization_data_;
};

}  // namespace cnngraph
