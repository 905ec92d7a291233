// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "kvbits/core/error.hpp"

namespace kvbits::gguf::detail {

/// @return a * b, or nullopt when the product does not fit in 64 bits.
constexpr std::optional<std::uint64_t> checked_mul(std::uint64_t a, std::uint64_t b) noexcept {
  if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) return std::nullopt;
  return a * b;
}

/// @return a + b, or nullopt when the sum does not fit in 64 bits.
constexpr std::optional<std::uint64_t> checked_add(std::uint64_t a, std::uint64_t b) noexcept {
  if (b > std::numeric_limits<std::uint64_t>::max() - a) return std::nullopt;
  return a + b;
}

/// @return true when [offset, offset + length) lies inside a buffer of `size` bytes.
constexpr bool range_fits(std::uint64_t offset, std::uint64_t length, std::uint64_t size) noexcept {
  return offset <= size && length <= size - offset;
}

/// Reads a little-endian unsigned integer from `bytes` (which holds at least sizeof(T)).
template <class T>
constexpr T load_le(const std::byte* bytes) noexcept {
  static_assert(std::is_unsigned_v<T>, "load_le reads unsigned integers; bit_cast the result");
  T value = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    value = static_cast<T>(value | static_cast<T>(static_cast<T>(bytes[i]) << (8 * i)));
  }
  return value;
}

/**
 * Bounds-checked little-endian cursor over a GGUF buffer. Every read checks the
 * bytes left first and throws Error(corrupt_data) naming the source, the
 * current context (e.g. "key 'general.name'"), what was being read and where.
 */
class ByteReader {
 public:
  /**
   * @param bytes the whole file
   * @param source name used as the prefix of every error message (a path)
   */
  ByteReader(std::span<const std::byte> bytes, std::string_view source) : bytes_(bytes), source_(source) {}

  /// @return the offset of the next unread byte.
  [[nodiscard]] std::uint64_t position() const noexcept { return position_; }
  /// @return the number of bytes not read yet.
  [[nodiscard]] std::uint64_t remaining() const noexcept { return bytes_.size() - position_; }
  /// Sets the phrase that prefixes later errors, e.g. "tensor 'output.weight'".
  void set_context(std::string context) { context_ = std::move(context); }

  /// Reads a little-endian u8/u16/u32/u64.
  template <class T>
  T read(std::string_view what) {
    need(sizeof(T), what);
    const T value = load_le<T>(bytes_.data() + position_);
    position_ += sizeof(T);
    return value;
  }

  /// Reads a GGUF string (u64 length, then that many bytes, no terminator).
  std::string_view read_string(std::string_view what) {
    const auto length = read<std::uint64_t>(what);
    if (length > remaining()) {
      fail("string length " + std::to_string(length) + " of " + std::string(what) +
           " extends past end of file (" + std::to_string(remaining()) + " bytes left at offset " +
           std::to_string(position_) + ")");
    }
    const auto* begin = reinterpret_cast<const char*>(bytes_.data() + position_);
    position_ += length;
    return {begin, static_cast<std::size_t>(length)};
  }

  /// Skips `length` bytes of `what`, which must all be inside the buffer.
  void skip(std::uint64_t length, std::string_view what) {
    need(length, what);
    position_ += length;
  }

  /// Throws Error(corrupt_data) with the source and context prefixed.
  [[noreturn]] void fail(const std::string& message) const { fail(Errc::corrupt_data, message); }

  /// Throws Error(code) with the source and context prefixed.
  [[noreturn]] void fail(Errc code, const std::string& message) const {
    std::string full(source_);
    full += ": ";
    if (!context_.empty()) full += context_ + ": ";
    throw Error(code, full + message);
  }

 private:
  void need(std::uint64_t length, std::string_view what) const {
    if (length > remaining()) {
      fail("truncated: " + std::string(what) + " needs " + std::to_string(length) + " bytes at offset " +
           std::to_string(position_) + " but only " + std::to_string(remaining()) + " are left");
    }
  }

  std::span<const std::byte> bytes_;  // the whole file
  std::string_view source_;
  std::string context_;
  std::uint64_t position_ = 0;
};

}  // namespace kvbits::gguf::detail
