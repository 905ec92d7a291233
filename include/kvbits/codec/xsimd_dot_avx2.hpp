// SPDX-License-Identifier: MIT
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "kvbits/codec/format.hpp"
#include "kvbits/codec/group_params.hpp"
#include "kvbits/codec/xsimd_code_visitors.hpp"
#include "kvbits/codec/xsimd_dispatch.hpp"
#include "kvbits/codec/xsimd_lanes.hpp"
#include "kvbits/codec/xsimd_prefetch.hpp"
#include "kvbits/codec/xsimd_row_affines.hpp"
#include "kvbits/config.hpp"
#include "kvbits/core/isa_namespace.hpp"
#include "kvbits/core/multiply_add.hpp"

// Integer dot_rows on AVX2 without AVX-512: the query as signed-byte limbs of a
// fixed-point grid (as the AVX-512 VNNI kernel has it), the codes widened to
// bytes, vpmaddubsw and vpmaddwd for exact int32 sums. The float kernel spends
// three instructions per element (widen, convert, multiply-add); this one
// multiplies 32 codes by 32 query bytes per instruction.
#if KVBITS_XSIMD_KERNELS && defined(__AVX2__) && defined(__FMA__) && !defined(__AVX512BW__)
#define KVBITS_INTEGER_DOT_AVX2 1
#else
#define KVBITS_INTEGER_DOT_AVX2 0
#endif

namespace kvbits::kernel {
inline namespace KVBITS_ISA_NAMESPACE {
namespace simd::avx2 {

#if KVBITS_INTEGER_DOT_AVX2
/// Signed-byte limbs of the query's fixed-point form.
inline constexpr std::size_t kQueryLimbs = 3;

/**
 * Whether the integer dot_rows kernel applies to (Bits, N, G): 2- and 4-bit
 * planar codes in one group per row of N = 64 or 128 elements (the cache's
 * default). 8-bit codes are left to the float kernel: vpmaddubsw's saturating
 * 16-bit pair sums would overflow (2 * 255 * 128 > 2^15).
 */
template <int Bits, std::size_t N, std::size_t G>
inline constexpr bool kIntegerDotRows = (Bits == 2 || Bits == 4) && (N == 64 || N == 128) && G == N;

/**
 * The query on a fixed-point grid: q_i ~ step * Q_i, |Q_i| <= 2^22, split into
 * balanced signed-byte limbs Q_i = sum_l 256^l * limb[l]_i (the top limb within
 * [-65, 65]). step is a power of two, so the only error is the rounding of
 * Q_i: at most step / 2 <= 2^-22 * max|q| per element.
 */
template <std::size_t N>
struct QueryLimbs {
  __m256i limb[kQueryLimbs][N / 32];  // [limb][N / 32] 32 signed bytes each, element order
  float step = 0.0f;                  // q_i ~ step * Q_i
  float sum = 0.0f;                   // sum_i q_i
};

/// @return false (and leaves `out` unset) when q is not finite or max|q| is too
/// small for the grid's power-of-two step: the float kernel takes such a query.
template <std::size_t N>
KVBITS_ALWAYS_INLINE bool make_query_limbs(const float* KVBITS_RESTRICT q, QueryLimbs<N>& out) noexcept {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 largest = _mm256_setzero_ps();
  __m256 sum = _mm256_setzero_ps();
  for (std::size_t i = 0; i < N; i += 8) {
    const __m256 x = _mm256_loadu_ps(q + i);
    largest = _mm256_max_ps(largest, _mm256_andnot_ps(sign, x));
    sum = _mm256_add_ps(sum, x);
  }
  __m128 top4 = _mm_max_ps(_mm256_castps256_ps128(largest), _mm256_extractf128_ps(largest, 1));
  top4 = _mm_max_ps(top4, _mm_movehl_ps(top4, top4));
  const float top = _mm_cvtss_f32(_mm_max_ss(top4, _mm_movehdup_ps(top4)));
  __m128 sum4 = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
  sum4 = _mm_add_ps(sum4, _mm_movehl_ps(sum4, sum4));
  out.sum = _mm_cvtss_f32(_mm_add_ss(sum4, _mm_movehdup_ps(sum4)));
  // A NaN or infinity reaches the sum (vmaxps drops NaNs); below 2^-100 the
  // inverse step 2^(22 - e) would not be a finite float.
  if (!std::isfinite(out.sum) || !(top >= 0x1p-100f) || !(top <= 0x1p127f)) return false;
  int exponent = 0;
  static_cast<void>(std::frexp(top, &exponent));  // top = f * 2^exponent, f in [0.5, 1)
  out.step = std::ldexp(1.0f, exponent - 22);
  const __m256 inverse = _mm256_set1_ps(std::ldexp(1.0f, 22 - exponent));
  const __m256i half = _mm256_set1_epi32(128);
  const __m256i low_byte = _mm256_set1_epi32(255);
  // packs_epi32 then packs_epi16 leave 4-byte pieces in the order 0 2 4 6 1 3 5 7 of the 32 bytes.
  const __m256i piece_order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (std::size_t z = 0; z < N / 32; ++z) {
    __m256i digits[kQueryLimbs][4];  // [limb][8 elements] int32 digits of 32 elements
    for (std::size_t part = 0; part < 4; ++part) {
      __m256i rest = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(q + 32 * z + 8 * part), inverse));
      for (std::size_t l = 0; l < kQueryLimbs; ++l) {
        // The last limb takes what is left; the others are balanced digits in [-128, 127].
        const __m256i digit =
            l + 1 == kQueryLimbs
                ? rest
                : _mm256_sub_epi32(_mm256_and_si256(_mm256_add_epi32(rest, half), low_byte), half);
        digits[l][part] = digit;
        rest = _mm256_srai_epi32(_mm256_sub_epi32(rest, digit), 8);
      }
    }
    for (std::size_t l = 0; l < kQueryLimbs; ++l) {
      const __m256i low = _mm256_packs_epi32(digits[l][0], digits[l][1]);
      const __m256i high = _mm256_packs_epi32(digits[l][2], digits[l][3]);
      out.limb[l][z] = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(low, high), piece_order);
    }
  }
  return true;
}

