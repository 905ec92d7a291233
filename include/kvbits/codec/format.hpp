// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "kvbits/core/bit_width.hpp"
#include "kvbits/core/error.hpp"

namespace kvbits {

/// How a group's range is described.
enum class Scheme : std::uint8_t {
  asymmetric,  ///< fp16 scale + fp16 min; x = min + scale * code
  symmetric,   ///< fp16 scale only; x = scale * (code - 2^(bits-1))
};

/// Largest vector one codec call handles (all KV heads of one token at most).
inline constexpr std::size_t kMaxVectorLength = 1024;

/**
 * The storage format of one packed vector.
 *
 * Layout for 2..8 bits: the vector is cut into groups of `group_size`
 * consecutive elements, each stored as a block
 *   [fp16 scale][fp16 min, asymmetric only][codes: group_size * bits / 8 bytes]
 * with no padding anywhere. Code order inside a block:
 *  - 2, 4 and 8 bits are planar, so SIMD unpacking needs no shuffles: byte j
 *    holds elements j, j + G/k, j + 2G/k, ... in successively higher bit
 *    fields, where k = 8 / bits codes share a byte;
 *  - 3, 5 and 6 bits are a little-endian bit stream in units of 8 codes
 *    (`bits` bytes): code i of a unit occupies bits [i*bits, (i+1)*bits).
 * 16 bits stores IEEE binary16 values; 32 bits stores the floats unchanged.
 */
struct QuantFormat {
  int bits = 4;                        ///< 2, 3, 4, 5, 6, 8, 16 or 32
  std::size_t group_size = 32;         ///< elements per group; 0 = the whole vector
  Scheme scheme = Scheme::asymmetric;  ///< ignored for 16 and 32 bits

  /// Member-wise equality.
  friend constexpr bool operator==(const QuantFormat&, const QuantFormat&) = default;
};

/// Bytes of fp16 metadata in front of every group.
constexpr std::size_t metadata_bytes(Scheme scheme) noexcept { return scheme == Scheme::asymmetric ? 4 : 2; }

/// Elements per group for a vector of n elements (resolves group_size = 0).
constexpr std::size_t effective_group_size(const QuantFormat& format, std::size_t n) noexcept {
  return format.group_size == 0 ? n : format.group_size;
}

/// Bytes of one group's block.
constexpr std::size_t group_bytes(int bits, std::size_t group, Scheme scheme) noexcept {
  return metadata_bytes(scheme) + group * static_cast<std::size_t>(bits) / 8;
}

/// Bytes one packed vector of n elements occupies.
constexpr std::size_t packed_size(const QuantFormat& format, std::size_t n) noexcept {
  if (format.bits == 32) return n * 4;
  if (format.bits == 16) return n * 2;
  const std::size_t group = effective_group_size(format, n);
  return n / group * group_bytes(format.bits, group, format.scheme);
}

/// Storage bits per element including metadata, e.g. 5.0 for 4 bits, G = 32, asymmetric.
constexpr double bits_per_element(const QuantFormat& format, std::size_t n) noexcept {
  return 8.0 * static_cast<double>(packed_size(format, n)) / static_cast<double>(n);
}

namespace detail {

/// Whether `format` can store a vector of n elements (the rules validate() explains).
constexpr bool format_fits(const QuantFormat& format, std::size_t n) noexcept {
  if (!is_supported_bits(format.bits) || n == 0 || n > kMaxVectorLength || n % 8 != 0) return false;
  if (!is_grouped_bits(format.bits)) return true;
  const std::size_t group = effective_group_size(format, n);
  return group % 8 == 0 && n % group == 0;
}

/// The throwing half of validate(): names the broken rule. Cold and out of line
/// so that the check inlined into every encode stays a few instructions.
[[gnu::cold, gnu::noinline]] inline void explain_invalid_format(const QuantFormat& format, std::size_t n) {
  if (!is_supported_bits(format.bits)) {
    throw Error(Errc::invalid_argument, "bit width " + std::to_string(format.bits) +
                                            " is not supported; use " + supported_bits_text());
  }
  if (n == 0 || n > kMaxVectorLength || n % 8 != 0) {
    throw Error(Errc::invalid_argument,
                "vector length " + std::to_string(n) + " must be a multiple of 8 in [8, 1024]");
  }
  if (!is_grouped_bits(format.bits)) return;
  const std::size_t group = effective_group_size(format, n);
  // Groups are whole 8-code units so every bit width packs without waste.
  if (group % 8 != 0 || n % group != 0) {
    throw Error(Errc::invalid_argument, "group size " + std::to_string(group) +
                                            " must be a multiple of 8 that divides the vector length " +
                                            std::to_string(n));
  }
}

}  // namespace detail

/**
 * Checks that `format` can store a vector of n elements.
 * @throws Error(invalid_argument) saying which rule is broken.
 */
inline void validate(const QuantFormat& format, std::size_t n) {
  // Runs once per encoded token, so messages are built only when a rule is broken.
  if (!detail::format_fits(format, n)) {
    [[unlikely]] detail::explain_invalid_format(format, n);
  }
}

/**
 * One group's block with compile-time sizes, documenting the layout that the
 * kernels address by offset. Byte arrays only, so there is never padding.
 * @tparam Bits 2..8; @tparam Group elements per group; @tparam S scheme.
 */
template <int Bits, std::size_t Group, Scheme S = Scheme::asymmetric>
struct Block {
  static_assert(is_grouped_bits(Bits), "Block is for the grouped formats (2, 3, 4, 5, 6, 8 bits)");
  static_assert(Group % 8 == 0, "a group holds whole units of 8 codes");
  static constexpr std::size_t kMetadataBytes = metadata_bytes(S);  ///< bytes of the group parameters
  static constexpr std::size_t kCodeBytes = Group * Bits / 8;       ///< bytes of the packed codes

  std::uint8_t metadata[kMetadataBytes];  ///< fp16 scale, then fp16 min (asymmetric), little-endian
  std::uint8_t codes[kCodeBytes];         ///< [Group * Bits / 8], order as in QuantFormat
};

/**
 * Compile-time facts about one grouped format.
 */
template <int Bits, std::size_t Group, Scheme S = Scheme::asymmetric>
struct FormatTraits {
  using block_type = Block<Bits, Group, S>;                                ///< the group's layout
  static constexpr int kBits = Bits;                                       ///< bits per code
  static constexpr std::size_t kGroup = Group;                             ///< elements per group
  static constexpr std::size_t kBlockBytes = group_bytes(Bits, Group, S);  ///< bytes per group
  static constexpr std::size_t kMetadataBytes = metadata_bytes(S);         ///< of which group parameters
  /// Storage per element, group parameters included.
  static constexpr double kBitsPerElement = 8.0 * static_cast<double>(kBlockBytes) / Group;
  static_assert(sizeof(block_type) == kBlockBytes, "wrong block size/padding");
  static_assert(alignof(block_type) == 1, "blocks are byte-addressed and must not need alignment");
};

}  // namespace kvbits
