// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gguf/byte_reader.hpp"
#include "gguf/decode.hpp"
#include "gguf/mapped_bytes.hpp"
#include "gguf/parser.hpp"
#include "gguf/types.hpp"
#include "kvbits/core/error.hpp"

namespace kvbits::gguf {

/**
 * A validated GGUF (v2 or v3) file: metadata key-value pairs and tensor
 * descriptions, with the tensor data left in place (memory-mapped by open()).
 *
 * Construction validates the whole layout — every length, count, type id,
 * offset and size against the bytes that exist — so later accessors never
 * read outside the file. Errors are kvbits::Error whose message starts with
 * the path (or the buffer's name) and names the offending key or tensor.
 * All accessors are const and safe to call concurrently. The mapping assumes
 * the file is not truncated by another process while it is open.
 */
class File {
 public:
  /**
   * Maps and validates a GGUF file.
   * @param path file to read
   * @return the open file
   * @throws Error(io_error) when the file cannot be opened, stat'ed or mapped;
   *         Error(corrupt_data) for malformed content; Error(unsupported) for
   *         GGUF v1, big-endian files and tensor types other than f32/f16/bf16/q8_0
   */
  static File open(const std::string& path) { return File(detail::MappedBytes::map_file(path), path); }

  /**
   * Validates an in-memory GGUF image; the File keeps its own copy.
   * @param bytes the whole file
   * @return the parsed file; errors name the source "<memory>"
   * @throws Error as open() does, except io_error
   */
  static File parse(std::span<const std::byte> bytes) { return parse(bytes, "<memory>"); }

  /**
   * As parse(bytes), naming the buffer `source_name` in error messages.
   * @param bytes the whole file
   * @param source_name prefix of every error message
   * @return the parsed file
   */
  static File parse(std::span<const std::byte> bytes, std::string_view source_name) {
    return File(detail::MappedBytes::copy_of(bytes), std::string(source_name));
  }

  File(const File&) = delete;
  File& operator=(const File&) = delete;
  File(File&&) noexcept = default;
  File& operator=(File&&) noexcept = default;
  ~File() = default;

  /// @return the GGUF version, 2 or 3.
  [[nodiscard]] std::uint32_t version() const noexcept { return layout_.version; }
  /// @return the data alignment: general.alignment, or 32 when absent.
  [[nodiscard]] std::size_t alignment() const noexcept { return layout_.alignment; }
  /// @return the path or buffer name used in error messages.
  [[nodiscard]] const std::string& source() const noexcept { return source_; }
  /// @return the file offset where the tensor data section starts.
  [[nodiscard]] std::uint64_t data_offset() const noexcept { return layout_.data_offset; }
  /// @return the file size in bytes.
  [[nodiscard]] std::uint64_t file_size() const noexcept { return bytes().size(); }

  /// @return true when the metadata holds `key`.
  [[nodiscard]] bool has(std::string_view key) const { return find_entry(key) != nullptr; }

  /**
   * @param key metadata key
   * @return the value type stored under `key`
   * @throws Error(invalid_argument) when the key is missing
   */
  [[nodiscard]] ValueType type_of(std::string_view key) const { return entry(key).type; }

  /**
   * @param key metadata key holding an array
   * @return its element type and length
   * @throws Error(invalid_argument) when missing, Error(corrupt_data) when not an array
   */
  [[nodiscard]] ArrayInfo array_info(std::string_view key) const {
    const auto& e = entry(key);
    if (e.type != ValueType::array) wrong_type(e, "an array");
    return e.array;
  }

  /**
   * @param key metadata key holding any integer type (uint8 ... int64)
   * @return the value as u64
   * @throws Error(invalid_argument) when missing; Error(corrupt_data) when not an
   *         integer or negative
   */
  [[nodiscard]] std::uint64_t get_uint(std::string_view key) const { return uint_of(entry(key)); }

  /// As get_uint, but nullopt when the key is missing (still throws on a wrong type).
  [[nodiscard]] std::optional<std::uint64_t> find_uint(std::string_view key) const {
    const auto* e = find_entry(key);
    if (e == nullptr) return std::nullopt;
    return uint_of(*e);
  }

  /**
   * @param key metadata key holding float32, float64 or any integer type
   * @return the value as double
   * @throws Error(invalid_argument) when missing; Error(corrupt_data) for other types
   */
  [[nodiscard]] double get_float(std::string_view key) const { return float_of(entry(key)); }

  /// As get_float, but nullopt when the key is missing.
  [[nodiscard]] std::optional<double> find_float(std::string_view key) const {
    const auto* e = find_entry(key);
    if (e == nullptr) return std::nullopt;
    return float_of(*e);
  }

