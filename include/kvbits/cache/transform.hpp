// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>

#include "kvbits/config.hpp"

// The exact basis changes of KeyTransform, on one head vector at a time.
namespace kvbits::detail {

/**
 * x <- H x / sqrt(n), the orthonormal Walsh-Hadamard transform, in place.
 * H / sqrt(n) is symmetric and orthogonal, so the same call is its own
 * inverse and preserves dot products. n must be a power of two.
 */
inline void hadamard_in_place(float* KVBITS_RESTRICT x, std::size_t n) noexcept {
  for (std::size_t half = 1; half < n; half <<= 1) {
    for (std::size_t base = 0; base < n; base += 2 * half) {
      for (std::size_t j = base; j < base + half; ++j) {
        const float a = x[j];
        const float b = x[j + half];
        x[j] = a + b;
        x[j + half] = a - b;
      }
    }
  }
  const float norm = 1.0f / std::sqrt(static_cast<float>(n));
  for (std::size_t i = 0; i < n; ++i) x[i] *= norm;
}

/// x[c] *= factor[c] for c < n.
inline void scale_channels(float* KVBITS_RESTRICT x, const float* KVBITS_RESTRICT factor,
                           std::size_t n) noexcept {
  for (std::size_t c = 0; c < n; ++c) x[c] *= factor[c];
}

/// x[c] /= divisor[c] for c < n (exact when the divisors are powers of two).
inline void unscale_channels(float* KVBITS_RESTRICT x, const float* KVBITS_RESTRICT divisor,
                             std::size_t n) noexcept {
  for (std::size_t c = 0; c < n; ++c) x[c] /= divisor[c];
}

/**
 * The channel scale that brings a channel whose largest magnitude is
 * `absmax` into [-1, 1]: the next power of two >= absmax (1 for an all-zero
 * channel). Powers of two make k / s and q * s exact in float, so the
 * transform is a true no-op on the attention scores at 32 bits.
 */
inline float power_of_two_scale(float absmax) noexcept {
  if (!(absmax > 0.0f)) return 1.0f;
  int exponent = 0;
  const float mantissa =
      std::frexp(absmax, &exponent);  // absmax = mantissa * 2^exponent, mantissa in [0.5, 1)
  return std::ldexp(1.0f, mantissa == 0.5f ? exponent - 1 : exponent);
}

}  // namespace kvbits::detail
