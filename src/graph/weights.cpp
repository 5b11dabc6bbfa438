// The data-source lifecycle: load, copy into f32 OHWI, purge.
#include "graph/weights.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>

#include "cnngraph/errors.hpp"
#include "ops/batch_normalization.hpp"

namespace cnngraph::detail {

namespace {

// A buffer the source gives its length for must hold at least what the descriptor needs:
// the library reads that much from it.
void check_buffer_size(std::optional<std::size_t> given, std::size_t needed,
                       const std::string& where, const char* buffer, const char* size_method,
                       const char* unit) {
  if (given && *given < needed) {
    throw DataSourceError(where + ": " + buffer + " holds " + std::to_string(*given) + " " + unit +
                          " (" + size_method + "), the descriptor needs " + std::to_string(needed));
  }
}

std::vector<float> convert_weights(const ConvolutionDataSource& source, std::size_t count,
                                   const ConvolutionDescriptor& d, const std::string& where) {
  std::vector<float> out(count);
  const void* raw = source.weights();
  if (!raw) throw DataSourceError(where + ": weights() returned null after load()");
  check_buffer_size(source.weights_size_in_bytes(), count * size_of(source.data_type()), where,
                    "weights()", "weights_size_in_bytes()", "bytes");
  switch (source.data_type()) {
    case DataType::f32:
      std::memcpy(out.data(), raw, count * sizeof(float));
      break;
    case DataType::f16:
    case DataType::bf16: {
      const auto* bits = static_cast<const std::uint16_t*>(raw);
      const bool half = source.data_type() == DataType::f16;
      for (std::size_t i = 0; i < count; ++i) {
        out[i] = half ? half_to_float(bits[i]) : bfloat16_to_float(bits[i]);
      }
      break;
    }
    case DataType::u8: {
      const auto* q = static_cast<const std::uint8_t*>(raw);
      switch (source.weights_quantization_type()) {
        case QuantizationType::linear: {
          const float* ranges = source.ranges_for_u8_kernel();
          if (!ranges)
            throw DataSourceError(where + ": linear u8 weights without ranges_for_u8_kernel()");
          check_buffer_size(source.ranges_for_u8_kernel_count(),
                            2 * static_cast<std::size_t>(d.output_feature_channels), where,
                            "ranges_for_u8_kernel()", "ranges_for_u8_kernel_count()", "floats");
          const std::size_t per_output = count / d.output_feature_channels;
          for (std::size_t i = 0; i < count; ++i) {
            const float lo = ranges[2 * (i / per_output)], hi = ranges[2 * (i / per_output) + 1];
            out[i] = lo + (hi - lo) * (static_cast<float>(q[i]) / 255.0f);
          }
          break;
        }
        case QuantizationType::lookup_table: {
          const float* table = source.lookup_table_for_u8_kernel();
          if (!table)
            throw DataSourceError(where +
                                  ": table u8 weights without lookup_table_for_u8_kernel()");
          check_buffer_size(source.lookup_table_for_u8_kernel_count(), 256, where,
                            "lookup_table_for_u8_kernel()", "lookup_table_for_u8_kernel_count()",
                            "floats");
          for (std::size_t i = 0; i < count; ++i) out[i] = table[q[i]];
          break;
        }
        case QuantizationType::none:
          throw DataSourceError(where +
                                ": u8 weights need a quantization type (linear or lookup_table)");
        case QuantizationType::binary:
          throw DataSourceError(
              where + ": bit-packed binary weights are read by BinaryConvolutionNode only");
      }
      break;
    }
  }
  return out;
}

void reject_non_finite(const std::vector<float>& values, const std::string& where,
                       const char* what) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      throw DataSourceError(where + ": " + what + "[" + std::to_string(i) + "] is " +
                            std::to_string(values[i]) + "; non-finite weights are rejected");
    }
  }
}

// Scales each output channel's weights and bias: w *= scale, b = b * scale + shift.
void apply_channel_affine(PreparedWeights& w, const std::vector<float>& scale,
                          const std::vector<float>& shift) {
  const std::size_t per_output = w.weights.size() / scale.size();
  for (std::size_t i = 0; i < w.weights.size(); ++i) w.weights[i] *= scale[i / per_output];
  for (std::size_t k = 0; k < scale.size(); ++k) w.bias[k] = w.bias[k] * scale[k] + shift[k];
  w.has_bias = true;
}

}  // namespace

namespace {

// Unpacks bit-packed weights to +1/-1 floats in OHWI order.
std::vector<float> unpack_binary_weights(const ConvolutionDataSource& source,
                                         const ConvolutionDescriptor& d, const std::string& where) {
  const auto* words = static_cast<const std::uint32_t*>(source.weights());
  if (!words) throw DataSourceError(where + ": weights() returned null after load()");
  check_buffer_size(source.weights_size_in_bytes(),
                    bit_packed_word_count(d) * sizeof(std::uint32_t), where, "weights()",
                    "weights_size_in_bytes()", "bytes");
  const std::size_t per_group = d.input_feature_channels / d.groups;
  const std::size_t words_per_tap = (per_group + 31) / 32;
  const std::size_t taps =
      static_cast<std::size_t>(d.output_feature_channels) * d.kernel_height * d.kernel_width;
  std::vector<float> out(taps * per_group);
  for (std::size_t t = 0; t < taps; ++t)
    for (std::size_t c = 0; c < per_group; ++c)
      out[t * per_group + c] = (words[t * words_per_tap + c / 32] >> (c % 32)) & 1u ? 1.0f : -1.0f;
  return out;
}

void check_binary_descriptor(const ConvolutionDescriptor& d, const std::string& where) {
  if (d.neuron.type != NeuronType::none || d.batch_normalization || d.sub_pixel_scale_factor != 1) {
    throw InvalidArgument(
        where +
        ": a binary convolution's descriptor takes no neuron, batch "
        "normalization or sub-pixel factor (use the output scale and bias terms)");
  }
}

// One of the two weight forms load() gave, as +1/-1: a set bit, or a float >= 0, is +1.
void binarize(PreparedWeights& prepared, const ConvolutionDataSource& source,
              const std::string& where) {
  if (source.weights_quantization_type() == QuantizationType::binary) {
    prepared.weights = unpack_binary_weights(source, prepared.descriptor, where);
  } else {
    for (float& w : prepared.weights) w = w >= 0.0f ? 1.0f : -1.0f;
  }
}

}  // namespace

