// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "kvbits/codec/backend.hpp"
#include "kvbits/codec/format.hpp"
#include "kvbits/codec/reference.hpp"
#include "kvbits/config.hpp"
#include "kvbits/core/bit_width.hpp"
#include "kvbits/core/error.hpp"
#include "kvbits/core/fp16.hpp"
#include "kvbits/core/isa_namespace.hpp"

// Re-quantization of packed codes to fewer bits without a float decode.
//
// When `to` divides `from`, the code range divides too: 2^from - 1 =
// f * (2^to - 1) (255 = 17 * 15, 15 = 5 * 3, 255 = 85 * 3, 63 = 9 * 7,
// 63 = 21 * 3). An asymmetric group x = min + scale * q then re-quantizes over
// the same range as q' = round(q / f), scale' = scale * f, min unchanged. f is
// odd, so q / f is never a tie and round(q / f) = (q + (f - 1) / 2) / f in
// integers. scale * f is exact in float (an 11-bit mantissa times f < 128) and
// is rounded up to fp16, so the range still covers the group's top code.
namespace kvbits {

/// @return f with 2^from_bits - 1 = f * (2^to_bits - 1) for grouped widths where to divides from; else 0.
constexpr int requantize_divisor(int from_bits, int to_bits) noexcept {
  if (!is_grouped_bits(from_bits) || !is_grouped_bits(to_bits) || to_bits >= from_bits) return 0;
  if (from_bits % to_bits != 0) return 0;
  return ((1 << from_bits) - 1) / ((1 << to_bits) - 1);
}

/// @return whether `from` -> `to` has the integer path: asymmetric, same group size, to divides from.
constexpr bool has_integer_requantize(const QuantFormat& from, const QuantFormat& to) noexcept {
  return from.scheme == Scheme::asymmetric && to.scheme == Scheme::asymmetric &&
         from.group_size == to.group_size && requantize_divisor(from.bits, to.bits) != 0;
}

namespace detail {

// Cold and out of line: demotions call requantize() per token, so the message is built only on failure.
[[gnu::cold, gnu::noinline]] inline void explain_no_integer_requantize(const QuantFormat& from,
                                                                       const QuantFormat& to) {
  throw Error(Errc::invalid_argument,
              "no integer re-quantization from " + std::to_string(from.bits) + " to " +
                  std::to_string(to.bits) +
                  " bits: it needs the asymmetric scheme, one group size and to dividing from");
}

}  // namespace detail

namespace kernel {
inline namespace KVBITS_ISA_NAMESPACE {

namespace requantize_detail {

// requantize_ref's loop for a compile-time group (Group != 0) or the run-time one (Group == 0).
template <int From, int To, std::size_t Group>
inline void requantize_groups(const std::uint8_t* KVBITS_RESTRICT in, std::size_t n,
                              std::size_t runtime_group, std::uint8_t* KVBITS_RESTRICT out) noexcept {
  constexpr int kDivisor = requantize_divisor(From, To);
  constexpr std::size_t kMeta = metadata_bytes(Scheme::asymmetric);
  const std::size_t group = Group != 0 ? Group : runtime_group;
  const std::size_t in_block = group_bytes(From, group, Scheme::asymmetric);
  const std::size_t out_block = group_bytes(To, group, Scheme::asymmetric);
  std::uint8_t codes[kMaxVectorLength];
  for (std::size_t g = 0; g < n / group; ++g) {
    const std::uint8_t* source = in + g * in_block;
    std::uint8_t* target = out + g * out_block;
    const auto scale_half = static_cast<std::uint16_t>(source[0] | (source[1] << 8));
    const std::uint16_t wider = float_to_half_up(half_to_float(scale_half) * static_cast<float>(kDivisor));
    target[0] = static_cast<std::uint8_t>(wider & 0xFFu);
    target[1] = static_cast<std::uint8_t>(wider >> 8);
    target[2] = source[2];  // the fp16 min is unchanged
    target[3] = source[3];
    detail::unpack_codes<From>(source + kMeta, group, codes);
    for (std::size_t i = 0; i < group; ++i) {
      codes[i] = static_cast<std::uint8_t>((codes[i] + (kDivisor - 1) / 2) / kDivisor);
    }
    detail::pack_codes<To>(codes, group, target + kMeta);
  }
}

}  // namespace requantize_detail

/**
 * One packed asymmetric vector of n elements at From bits -> To bits, group
 * by group (the contract of the reference kernels: n and group multiples of
 * 8, group divides n, in and out do not alias). The common group sizes get
 * loops of a compile-time length: a demotion re-quantizes a few short rows,
 * where loop overhead would outweigh the arithmetic.
 */
template <int From, int To>
inline void requantize_ref(const std::uint8_t* KVBITS_RESTRICT in, std::size_t n, std::size_t group,
                           std::uint8_t* KVBITS_RESTRICT out) noexcept {
  static_assert(requantize_divisor(From, To) != 0, "requantize_ref needs To to divide From (grouped widths)");
  using requantize_detail::requantize_groups;
  switch (group) {
    case 8:
      return requantize_groups<From, To, 8>(in, n, group, out);
    case 16:
      return requantize_groups<From, To, 16>(in, n, group, out);
    case 32:
      return requantize_groups<From, To, 32>(in, n, group, out);
    case 64:
      return requantize_groups<From, To, 64>(in, n, group, out);
    case 128:
      return requantize_groups<From, To, 128>(in, n, group, out);
    default:
      return requantize_groups<From, To, 0>(in, n, group, out);
  }
}

}  // namespace KVBITS_ISA_NAMESPACE
}  // namespace kernel

namespace detail {
inline namespace KVBITS_ISA_NAMESPACE {

/**
 * requantize() without its checks, for rows the cache stored itself.
 * @param from, to formats that fit n with has_integer_requantize(from, to);
 * @param in packed_size(from, n) bytes; @param out packed_size(to, n) bytes.
 */
inline void requantize_unchecked(const QuantFormat& from, const QuantFormat& to, std::size_t elements,
                                 const std::uint8_t* in, std::uint8_t* out) {
  const std::size_t group = effective_group_size(from, elements);
  dispatch_bits(from.bits, [&](auto from_bits) {
    dispatch_bits(to.bits, [&](auto to_bits) {
      if constexpr (requantize_divisor(from_bits.value, to_bits.value) != 0) {
        kernel::requantize_ref<from_bits.value, to_bits.value>(in, elements, group, out);
      }
    });
  });
}

}  // namespace KVBITS_ISA_NAMESPACE
}  // namespace detail

inline namespace KVBITS_ISA_NAMESPACE {

/**
 * Re-quantizes one packed vector of n = `elements` values from `from` to
 * `to` without decoding it to float (see the comment at the top of this header).
 * @param in packed_size(from, n) bytes; @param out packed_size(to, n) bytes.
 * @throws Error(invalid_argument) unless has_integer_requantize(from, to) and
 *         the formats fit n; Error(shape_mismatch) for wrong span sizes.
 */
inline void requantize(const QuantFormat& from, const QuantFormat& to, std::size_t elements,
                       std::span<const std::uint8_t> in, std::span<std::uint8_t> out) {
  validate(from, elements);
  validate(to, elements);
  if (!has_integer_requantize(from, to)) {
    [[unlikely]] detail::explain_no_integer_requantize(from, to);
  }
  detail::require_length(in.size(), packed_size(from, elements), "packed input (bytes)");
  detail::require_length(out.size(), packed_size(to, elements), "packed output (bytes)");
  detail::requantize_unchecked(from, to, elements, in.data(), out.data());
}

}  // namespace KVBITS_ISA_NAMESPACE
}  // namespace kvbits
