// SPDX-License-Identifier: MIT
#pragma once

#include <cmath>
#include <cstdint>

#include "kvbits/codec/format.hpp"
#include "kvbits/core/fp16.hpp"

namespace kvbits::detail {

/**
 * Quantization parameters of one group, computed identically by every backend
 * (SIMD kernels reduce min/max with vectors, then call these) so that codes are
 * bit-exact across backends.
 */
struct GroupParams {
  std::uint16_t scale_half;  // stored metadata
  std::uint16_t min_half;    // stored metadata (asymmetric only)
  float scale;               // half_to_float(scale_half)
  float min;                 // half_to_float(min_half); 0 for symmetric
  float inverse_scale;       // 1 / scale, or 0 for a constant group
};

/// Largest code of a `bits`-wide unsigned field.
constexpr int max_code(int bits) noexcept { return (1 << bits) - 1; }

/// Zero point of the symmetric scheme: code = round(x / scale) + offset.
constexpr int symmetric_offset(int bits) noexcept { return 1 << (bits - 1); }

/// Largest |round(x / scale)| of the symmetric scheme.
constexpr int symmetric_limit(int bits) noexcept { return (1 << (bits - 1)) - 1; }

/**
 * Asymmetric parameters for a group spanning [lo, hi] (finite).
 * The fp16 min is rounded down and the fp16 scale up, so every element lies in
 * [min, min + scale * max_code] and round-to-nearest keeps |x - x^| <= scale / 2
 * (values beyond the fp16 range saturate). Inputs are finite, so plain
 * comparisons replace std::fmin (a libm call without -ffast-math).
 */
inline GroupParams asymmetric_params(float lo, float hi, int bits) noexcept {
  // -0 and +0 compare equal, so a reduction may return either; adding +0 turns
  // -0 into +0 so that the stored bytes never depend on element order.
  lo += 0.0f;
  hi += 0.0f;
  GroupParams p{};
  p.min_half = float_to_half_down(lo);
  p.min = half_to_float(p.min_half);
  const float range = (hi < kHalfMax ? hi : kHalfMax) - p.min;
  p.scale_half = float_to_half_up(range / static_cast<float>(max_code(bits)));
  p.scale = half_to_float(p.scale_half);
  p.inverse_scale = p.scale > 0.0f ? 1.0f / p.scale : 0.0f;
  return p;
}

/// Symmetric parameters for a group whose largest magnitude is `absmax` (finite).
inline GroupParams symmetric_params(float absmax, int bits) noexcept {
  GroupParams p{};
  p.scale_half =
      float_to_half_up((absmax < kHalfMax ? absmax : kHalfMax) / static_cast<float>(symmetric_limit(bits)));
  p.scale = half_to_float(p.scale_half);
  p.min_half = 0;
  p.min = 0.0f;
  p.inverse_scale = p.scale > 0.0f ? 1.0f / p.scale : 0.0f;
  return p;
}

/// Code of x under asymmetric parameters: clamp(round((x - min) / scale)).
inline int asymmetric_code(float x, const GroupParams& p, int bits) noexcept {
  // Clamp in float before converting: saturated inputs may exceed int range.
  const float scaled = std::nearbyint((x - p.min) * p.inverse_scale);
  return static_cast<int>(std::fmin(std::fmax(scaled, 0.0f), static_cast<float>(max_code(bits))));
}

/// Code of x under symmetric parameters: clamp(round(x / scale)) + offset.
inline int symmetric_code(float x, const GroupParams& p, int bits) noexcept {
  const auto limit = static_cast<float>(symmetric_limit(bits));
  const float scaled = std::nearbyint(x * p.inverse_scale);
  return static_cast<int>(std::fmin(std::fmax(scaled, -limit), limit)) + symmetric_offset(bits);
}

/// Writes the group's metadata (little-endian fp16 scale, then min when asymmetric).
inline void store_metadata(const GroupParams& p, Scheme scheme, std::uint8_t* out) noexcept {
  out[0] = static_cast<std::uint8_t>(p.scale_half & 0xFFu);
  out[1] = static_cast<std::uint8_t>(p.scale_half >> 8);
  if (scheme == Scheme::asymmetric) {
    out[2] = static_cast<std::uint8_t>(p.min_half & 0xFFu);
    out[3] = static_cast<std::uint8_t>(p.min_half >> 8);
  }
}

/// The dequantization affine map of one group: x^ = offset + scale * code.
struct GroupAffine {
  float scale;
  float offset;
};

/// Reads a group's metadata as the affine map from code to value.
inline GroupAffine load_affine(const std::uint8_t* block, Scheme scheme, int bits) noexcept {
  const float scale = half_to_float(static_cast<std::uint16_t>(block[0] | (block[1] << 8)));
  if (scheme == Scheme::asymmetric) {
    return {scale, half_to_float(static_cast<std::uint16_t>(block[2] | (block[3] << 8)))};
  }
  return {scale, -scale * static_cast<float>(symmetric_offset(bits))};
}

}  // namespace kvbits::detail
