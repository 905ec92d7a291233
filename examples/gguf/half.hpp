// SPDX-License-Identifier: MIT
#pragma once

#include <bit>
#include <cstdint>

namespace kvbits::gguf::detail {

/**
 * Exact IEEE binary16 to binary32 conversion (every half is a float).
 * @param bits the half's bit pattern
 * @return the same number as a float; NaN payloads and the sign of zero are kept
 */
constexpr float half_to_float(std::uint16_t bits) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(bits & 0x8000U) << 16;
  const std::uint32_t exponent = (bits >> 10) & 0x1FU;
  std::uint32_t mantissa = bits & 0x3FFU;
  if (exponent == 0x1FU) {  // Inf or NaN: all-ones float exponent, same payload
    return std::bit_cast<float>(sign | 0x7F800000U | (mantissa << 13));
  }
  if (exponent != 0) {  // normal: rebias 15 -> 127
    return std::bit_cast<float>(sign | ((exponent + 112U) << 23) | (mantissa << 13));
  }
  if (mantissa == 0) return std::bit_cast<float>(sign);
  // Subnormal half: shift the leading one into the implicit position; each
  // shift lowers the float exponent by one from that of 2^-14.
  std::uint32_t float_exponent = 113U;
  while ((mantissa & 0x400U) == 0) {
    mantissa <<= 1;
    --float_exponent;
  }
  mantissa &= 0x3FFU;
  return std::bit_cast<float>(sign | (float_exponent << 23) | (mantissa << 13));
}

/**
 * bfloat16 to binary32: bf16 is the upper half of a float.
 * @param bits the bf16 bit pattern
 * @return the float with those upper 16 bits and zero lower bits
 */
constexpr float bf16_to_float(std::uint16_t bits) noexcept {
  return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16);
}

}  // namespace kvbits::gguf::detail
