// SPDX-License-Identifier: MIT
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "gguf/byte_reader.hpp"
#include "gguf/types.hpp"
#include "kvbits/core/fp16.hpp"

// Decoding of values the parser has already bounds-checked: metadata numbers
// and tensor elements. Nothing here checks bounds.
namespace kvbits::gguf::detail {
/// @return true for the signed integer value types.
constexpr bool is_signed_integer(ValueType type) noexcept {
  return type == ValueType::int8 || type == ValueType::int16 || type == ValueType::int32 ||
         type == ValueType::int64;
}

/// Integer value of type `type` (an integer type) stored at `p`, sign-extended
/// into 64 bits for signed types; `negative` tells which reading applies.
struct Integer {
  std::uint64_t bits;  // the value for unsigned types, two's complement for signed ones
  bool negative;
};

inline Integer load_integer(const std::byte* p, ValueType type) noexcept {
  switch (type) {
    case ValueType::uint8:
      return {load_le<std::uint8_t>(p), false};
    case ValueType::uint16:
      return {load_le<std::uint16_t>(p), false};
    case ValueType::uint32:
      return {load_le<std::uint32_t>(p), false};
    case ValueType::uint64:
      return {load_le<std::uint64_t>(p), false};
    case ValueType::int8: {
      const auto v = static_cast<std::int8_t>(load_le<std::uint8_t>(p));
      return {static_cast<std::uint64_t>(static_cast<std::int64_t>(v)), v < 0};
    }
    case ValueType::int16: {
      const auto v = static_cast<std::int16_t>(load_le<std::uint16_t>(p));
      return {static_cast<std::uint64_t>(static_cast<std::int64_t>(v)), v < 0};
    }
    case ValueType::int32: {
      const auto v = static_cast<std::int32_t>(load_le<std::uint32_t>(p));
      return {static_cast<std::uint64_t>(static_cast<std::int64_t>(v)), v < 0};
    }
    case ValueType::int64: {
      const auto v = static_cast<std::int64_t>(load_le<std::uint64_t>(p));
      return {static_cast<std::uint64_t>(v), v < 0};
    }
    default:
      return {0, false};
  }
}

/// @return the number stored at `p` as a double; `type` is an integer or float type.
inline double load_number(const std::byte* p, ValueType type) noexcept {
  if (type == ValueType::float32) return std::bit_cast<float>(load_le<std::uint32_t>(p));
  if (type == ValueType::float64) return std::bit_cast<double>(load_le<std::uint64_t>(p));
  const Integer value = load_integer(p, type);
  if (value.negative) return static_cast<double>(static_cast<std::int64_t>(value.bits));
  return static_cast<double>(value.bits);
}

/// @return the data size of `n_elements` values of `type`, or nullopt on overflow
///         (q8_0 needs whole blocks; the caller checks the row length).
constexpr std::optional<std::uint64_t> tensor_data_bytes(TensorType type, std::uint64_t n_elements) noexcept {
  switch (type) {
    case TensorType::f32:
      return checked_mul(n_elements, 4);
    case TensorType::f16:
    case TensorType::bf16:
      return checked_mul(n_elements, 2);
    case TensorType::q8_0:
      return checked_mul(n_elements / kQ8_0BlockElements, kQ8_0BlockBytes);
  }
  return std::nullopt;
}

/// Decodes `count` elements of `type` from `data` into `out` (exact for f32/f16/bf16).
inline void convert_to_f32(TensorType type, const std::byte* data, std::size_t count, float* out) {
  switch (type) {
    case TensorType::f32:
      for (std::size_t i = 0; i < count; ++i) {
        out[i] = std::bit_cast<float>(load_le<std::uint32_t>(data + 4 * i));
      }
      return;
    case TensorType::f16:
      for (std::size_t i = 0; i < count; ++i)
        out[i] = kvbits::half_to_float(load_le<std::uint16_t>(data + 2 * i));
      return;
    case TensorType::bf16:
      for (std::size_t i = 0; i < count; ++i)
        out[i] = kvbits::bf16_to_float(load_le<std::uint16_t>(data + 2 * i));
      return;
    case TensorType::q8_0:
      // Block layout: [fp16 scale d][32 x int8 q]; value = d * q.
      for (std::size_t block = 0; block < count / kQ8_0BlockElements; ++block) {
        const std::byte* b = data + block * kQ8_0BlockBytes;
        const float d = kvbits::half_to_float(load_le<std::uint16_t>(b));
        float* dst = out + block * kQ8_0BlockElements;
        for (std::size_t j = 0; j < kQ8_0BlockElements; ++j) {
          dst[j] = d * static_cast<float>(static_cast<std::int8_t>(b[2 + j]));
        }
      }
      return;
  }
}

}  // namespace kvbits::gguf::detail
