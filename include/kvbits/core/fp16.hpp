// SPDX-License-Identifier: MIT
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

#include "kvbits/core/isa_namespace.hpp"
#include "kvbits/core/simd_headers.hpp"

namespace kvbits {

/// Largest finite IEEE binary16 value.
inline constexpr float kHalfMax = 65504.0f;

namespace detail {

// Portable binary16 -> binary32; exact for every input, including denormals.
constexpr float half_to_float_portable(std::uint16_t h) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1Fu;
  std::uint32_t mantissa = h & 0x3FFu;
  std::uint32_t bits = 0;
  if (exponent == 0x1Fu) {
    bits = sign | 0x7F800000u | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
  } else if (mantissa != 0) {
    // Denormal half: normalise into a float exponent.
    std::uint32_t shift = 0;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      ++shift;
    }
    bits = sign | ((113u - shift) << 23) | ((mantissa & 0x3FFu) << 13);
  } else {
    bits = sign;
  }
  return std::bit_cast<float>(bits);
}

// Portable binary32 -> binary16 with IEEE round-to-nearest-even (overflow gives Inf).
constexpr std::uint16_t float_to_half_portable(float value) noexcept {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
  const auto sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
  const std::uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude >= 0x7F800000u) {  // Inf or NaN; keep NaN quiet
    return static_cast<std::uint16_t>(sign | 0x7C00u | (magnitude > 0x7F800000u ? 0x200u : 0u));
  }
  if (magnitude >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // rounds past 65504
  if (magnitude < 0x38800000u) {
    // Result is a half denormal (or zero): align the implicit-one mantissa to 2^-24 units.
    if (magnitude < 0x33000000u) return sign;  // below half the smallest denormal
    const std::uint32_t exponent = magnitude >> 23;
    const std::uint32_t mantissa = (magnitude & 0x7FFFFFu) | 0x800000u;
    const std::uint32_t shift = 126u - exponent;  // 14..24
    std::uint32_t result = mantissa >> shift;
    const std::uint32_t remainder = mantissa & ((1u << shift) - 1u);
    const std::uint32_t halfway = 1u << (shift - 1u);
    if (remainder > halfway || (remainder == halfway && (result & 1u))) ++result;
    return static_cast<std::uint16_t>(sign | result);
  }
  std::uint32_t result = ((magnitude >> 13) - (112u << 10));
  const std::uint32_t remainder = magnitude & 0x1FFFu;
  if (remainder > 0x1000u || (remainder == 0x1000u && (result & 1u))) ++result;
  return static_cast<std::uint16_t>(sign | result);
}

}  // namespace detail

// The conversions use F16C when the target has it: ISA-dependent code.
inline namespace KVBITS_ISA_NAMESPACE {

/// binary16 bits -> float (exact).
inline float half_to_float(std::uint16_t h) noexcept {
#if defined(__F16C__)
  return _cvtsh_ss(h);
#else
  return detail::half_to_float_portable(h);
#endif
}

/// float -> binary16 bits, round-to-nearest-even; overflow gives Inf as IEEE requires.
inline std::uint16_t float_to_half(float value) noexcept {
#if defined(__F16C__)
  // _cvtss_sh is a macro over a compound literal in clang's headers; the intrinsic it wraps is not.
  return static_cast<std::uint16_t>(
      _mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(value), _MM_FROUND_TO_NEAREST_INT), 0));
#else
  return detail::float_to_half_portable(value);
#endif
}

/// value clamped to [-65504, 65504], the finite binary16 range; NaN stays NaN.
inline float clamped_to_half_range(float value) noexcept {
  return value < -kHalfMax ? -kHalfMax : (value > kHalfMax ? kHalfMax : value);
}

/**
 * float -> binary16 bits, round-to-nearest-even, with finite values beyond the
 * binary16 range (and +-Inf) saturated to +-65504; NaN stays NaN. A KV cache
 * wants a large finite value there, not an Inf that turns the next softmax
 * into NaN. (Comparisons, not std::fmin/fmax: those are libm calls unless
 * -ffast-math, and this runs for every group the codecs encode.)
 */
inline std::uint16_t float_to_half_saturate(float value) noexcept {
  return float_to_half(clamped_to_half_range(value));
}

// Directed rounding: F16C rounds toward -Inf / +Inf itself (the input is clamped
// to the binary16 range first, so nothing overflows). Without it, RNE plus at
// most one step; the step is data-dependent, so it is applied arithmetically (a
// branch would mispredict on every other group). RNE keeps the sign, so the step
// never crosses zero: it moves the magnitude (bit patterns are sign-magnitude)
// by one unit, down for +, up for -. Both give the same bits for every finite
// float (checked exhaustively).

#if defined(__F16C__)
/// float_to_half_saturate with the rounding mode `Rounding` (_MM_FROUND_TO_NEG_INF / _POS_INF).
template <int Rounding>
inline std::uint16_t float_to_half_directed(float value) noexcept {
  return static_cast<std::uint16_t>(
      _mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(clamped_to_half_range(value)), Rounding), 0));
}
#endif

/// The largest binary16 value <= value (value finite; saturates at -65504 / +65504).
inline std::uint16_t float_to_half_down(float value) noexcept {
#if defined(__F16C__)
  return float_to_half_directed<_MM_FROUND_TO_NEG_INF>(value);
#else
  const std::uint32_t h = float_to_half_saturate(value);
  const std::uint32_t step =
      static_cast<std::uint32_t>(half_to_float(static_cast<std::uint16_t>(h)) > value) &
      static_cast<std::uint32_t>(h != 0xFBFFu);
  const std::uint32_t sign = h >> 15;
  return static_cast<std::uint16_t>(h + step * 2u * sign - step);
#endif
}

/// The smallest binary16 value >= value (value finite; saturates at +65504).
inline std::uint16_t float_to_half_up(float value) noexcept {
#if defined(__F16C__)
  return float_to_half_directed<_MM_FROUND_TO_POS_INF>(value);
#else
  const std::uint32_t h = float_to_half_saturate(value);
  const std::uint32_t step =
      static_cast<std::uint32_t>(half_to_float(static_cast<std::uint16_t>(h)) < value) &
      static_cast<std::uint32_t>(h != 0x7BFFu);
  const std::uint32_t sign = h >> 15;
  return static_cast<std::uint16_t>(h + step - step * 2u * sign);
#endif
}

}  // namespace KVBITS_ISA_NAMESPACE

/// bfloat16 bits -> float (exact).
constexpr float bf16_to_float(std::uint16_t b) noexcept {
  return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}

/// float -> bfloat16 bits, round-to-nearest-even (NaN stays NaN).
constexpr std::uint16_t float_to_bf16(float value) noexcept {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((bits >> 16) | 0x40u);
  const std::uint32_t rounding = 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<std::uint16_t>((bits + rounding) >> 16);
}

}  // namespace kvbits
