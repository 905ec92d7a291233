// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "kvbits/codec/format.hpp"
#include "kvbits/codec/group_params.hpp"
#include "kvbits/codec/reference.hpp"
#include "kvbits/codec/xsimd_dispatch.hpp"
#include "kvbits/codec/xsimd_encode_avx512.hpp"
#include "kvbits/codec/xsimd_lanes.hpp"
#include "kvbits/config.hpp"
#include "kvbits/core/isa_namespace.hpp"

// SIMD kernels on xsimd batches, in the shape of kernel::ScalarKernels.
//
// Encode is bit-exact with the reference: the group range is reduced with
// vectors, then detail::group_params computes the metadata exactly as the
// reference does (at 2 and 3 bits both call the same compiled
// detail::fit_group_params for the whole vector), and each code is the same
// clamp(nearbyint((x - min) * inverse_scale)) evaluated lane-wise (no fused
// operation can change it). Decode produces the same codes; the decoded floats
// may differ from the reference by FMA contraction. dot and axpy sum in a
// different order and are tested against the reference with tolerances.
// Which architecture and group size a call runs with: xsimd_dispatch.hpp.
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

/// Encodes one group of `group` floats into its block (metadata + codes) under `params`.
template <class A, int Bits>
KVBITS_ALWAYS_INLINE void encode_group_with(const float* KVBITS_RESTRICT xs, std::size_t group, Scheme scheme,
                                            const kvbits::detail::GroupParams& params,
                                            std::uint8_t* KVBITS_RESTRICT block) noexcept {
  using L = Lanes<A>;
  using F = typename L::F;
  using I = typename L::I;
  constexpr std::size_t width = L::kWidth;
  kvbits::detail::store_metadata(params, scheme, block);
  std::uint8_t* codes = block + metadata_bytes(scheme);

  const F inverse(params.inverse_scale);
  const F origin(params.min);
  const F low(scheme == Scheme::asymmetric ? 0.0f : static_cast<float>(kvbits::detail::symmetric_low(Bits)));
  const F high(scheme == Scheme::asymmetric ? static_cast<float>(kvbits::detail::max_code(Bits))
                                            : static_cast<float>(kvbits::detail::symmetric_high(Bits)));
  const I bias(scheme == Scheme::asymmetric ? 0 : kvbits::detail::symmetric_offset(Bits));
  // Same operations as detail::asymmetric_code / symmetric_code (origin is 0
  // for symmetric, and x - 0 == x exactly), so the codes are bit-identical.
  // The rounding is chosen once per group, not per batch.
  const auto pack = [&](auto round_down) {
    const auto code = [&](std::size_t i) {
      const F ratio = (F::load_unaligned(xs + i) - origin) * inverse;
      F scaled;
#if defined(__aarch64__)
      // FRINTM (floor) / FRINTN (nearest, ties to even): one instruction each,
      // where xsimd 8.1 emulates floor and nearbyint on NEON with several.
      if constexpr (decltype(round_down)::value) {
        scaled = F(vrndmq_f32(ratio));
      } else {
        scaled = F(vrndnq_f32(ratio));
      }
#else
      if constexpr (decltype(round_down)::value) {
        scaled = xsimd::floor(ratio);
      } else {
        scaled = xsimd::nearbyint(ratio);
      }
#endif
      return xsimd::to_int(xsimd::min(xsimd::max(scaled, low), high)) + bias;
    };
    if constexpr (kPlanar<Bits>) {
      const std::size_t stride = group * Bits / 8;
      for (std::size_t j = 0; j < stride; j += width) {
        I packed = code(j);
        unrolled(
            [&](auto field) {
              constexpr std::size_t f = field.value + 1;
              packed = packed | (code(f * stride + j) << static_cast<std::int32_t>(f * Bits));
            },
            std::make_index_sequence<static_cast<std::size_t>(8 / Bits - 1)>{});
        L::store_bytes(packed, codes + j);
      }
    } else {
      std::uint8_t unpacked[kMaxVectorLength];
      for (std::size_t i = 0; i < group; i += width) L::store_bytes(code(i), unpacked + i);
#if defined(__BMI2__) && defined(__x86_64__)
      // pext gathers the low Bits bits of each of 8 code bytes into one
      // contiguous field, lowest byte first: exactly a unit of the bit stream.
      constexpr std::uint64_t kFieldMask = 0x0101010101010101ull * ((1u << Bits) - 1u);
      for (std::size_t unit = 0; unit < group / 8; ++unit) {
        std::uint64_t eight;
        std::memcpy(&eight, unpacked + unit * 8, sizeof eight);
        const std::uint64_t stream = _pext_u64(eight, kFieldMask);
        std::memcpy(codes + unit * Bits, &stream, Bits);  // little-endian: the low Bits bytes
      }
#else
      kernel::detail::pack_codes<Bits>(unpacked, group, codes);
#endif
    }
  };
  if (scheme == Scheme::symmetric && kvbits::detail::is_mid_rise(params.scale, Bits)) {
    pack(std::true_type{});
  } else {
    pack(std::false_type{});
  }
}

/// Encodes one group of `group` floats into its block with min/max parameters (4 bits and up).
template <class A, int Bits>
KVBITS_ALWAYS_INLINE void encode_group(const float* KVBITS_RESTRICT xs, std::size_t group, Scheme scheme,
                                       std::uint8_t* KVBITS_RESTRICT block) noexcept {
  using L = Lanes<A>;
  using F = typename L::F;
  constexpr std::size_t width = L::kWidth;
  F lo = F::load_unaligned(xs);
  F hi = lo;
  for (std::size_t i = width; i < group; i += width) {
    const F v = F::load_unaligned(xs + i);
    lo = xsimd::min(lo, v);
    hi = xsimd::max(hi, v);
  }
  encode_group_with<A, Bits>(xs, group, scheme,
                             kvbits::detail::group_params(scheme, L::reduce_min(lo), L::reduce_max(hi), Bits),
                             block);
}

