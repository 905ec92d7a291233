// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace kvbits::detail {

inline constexpr std::uint64_t kFnv1a64Offset = 0xcbf29ce484222325ULL;  ///< FNV-1a 64 starting value
inline constexpr std::uint64_t kFnv1a64Prime = 0x100000001b3ULL;        ///< FNV-1a 64 multiplier

/**
 * FNV-1a, 64-bit (Fowler, Noll, Vo): catches flipped bits and truncation in a
 * file; not a defence against deliberate tampering.
 * @param bytes the data.
 * @param hash the running hash, kFnv1a64Offset to start.
 * @return the hash of everything folded in so far.
 */
constexpr std::uint64_t fnv1a64(std::span<const std::byte> bytes,
                                std::uint64_t hash = kFnv1a64Offset) noexcept {
  for (const std::byte b : bytes) {
    hash ^= static_cast<std::uint64_t>(b);
    hash *= kFnv1a64Prime;
  }
  return hash;
}

}  // namespace kvbits::detail
