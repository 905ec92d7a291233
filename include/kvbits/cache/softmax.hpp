// SPDX-License-Identifier: MIT
#pragma once

#include "kvbits/core/simd_headers.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "kvbits/config.hpp"
#include "kvbits/core/isa_namespace.hpp"

// Vectorised passes of the online softmax. They run once per score, so a
// scalar std::exp here would cost as much as the quantized dot products.
namespace kvbits::detail {
inline namespace KVBITS_ISA_NAMESPACE {

/// @return max(x[0..n)), or -infinity for n = 0.
inline float max_of(const float* KVBITS_RESTRICT x, std::size_t n) noexcept {
  using batch = xsimd::batch<float>;
  constexpr std::size_t kLanes = batch::size;
  const std::size_t body = n - n % kLanes;
  float best = -std::numeric_limits<float>::infinity();
  if (body > 0) {
    batch acc = batch::load_unaligned(x);
    for (std::size_t i = kLanes; i < body; i += kLanes) acc = xsimd::max(acc, batch::load_unaligned(x + i));
    alignas(64) float lanes[kLanes];
    acc.store_aligned(lanes);
    for (float lane : lanes) best = std::max(best, lane);
  }
  for (std::size_t i = body; i < n; ++i) best = std::max(best, x[i]);
  return best;
}

/**
 * x[i] <- exp(x[i] - shift) in place.
 * @return the sum of the new x[i].
 */
inline float exp_shift_sum(float* KVBITS_RESTRICT x, std::size_t n, float shift) noexcept {
  using batch = xsimd::batch<float>;
  constexpr std::size_t kLanes = batch::size;
  const batch shift_batch(shift);
  const std::size_t body = n - n % kLanes;
  batch sum(0.0f);
  for (std::size_t i = 0; i < body; i += kLanes) {
    const batch e = xsimd::exp(batch::load_unaligned(x + i) - shift_batch);
    e.store_unaligned(x + i);
    sum += e;
  }
  float total = xsimd::hadd(sum);
  for (std::size_t i = body; i < n; ++i) {
    x[i] = std::exp(x[i] - shift);
    total += x[i];
  }
  return total;
}

/// y[i] *= factor for i < n.
inline void scale_in_place(float* KVBITS_RESTRICT y, std::size_t n, float factor) noexcept {
  for (std::size_t i = 0; i < n; ++i) y[i] *= factor;
}

}  // namespace KVBITS_ISA_NAMESPACE
}  // namespace kvbits::detail