template <class A, int Bits, std::size_t G>
inline void encode(const float* KVBITS_RESTRICT x, std::size_t n, std::size_t runtime_group, Scheme scheme,
                   std::uint8_t* KVBITS_RESTRICT out) noexcept {
  using L = Lanes<A>;
  using F = typename L::F;
  constexpr std::size_t width = L::kWidth;
  if constexpr (Bits == 32) {
    std::memcpy(out, x, n * sizeof(float));
  } else if constexpr (Bits == 16) {
    const F top(kHalfMax);
    for (std::size_t i = 0; i < n; i += width) {
      L::store_halves(xsimd::min(xsimd::max(F::load_unaligned(x + i), -top), top), out + 2 * i);
    }
  } else {
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__F16C__)
    if constexpr (kFixedEncode<A, Bits, G>) {
      with_scheme(scheme, [&](auto fixed) { encode_fixed<A, Bits, G, fixed.value>(x, n, out); });
      return;
    }
#endif
    const std::size_t group = G != 0 ? G : runtime_group;
    const std::size_t block_bytes = group_bytes(Bits, group, scheme);
    if constexpr (kvbits::detail::fits_by_search(Bits)) {
      // The search is shared with the reference (the same compiled function), so the bytes match.
      kvbits::detail::GroupParams params[kvbits::detail::kMaxGroups];
      kvbits::detail::fit_group_params(x, n, group, scheme, Bits, params);
      for (std::size_t g = 0; g < n / group; ++g) {
        encode_group_with<A, Bits>(x + g * group, group, scheme, params[g], out + g * block_bytes);
      }
    } else {
      for (std::size_t g = 0; g < n / group; ++g) {
        encode_group<A, Bits>(x + g * group, group, scheme, out + g * block_bytes);
      }
    }
  }
}

template <class A, int Bits, std::size_t G>
inline void decode(const std::uint8_t* KVBITS_RESTRICT in, std::size_t n, std::size_t runtime_group,
                   Scheme scheme, float* KVBITS_RESTRICT y) noexcept {
  using L = Lanes<A>;
  using F = typename L::F;
  constexpr std::size_t width = L::kWidth;
  if constexpr (Bits == 32) {
    std::memcpy(y, in, n * sizeof(float));
  } else if constexpr (Bits == 16) {
    for (std::size_t i = 0; i < n; i += width) L::load_halves(in + 2 * i).store_unaligned(y + i);
  } else {
    const std::size_t group = G != 0 ? G : runtime_group;
    const std::size_t block_bytes = group_bytes(Bits, group, scheme);
    for (std::size_t g = 0; g < n / group; ++g) {
      const std::uint8_t* block = in + g * block_bytes;
      const auto affine = kvbits::detail::load_affine(block, scheme, Bits);
      const F scale(affine.scale);
      const F offset(affine.offset);
      float* yg = y + g * group;
      for_each_code<A, Bits>(block + metadata_bytes(scheme), group, [&](std::size_t i, const auto& codes) {
        xsimd::fma(scale, xsimd::to_float(codes), offset).store_unaligned(yg + i);
      });
    }
  }
}

/// sum over the W lanes of q[i..] * values, two accumulators to halve the dependency chain.
template <class A, class Load>
KVBITS_ALWAYS_INLINE float dot_plain(const float* KVBITS_RESTRICT q, std::size_t n, Load&& load) noexcept {
  using F = typename Lanes<A>::F;
  constexpr std::size_t width = Lanes<A>::kWidth;
  F even(0.0f);
  F odd(0.0f);
  std::size_t i = 0;
  for (; i + 2 * width <= n; i += 2 * width) {
    even = xsimd::fma(F::load_unaligned(q + i), load(i), even);
    odd = xsimd::fma(F::load_unaligned(q + i + width), load(i + width), odd);
  }
  if (i < n) even = xsimd::fma(F::load_unaligned(q + i), load(i), even);
  return xsimd::hadd(even + odd);
}

/**
 * for_each_code for a compile-time group: every batch's element index is an
 * std::integral_constant, so callers can keep vectors in register arrays
 * indexed by it (a run-time index would force the array to the stack).
 */
