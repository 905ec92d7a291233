// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cmath>
#include <cstddef>

namespace kvbits::detail {

/// Counts below this are looked up by log_count.
inline constexpr std::size_t kLogCountTableSize = 4096;

/**
 * log1p(count) rounded to float, as AgeFeature and PositionFeature report it.
 * Small counts (every age a decision schedule names) come from a table of the
 * same std::log1p values: the libm call took ~3 % of a stories260K append with
 * a learned policy.
 */
[[nodiscard]] inline float log_count(std::size_t count) noexcept {
  static const std::array<float, kLogCountTableSize> kTable = [] {
    std::array<float, kLogCountTableSize> values{};
    for (std::size_t n = 0; n < values.size(); ++n) {
      values[n] = static_cast<float>(std::log1p(static_cast<double>(n)));
    }
    return values;
  }();
  if (count < kTable.size()) return kTable[count];
  return static_cast<float>(std::log1p(static_cast<double>(count)));
}

}  // namespace kvbits::detail
