// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstddef>

#include "kvbits/core/bit_width.hpp"

namespace kvbits {

/**
 * The widths a learned controller chooses from, cheapest first, e.g.
 * `WidthList<2, 4, 8, 16>` or `WidthList<2, 3, 4, 5, 6, 8, 16>`. Each output
 * head of an Mlp has one class per width, in this order: class i means
 * `kValues[i]` bits.
 * @tparam Bits at least two widths of kSupportedBits, strictly increasing.
 */
template <int... Bits>
struct WidthList {
  static_assert(sizeof...(Bits) >= 2,
                "a WidthList needs at least two widths to choose from, e.g. WidthList<2, 4, 8, 16>");
  static_assert((is_supported_bits(Bits) && ...),
                "every WidthList width must be one of kSupportedBits (core/bit_width.hpp: 2, 3, 4, 5, 6, 8, "
                "16, 32): change the WidthList, or add the width to kBitWidthTable first");

  /// How many widths, i.e. classes per head.
  static constexpr std::size_t size = sizeof...(Bits);
  /// The widths, cheapest first.
  static constexpr std::array<int, size> kValues = {Bits...};

  static_assert(
      [] {
        for (std::size_t i = 1; i < size; ++i) {
          if (kValues[i] <= kValues[i - 1]) return false;
        }
        return true;
      }(),
      "WidthList widths must be strictly increasing (cheapest first), e.g. WidthList<2, 4, 8, 16>");

  /// @return the class of `bits`, or `size` when the list does not hold it.
  static constexpr std::size_t index_of(int bits) noexcept {
    for (std::size_t i = 0; i < size; ++i) {
      if (kValues[i] == bits) return i;
    }
    return size;
  }
};

}  // namespace kvbits