template <class A, int Bits, std::size_t G, class Fn>
KVBITS_ALWAYS_INLINE void for_each_code_fixed(const std::uint8_t* codes, Fn&& fn) {
  static_assert(kPlanar<Bits>, "bit streams have no fixed-group visitor");
  using L = Lanes<A>;
  using I = typename L::I;
  constexpr std::size_t width = L::kWidth;
  constexpr std::size_t stride = G * Bits / 8;
  constexpr std::size_t fields = 8 / Bits;
  static_assert(stride % width == 0, "the group's code bytes must fill whole batches");
  unrolled(
      [&](auto chunk) {
        constexpr std::size_t j = chunk.value * width;
        const I bytes = L::load_bytes(codes + j);
        unrolled(
            [&](auto field) {
              constexpr std::size_t f = field.value;
              constexpr auto shift = static_cast<std::int32_t>(f * Bits);
              // decltype, not the local constexprs: GCC 12 crashes on those in a template argument.
              const std::integral_constant<std::size_t,
                                           decltype(field)::value * stride + decltype(chunk)::value * width>
                  index{};
              if constexpr (Bits == 8) {
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
      std::make_index_sequence<stride / width>{});
}

/// How far ahead of the row it reads a row kernel prefetches: about what must
/// be in flight to stream cold rows from DRAM at full bandwidth (latency x
/// bandwidth), whatever the row width.
inline constexpr std::size_t kPrefetchBytes = 8192;

/// Rows from the one a row kernel reads to the one it prefetches (kPrefetchBytes ahead).
KVBITS_ALWAYS_INLINE std::size_t prefetch_distance(std::size_t stride) noexcept {
  return kPrefetchBytes / stride + 1;
}

/// Prefetches every cache line of the first `Bytes` bytes of row `r` (nothing
/// when r >= count, so no pointer leaves the rows).
template <std::size_t Bytes>
KVBITS_ALWAYS_INLINE void prefetch_row(const std::uint8_t* rows, std::size_t stride, std::size_t count,
                                       std::size_t r) noexcept {
  if (r >= count) return;
  const std::uint8_t* row = rows + r * stride;
  const auto fetch = [](const std::uint8_t* p) {
#if defined(__x86_64__) || defined(__i386__)
    _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
#else
    __builtin_prefetch(p, 0, 3);
#endif
  };
  for (std::size_t line = 0; line < Bytes; line += 64) fetch(row + line);
  // A row that does not start on a line boundary may end in one more line.
  if constexpr (Bytes % 64 != 0) fetch(row + Bytes - 1);
}

/// Largest row stride for which load_affines' 32-bit gather offsets (W - 1) * stride cannot overflow.
inline constexpr std::size_t kMaxGatherStride = std::size_t{1} << 26;

/**
 * The affine maps of the first group of W consecutive rows (lane k = row k,
 * rows `stride` bytes apart): one gather of the 4 metadata bytes per row on
 * AVX-512 instead of two scalar fp16 conversions and a broadcast per row.
 */
template <class A, int Bits, Scheme S>
KVBITS_ALWAYS_INLINE void load_affines(const std::uint8_t* rows, std::size_t stride,
                                       [[maybe_unused]] const typename Lanes<A>::I& offsets,
                                       typename Lanes<A>::F& scale, typename Lanes<A>::F& offset) noexcept {
  using F = typename Lanes<A>::F;
  constexpr std::size_t width = Lanes<A>::kWidth;
#if defined(__AVX512F__)
  if constexpr (width == 16) {
    // Reads 4 bytes per row: the scale and the min (asymmetric) or the scale
    // and the first code byte (symmetric, whose upper half is ignored).
#if defined(__GNUC__) && !defined(__clang__)
// Unoptimised, GCC's gather macro converts its all-ones __mmask16 to short.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-conversion"
#endif
    const __m512i metadata = _mm512_i32gather_epi32(offsets, rows, 1);
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
    scale = F(_mm512_cvtph_ps(_mm512_cvtepi32_epi16(metadata)));
    if constexpr (S == Scheme::asymmetric) {
      offset = F(_mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(metadata, 16))));
    } else {
      // -scale * detail::symmetric_zero, lane by lane.
      F zero(static_cast<float>(kvbits::detail::symmetric_offset(Bits)));
      if constexpr (kvbits::detail::sign_picks_grid(Bits)) {
        zero = xsimd::select(scale < F(0.0f), zero - F(0.5f), zero);
      }
      offset = -scale * zero;
    }
    return;
  }
#endif
  alignas(64) float scales[width];
  alignas(64) float offs[width];
  for (std::size_t k = 0; k < width; ++k) {
    const auto affine = kvbits::detail::load_affine(rows + k * stride, S, Bits);
    scales[k] = affine.scale;
    offs[k] = affine.offset;
  }
  scale = F::load_aligned(scales);
  offset = F::load_aligned(offs);
}

/// Byte offsets k * stride of W consecutive rows, for load_affines.
template <class A>
KVBITS_ALWAYS_INLINE typename Lanes<A>::I row_offsets(std::size_t stride) noexcept {
  using I = typename Lanes<A>::I;
  constexpr std::size_t width = Lanes<A>::kWidth;
  alignas(64) std::int32_t offsets[width];
  for (std::size_t k = 0; k < width; ++k) {
    offsets[k] = static_cast<std::int32_t>(k * (stride < kMaxGatherStride ? stride : 0));
  }
  return I::load_aligned(offsets);
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
  if constexpr (Lanes<A>::kWidth == 16 && Bits < 8) {
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

/// Whether the fixed-length row kernels (whole vector of N floats held in
/// registers, G a compile-time group) apply on A: at most 8 batches per vector
/// so the query or accumulator plus the temporaries fit the register file.
template <class A, int Bits, std::size_t N, std::size_t G>
inline constexpr bool kFixedRows = kPlanar<Bits>&& G != 0 && G <= N&& N % G == 0 &&
                                   N / Lanes<A>::kWidth <= 8 && G* Bits / 8 % Lanes<A>::kWidth == 0;

/**
 * dot_rows for n = N known at compile time: the query stays in registers, each
 * group's products use two accumulators, and W rows' totals are reduced
 * together by one transposing horizontal add (Lanes::reduce_rows) instead of one
 * horizontal add per row.
 */
template <class A, int Bits, std::size_t N, std::size_t G, Scheme S>
inline void dot_rows_fixed(const float* KVBITS_RESTRICT q, const std::uint8_t* rows, std::size_t stride,
                           std::size_t count, float* KVBITS_RESTRICT scores) noexcept {
  constexpr Scheme scheme = S;
  using F = typename Lanes<A>::F;
  constexpr std::size_t width = Lanes<A>::kWidth;
  constexpr std::size_t kRegs = N / width;
  constexpr std::size_t kGroups = N / G;
  constexpr std::size_t block_bytes = group_bytes(Bits, G, scheme);
  constexpr std::size_t meta = metadata_bytes(scheme);
  constexpr std::size_t kRowBytes = kGroups * block_bytes;
  const std::size_t ahead = prefetch_distance(stride);
  F query[kRegs];  // [N / W] the query
  for (std::size_t i = 0; i < kRegs; ++i) query[i] = F::load_unaligned(q + i * width);
  float q_sums[kGroups];  // [groups] sum of the query over each group
  for (std::size_t g = 0; g < kGroups; ++g) {
    F sum = query[g * G / width];
    for (std::size_t i = 1; i < G / width; ++i) sum += query[g * G / width + i];
    q_sums[g] = xsimd::hadd(sum);
  }
  // One row: the scaled code products as a batch, the offset terms as a scalar.
  const auto row_dot = [&](const std::uint8_t* row, float& offset_total) {
    F total(0.0f);
    offset_total = 0.0f;
    unrolled(
        [&](auto group) {
          constexpr std::size_t g = group.value;
          const std::uint8_t* block = row + g * block_bytes;
          const auto affine = kvbits::detail::load_affine(block, scheme, Bits);
          F even(0.0f);
          F odd(0.0f);
          for_each_value_fixed<A, Bits, G>(block + meta, [&](auto index, const F& codes) {
            constexpr std::size_t reg = (g * G + index.value) / width;
            if constexpr (index.value / width % 2 == 0) {
              even = xsimd::fma(query[reg], codes, even);
            } else {
              odd = xsimd::fma(query[reg], codes, odd);
            }
          });
          if constexpr (g == 0) {
            total = (even + odd) * F(affine.scale);
          } else {
            total = xsimd::fma(even + odd, F(affine.scale), total);
          }
          offset_total += affine.offset * q_sums[g];
        },
        std::make_index_sequence<kGroups>{});
    return total;
  };
  std::size_t r = 0;
  if constexpr (kGroups == 1) {
    // One group per row: the rows' unscaled products are reduced together, and
    // their scales and offsets are applied as vectors of W rows.
    if (stride < kMaxGatherStride) {
      const auto offsets = row_offsets<A>(stride);
      const F q_sum(q_sums[0]);
      for (; r + width <= count; r += width) {
        F products[width];  // [W rows] per-row sum of q * code
        for (std::size_t k = 0; k < width; ++k) {
          prefetch_row<kRowBytes>(rows, stride, count, r + k + ahead);
          F even(0.0f);
          F odd(0.0f);
          for_each_value_fixed<A, Bits, G>(rows + (r + k) * stride + meta, [&](auto index, const F& codes) {
            if constexpr (index.value / width % 2 == 0) {
              even = xsimd::fma(query[index.value / width], codes, even);
            } else {
              odd = xsimd::fma(query[index.value / width], codes, odd);
            }
          });
          products[k] = even + odd;
        }
        F scale;
        F offset;
        load_affines<A, Bits, S>(rows + r * stride, stride, offsets, scale, offset);
        xsimd::fma(Lanes<A>::reduce_rows(products), scale, offset * q_sum).store_unaligned(scores + r);
      }
    }
  } else {
    for (; r + width <= count; r += width) {
      F totals[width];                   // [W rows] per-row products, reduced together
      alignas(64) float offsets[width];  // [W rows] per-row offset terms
      for (std::size_t k = 0; k < width; ++k) {
        prefetch_row<kRowBytes>(rows, stride, count, r + k + ahead);
        totals[k] = row_dot(rows + (r + k) * stride, offsets[k]);
      }
      (Lanes<A>::reduce_rows(totals) + F::load_aligned(offsets)).store_unaligned(scores + r);
    }
  }
  for (; r < count; ++r) {
    float offset = 0.0f;
    const F total = row_dot(rows + r * stride, offset);
    scores[r] = xsimd::hadd(total) + offset;
  }
}

/**
 * axpy_rows for n = N known at compile time: the output accumulates in
 * registers over all rows (no load/store of y per row, so no store-to-load
 * dependency from one row to the next) and is added to y once.
 */
template <class A, int Bits, std::size_t N, std::size_t G, Scheme S>
inline void axpy_rows_fixed(const float* KVBITS_RESTRICT weights, const std::uint8_t* rows,
                            std::size_t stride, std::size_t count, float* KVBITS_RESTRICT y) noexcept {
  constexpr Scheme scheme = S;
  using F = typename Lanes<A>::F;
  constexpr std::size_t width = Lanes<A>::kWidth;
  constexpr std::size_t kRegs = N / width;
  constexpr std::size_t kGroups = N / G;
  constexpr std::size_t block_bytes = group_bytes(Bits, G, scheme);
  constexpr std::size_t meta = metadata_bytes(scheme);
  constexpr std::size_t kRowBytes = kGroups * block_bytes;
  const std::size_t ahead = prefetch_distance(stride);
  F acc[kRegs];  // [N / W] sum over rows of w * scale * code
  for (std::size_t i = 0; i < kRegs; ++i) acc[i] = F(0.0f);
  float offsets[kGroups] = {};  // [groups] sum over rows of w * offset
  const auto row_axpy = [&](const std::uint8_t* row, float w) {
    unrolled(
        [&](auto group) {
          constexpr std::size_t g = group.value;
          const std::uint8_t* block = row + g * block_bytes;
          const auto affine = kvbits::detail::load_affine(block, scheme, Bits);
          offsets[g] += w * affine.offset;
          const F scale(w * affine.scale);
          for_each_value_fixed<A, Bits, G>(block + meta, [&](auto index, const F& codes) {
            constexpr std::size_t reg = (g * G + index.value) / width;
            acc[reg] = xsimd::fma(scale, codes, acc[reg]);
          });
        },
        std::make_index_sequence<kGroups>{});
  };
  std::size_t r = 0;
  if constexpr (kGroups == 1) {
    // One group per row: the weighted scales and offsets of W rows at a time
    // as vectors; each row then only broadcasts its weighted scale.
    if (stride < kMaxGatherStride) {
      const auto row_bytes = row_offsets<A>(stride);
      F offset_sum(0.0f);
      for (; r + width <= count; r += width) {
        F scale;
        F offset;
        load_affines<A, Bits, S>(rows + r * stride, stride, row_bytes, scale, offset);
        const F w = F::load_unaligned(weights + r);
        offset_sum = xsimd::fma(w, offset, offset_sum);
        alignas(64) float weighted[width];  // [W rows] w * scale
        (w * scale).store_aligned(weighted);
        for (std::size_t k = 0; k < width; ++k) {
          prefetch_row<kRowBytes>(rows, stride, count, r + k + ahead);
          const F row_scale(weighted[k]);
          for_each_value_fixed<A, Bits, G>(rows + (r + k) * stride + meta, [&](auto index, const F& codes) {
            acc[index.value / width] = xsimd::fma(row_scale, codes, acc[index.value / width]);
          });
        }
      }
      offsets[0] += xsimd::hadd(offset_sum);
    }
  }
  for (; r < count; ++r) {
    prefetch_row<kRowBytes>(rows, stride, count, r + ahead);
    row_axpy(rows + r * stride, weights[r]);
  }
  for (std::size_t i = 0; i < kRegs; ++i) {
    (F::load_unaligned(y + i * width) + (acc[i] + F(offsets[i * width / G]))).store_unaligned(y + i * width);
  }
}

/// Vector registers a row kernel may give to accumulators: half the register
/// file (32 on AVX-512 and AArch64, 16 on SSE and AVX2).
template <class A>
inline constexpr std::size_t kSpareRegisters =
#if defined(__aarch64__)
    16;
#else
    Lanes<A>::kWidth == 16 ? 16 : 8;
#endif

/// Whether the fixed-length float row kernels apply to 16/32-bit rows of N
/// elements on A: the query or accumulator (N / W batches) stays in registers.
template <class A, int Bits, std::size_t N>
inline constexpr bool kFixedFloatRows =
    (Bits == 16 || Bits == 32) && N % Lanes<A>::kWidth == 0 && N / Lanes<A>::kWidth <= 8;

/// Batch `index` (W floats) of a 16/32-bit row.
template <class A, int Bits>
KVBITS_ALWAYS_INLINE typename Lanes<A>::F load_float_row(const std::uint8_t* row,
                                                         std::size_t index) noexcept {
  using L = Lanes<A>;
  if constexpr (Bits == 32) {
    return L::F::load_unaligned(reinterpret_cast<const float*>(row) + index * L::kWidth);
  } else {
    return L::load_halves(row + 2 * index * L::kWidth);
  }
}

/**
 * dot_rows for 16/32-bit rows of N elements: the query stays in registers and
 * W rows' products are reduced together (Lanes::reduce_rows) instead of one
 * horizontal add per row, so a row costs its loads and FMAs.
 */
template <class A, int Bits, std::size_t N>
inline void dot_rows_float(const float* KVBITS_RESTRICT q, const std::uint8_t* rows, std::size_t stride,
                           std::size_t count, float* KVBITS_RESTRICT scores) noexcept {
  using L = Lanes<A>;
  using F = typename L::F;
  constexpr std::size_t width = L::kWidth;
  constexpr std::size_t kRegs = N / width;
  const std::size_t ahead = prefetch_distance(stride);
  F query[kRegs];  // [N / W] the query
  for (std::size_t i = 0; i < kRegs; ++i) query[i] = F::load_unaligned(q + i * width);
  const auto row_dot = [&](const std::uint8_t* row) {
    F even = query[0] * load_float_row<A, Bits>(row, 0);
    F odd(0.0f);
    for (std::size_t i = 1; i < kRegs; ++i) {
      if (i % 2 == 0) {
        even = xsimd::fma(query[i], load_float_row<A, Bits>(row, i), even);
      } else {
        odd = xsimd::fma(query[i], load_float_row<A, Bits>(row, i), odd);
      }
    }
    return even + odd;
  };
  std::size_t r = 0;
  for (; r + width <= count; r += width) {
    F products[width];  // [W rows] lane-partial products
    for (std::size_t k = 0; k < width; ++k) {
      prefetch_row<N * Bits / 8>(rows, stride, count, r + k + ahead);
      products[k] = row_dot(rows + (r + k) * stride);
    }
    L::reduce_rows(products).store_unaligned(scores + r);
  }
  for (; r < count; ++r) scores[r] = xsimd::hadd(row_dot(rows + r * stride));
}

/**
 * axpy_rows for 16/32-bit rows of N elements: the output accumulates in
 * registers over all rows and is added to y once, so no row waits for the
 * previous row's store of y.
 */
template <class A, int Bits, std::size_t N>
inline void axpy_rows_float(const float* KVBITS_RESTRICT weights, const std::uint8_t* rows,
                            std::size_t stride, std::size_t count, float* KVBITS_RESTRICT y) noexcept {
  using F = typename Lanes<A>::F;
  constexpr std::size_t width = Lanes<A>::kWidth;
  constexpr std::size_t kRegs = N / width;
  // Two rows at a time into two sets of accumulators where registers allow:
  // with one chain per register every row would wait on the FMA latency.
  constexpr std::size_t kChains = 2 * kRegs <= kSpareRegisters<A> ? 2 : 1;
  F acc[kChains][kRegs];  // [chain][N / W] sum over rows of w * row
  for (auto& chain : acc) {
    for (F& batch : chain) batch = F(0.0f);
  }
  const std::size_t ahead = prefetch_distance(stride);
  std::size_t r = 0;
  const auto add_row = [&](std::size_t row_index, F(&sum)[kRegs]) {
    prefetch_row<N * Bits / 8>(rows, stride, count, row_index + ahead);
    const std::uint8_t* row = rows + row_index * stride;
    const F w(weights[row_index]);
    for (std::size_t i = 0; i < kRegs; ++i) sum[i] = xsimd::fma(w, load_float_row<A, Bits>(row, i), sum[i]);
  };
  for (; r + kChains <= count; r += kChains) {
    for (std::size_t c = 0; c < kChains; ++c) add_row(r + c, acc[c]);
  }
  for (; r < count; ++r) add_row(r, acc[0]);
  for (std::size_t i = 0; i < kRegs; ++i) {
    F sum = acc[0][i];
    for (std::size_t c = 1; c < kChains; ++c) sum += acc[c][i];
    (F::load_unaligned(y + i * width) + sum).store_unaligned(y + i * width);
  }
}

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
/// Signed-byte limbs of the query's fixed-point form in the integer row kernels.
inline constexpr std::size_t kQueryLimbs = 3;

/**
 * Whether the integer dot_rows kernel applies to (Bits, N, G): planar codes,
 * one group per row (the cache's default), and a row's codes fill whole
 * batches of 64 bytes once each field has its own byte (16, 32 or a multiple
 * of 64 code bytes).
 */
template <int Bits, std::size_t N, std::size_t G>
inline constexpr bool kIntegerDotRows = kPlanar<Bits>&& G == N && (N == 64 || N == 128);

/**
 * The query on a fixed-point grid: q_i ~ step * Q_i, with |Q_i| <= 2^22 split
 * into signed-byte limbs Q_i = sum_l 256^l * limb[l]_i (balanced digits, so
 * the top limb stays within [-65, 65]). step is a power of two, so q_i / step
 * is exact and the only error is the rounding of Q_i: at most step / 2 <=
 * 2^-22 * max|q| per element.
 */
template <std::size_t N>
struct QueryLimbs {
  __m512i limb[kQueryLimbs][N / 64];  // [limb][N / 64] 64 signed bytes each, element order
  float step = 0.0f;                  // q_i ~ step * Q_i
};

/// @return false (and leaves `out` unset) when max|q| is too small for the grid's power-of-two step.
template <std::size_t N>
KVBITS_ALWAYS_INLINE bool make_query_limbs(const float* KVBITS_RESTRICT q, QueryLimbs<N>& out) noexcept {
  __m512 largest = _mm512_setzero_ps();
  for (std::size_t i = 0; i < N; i += 16) {
    largest = _mm512_max_ps(largest, _mm512_abs_ps(_mm512_loadu_ps(q + i)));
  }
  const float top = _mm512_reduce_max_ps(largest);
  // Below 2^-100 the inverse step 2^(22 - e) would not be a finite float; the float kernel takes it.
  if (!(top >= 0x1p-100f)) return false;
  int exponent = 0;
  static_cast<void>(std::frexp(top, &exponent));  // top = f * 2^exponent, f in [0.5, 1)
  out.step = std::ldexp(1.0f, exponent - 22);
  const __m512 inverse = _mm512_set1_ps(std::ldexp(1.0f, 22 - exponent));
  const __m512i half = _mm512_set1_epi32(128);
  const __m512i low_byte = _mm512_set1_epi32(255);
  alignas(64) std::int8_t bytes[kQueryLimbs][N];  // [limb][N]
  for (std::size_t i = 0; i < N; i += 16) {
    __m512i rest = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(q + i), inverse));
    for (std::size_t l = 0; l < kQueryLimbs; ++l) {
      // The last limb takes what is left; the others are balanced digits in [-128, 127].
      const __m512i digit =
          l + 1 == kQueryLimbs
              ? rest
              : _mm512_sub_epi32(_mm512_and_si512(_mm512_add_epi32(rest, half), low_byte), half);
      _mm_store_si128(reinterpret_cast<__m128i*>(bytes[l] + i), _mm512_cvtepi32_epi8(digit));
      rest = _mm512_srai_epi32(_mm512_sub_epi32(rest, digit), 8);
    }
  }
  for (std::size_t l = 0; l < kQueryLimbs; ++l) {
    for (std::size_t z = 0; z < N / 64; ++z) out.limb[l][z] = _mm512_load_si512(bytes[l] + 64 * z);
  }
  return true;
}

/**
 * A row's N planar codes as N / 64 batches of 64 unsigned bytes in element
 * order, reading exactly the row's N * Bits / 8 code bytes. Field f of code
 * byte j is element f * C + j (C code bytes): for C >= 64 each load yields one
 * batch per field; for C = 16 or 32 the bytes are broadcast to every 128- or
 * 256-bit lane and each lane shifts out the next field.
 */
template <int Bits, std::size_t N>
KVBITS_ALWAYS_INLINE void load_code_bytes(const std::uint8_t* codes, __m512i (&out)[N / 64]) noexcept {
  constexpr std::size_t bytes = N * Bits / 8;
  constexpr std::size_t fields = 8 / Bits;
  const __m512i mask = _mm512_set1_epi8(static_cast<char>(kMaxField<Bits>));
  if constexpr (bytes >= 64) {
    constexpr std::size_t loads = bytes / 64;
    unrolled(
        [&](auto load) {
          const __m512i v = _mm512_loadu_si512(codes + 64 * decltype(load)::value);
          unrolled(
              [&](auto field) {
                constexpr std::size_t f = decltype(field)::value;
                constexpr std::size_t z = f * loads + decltype(load)::value;
                if constexpr (Bits == 8) {
                  out[z] = v;
                } else if constexpr (f == 0) {
                  out[z] = _mm512_and_si512(v, mask);
                } else {
                  // 16-bit shifts pull the next byte's low bits into each byte's top: the mask drops them.
                  out[z] = _mm512_and_si512(_mm512_srli_epi16(v, static_cast<unsigned>(f * Bits)), mask);
                }
              },
              std::make_index_sequence<fields>{});
        },
        std::make_index_sequence<loads>{});
  } else {
    static_assert(bytes == 16 || bytes == 32, "a row's code bytes fill a 128- or 256-bit lane");
    constexpr std::size_t copies = 64 / bytes;
    __m512i v;
    if constexpr (bytes == 32) {
      v = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes)));
    } else {
      v = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes)));
    }
    for (std::size_t z = 0; z < N / 64; ++z) {
      alignas(64) std::int16_t shifts[32];  // [32 words] the field shift of each word's copy
      for (std::size_t w = 0; w < 32; ++w) {
        shifts[w] = static_cast<std::int16_t>((z * copies + w * 2 / bytes) * Bits);
      }
      out[z] = _mm512_and_si512(_mm512_srlv_epi16(v, _mm512_load_si512(shifts)), mask);
    }
  }
}