  /**
   * @param key metadata key holding a string
   * @return a copy of the string
   * @throws Error(invalid_argument) when missing; Error(corrupt_data) for other types
   */
  [[nodiscard]] std::string get_string(std::string_view key) const { return string_of(entry(key)); }

  /// As get_string, but nullopt when the key is missing.
  [[nodiscard]] std::optional<std::string> find_string(std::string_view key) const {
    const auto* e = find_entry(key);
    if (e == nullptr) return std::nullopt;
    return string_of(*e);
  }

  /**
   * @param key metadata key holding a bool
   * @return the value
   * @throws Error(invalid_argument) when missing; Error(corrupt_data) for other types
   */
  [[nodiscard]] bool get_bool(std::string_view key) const {
    const auto& e = entry(key);
    if (e.type != ValueType::boolean) wrong_type(e, "bool");
    return bytes()[e.value_offset] != std::byte{0};
  }

  /**
   * @param key metadata key holding an array of strings
   * @return copies of the strings, in file order
   * @throws Error(invalid_argument) when missing; Error(corrupt_data) for other types
   */
  [[nodiscard]] std::vector<std::string> get_string_array(std::string_view key) const {
    const auto& e = array_entry(key, "an array of strings");
    if (e.array.element_type != ValueType::string) wrong_type(e, "an array of strings");
    detail::ByteReader in(bytes(), source_);
    in.skip(e.elements_offset, "array elements");
    std::vector<std::string> result;
    result.reserve(static_cast<std::size_t>(e.array.count));
    for (std::uint64_t i = 0; i < e.array.count; ++i) result.emplace_back(in.read_string("element"));
    return result;
  }

  /**
   * @param key metadata key holding an array of float32 or float64
   * @return the values as float (float64 is rounded)
   * @throws Error(invalid_argument) when missing; Error(corrupt_data) for other types
   */
  [[nodiscard]] std::vector<float> get_float_array(std::string_view key) const {
    const auto& e = array_entry(key, "an array of float32 or float64");
    const ValueType type = e.array.element_type;
    if (type != ValueType::float32 && type != ValueType::float64) {
      wrong_type(e, "an array of float32 or float64");
    }
    const auto stride = detail::fixed_size(type);
    std::vector<float> result(static_cast<std::size_t>(e.array.count));
    const std::byte* p = bytes().data() + e.elements_offset;
    for (std::size_t i = 0; i < result.size(); ++i) {
      result[i] = static_cast<float>(detail::load_number(p + i * stride, type));
    }
    return result;
  }

  /**
   * @param key metadata key holding an array of any integer type
   * @return the values as int64
   * @throws Error(invalid_argument) when missing; Error(corrupt_data) for other
   *         types or a uint64 element above INT64_MAX
   */
  [[nodiscard]] std::vector<std::int64_t> get_int_array(std::string_view key) const {
    const auto& e = array_entry(key, "an array of integers");
    const ValueType type = e.array.element_type;
    if (!detail::is_integer(type)) wrong_type(e, "an array of integers");
    const auto stride = detail::fixed_size(type);
    std::vector<std::int64_t> result(static_cast<std::size_t>(e.array.count));
    const std::byte* p = bytes().data() + e.elements_offset;
    for (std::size_t i = 0; i < result.size(); ++i) {
      const auto value = detail::load_integer(p + i * stride, type);
      if (!value.negative &&
          value.bits > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        throw Error(Errc::corrupt_data, source_ + ": key '" + e.key + "': element " + std::to_string(i) +
                                            " (" + std::to_string(value.bits) + ") does not fit in int64");
      }
      result[i] = static_cast<std::int64_t>(value.bits);
    }
    return result;
  }

  /// @return every metadata key, in file order.
  [[nodiscard]] std::vector<std::string> keys() const {
    std::vector<std::string> result;
    result.reserve(layout_.entries.size());
    for (const auto& e : layout_.entries) result.push_back(e.key);
    return result;
  }

  /// @return every tensor, in file order.
  [[nodiscard]] const std::vector<TensorInfo>& tensors() const noexcept { return layout_.tensors; }

  /// @return the tensor called `name`, or nullptr when there is none.
  [[nodiscard]] const TensorInfo* find_tensor(std::string_view name) const {
    const auto it = layout_.tensor_index.find(name);
    return it == layout_.tensor_index.end() ? nullptr : &layout_.tensors[it->second];
  }

  /**
   * @param name tensor name
   * @return its elements converted to float, ne[0] fastest
   * @throws Error(invalid_argument) naming the tensor when it does not exist
   */
  [[nodiscard]] std::vector<float> tensor_f32(std::string_view name) const {
    const auto* info = find_tensor(name);
    if (info == nullptr) {
      throw Error(Errc::invalid_argument, source_ + ": no tensor named '" + std::string(name) + "'");
    }
    return tensor_f32(*info);
  }

