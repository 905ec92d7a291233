// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "kvbits/core/error.hpp"

namespace kvbits::detail {

/// Index of the first NaN or Inf in x, or x.size() when all are finite.
inline std::size_t first_non_finite(std::span<const float> x) noexcept {
  // Magnitude-bits test: NaN and Inf are exactly the magnitudes >= the Inf
  // pattern. Branch-free, vectorises to an and + unsigned max per batch, and
  // immune to -ffast-math.
  std::uint32_t largest = 0;
  for (float value : x) largest = std::max(largest, std::bit_cast<std::uint32_t>(value) & 0x7FFFFFFFu);
  if (largest < 0x7F800000u) return x.size();
  for (std::size_t i = 0; i < x.size(); ++i) {
    if ((std::bit_cast<std::uint32_t>(x[i]) & 0x7F800000u) == 0x7F800000u) return i;
  }
  return x.size();
}

/// @throws Error(non_finite_input) naming `what` and the first bad index.
inline void require_finite(std::span<const float> x, const char* what) {
  const std::size_t bad = first_non_finite(x);
  if (bad != x.size()) {
    throw Error(Errc::non_finite_input, std::string(what) + " has NaN or Inf at element " +
                                            std::to_string(bad) + " of " + std::to_string(x.size()));
  }
}

}  // namespace kvbits::detail
