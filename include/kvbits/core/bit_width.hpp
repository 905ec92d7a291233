// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <string>
#include <type_traits>
#include <utility>

#include "kvbits/core/error.hpp"

namespace kvbits {

/// Every storage precision a token's K or V vector may have. 32 means plain float.
inline constexpr std::array<int, 8> kSupportedBits = {2, 3, 4, 5, 6, 8, 16, 32};

/// @return true when `bits` names a supported storage precision.
constexpr bool is_supported_bits(int bits) noexcept {
  for (int supported : kSupportedBits) {
    if (supported == bits) return true;
  }
  return false;
}

/// @return true for the integer formats stored as groups with fp16 metadata.
constexpr bool is_grouped_bits(int bits) noexcept { return bits >= 2 && bits <= 8 && bits != 7; }

/**
 * The one place where a run-time bit width becomes a compile-time one.
 * Calls `fn(std::integral_constant<int, Bits>{})` and returns its result.
 * @throws Error(invalid_argument) naming the unsupported width.
 */
template <class Fn>
decltype(auto) dispatch_bits(int bits, Fn&& fn) {
  switch (bits) {
    case 2:
      return std::forward<Fn>(fn)(std::integral_constant<int, 2>{});
    case 3:
      return std::forward<Fn>(fn)(std::integral_constant<int, 3>{});
    case 4:
      return std::forward<Fn>(fn)(std::integral_constant<int, 4>{});
    case 5:
      return std::forward<Fn>(fn)(std::integral_constant<int, 5>{});
    case 6:
      return std::forward<Fn>(fn)(std::integral_constant<int, 6>{});
    case 8:
      return std::forward<Fn>(fn)(std::integral_constant<int, 8>{});
    case 16:
      return std::forward<Fn>(fn)(std::integral_constant<int, 16>{});
    case 32:
      return std::forward<Fn>(fn)(std::integral_constant<int, 32>{});
    default:
      throw Error(Errc::invalid_argument,
                  "bit width " + std::to_string(bits) + " is not supported; use 2, 3, 4, 5, 6, 8, 16 or 32");
  }
}

}  // namespace kvbits
