// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <istream>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kvbits/core/checksum.hpp"
#include "kvbits/core/error.hpp"

// Checksummed sections of a binary file, streamed: every section is
//   u32 tag | u64 payload length | payload | u64 WordChecksum of tag, length and payload
// (little-endian), so a payload can be written from and read into where it lives, in pieces.
namespace kvbits::detail {

/// Bytes a section adds around its payload: tag, length, checksum.
inline constexpr std::size_t kSectionFrameBytes = 4 + 8 + 8;

/// A section's tag from four ASCII characters, the first in the lowest byte (a file shows them in order).
constexpr std::uint32_t section_tag(std::string_view name) noexcept {
  std::uint32_t tag = 0;
  for (std::size_t i = 0; i < 4 && i < name.size(); ++i) {
    tag |= static_cast<std::uint32_t>(static_cast<unsigned char>(name[i])) << (8 * i);
  }
  return tag;
}

/// @return a tag as text for error messages, e.g. 'HEAD' (other bytes as \xNN).
inline std::string section_tag_text(std::uint32_t tag) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text = "'";
  for (std::size_t i = 0; i < 4; ++i) {
    const auto c = static_cast<unsigned char>((tag >> (8 * i)) & 0xffU);
    if (c >= 0x20 && c < 0x7f) {
      text += static_cast<char>(c);
    } else {
      text += "\\x";
      text += kHex[c >> 4];
      text += kHex[c & 0xfU];
    }
  }
  return text + "'";
}

/// Writes sections (see above) to a stream; stream failures surface in finish().
class SectionWriter {
 public:
  explicit SectionWriter(std::ostream& out) : out_(out) {}

  /// Writes bytes outside any section (a file's magic and version).
  void raw(std::span<const std::byte> bytes) { put(bytes.data(), bytes.size()); }

  /// Starts a section whose payload is exactly `length` bytes.
  void begin(std::uint32_t tag, std::uint64_t length) {
    checksum_ = WordChecksum{};
    left_ = length;
    std::array<std::byte, 12> frame{};
    store_le(frame.data(), tag, 4);
    store_le(frame.data() + 4, length, 8);
    checksum_.update(frame);
    put(frame.data(), frame.size());
  }

  /// Writes the next `n` bytes of the payload.
  void write(const void* bytes, std::size_t n) {
    KVBITS_DEBUG_REQUIRE(n <= left_, Errc::invalid_argument, "section payload longer than declared");
    left_ -= n;
    checksum_.update({static_cast<const std::byte*>(bytes), n});
    put(bytes, n);
  }

  /// Ends the section (its payload complete) with its checksum.
  void end() {
    KVBITS_DEBUG_REQUIRE(left_ == 0, Errc::invalid_argument, "section payload shorter than declared");
    std::array<std::byte, 8> sum{};
    store_le(sum.data(), checksum_.value(), 8);
    put(sum.data(), sum.size());
  }

  /// A whole section from memory.
  void section(std::uint32_t tag, std::span<const std::byte> payload) {
    begin(tag, payload.size());
    write(payload.data(), payload.size());
    end();
  }

  /// Flushes. @throws Error(io_error) naming `what` (e.g. "the cache file") unless every byte reached the
  /// stream.
  void finish(std::string_view what) {
    out_.flush();
    require(static_cast<bool>(out_), Errc::io_error, "could not write " + std::string(what));
  }

 private:
  static void store_le(std::byte* to, std::uint64_t v, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) to[i] = static_cast<std::byte>((v >> (8 * i)) & 0xffU);
  }
  void put(const void* bytes, std::size_t n) {
    out_.write(static_cast<const char*>(bytes), static_cast<std::streamsize>(n));
  }

  std::ostream& out_;
  WordChecksum checksum_;   // of the running section
  std::uint64_t left_ = 0;  // payload bytes the running section still owes
};

/**
 * Reads sections (see above) from a stream, exactly their bytes and no
 * further. Every length is checked against the caller's bound before anything
 * is read or allocated; a payload's checksum is compared at end(). Every error
 * is Error(corrupt_data) (Error(io_error) when the stream itself fails) and
 * names the source, the section and how far it got.
 */
class SectionReader {
 public:
  /// @param source names the input in error messages (outlives the reader).
  SectionReader(std::istream& in, std::string_view source) : in_(in), source_(source) {}

  /// Reads bytes outside any section into `bytes`, named `what` in errors.
  void raw(std::span<std::byte> bytes, std::string_view what) {
    fill(bytes.data(), bytes.size(),
         [&] { return "truncated: the file ends inside its " + std::string(what); });
  }