/// The exact integer sum_i Q_i * code_i of one row, lane-partial, as floats
/// (the limbs' int32 sums recombined with at most one rounding per lane).
template <int Bits, std::size_t N>
KVBITS_ALWAYS_INLINE __m512 row_dot_integer(const QueryLimbs<N>& query, const std::uint8_t* codes) noexcept {
  __m512i code[N / 64];
  load_code_bytes<Bits, N>(codes, code);
  __m512i sums[kQueryLimbs];  // [limb] int32 lanes
  for (std::size_t l = 0; l < kQueryLimbs; ++l) {
    sums[l] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), code[0], query.limb[l][0]);
    for (std::size_t z = 1; z < N / 64; ++z) {
      sums[l] = _mm512_dpbusd_epi32(sums[l], code[z], query.limb[l][z]);
    }
  }
  // Per lane, limb 0 and 1 sums are below 2 * 4 * 128 * 255 < 2^18 and the top
  // limb's below 2 * 4 * 65 * 255 < 2^17: (top << 8) + middle is exact in int32.
  const __m512i high = _mm512_add_epi32(_mm512_slli_epi32(sums[2], 8), sums[1]);
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(high), _mm512_set1_ps(256.0f), _mm512_cvtepi32_ps(sums[0]));
}

/**
 * dot_rows on AVX-512 VNNI for one group per row: the query becomes signed
 * byte limbs once per call (QueryLimbs), each row's codes are widened to bytes
 * without lookups (load_code_bytes), and vpdpbusd multiplies 64 codes by 64
 * limbs per instruction with exact int32 sums. The group trick
 * q . (s c + m) = s (q . c) + m sum(q) applies the scale and min once per row,
 * for 16 rows at a time. @return false when the query does not fit the grid
 * (the caller then runs the float kernel).
 */
