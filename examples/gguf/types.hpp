// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvbits::gguf {

/// Type id of a metadata value, as stored (u32) in a GGUF file.
enum class ValueType : std::uint32_t {
  uint8 = 0,
  int8 = 1,
  uint16 = 2,
  int16 = 3,
  uint32 = 4,
  int32 = 5,
  float32 = 6,
  boolean = 7,
  string = 8,
  array = 9,
  uint64 = 10,
  int64 = 11,
  float64 = 12,
};

/// Tensor element types this reader converts. Other ggml type ids are
/// recognised by name and rejected with Errc::unsupported.
enum class TensorType : std::uint32_t {
  f32 = 0,
  f16 = 1,
  q8_0 = 8,
  bf16 = 30,
};

/// Where one tensor lives and what it holds.
struct TensorInfo {
  std::string name;
  std::vector<std::uint64_t> dims;  // ne[0] first (fastest varying), as in the file
  TensorType type;
  std::uint64_t offset;      // bytes from the start of the data section
  std::uint64_t n_elements;  // product of dims
  std::uint64_t n_bytes;     // size of the tensor's data in the file
};

/// Element type and length of an array-valued metadata entry.
struct ArrayInfo {
  ValueType element_type;
  std::uint64_t count;
};

/// GGUF magic "GGUF" read as a little-endian u32.
inline constexpr std::uint32_t kMagic = 0x46554747U;
/// Alignment of the data section and of every tensor when general.alignment is absent.
inline constexpr std::size_t kDefaultAlignment = 32;
/// Most dimensions a tensor may have (ggml's GGML_MAX_DIMS).
inline constexpr std::uint32_t kMaxDims = 4;
/// Deepest array-of-array nesting accepted; real files use depth 1.
inline constexpr int kMaxArrayDepth = 4;
/// Elements per Q8_0 block and bytes per block (fp16 scale + 32 int8).
inline constexpr std::uint64_t kQ8_0BlockElements = 32;
inline constexpr std::uint64_t kQ8_0BlockBytes = 2 + kQ8_0BlockElements;

/// @return the spec's name of a metadata value type ("uint32", "string", ...).
constexpr std::string_view to_string(ValueType type) noexcept {
  switch (type) {
    case ValueType::uint8:
      return "uint8";
    case ValueType::int8:
      return "int8";
    case ValueType::uint16:
      return "uint16";
    case ValueType::int16:
      return "int16";
    case ValueType::uint32:
      return "uint32";
    case ValueType::int32:
      return "int32";
    case ValueType::float32:
      return "float32";
    case ValueType::boolean:
      return "bool";
    case ValueType::string:
      return "string";
    case ValueType::array:
      return "array";
    case ValueType::uint64:
      return "uint64";
    case ValueType::int64:
      return "int64";
    case ValueType::float64:
      return "float64";
  }
  return "invalid";
}

/// @return the ggml name of a supported tensor type ("f32", "q8_0", ...).
constexpr std::string_view to_string(TensorType type) noexcept {
  switch (type) {
    case TensorType::f32:
      return "f32";
    case TensorType::f16:
      return "f16";
    case TensorType::q8_0:
      return "q8_0";
    case TensorType::bf16:
      return "bf16";
  }
  return "invalid";
}

namespace detail {

/// @return true for the thirteen value type ids the spec defines.
constexpr bool is_valid_value_type(std::uint32_t id) noexcept { return id <= 12; }

/// @return true for the eight integer value types.
constexpr bool is_integer(ValueType type) noexcept {
  switch (type) {
    case ValueType::uint8:
    case ValueType::int8:
    case ValueType::uint16:
    case ValueType::int16:
    case ValueType::uint32:
    case ValueType::int32:
    case ValueType::uint64:
    case ValueType::int64:
      return true;
    default:
      return false;
  }
}

/// @return the encoded size of a fixed-size value type, 0 for string and array.
constexpr std::uint64_t fixed_size(ValueType type) noexcept {
  switch (type) {
    case ValueType::uint8:
    case ValueType::int8:
    case ValueType::boolean:
      return 1;
    case ValueType::uint16:
    case ValueType::int16:
      return 2;
    case ValueType::uint32:
    case ValueType::int32:
    case ValueType::float32:
      return 4;
    case ValueType::uint64:
    case ValueType::int64:
    case ValueType::float64:
      return 8;
    case ValueType::string:
    case ValueType::array:
      return 0;
  }
  return 0;
}

/// @return the fewest bytes a value of this type can occupy (string: its u64
///         length; array: its u32 element type and u64 count).
constexpr std::uint64_t min_encoded_size(ValueType type) noexcept {
  if (type == ValueType::string) return 8;
  if (type == ValueType::array) return 12;
  return fixed_size(type);
}

/// @return the ggml name of any known tensor type id, or nullopt when the id
///         was never assigned or has been retired from ggml.
constexpr std::optional<std::string_view> ggml_type_name(std::uint32_t id) noexcept {
  constexpr std::string_view kNames[] = {
      "f32",    "f16",   "q4_0",  "q4_1",   "",      "",      "q5_0",    "q5_1",   "q8_0",    "q8_1",
      "q2_k",   "q3_k",  "q4_k",  "q5_k",   "q6_k",  "q8_k",  "iq2_xxs", "iq2_xs", "iq3_xxs", "iq1_s",
      "iq4_nl", "iq3_s", "iq2_s", "iq4_xs", "i8",    "i16",   "i32",     "i64",    "f64",     "iq1_m",
      "bf16",   "",      "",      "",       "tq1_0", "tq2_0", "",        "",       "",        "mxfp4"};
  if (id >= std::size(kNames) || kNames[id].empty()) return std::nullopt;
  return kNames[id];
}

}  // namespace detail
}  // namespace kvbits::gguf
