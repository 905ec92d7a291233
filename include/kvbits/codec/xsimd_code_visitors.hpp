// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "kvbits/codec/xsimd_dispatch.hpp"
#include "kvbits/codec/xsimd_lanes.hpp"
#include "kvbits/config.hpp"
#include "kvbits/core/isa_namespace.hpp"

// Visitors over the codes of one group's block, as int32 or float batches in
// storage order, for a run-time group (any code order) or a compile-time one
// (planar codes; element indices as std::integral_constant so callers can keep
// vectors in register arrays).
namespace kvbits::kernel {
inline namespace KVBITS_ISA_NAMESPACE {
namespace simd {

#if KVBITS_XSIMD_KERNELS

/**
 * Visits every code of one group's block as int32 batches, in storage order:
 * fn(element index inside the group of lane 0, codes). Lanes of one batch are
 * consecutive elements in both code orders.
 */
template <class A, int Bits, class Fn>
KVBITS_ALWAYS_INLINE void for_each_code(const std::uint8_t* codes, std::size_t group, Fn&& fn) {
  using L = Lanes<A>;
  using I = typename L::I;
  constexpr std::size_t width = L::kWidth;
  if constexpr (kPlanar<Bits>) {
    const std::size_t stride = group * Bits / 8;
    for (std::size_t j = 0; j < stride; j += width) {
      const I bytes = L::load_bytes(codes + j);
      unrolled(
          [&](auto field) {
            if constexpr (Bits == 8) {
              fn(j, bytes);
            } else if constexpr (field.value + 1 == 8 / Bits) {
              fn(field.value * stride + j, bytes >> static_cast<std::int32_t>(field.value * Bits));
            } else {
              fn(field.value * stride + j,
                 (bytes >> static_cast<std::int32_t>(field.value * Bits)) & I((1 << Bits) - 1));
            }
          },
          std::make_index_sequence<static_cast<std::size_t>(8 / Bits)>{});
    }
  } else {
    constexpr std::size_t chunk = L::kStreamCodes;
    for (std::size_t c = 0; c < group; c += chunk) {
      I batches[chunk / width];
      L::template load_stream<Bits>(codes + c * Bits / 8, batches);
      for (std::size_t u = 0; u < chunk / width; ++u) fn(c + u * width, batches[u]);
    }
  }
}

/**
 * The batches [First, First + Count) of a compile-time group of planar codes
 * in storage order (batch b: field b % (8 / Bits) of code bytes b / (8 / Bits)),
 * as for_each_code_fixed gives them. A kernel that takes a row a part at a time
 * visits each part's batches alone: visiting the whole row per part and
 * discarding the rest costs the same code but instantiates every visit per part.
 */
template <class A, int Bits, std::size_t G, std::size_t First, std::size_t Count, class Fn>
KVBITS_ALWAYS_INLINE void for_each_code_in_batches(const std::uint8_t* codes, Fn&& fn) {
  using L = Lanes<A>;
  using I = typename L::I;
  constexpr std::size_t width = L::kWidth;
  constexpr std::size_t stride = G * Bits / 8;
  constexpr std::size_t fields = 8 / Bits;
  static_assert(kPlanar<Bits>, "batches in storage order are those of planar codes");
  static_assert(stride % width == 0, "the group's code bytes must fill whole batches");
  static_assert(First + Count <= stride / width * fields, "the batches must lie in the group");
  constexpr std::size_t kFirstChunk = First / fields;
  constexpr std::size_t kEndChunk = (First + Count + fields - 1) / fields;
  unrolled(
      [&](auto chunk) {
        const I bytes = L::load_bytes(codes + (kFirstChunk + decltype(chunk)::value) * width);
        unrolled(
            [&](auto field) {
              constexpr std::size_t f = field.value;
              constexpr std::size_t batch = (kFirstChunk + decltype(chunk)::value) * fields + f;
              constexpr auto shift = static_cast<std::int32_t>(f * Bits);
              // decltype, not the local constexprs: GCC 12 crashes on those in a template argument.
              const std::integral_constant<std::size_t, decltype(field)::value * stride +
                                                            (kFirstChunk + decltype(chunk)::value) * width>
                  index{};
              if constexpr (batch < First || batch >= First + Count) {
                // A field of a boundary chunk outside the range.
              } else if constexpr (Bits == 8) {
                fn(index, bytes);
              } else if constexpr (f == 0) {
                fn(index, bytes & I((1 << Bits) - 1));
              } else if constexpr (f + 1 == fields) {
                fn(index, bytes >> shift);
              } else {
                fn(index, (bytes >> shift) & I((1 << Bits) - 1));
              }
            },
            std::make_index_sequence<fields>{});
      },
      std::make_index_sequence<kEndChunk - kFirstChunk>{});
}

/**
 * for_each_code for a compile-time group: every batch's element index is an
 * std::integral_constant, so callers can keep vectors in register arrays
 * indexed by it (a run-time index would force the array to the stack).
 */
template <class A, int Bits, std::size_t G, class Fn>
KVBITS_ALWAYS_INLINE void for_each_code_fixed(const std::uint8_t* codes, Fn&& fn) {
  using L = Lanes<A>;
  using I = typename L::I;
  constexpr std::size_t width = L::kWidth;
  if constexpr (!kPlanar<Bits>) {
    constexpr std::size_t chunk = L::kStreamCodes;
    static_assert(G % chunk == 0, "the group must hold whole stream units");
    unrolled(
        [&](auto unit) {
          I batches[chunk / width];
          L::template load_stream<Bits>(codes + decltype(unit)::value * chunk * Bits / 8, batches);
          unrolled(
              [&](auto part) {
                const std::integral_constant<std::size_t,
                                             decltype(unit)::value * chunk + decltype(part)::value * width>
                    index{};
                fn(index, batches[decltype(part)::value]);
              },
              std::make_index_sequence<chunk / width>{});
        },
        std::make_index_sequence<G / chunk>{});
  } else {
    for_each_code_in_batches<A, Bits, G, 0, G / width>(codes, std::forward<Fn>(fn));
  }
}

/// Mask of one Bits-wide code field.
template <int Bits>
inline constexpr int kMaxField = (1 << Bits) - 1;

/**
 * for_each_code_fixed with the codes as float batches. On AVX-512 the 2- and
 * 4-bit fields become floats by one vpermps from a 16-entry table (it reads
 * only the low 4 bits of each lane, so it also does the field mask) instead of
 * a mask and an int -> float conversion.
 */
template <class A, int Bits, std::size_t G, class Fn>
KVBITS_ALWAYS_INLINE void for_each_value_fixed(const std::uint8_t* codes, Fn&& fn) {
#if defined(__AVX512F__)
  if constexpr (Lanes<A>::kWidth == 16 && kPlanar<Bits> && Bits < 8) {
    using L = Lanes<A>;
    using F = typename L::F;
    using I = typename L::I;
    constexpr std::size_t stride = G * Bits / 8;
    constexpr std::size_t fields = 8 / Bits;
    const __m512 table =
        _mm512_setr_ps(0, 1 & kMaxField<Bits>, 2 & kMaxField<Bits>, 3 & kMaxField<Bits>, 4 & kMaxField<Bits>,
                       5 & kMaxField<Bits>, 6 & kMaxField<Bits>, 7 & kMaxField<Bits>, 8 & kMaxField<Bits>,
                       9 & kMaxField<Bits>, 10 & kMaxField<Bits>, 11 & kMaxField<Bits>, 12 & kMaxField<Bits>,
                       13 & kMaxField<Bits>, 14 & kMaxField<Bits>, 15 & kMaxField<Bits>);
    unrolled(
        [&](auto chunk) {
          const I bytes = L::load_bytes(codes + decltype(chunk)::value * 16);
          unrolled(
              [&](auto field) {
                constexpr auto shift = static_cast<std::int32_t>(decltype(field)::value * Bits);
                const std::integral_constant<std::size_t,
                                             decltype(field)::value * stride + decltype(chunk)::value * 16>
                    index{};
                const __m512i lanes =
                    shift == 0 ? static_cast<__m512i>(bytes) : _mm512_srli_epi32(bytes, shift);
                fn(index, F(_mm512_permutexvar_ps(lanes, table)));
              },
              std::make_index_sequence<fields>{});
        },
        std::make_index_sequence<stride / 16>{});
    return;
  }
#endif
  for_each_code_fixed<A, Bits, G>(
      codes, [&](auto index, const auto& values) { fn(index, xsimd::to_float(values)); });
}

#endif  // KVBITS_XSIMD_KERNELS

}  // namespace simd
}  // namespace KVBITS_ISA_NAMESPACE
}  // namespace kvbits::kernel
