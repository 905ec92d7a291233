// SPDX-License-Identifier: MIT
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

#if defined(__F16C__)
#include <immintrin.h>
#endif

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
  return static_cast<std::uint16_t>(_cvtss_sh(value, _MM_FROUND_TO_NEAREST_INT));
#else
  return detail::float_to_half_portable(value);
#endif
}

/**
 * float -> binary16 bits, round-to-nearest-even, with finite values beyond the
 * binary16 range saturated to +-65504. A KV cache wants a large finite value
 * there, not an Inf that turns the next softmax into NaN.
 */
inline std::uint16_t float_to_half_saturate(float value) noexcept {
  return float_to_half(std::fmin(std::fmax(value, -kHalfMax), kHalfMax));
}

/// The largest binary16 value <= value (value finite; saturates at -65504 / +65504).
inline std::uint16_t float_to_half_down(float value) noexcept {
  std::uint16_t h = float_to_half_saturate(value);
  if (half_to_float(h) > value && h != 0xFBFFu) {
    // One step toward -Inf: bit patterns are sign-magnitude.
    if (h == 0x0000u) return 0x8001u;
    h = (h & 0x8000u) ? static_cast<std::uint16_t>(h + 1u) : static_cast<std::uint16_t>(h - 1u);
  }
  return h;
}

/// The smallest binary16 value >= value (value finite; saturates at +65504).
inline std::uint16_t float_to_half_up(float value) noexcept {
  std::uint16_t h = float_to_half_saturate(value);
  if (half_to_float(h) < value && h != 0x7BFFu) {
    if (h == 0x8000u) return 0x0001u;
    h = (h & 0x8000u) ? static_cast<std::uint16_t>(h - 1u) : static_cast<std::uint16_t>(h + 1u);
  }
  return h;
}

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