template <int Bits, std::size_t N, Scheme S>
inline bool dot_rows_integer(const float* KVBITS_RESTRICT q, const std::uint8_t* rows, std::size_t stride,
                             std::size_t count, float* KVBITS_RESTRICT scores) noexcept {
  using A = xsimd::avx512bw;
  using F = typename Lanes<A>::F;
  constexpr std::size_t meta = metadata_bytes(S);
  QueryLimbs<N> query;
  if (!make_query_limbs<N>(q, query)) return false;
  __m512 sum = _mm512_loadu_ps(q);
  for (std::size_t i = 16; i < N; i += 16) sum = _mm512_add_ps(sum, _mm512_loadu_ps(q + i));
  const float q_sum = _mm512_reduce_add_ps(sum);
  constexpr std::size_t kRowBytes = meta + N * Bits / 8;
  const std::size_t ahead = prefetch_distance(stride);
  std::size_t r = 0;
  if (stride < kMaxGatherStride) {
    const auto offsets = row_offsets<A>(stride);
    const F step(query.step);
    const F q_sums(q_sum);
    for (; r + 16 <= count; r += 16) {
      F products[16];  // [16 rows] lane-partial sum_i Q_i * code_i
      for (std::size_t k = 0; k < 16; ++k) {
        prefetch_row<kRowBytes>(rows, stride, count, r + k + ahead);
        products[k] = F(row_dot_integer<Bits, N>(query, rows + (r + k) * stride + meta));
      }
      F scale;
      F offset;
      load_affines<A, Bits, S>(rows + r * stride, stride, offsets, scale, offset);
      xsimd::fma(Lanes<A>::reduce_rows(products), scale * step, offset * q_sums).store_unaligned(scores + r);
    }
  }
  for (; r < count; ++r) {
    const std::uint8_t* row = rows + r * stride;
    const auto affine = kvbits::detail::load_affine(row, S, Bits);
    const float product = _mm512_reduce_add_ps(row_dot_integer<Bits, N>(query, row + meta));
    scores[r] = product * (affine.scale * query.step) + affine.offset * q_sum;
  }
  return true;
}