/**
 * A row's N planar codes as N / 32 batches of 32 unsigned bytes in element
 * order, reading exactly the row's N * Bits / 8 code bytes. Field f of code
 * byte j is element f * C + j (C code bytes): for C >= 32 each load yields one
 * batch per field; for C = 16 the bytes go to both 128-bit lanes and each lane
 * shifts out the next field.
 */
template <int Bits, std::size_t N>
KVBITS_ALWAYS_INLINE void load_code_bytes(const std::uint8_t* codes, __m256i (&out)[N / 32]) noexcept {
  constexpr std::size_t bytes = N * Bits / 8;
  constexpr std::size_t fields = 8 / Bits;
  const __m256i mask = _mm256_set1_epi8(static_cast<char>(kMaxField<Bits>));
  if constexpr (bytes >= 32) {
    constexpr std::size_t loads = bytes / 32;
    unrolled(
        [&](auto load) {
          const __m256i v =
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes) + decltype(load)::value);
          unrolled(
              [&](auto field) {
                constexpr std::size_t f = decltype(field)::value;
                constexpr std::size_t z = f * loads + decltype(load)::value;
                if constexpr (f == 0) {
                  out[z] = _mm256_and_si256(v, mask);
                } else {
                  // 16-bit shifts pull the next byte's low bits into each byte's top: the mask drops them.
                  out[z] = _mm256_and_si256(_mm256_srli_epi16(v, static_cast<int>(f * Bits)), mask);
                }
              },
              std::make_index_sequence<fields>{});
        },
        std::make_index_sequence<loads>{});
  } else {
    static_assert(bytes == 16, "a row's code bytes fill a 128-bit lane");
    const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes)));
    for (std::size_t z = 0; z < N / 32; ++z) {
      const long long field = 2 * static_cast<long long>(z);  // lane 0's field; lane 1 takes the next
      const long long low = field * Bits;
      const long long high = (field + 1) * Bits;
      out[z] = _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_setr_epi64x(low, low, high, high)), mask);
    }
  }
}

/**
 * The exact integer sum_i Q_i * code_i of a row's widened codes, lane-partial,
 * as floats: the limbs' int32 lane sums recombined as sum_l 256^l * sums[l]
 * with at most one rounding per lane.
 */
template <std::size_t N>
KVBITS_ALWAYS_INLINE __m256 codes_dot_integer(const QueryLimbs<N>& query,
                                              const __m256i (&code)[N / 32]) noexcept {
  // A 16-bit pair sum is at most 2 * 15 * 128 = 3840 in magnitude and N / 32 <= 4 of them
  // add up in each 16-bit lane: no saturation. Per int32 lane, limb 0 and 1 sums stay
  // below 16 * 15 * 128 < 2^15 and the top limb's below 16 * 15 * 65, so
  // (top << 8) + middle is exact in int32 and in float.
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i sums[kQueryLimbs];  // [limb] int32 lanes
  for (std::size_t l = 0; l < kQueryLimbs; ++l) {
    __m256i pairs = _mm256_maddubs_epi16(code[0], query.limb[l][0]);
    for (std::size_t z = 1; z < N / 32; ++z) {
      pairs = _mm256_add_epi16(pairs, _mm256_maddubs_epi16(code[z], query.limb[l][z]));
    }
    sums[l] = _mm256_madd_epi16(pairs, ones);
  }
  const __m256i high = _mm256_add_epi32(_mm256_slli_epi32(sums[2], 8), sums[1]);
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(high), _mm256_set1_ps(256.0f), _mm256_cvtepi32_ps(sums[0]));
}

