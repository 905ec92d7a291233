// SPDX-License-Identifier: MIT
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kvbits/core/error.hpp"

// Little-endian fixed-width fields in memory: what kvbits' binary files are made of.
namespace kvbits {

/// Appends little-endian fields to a byte buffer; f32/f64 as their IEEE-754 bit patterns.
class ByteWriter {
 public:
  /// Appends `v` in 4 bytes.
  void u32(std::uint32_t v) { put(v, 4); }
  /// Appends `v` in 8 bytes.
  void u64(std::uint64_t v) { put(v, 8); }
  /// Appends the bit pattern of `v` in 4 bytes.
  void f32(float v) { u32(std::bit_cast<std::uint32_t>(v)); }
  /// Appends the bit pattern of `v` in 8 bytes.
  void f64(double v) { u64(std::bit_cast<std::uint64_t>(v)); }
  /// The characters of `s`, without a length (write one first when the reader needs it).
  void text(std::string_view s) {
    for (const char c : s) bytes_.push_back(static_cast<std::byte>(c));
  }
  /// @return the bytes written so far.
  [[nodiscard]] std::vector<std::byte>& bytes() noexcept { return bytes_; }

 private:
  void put(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) bytes_.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xffU));
  }
  std::vector<std::byte> bytes_;
};

/**
 * Bounds-checked little-endian cursor over bytes in memory. Every read names
 * the field it reads; running past the end throws Error(corrupt_data) naming
 * the source, the field and the offset.
 */
class ByteReader {
 public:
  /// @param bytes the data (outlives the reader); @param source names it in error messages.
  ByteReader(std::span<const std::byte> bytes, std::string_view source) : bytes_(bytes), source_(source) {}

  /// @return how many bytes are left to read.
  [[nodiscard]] std::size_t remaining() const noexcept { return bytes_.size() - position_; }
  /// @return the bytes left to read.
  [[nodiscard]] std::span<const std::byte> rest() const noexcept { return bytes_.subspan(position_); }

  /// @return the next 8 bytes as an integer; `what` names the field in errors.
  std::uint64_t u64(std::string_view what) { return load(8, what); }
  /// @return the next 4 bytes as an integer; `what` names the field in errors.
  std::uint32_t u32(std::string_view what) { return static_cast<std::uint32_t>(load(4, what)); }
  /// @return the float whose bit pattern the next 4 bytes hold; `what` names the field in errors.
  float f32(std::string_view what) { return std::bit_cast<float>(u32(what)); }
  /// @return the double whose bit pattern the next 8 bytes hold; `what` names the field in errors.
  double f64(std::string_view what) { return std::bit_cast<double>(u64(what)); }
  /// @return the next `length` bytes as characters; `what` names the field in errors.
  std::string_view text(std::size_t length, std::string_view what) {
    need(length, what);
    const auto* begin = reinterpret_cast<const char*>(bytes_.data() + position_);
    position_ += length;
    return {begin, length};
  }

  /// Throws Error(code) with the source prefixed.
  [[noreturn]] void fail(Errc code, const std::string& message) const {
    std::string full(source_);
    full += ": ";
    full += message;
    throw Error(code, full);
  }
  /// Throws Error(corrupt_data) with the source prefixed.
  [[noreturn]] void fail(const std::string& message) const { fail(Errc::corrupt_data, message); }

 private:
  void need(std::size_t length, std::string_view what) const {
    if (length > remaining()) {
      std::string message = "truncated: ";
      message += what;
      message += " needs " + std::to_string(length) + " bytes at offset " + std::to_string(position_);
      message += " but only " + std::to_string(remaining()) + " are left";
      fail(message);
    }
  }
  std::uint64_t load(std::size_t length, std::string_view what) {
    need(length, what);
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < length; ++i) {
      v |= static_cast<std::uint64_t>(bytes_[position_ + i]) << (8 * i);
    }
    position_ += length;
    return v;
  }

  std::span<const std::byte> bytes_;  // the whole input
  std::string_view source_;           // prefixes every error
  std::size_t position_ = 0;          // next unread byte
};

}  // namespace kvbits
