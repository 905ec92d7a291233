// SPDX-License-Identifier: MIT
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "kvbits/core/error.hpp"

namespace kvbits::detail {

/// Index of the first NaN or Inf in x, or x.size() when all are finite.
inline std::size_t first_non_finite(std::span<const float> x) noexcept {
  // Exponent-field test: branch-free, vectorises, and immune to -ffast-math.
  std::uint32_t any = 0;
  for (float value : x) {
    any |= static_cast<std::uint32_t>((std::bit_cast<std::uint32_t>(value) & 0x7F800000u) == 0x7F800000u);
  }
  if (any == 0) return x.size();
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
