// Size arithmetic that reports overflow instead of wrapping: element and weight counts, byte
// sizes and padding geometry are computed through these when shapes are checked (never in
// per-element loops).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>

namespace cnngraph::detail {

// a * b, or nullopt when it does not fit T (a, b >= 0).
template <typename T>
constexpr std::optional<T> checked_multiply(T a, T b) {
  if (a != 0 && b > std::numeric_limits<T>::max() / a) return std::nullopt;
  return a * b;
}

// a + b, or nullopt when it does not fit T (a, b >= 0).
template <typename T>
constexpr std::optional<T> checked_add(T a, T b) {
  if (b > std::numeric_limits<T>::max() - a) return std::nullopt;
  return a + b;
}

// The product of sizes, or nullopt when one is negative or the product does not fit size_t.
constexpr std::optional<std::size_t> checked_size_product(
    std::initializer_list<std::int64_t> factors) {
  std::size_t product = 1;
  for (const std::int64_t f : factors) {
    if (f < 0) return std::nullopt;
    const auto next = checked_multiply(product, static_cast<std::size_t>(f));
    if (!next) return std::nullopt;
    product = *next;
  }
  return product;
}

// `value` as an int, or nullopt when it is outside int's range.
constexpr std::optional<int> fits_int(std::int64_t value) {
  if (value > std::numeric_limits<int>::max() || value < std::numeric_limits<int>::min())
    return std::nullopt;
  return static_cast<int>(value);
}

}  // namespace cnngraph::detail
