// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kvbits/config.hpp"

namespace kvbits::detail {

/**
 * to <- from, n bytes of packed rows (the ranges do not overlap). A stored
 * row is a few to a few hundred bytes, and re-packing or moving a token
 * copies one per kv head and side: below 64 bytes two overlapping fixed-size
 * copies cost less than a call to memcpy with a run-time length.
 */
inline void copy_row(std::uint8_t* KVBITS_RESTRICT to, const std::uint8_t* KVBITS_RESTRICT from,
                     std::size_t n) noexcept {
  const auto overlapping = [&](auto width) {
    constexpr std::size_t kWidth = decltype(width)::value;
    std::uint8_t head[kWidth];
    std::uint8_t tail[kWidth];
    std::memcpy(head, from, kWidth);
    std::memcpy(tail, from + n - kWidth, kWidth);
    std::memcpy(to, head, kWidth);
    std::memcpy(to + n - kWidth, tail, kWidth);
  };
  if (n >= 64) {
    std::memcpy(to, from, n);
  } else if (n >= 32) {
    overlapping(std::integral_constant<std::size_t, 32>{});
  } else if (n >= 16) {
    overlapping(std::integral_constant<std::size_t, 16>{});
  } else if (n >= 8) {
    overlapping(std::integral_constant<std::size_t, 8>{});
  } else if (n >= 4) {
    overlapping(std::integral_constant<std::size_t, 4>{});
  } else {
    for (std::size_t i = 0; i < n; ++i) to[i] = from[i];
  }
}

}  // namespace kvbits::detail