#endif

/// Runs fn(std::integral_constant<size_t, N>) when n is one of the fixed
/// lengths (64, 128) the fixed-length row kernels support for (A, Bits, G).
/// @return whether it ran.
template <class A, int Bits, std::size_t G, class Fn>
KVBITS_ALWAYS_INLINE bool with_fixed_length(std::size_t n, Fn&& fn) {
  if constexpr (kFixedRows<A, Bits, 128, G>) {
    if (n == 128) {
      fn(std::integral_constant<std::size_t, 128>{});
      return true;
    }
  }
  if constexpr (kFixedRows<A, Bits, 64, G>) {
    if (n == 64) {
      fn(std::integral_constant<std::size_t, 64>{});
      return true;
    }
  }
  return false;
}

/// Runs fn(std::integral_constant<size_t, N>) when n is one of the lengths
/// (64, 128) the float row kernels support for (A, Bits). @return whether it ran.
template <class A, int Bits, class Fn>
KVBITS_ALWAYS_INLINE bool with_float_length(std::size_t n, Fn&& fn) {
  if constexpr (kFixedFloatRows<A, Bits, 128>) {
    if (n == 128) {
      fn(std::integral_constant<std::size_t, 128>{});
      return true;
    }
  }
  if constexpr (kFixedFloatRows<A, Bits, 64>) {
    if (n == 64) {
      fn(std::integral_constant<std::size_t, 64>{});
      return true;
    }
  }
  return false;
}