  /**
   * @param info a tensor of this file
   * @return its elements converted to float, ne[0] fastest
   * @throws Error(invalid_argument) when `info` does not describe data inside this file
   */
  [[nodiscard]] std::vector<float> tensor_f32(const TensorInfo& info) const {
    const auto data = tensor_bytes(info);
    const auto expected = detail::tensor_data_bytes(info.type, info.n_elements);
    const bool whole_blocks = info.type != TensorType::q8_0 || info.n_elements % kQ8_0BlockElements == 0;
    if (!expected || *expected != info.n_bytes || !whole_blocks) {
      throw Error(Errc::invalid_argument, source_ + ": tensor '" + info.name +
                                              "': " + std::to_string(info.n_elements) + " " +
                                              std::string(to_string(info.type)) + " elements do not take " +
                                              std::to_string(info.n_bytes) + " bytes");
    }
    std::vector<float> result(static_cast<std::size_t>(info.n_elements));
    detail::convert_to_f32(info.type, data.data(), result.size(), result.data());
    return result;
  }

  /**
   * @param info a tensor of this file
   * @return its raw bytes inside the file
   * @throws Error(invalid_argument) when `info` does not describe data inside this file
   */
  [[nodiscard]] std::span<const std::byte> tensor_bytes(const TensorInfo& info) const {
    const auto all = bytes();
    const std::uint64_t data_size = all.size() - std::min<std::uint64_t>(layout_.data_offset, all.size());
    if (!detail::range_fits(info.offset, info.n_bytes, data_size)) {
      throw Error(Errc::invalid_argument,
                  source_ + ": tensor '" + info.name + "': data [offset " + std::to_string(info.offset) +
                      ", " + std::to_string(info.n_bytes) + " bytes] is not inside the data section (" +
                      std::to_string(data_size) + " bytes)");
    }
    return all.subspan(static_cast<std::size_t>(layout_.data_offset + info.offset),
                       static_cast<std::size_t>(info.n_bytes));
  }

 private:
  File(detail::MappedBytes storage, std::string source)
      : storage_(std::move(storage)),
        source_(std::move(source)),
        layout_(detail::LayoutParser::parse(storage_.bytes(), source_)) {}

  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return storage_.bytes(); }

  [[nodiscard]] const detail::Entry* find_entry(std::string_view key) const { return layout_.find(key); }

  [[nodiscard]] const detail::Entry& entry(std::string_view key) const {
    const auto* e = find_entry(key);
    if (e == nullptr) {
      throw Error(Errc::invalid_argument, source_ + ": no metadata key '" + std::string(key) + "'");
    }
    return *e;
  }

  [[nodiscard]] const detail::Entry& array_entry(std::string_view key, const char* expected) const {
    const auto& e = entry(key);
    if (e.type != ValueType::array) wrong_type(e, expected);
    return e;
  }

  [[noreturn]] void wrong_type(const detail::Entry& e, const char* expected) const {
    std::string actual(to_string(e.type));
    if (e.type == ValueType::array) {
      actual = "an array of " + std::string(to_string(e.array.element_type));
    }
    throw Error(Errc::corrupt_data,
                source_ + ": key '" + e.key + "' holds " + actual + ", expected " + expected);
  }

  [[nodiscard]] std::uint64_t uint_of(const detail::Entry& e) const {
    if (!detail::is_integer(e.type)) wrong_type(e, "an integer");
    const auto value = detail::load_integer(bytes().data() + e.value_offset, e.type);
    if (value.negative) {
      throw Error(Errc::corrupt_data, source_ + ": key '" + e.key + "' is negative (" +
                                          std::to_string(static_cast<std::int64_t>(value.bits)) +
                                          "), expected a non-negative integer");
    }
    return value.bits;
  }

  [[nodiscard]] double float_of(const detail::Entry& e) const {
    if (!detail::is_integer(e.type) && e.type != ValueType::float32 && e.type != ValueType::float64) {
      wrong_type(e, "a number");
    }
    return detail::load_number(bytes().data() + e.value_offset, e.type);
  }

  [[nodiscard]] std::string string_of(const detail::Entry& e) const {
    if (e.type != ValueType::string) wrong_type(e, "a string");
    detail::ByteReader in(bytes(), source_);
    in.skip(e.value_offset, "value");
    return std::string(in.read_string("string"));
  }

  detail::MappedBytes storage_;  // [file size] the whole file
  std::string source_;
  detail::Layout layout_;  // validated against storage_
};

}  // namespace kvbits::gguf