/**
 * dot_rows of Q queries (q [Q][N]) over the same one-group rows, scores of
 * query h at scores + h * score_stride: the queries become signed-byte limbs
 * once per call, each row's codes are widened to bytes once, without lookups,
 * for all of them, and the group trick q . (s c + m) = s (q . c) + m sum(q)
 * applies the scale and min once per row, for 8 rows at a time. A query's
 * scores are the same bits whatever Q and wherever a row falls in the call
 * (the 8 rows' reduction adds as xsimd's hadd does). @return false when a
 * query does not fit the grid (the caller then runs the float kernel).
 */
template <int Bits, std::size_t N, Scheme S, std::size_t Q>
inline bool dot_rows_integer(const float* KVBITS_RESTRICT q, const std::uint8_t* rows, std::size_t stride,
                             std::size_t count, float* KVBITS_RESTRICT scores,
                             std::size_t score_stride) noexcept {
  using A = xsimd::fma3<xsimd::avx2>;
  using F = typename Lanes<A>::F;
  constexpr std::size_t meta = metadata_bytes(S);
  constexpr std::size_t kRowBytes = meta + N * Bits / 8;
  QueryLimbs<N> query[Q];
  for (std::size_t h = 0; h < Q; ++h) {
    if (!make_query_limbs<N>(q + h * N, query[h])) return false;
  }
  const std::size_t ahead = prefetch_distance(stride);
  std::size_t r = 0;
  if (stride < kMaxGatherStride) {
    const auto offsets = row_offsets<A>(stride);
    for (; r + 8 <= count; r += 8) {
      F products[Q][8];  // [query][8 rows] lane-partial sum_i Q_i * code_i
      for (std::size_t k = 0; k < 8; ++k) {
        prefetch_row<kRowBytes>(rows, stride, count, r + k + ahead);
        __m256i code[N / 32];
        load_code_bytes<Bits, N>(rows + (r + k) * stride + meta, code);
        for (std::size_t h = 0; h < Q; ++h) products[h][k] = F(codes_dot_integer<N>(query[h], code));
      }
      F scale;
      F offset;
      load_affines<A, Bits, S>(rows + r * stride, stride, offsets, scale, offset);
      for (std::size_t h = 0; h < Q; ++h) {
        xsimd::fma(Lanes<A>::reduce_rows_as_hadd(products[h]), scale * F(query[h].step),
                   offset * F(query[h].sum))
            .store_unaligned(scores + h * score_stride + r);
      }
    }
  }
  for (; r < count; ++r) {
    const std::uint8_t* row = rows + r * stride;
    const auto affine = kvbits::detail::load_affine(row, S, Bits);
    __m256i code[N / 32];
    load_code_bytes<Bits, N>(row + meta, code);
    for (std::size_t h = 0; h < Q; ++h) {
      const float product = xsimd::hadd(F(codes_dot_integer<N>(query[h], code)));
      scores[h * score_stride + r] =
          multiply_add(product, affine.scale * query[h].step, affine.offset * query[h].sum);
    }
  }
  return true;
}

/// Whether dot_rows_integer takes rows of n elements in groups of G (0 = run-time).
template <int Bits, std::size_t G>
constexpr bool takes_rows(std::size_t n) noexcept {
  return (kIntegerDotRows<Bits, 128, G> && n == 128) || (kIntegerDotRows<Bits, 64, G> && n == 64);
}

/**
 * dot_rows_integer for `queries` queries (q [queries][n]) of the call's length
 * and scheme, in passes of with_query_pass. @return whether it ran; false when
 * the rows are not its own or a query does not fit the grid, and then the
 * caller runs each query through dot_rows, which gives the scores a pass
 * already wrote the same bits.
 */
template <int Bits, std::size_t G>
inline bool dot_rows(const float* KVBITS_RESTRICT q, std::size_t queries, std::size_t n, Scheme scheme,
                     const std::uint8_t* rows, std::size_t stride, std::size_t count,
                     float* KVBITS_RESTRICT scores, std::size_t score_stride) noexcept {
  bool done = false;
  const auto run = [&](auto length) {
    constexpr std::size_t kN = decltype(length)::value;
    if constexpr (kIntegerDotRows<Bits, kN, G>) {
      if (n != kN) return;
      with_scheme(scheme, [&](auto fixed) {
        done = true;
        for (std::size_t first = 0; done && first < queries;) {
          first += with_query_pass(queries - first, [&](auto pass) {
            done = dot_rows_integer<Bits, kN, fixed.value, pass.value>(
                q + first * kN, rows, stride, count, scores + first * score_stride, score_stride);
          });
        }
      });
    }
  };
  run(std::integral_constant<std::size_t, 128>{});
  run(std::integral_constant<std::size_t, 64>{});
  return done;
}
#endif  // KVBITS_INTEGER_DOT_AVX2

}  // namespace simd::avx2
}  // namespace KVBITS_ISA_NAMESPACE
}  // namespace kvbits::kernel