template <class A, int Bits, std::size_t G>
inline void dot_rows(const float* KVBITS_RESTRICT q, std::size_t n, std::size_t runtime_group, Scheme scheme,
                     const std::uint8_t* rows, std::size_t stride, std::size_t count,
                     float* KVBITS_RESTRICT scores) noexcept {
  using L = Lanes<A>;
  using F = typename L::F;
  constexpr std::size_t width = L::kWidth;
  if (with_float_length<A, Bits>(
          n, [&](auto length) { dot_rows_float<A, Bits, length.value>(q, rows, stride, count, scores); })) {
    return;
  }
  if constexpr (Bits == 32) {
    for (std::size_t r = 0; r < count; ++r) {
      const float* row = reinterpret_cast<const float*>(rows + r * stride);
      scores[r] = dot_plain<A>(q, n, [&](std::size_t i) { return F::load_unaligned(row + i); });
    }
  } else if constexpr (Bits == 16) {
    for (std::size_t r = 0; r < count; ++r) {
      const std::uint8_t* row = rows + r * stride;
      scores[r] = dot_plain<A>(q, n, [&](std::size_t i) { return L::load_halves(row + 2 * i); });
    }
  } else {
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
    if constexpr (kIntegerDotRows<Bits, 128, G> || kIntegerDotRows<Bits, 64, G>) {
      if (n == G) {
        bool done = false;
        with_scheme(scheme, [&](auto fixed) {
          done = dot_rows_integer<Bits, G, fixed.value>(q, rows, stride, count, scores);
        });
        if (done) return;
      }
    }
#endif
    if (with_fixed_length<A, Bits, G>(n, [&](auto length) {
          with_scheme(scheme, [&](auto fixed) {
            dot_rows_fixed<A, Bits, length.value, G, fixed.value>(q, rows, stride, count, scores);
          });
        })) {
      return;
    }
    const std::size_t group = G != 0 ? G : runtime_group;
    const std::size_t groups = n / group;
    const std::size_t block_bytes = group_bytes(Bits, group, scheme);
    const std::size_t meta = metadata_bytes(scheme);
    // Per-query precomputation, hoisted out of the row loop: the offset term of
    // a group is offset * sum(q over the group).
    float q_sums[kMaxVectorLength / 8];
    for (std::size_t g = 0; g < groups; ++g) {
      F sum(0.0f);
      for (std::size_t i = 0; i < group; i += width) sum += F::load_unaligned(q + g * group + i);
      q_sums[g] = xsimd::hadd(sum);
    }
    for (std::size_t r = 0; r < count; ++r) {
      const std::uint8_t* row = rows + r * stride;
      F total(0.0f);
      float offset_total = 0.0f;
      for (std::size_t g = 0; g < groups; ++g) {
        const std::uint8_t* block = row + g * block_bytes;
        const auto affine = kvbits::detail::load_affine(block, scheme, Bits);
        const float* qg = q + g * group;
        F products(0.0f);
        for_each_code<A, Bits>(block + meta, group, [&](std::size_t i, const auto& codes) {
          products = xsimd::fma(F::load_unaligned(qg + i), xsimd::to_float(codes), products);
        });
        total = xsimd::fma(products, F(affine.scale), total);
        offset_total += affine.offset * q_sums[g];
      }
      scores[r] = xsimd::hadd(total) + offset_total;
    }
  }
}

