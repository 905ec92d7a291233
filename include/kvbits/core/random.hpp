// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

namespace kvbits::detail {

/**
 * SplitMix64 (Steele, Lea and Flood): a full-period 64-bit generator in one
 * word of state, with the few draws kvbits needs (random policies, training,
 * toy weights), all in integer arithmetic or exact scalings, so a seed gives
 * the same numbers with every compiler and standard library (unlike the std
 * distributions).
 */
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) noexcept : state_(seed) {}

  /// @return the next 64 random bits.
  std::uint64_t next() noexcept {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  /// @return a uniform double in [0, 1), from 53 random bits.
  double unit() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

  /// @return a uniform double in [-1, 1), from 53 random bits.
  double symmetric() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-52 - 1.0; }

  /// @return the whole state: SplitMix64(state()) continues with the same draws.
  [[nodiscard]] std::uint64_t state() const noexcept { return state_; }

  /// @return a uniform integer in [0, n), n >= 1, without modulo bias (rejection sampling).
  std::size_t below(std::size_t n) noexcept {
    const auto range = static_cast<std::uint64_t>(n);
    // Draws under `threshold` would make the low residues more likely; 2^64 mod n of them are skipped.
    const std::uint64_t threshold = (std::numeric_limits<std::uint64_t>::max() - range + 1) % range;
    std::uint64_t draw = next();
    while (draw < threshold) draw = next();
    return static_cast<std::size_t>(draw % range);
  }

 private:
  std::uint64_t state_;  // advanced by the golden-ratio increment per draw
};

}  // namespace kvbits::detail