std::shared_ptr<PreparedWeights> prepare_node_weights(const WeightedNode& node, ChannelAffine* fold,
                                                      bool trained) {
  const WeightsForm form = node.weights_kind() == WeightsKind::floats ? WeightsForm::floats
                           : trained                                  ? WeightsForm::binary_shadow
                                                                      : WeightsForm::binary_signs;
  return prepare_source_weights(*node.weights(), node.display_name(), fold, form);
}

std::shared_ptr<PreparedWeights> prepare_source_weights(ConvolutionDataSource& source,
                                                        const std::string& node_name,
                                                        ChannelAffine* fold, WeightsForm form) {
  std::lock_guard lock(source.library_mutex());
  const std::string where = node_name + ", data source '" + source.label() + "'";
  bool loaded = false;
  try {
    loaded = source.load();
  } catch (const std::exception& e) {
    throw DataSourceError(where + ": load() failed: " + e.what());
  } catch (...) {
    throw DataSourceError(where + ": load() threw a non-standard exception");
  }
  if (!loaded) throw DataSourceError(where + ": load() returned false");
  // purge() runs however the copy ends.
  struct PurgeOnExit {
    ConvolutionDataSource& source;
    ~PurgeOnExit() {
      try {
        source.purge();
      } catch (...) {  // a throwing purge must not mask the real error or crash
      }
    }
  } purge_on_exit{source};

  auto prepared = std::make_shared<PreparedWeights>();
  prepared->descriptor = source.descriptor();
  prepared->source_label = source.label();
  const ConvolutionDescriptor& d = prepared->descriptor;
  d.validate(where);
  const std::size_t count = d.weight_count();
  // The library's f32 copy (and a backend's reordered one) must be addressable.
  if (count > ImageShape::max_elements) {
    throw InvalidArgument(where + ": weight_count " + std::to_string(count) +
                          " is more than any buffer can hold");
  }
  const bool bit_packed = source.weights_quantization_type() == QuantizationType::binary;
  if (form != WeightsForm::floats) check_binary_descriptor(d, where);
  if (form == WeightsForm::binary_shadow && bit_packed) {
    throw Unsupported(where +
                      ": bit-packed weights cannot be trained; give float (shadow) "
                      "weights, e.g. a TrainableDataSource, or set training_style to none");
  }
  if (!(form == WeightsForm::binary_signs && bit_packed)) {
    prepared->weights = convert_weights(source, count, d, where);
    reject_non_finite(prepared->weights, where, "weights");
  }
  if (form == WeightsForm::binary_signs) binarize(*prepared, source, where);
  prepared->bias.assign(d.output_feature_channels, 0.0f);
  if (const float* bias = source.bias_terms()) {
    check_buffer_size(source.bias_terms_count(), prepared->bias.size(), where, "bias_terms()",
                      "bias_terms_count()", "floats");
    std::memcpy(prepared->bias.data(), bias, prepared->bias.size() * sizeof(float));
    reject_non_finite(prepared->bias, where, "bias_terms");
    prepared->has_bias = true;
  }
  if (d.batch_normalization) {
    std::vector<float> scale, shift;
    fold_batch_normalization(*d.batch_normalization, scale, shift);
    if (fold) {
      fold->scale = std::move(scale);
      fold->shift = std::move(shift);
    } else {
      apply_channel_affine(*prepared, scale, shift);
    }
  }
  return prepared;
}

void refresh_prepared_weights(PreparedWeights& prepared, const WeightsAndBiasesState& state,
                              const ChannelAffine& fold) {
  std::lock_guard lock(prepared.cache_mutex);
  prepared.weights.assign(state.weights().begin(), state.weights().end());
  if (state.biases().empty()) {
    std::fill(prepared.bias.begin(), prepared.bias.end(), 0.0f);
  } else {
    prepared.bias.assign(state.biases().begin(), state.biases().end());
  }
  if (!fold.scale.empty()) apply_channel_affine(prepared, fold.scale, fold.shift);
  ++prepared.version;
}

std::shared_ptr<PreparedWeights> fold_batch_normalization_node(const PreparedWeights& weights,
                                                               const BatchNormalizationNode& bn) {
  if (bn.parameters().mean.size() != weights.bias.size()) {
    throw ShapeError(bn.display_name() + ": has parameters for " +
                     std::to_string(bn.parameters().mean.size()) + " channels, the source has " +
                     std::to_string(weights.bias.size()));
  }
  auto folded = std::make_shared<PreparedWeights>();
  folded->descriptor = weights.descriptor;
  folded->source_label = weights.source_label;
  folded->weights = weights.weights;
  folded->bias = weights.bias;
  folded->has_bias = weights.has_bias;
  std::vector<float> scale, shift;
  fold_batch_normalization(bn.parameters(), scale, shift);
  apply_channel_affine(*folded, scale, shift);
  return folded;
}

}  // namespace cnngraph::detail