template <class A, int Bits, std::size_t G>
inline void axpy_rows(const float* KVBITS_RESTRICT weights, std::size_t n, std::size_t runtime_group,
                      Scheme scheme, const std::uint8_t* rows, std::size_t stride, std::size_t count,
                      float* KVBITS_RESTRICT y) noexcept {
  using L = Lanes<A>;
  using F = typename L::F;
  constexpr std::size_t width = L::kWidth;
  if (with_float_length<A, Bits>(
          n, [&](auto length) { axpy_rows_float<A, Bits, length.value>(weights, rows, stride, count, y); })) {
    return;
  }
  if constexpr (Bits == 32 || Bits == 16) {
    for (std::size_t r = 0; r < count; ++r) {
      const std::uint8_t* row = rows + r * stride;
      const F w(weights[r]);
      for (std::size_t i = 0; i < n; i += width) {
        F v;
        if constexpr (Bits == 32) {
          v = F::load_unaligned(reinterpret_cast<const float*>(row) + i);
        } else {
          v = L::load_halves(row + 2 * i);
        }
        xsimd::fma(w, v, F::load_unaligned(y + i)).store_unaligned(y + i);
      }
    }
  } else {
    if (with_fixed_length<A, Bits, G>(n, [&](auto length) {
          with_scheme(scheme, [&](auto fixed) {
            axpy_rows_fixed<A, Bits, length.value, G, fixed.value>(weights, rows, stride, count, y);
          });
        })) {
      return;
    }
    const std::size_t group = G != 0 ? G : runtime_group;
    const std::size_t groups = n / group;
    const std::size_t block_bytes = group_bytes(Bits, group, scheme);
    const std::size_t meta = metadata_bytes(scheme);
    // The offset part of every row is constant over a group: sum it per group
    // over all rows and add it once at the end.
    float offsets[kMaxVectorLength / 8] = {};
    for (std::size_t r = 0; r < count; ++r) {
      const std::uint8_t* row = rows + r * stride;
      const float w = weights[r];
      for (std::size_t g = 0; g < groups; ++g) {
        const std::uint8_t* block = row + g * block_bytes;
        const auto affine = kvbits::detail::load_affine(block, scheme, Bits);
        offsets[g] += w * affine.offset;
        const F scale(w * affine.scale);
        float* yg = y + g * group;
        for_each_code<A, Bits>(block + meta, group, [&](std::size_t i, const auto& codes) {
          xsimd::fma(scale, xsimd::to_float(codes), F::load_unaligned(yg + i)).store_unaligned(yg + i);
        });
      }
    }
    for (std::size_t g = 0; g < groups; ++g) {
      const F offset(offsets[g]);
      for (std::size_t i = 0; i < group; i += width) {
        (F::load_unaligned(y + g * group + i) + offset).store_unaligned(y + g * group + i);
      }
    }
  }
}

#endif  // KVBITS_XSIMD_KERNELS

}  // namespace simd

/**
 * The xsimd kernel set, in the shape of ScalarKernels (same contract: n a
 * multiple of 8 and of group, group a multiple of 8, finite inputs, no
 * alignment needed, no aliasing). Without a usable SIMD architecture every
 * kernel is the scalar reference.
 */
struct XsimdKernels {
  template <int Bits>
  static void encode(const float* KVBITS_RESTRICT x, std::size_t n, std::size_t group, Scheme scheme,
                     std::uint8_t* KVBITS_RESTRICT out) noexcept {
#if KVBITS_XSIMD_KERNELS && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__F16C__)
    if constexpr (simd::kEightsEncode<Bits>) {
      if (group == 8 && n % 16 == 0) {
        simd::with_scheme(scheme, [&](auto fixed) { simd::encode_eights<Bits, fixed.value>(x, n, out); });
        return;
      }
    }
#endif
    simd::dispatch<Bits>(n, group, [&](auto arch, [[maybe_unused]] auto g) {
      if constexpr (std::is_same_v<decltype(arch), simd::NoArch>) {
        ScalarKernels::encode<Bits>(x, n, group, scheme, out);
      } else {
#if KVBITS_XSIMD_KERNELS
        simd::encode<decltype(arch), Bits, g.value>(x, n, group, scheme, out);
#endif
      }
    });
  }

  template <int Bits>
  static void decode(const std::uint8_t* KVBITS_RESTRICT in, std::size_t n, std::size_t group, Scheme scheme,
                     float* KVBITS_RESTRICT y) noexcept {
    simd::dispatch<Bits>(n, group, [&](auto arch, [[maybe_unused]] auto g) {
      if constexpr (std::is_same_v<decltype(arch), simd::NoArch>) {
        ScalarKernels::decode<Bits>(in, n, group, scheme, y);
      } else {
#if KVBITS_XSIMD_KERNELS
        simd::decode<decltype(arch), Bits, g.value>(in, n, group, scheme, y);
#endif
      }
    });
  }

  template <int Bits>
  static float dot(const float* KVBITS_RESTRICT q, const std::uint8_t* KVBITS_RESTRICT in, std::size_t n,
                   std::size_t group, Scheme scheme) noexcept {
    float score = 0.0f;
    dot_rows<Bits>(q, n, group, scheme, in, packed_size(QuantFormat{Bits, group, scheme}, n), 1, &score);
    return score;
  }

  template <int Bits>
  static void axpy(float w, const std::uint8_t* KVBITS_RESTRICT in, std::size_t n, std::size_t group,
                   Scheme scheme, float* KVBITS_RESTRICT y) noexcept {
    axpy_rows<Bits>(&w, n, group, scheme, in, packed_size(QuantFormat{Bits, group, scheme}, n), 1, y);
  }

  /// scores[r] = q . decode(rows + r * stride) for r < count.
  template <int Bits>
  static void dot_rows(const float* KVBITS_RESTRICT q, std::size_t n, std::size_t group, Scheme scheme,
                       const std::uint8_t* rows, std::size_t stride, std::size_t count,
                       float* KVBITS_RESTRICT scores) noexcept {
    simd::dispatch<Bits>(n, group, [&](auto arch, [[maybe_unused]] auto g) {
      if constexpr (std::is_same_v<decltype(arch), simd::NoArch>) {
        ScalarKernels::dot_rows<Bits>(q, n, group, scheme, rows, stride, count, scores);
      } else {
#if KVBITS_XSIMD_KERNELS
        simd::dot_rows<decltype(arch), Bits, g.value>(q, n, group, scheme, rows, stride, count, scores);
#endif
      }
    });
  }

  /// y += sum_r weights[r] * decode(rows + r * stride) for r < count.
  template <int Bits>
  static void axpy_rows(const float* KVBITS_RESTRICT weights, std::size_t n, std::size_t group, Scheme scheme,
                        const std::uint8_t* rows, std::size_t stride, std::size_t count,
                        float* KVBITS_RESTRICT y) noexcept {
    simd::dispatch<Bits>(n, group, [&](auto arch, [[maybe_unused]] auto g) {
      if constexpr (std::is_same_v<decltype(arch), simd::NoArch>) {
        ScalarKernels::axpy_rows<Bits>(weights, n, group, scheme, rows, stride, count, y);
      } else {
#if KVBITS_XSIMD_KERNELS
        simd::axpy_rows<decltype(arch), Bits, g.value>(weights, n, group, scheme, rows, stride, count, y);
#endif
      }
    });
  }
};

}  // namespace KVBITS_ISA_NAMESPACE
}  // namespace kvbits::kernel
