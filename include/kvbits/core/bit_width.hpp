// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>

#include "kvbits/core/error.hpp"

namespace kvbits {

/// Facts about one storage precision. Adding a width means adding one row to kBitWidthTable.
struct BitWidthTraits {
  int bits;      ///< bits per stored element
  bool grouped;  ///< integer codes in groups with fp16 metadata (else IEEE half or float)
};

/// Every storage precision a token's K or V vector may have, narrowest first. 32 is plain float.
inline constexpr std::array<BitWidthTraits, 8> kBitWidthTable = {{
    {2, true},
    {3, true},
    {4, true},
    {5, true},
    {6, true},
    {8, true},
    {16, false},
    {32, false},
}};

/// The supported widths of kBitWidthTable, in its order.
inline constexpr std::array<int, kBitWidthTable.size()> kSupportedBits = [] {
  std::array<int, kBitWidthTable.size()> bits{};
  for (std::size_t i = 0; i < kBitWidthTable.size(); ++i) bits[i] = kBitWidthTable[i].bits;
  return bits;
}();

/// @return the position of `bits` in kSupportedBits, or kSupportedBits.size() when unsupported.
constexpr std::size_t bits_index(int bits) noexcept {
  for (std::size_t i = 0; i < kSupportedBits.size(); ++i) {
    if (kSupportedBits[i] == bits) return i;
  }
  return kSupportedBits.size();
}

/// @return true when `bits` names a supported storage precision.
constexpr bool is_supported_bits(int bits) noexcept { return bits_index(bits) < kSupportedBits.size(); }

/// @return true for the integer formats stored as groups with fp16 metadata.
constexpr bool is_grouped_bits(int bits) noexcept {
  const std::size_t i = bits_index(bits);
  return i < kBitWidthTable.size() && kBitWidthTable[i].grouped;
}

/// @return the supported widths as prose for error messages: "2, 3, 4, 5, 6, 8, 16 or 32".
inline std::string supported_bits_text() {
  std::string text;
  for (std::size_t i = 0; i < kSupportedBits.size(); ++i) {
    if (i > 0) text += i + 1 == kSupportedBits.size() ? " or " : ", ";
    text += std::to_string(kSupportedBits[i]);
  }
  return text;
}

namespace detail {

[[noreturn, gnu::cold]] inline void throw_unsupported_bits(int bits) {
  throw Error(Errc::invalid_argument,
              "bit width " + std::to_string(bits) + " is not supported; use " + supported_bits_text());
}

template <std::size_t I, class Fn>
decltype(auto) dispatch_bits_from(int bits, Fn&& fn) {
  constexpr int kBits = kSupportedBits[I];
  if constexpr (I + 1 == kSupportedBits.size()) {
    if (bits != kBits) throw_unsupported_bits(bits);
    return std::forward<Fn>(fn)(std::integral_constant<int, kBits>{});
  } else {
    if (bits == kBits) return std::forward<Fn>(fn)(std::integral_constant<int, kBits>{});
    return dispatch_bits_from<I + 1>(bits, std::forward<Fn>(fn));
  }
}

}  // namespace detail

/**
 * The one place where a run-time bit width becomes a compile-time one, for
 * every width of kBitWidthTable. Calls `fn(std::integral_constant<int, Bits>{})`
 * and returns its result.
 * @throws Error(invalid_argument) naming the unsupported width.
 */
template <class Fn>
decltype(auto) dispatch_bits(int bits, Fn&& fn) {
  return detail::dispatch_bits_from<0>(bits, std::forward<Fn>(fn));
}

}  // namespace kvbits