  /**
   * Reads a section's tag and length.
   * @param tag the section expected here; @param max_length the longest payload accepted;
   * @param what names the section in errors.
   * @return the payload length.
   */
  std::uint64_t begin(std::uint32_t tag, std::uint64_t max_length, std::string what) {
    what_ = std::move(what);
    checksum_ = WordChecksum{};
    std::array<std::byte, 12> frame{};
    fill(frame.data(), frame.size(), [&] { return "truncated: the file ends before " + what_; });
    checksum_.update(frame);
    const auto found = static_cast<std::uint32_t>(load_le(frame.data(), 4));
    length_ = load_le(frame.data() + 4, 8);
    if (found != tag) {
      fail("expected section " + section_tag_text(tag) + " (" + what_ + "), found " +
           section_tag_text(found));
    }
    if (length_ > max_length) {
      fail(what_ + " declares " + std::to_string(length_) + " bytes, more than the " +
           std::to_string(max_length) + " it can have here");
    }
    done_ = 0;
    return length_;
  }

  /// As begin(), for a section whose payload must be exactly `length` bytes.
  void begin_exact(std::uint32_t tag, std::uint64_t length, std::string what) {
    if (begin(tag, length, std::move(what)) != length) {
      fail(what_ + " declares " + std::to_string(length_) + " bytes; it has " + std::to_string(length) +
           " in a cache of these options");
    }
  }

  /// Reads the next `n` bytes of the running section's payload into `bytes`.
  void read(void* bytes, std::size_t n) {
    KVBITS_DEBUG_REQUIRE(n <= length_ - done_, Errc::invalid_argument, "read past the section's payload");
    fill(bytes, n, [&] {
      return "truncated: " + what_ + " ends after " +
             std::to_string(done_ + static_cast<std::size_t>(in_.gcount())) + " of its " +
             std::to_string(length_) + " bytes";
    });
    checksum_.update({static_cast<const std::byte*>(bytes), n});
    done_ += n;
  }

  /// Reads the running section's checksum. @throws Error(corrupt_data) when it does not match.
  void end() {
    KVBITS_DEBUG_REQUIRE(done_ == length_, Errc::invalid_argument, "section payload not read to its end");
    std::array<std::byte, 8> sum{};
    fill(sum.data(), sum.size(), [&] { return "truncated: the file ends before the checksum of " + what_; });
    if (load_le(sum.data(), 8) != checksum_.value()) {
      fail("checksum mismatch in " + what_ + ": the section is corrupted");
    }
  }

  /// A whole section of at most `max_length` bytes, its checksum verified.
  std::vector<std::byte> section(std::uint32_t tag, std::uint64_t max_length, std::string what) {
    std::vector<std::byte> payload(static_cast<std::size_t>(begin(tag, max_length, std::move(what))));
    read(payload.data(), payload.size());
    end();
    return payload;
  }

  /// As section(), for a payload of exactly `length` bytes.
  std::vector<std::byte> section_exact(std::uint32_t tag, std::uint64_t length, std::string what) {
    begin_exact(tag, length, std::move(what));
    std::vector<std::byte> payload(static_cast<std::size_t>(length));
    read(payload.data(), payload.size());
    end();
    return payload;
  }

  /// Throws Error(code) with the source prefixed.
  [[noreturn]] void fail(Errc code, const std::string& message) const {
    throw Error(code, std::string(source_) + ": " + message);
  }
  /// Throws Error(corrupt_data) with the source prefixed.
  [[noreturn]] void fail(const std::string& message) const { fail(Errc::corrupt_data, message); }

 private:
  static std::uint64_t load_le(const std::byte* from, std::size_t n) noexcept {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(from[i]) << (8 * i);
    return v;
  }

  // Reads exactly n bytes or throws: io_error when the stream fails, corrupt_data (truncated()) when it ends.
  template <class Truncated>
  void fill(void* bytes, std::size_t n, Truncated&& truncated) {
    in_.read(static_cast<char*>(bytes), static_cast<std::streamsize>(n));
    if (static_cast<std::size_t>(in_.gcount()) == n) return;
    if (in_.bad()) fail(Errc::io_error, "read failed");
    fail(truncated());
  }

  std::istream& in_;
  std::string_view source_;   // prefixes every error
  std::string what_;          // the running section, for errors
  WordChecksum checksum_;     // of the running section
  std::uint64_t length_ = 0;  // its payload bytes
  std::uint64_t done_ = 0;    // of which read
};

}  // namespace kvbits::detail
