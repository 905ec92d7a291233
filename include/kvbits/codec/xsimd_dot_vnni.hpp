// SPDX-License-Identifier: MIT
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
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

// Integer dot_rows on AVX-512 VNNI: the query as signed-byte limbs of a
// fixed-point grid, the codes widened to bytes, vpdpbusd for exact int32 sums.
namespace kvbits::kernel {
inline namespace KVBITS_ISA_NAMESPACE {
namespace simd {

#if KVBITS_XSIMD_KERNELS

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
/// Signed-byte limbs of the query's fixed-point form in the integer row kernels.
inline constexpr std::size_t kQueryLimbs = 3;

/**
 * Whether the integer dot_rows kernel applies to (Bits, N, G), N = 64 or 128:
 * planar codes (2/4/8 bits) in one group per row (the cache's default: a row's
 * codes fill whole batches of 64 bytes once each field has its own byte) or in
 * groups of 32 or 64 elements, whose codes fill half or all of a batch; 3-bit
 * bit streams in groups of 32 or 64 elements.
 */
template <int Bits, std::size_t N, std::size_t G>
inline constexpr bool kIntegerDotRows = (kPlanar<Bits> || Bits == 3) && (N == 64 || N == 128) &&
                                        ((kPlanar<Bits> && G == N) || G == 32 || G == 64) && G <= N;

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

/// The limbs' int32 lane sums recombined as sum_l 256^l * sums[l], with at most one rounding per lane.
KVBITS_ALWAYS_INLINE __m512 limbs_to_float(const __m512i (&sums)[kQueryLimbs]) noexcept {
  // Per lane, limb 0 and 1 sums are below 2 * 4 * 128 * 255 < 2^18 and the top
  // limb's below 2 * 4 * 65 * 255 < 2^17: (top << 8) + middle is exact in int32.
  const __m512i high = _mm512_add_epi32(_mm512_slli_epi32(sums[2], 8), sums[1]);
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(high), _mm512_set1_ps(256.0f), _mm512_cvtepi32_ps(sums[0]));
}

/**
 * The codes of two 32-element groups as one batch of 64 unsigned bytes in
 * element order: group `first` in the low 256 bits, `second` in the high. A
 * group's C = 4 * Bits code bytes are repeated over its 32 bytes and copy k
 * shifts out field k (as load_code_bytes does for one group of a whole row).
 */
template <int Bits>
KVBITS_ALWAYS_INLINE __m512i load_code_pair(const std::uint8_t* first, const std::uint8_t* second) noexcept {
  constexpr std::size_t bytes = 32 * Bits / 8;
  __m256i low;
  __m256i high;
  if constexpr (bytes == 32) {
    low = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(first));
    high = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(second));
  } else if constexpr (bytes == 16) {
    low = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(first)));
    high = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(second)));
  } else {
    static_assert(bytes == 8, "a 32-element group has 8, 16 or 32 code bytes");
    std::int64_t a = 0;
    std::int64_t b = 0;
    std::memcpy(&a, first, sizeof a);
    std::memcpy(&b, second, sizeof b);
    low = _mm256_set1_epi64x(a);
    high = _mm256_set1_epi64x(b);
  }
  const __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(low), high, 1);
  if constexpr (Bits == 8) {
    return v;
  } else {
    alignas(64) std::int16_t shifts[32];  // [32 words] the field shift of each word's copy
    for (std::size_t w = 0; w < 32; ++w) shifts[w] = static_cast<std::int16_t>((w % 16) * 2 / bytes * Bits);
    const __m512i mask = _mm512_set1_epi8(static_cast<char>(kMaxField<Bits>));
    return _mm512_and_si512(_mm512_srlv_epi16(v, _mm512_load_si512(shifts)), mask);
  }
}

/**
 * 64 codes of a 3-bit bit stream as 64 unsigned bytes in element order, from
 * `src` whose 128-bit lane k holds the 6 code bytes of elements 16k..16k+15
 * from byte offset[k] on. Code c of a lane sits at bits [3c, 3c + 3) of those
 * bytes: a pshufb puts the two bytes it touches into a 16-bit word, and
 * variable word shifts move even codes to bits 0-2 and odd codes to bits
 * 8-10 (AVX-512BW only; vpmultishiftqb would need VBMI, which the ISA
 * namespace does not name).
 */
KVBITS_ALWAYS_INLINE __m512i widen_codes3(__m512i src, const std::size_t (&offset)[4]) noexcept {
  alignas(64) std::uint8_t even_bytes[64];   // [lane][word] the two bytes holding code 2w
  alignas(64) std::uint8_t odd_bytes[64];    // [lane][word] the two bytes holding code 2w + 1
  alignas(64) std::uint16_t even_shift[32];  // [lane][word] right shift of code 2w to bit 0
  alignas(64) std::uint16_t odd_shift[32];   // [lane][word] left shift of code 2w + 1 to bit 8
  for (std::size_t lane = 0; lane < 4; ++lane) {
    for (std::size_t w = 0; w < 8; ++w) {
      const std::size_t even = 3 * (2 * w);
      const std::size_t odd = 3 * (2 * w + 1);
      even_bytes[16 * lane + 2 * w] = static_cast<std::uint8_t>(offset[lane] + even / 8);
      even_bytes[16 * lane + 2 * w + 1] = static_cast<std::uint8_t>(offset[lane] + even / 8 + 1);
      odd_bytes[16 * lane + 2 * w] = static_cast<std::uint8_t>(offset[lane] + odd / 8);
      odd_bytes[16 * lane + 2 * w + 1] = static_cast<std::uint8_t>(offset[lane] + odd / 8 + 1);
      even_shift[8 * lane + w] = static_cast<std::uint16_t>(even % 8);
      odd_shift[8 * lane + w] = static_cast<std::uint16_t>(8 - odd % 8);
    }
  }
  const __m512i low = _mm512_srlv_epi16(_mm512_shuffle_epi8(src, _mm512_load_si512(even_bytes)),
                                        _mm512_load_si512(even_shift));
  const __m512i high =
      _mm512_sllv_epi16(_mm512_shuffle_epi8(src, _mm512_load_si512(odd_bytes)), _mm512_load_si512(odd_shift));
  return _mm512_or_si512(_mm512_and_si512(low, _mm512_set1_epi16(0x0007)),
                         _mm512_and_si512(high, _mm512_set1_epi16(0x0700)));
}

/// The 64 codes of one 3-bit group of 64 elements (24 code bytes, read exactly) as bytes.
KVBITS_ALWAYS_INLINE __m512i load_codes3_group(const std::uint8_t* codes) noexcept {
  // Lane k takes qwords (0, 1), (0, 1), (1, 2), (2, 3) of the code bytes: bytes 6k..6k+5 start at
  // offsets 0, 6, 4 and 2 of them.
  const __m512i bytes = _mm512_maskz_loadu_epi8(0xFFFFFFull, codes);
  const __m512i lanes = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 0, 1, 1, 2, 2, 3), bytes);
  constexpr std::size_t kOffsets[4] = {0, 6, 4, 2};
  return widen_codes3(lanes, kOffsets);
}

/// The codes of two 3-bit groups of 32 elements (12 code bytes each, read exactly) as 64 bytes.
KVBITS_ALWAYS_INLINE __m512i load_codes3_pair(const std::uint8_t* first,
                                              const std::uint8_t* second) noexcept {
  const __m128i a = _mm512_castsi512_si128(_mm512_maskz_loadu_epi8(0xFFFull, first));
  const __m128i b = _mm512_castsi512_si128(_mm512_maskz_loadu_epi8(0xFFFull, second));
  const __m512i lanes = _mm512_mask_broadcast_i32x4(_mm512_broadcast_i32x4(a), 0xFF00, b);
  constexpr std::size_t kOffsets[4] = {0, 6, 0, 6};
  return widen_codes3(lanes, kOffsets);
}

/// One 64-element batch of a row of G = 32 or 64-element groups: its codes
/// as unsigned bytes in element order, each lane's group scale, and the
/// offsets of the one (G = 64) or two (G = 32) groups it holds.
struct GroupBatch {
  __m512i code;
  __m512 scale;
  float offset[2];
};

/// Batch z of the row at `row` (blocks group_bytes apart, codes metadata_bytes into each).
template <int Bits, std::size_t G, Scheme S>
KVBITS_ALWAYS_INLINE GroupBatch load_group_batch(const std::uint8_t* row, std::size_t z) noexcept {
  static_assert(G == 32 || G == 64, "groups of 32 or 64 elements");
  constexpr std::size_t block_bytes = group_bytes(Bits, G, S);
  constexpr std::size_t meta = metadata_bytes(S);
  GroupBatch batch;
  if constexpr (G == 64) {
    const std::uint8_t* block = row + z * block_bytes;
    if constexpr (Bits == 3) {
      batch.code = load_codes3_group(block + meta);
    } else {
      __m512i one[1];
      load_code_bytes<Bits, 64>(block + meta, one);
      batch.code = one[0];
    }
    const auto affine = kvbits::detail::load_affine(block, S, Bits);
    batch.scale = _mm512_set1_ps(affine.scale);
    batch.offset[0] = affine.offset;
    batch.offset[1] = 0.0f;
  } else {
    const std::uint8_t* block = row + 2 * z * block_bytes;
    if constexpr (Bits == 3) {
      batch.code = load_codes3_pair(block + meta, block + block_bytes + meta);
    } else {
      batch.code = load_code_pair<Bits>(block + meta, block + block_bytes + meta);
    }
    const auto first = kvbits::detail::load_affine(block, S, Bits);
    const auto second = kvbits::detail::load_affine(block + block_bytes, S, Bits);
    batch.scale = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(first.scale), _mm512_set1_ps(second.scale));
    batch.offset[0] = first.offset;
    batch.offset[1] = second.offset;
  }
  return batch;
}

/**
 * A row of N / G groups (its batches, load_group_batch) against one query:
 * sum_g scale_g * sum_{i in g} Q_i code_i as lane-partial floats, and
 * sum_g offset_g * q_sums[g] in `offset_total`. The int32 sums of each batch
 * hold whole groups in whole lanes (lanes 0-7 and 8-15 for G = 32), so each
 * batch's floats are scaled lane by lane with its groups' scales.
 */
template <std::size_t N, std::size_t G>
KVBITS_ALWAYS_INLINE __m512 group_batches_dot(const QueryLimbs<N>& query, const GroupBatch (&batches)[N / 64],
                                              const float* q_sums, float& offset_total) noexcept {
  __m512 total = _mm512_setzero_ps();
  float offsets = 0.0f;
  for (std::size_t z = 0; z < N / 64; ++z) {
    __m512i sums[kQueryLimbs];  // [limb] int32 lanes of this batch
    for (std::size_t l = 0; l < kQueryLimbs; ++l) {
      sums[l] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), batches[z].code, query.limb[l][z]);
    }
    total = _mm512_fmadd_ps(limbs_to_float(sums), batches[z].scale, total);
    if constexpr (G == 64) {
      offsets = multiply_add(batches[z].offset[0], q_sums[z], offsets);
    } else {
      offsets = multiply_add(batches[z].offset[0], q_sums[2 * z], offsets);
      offsets = multiply_add(batches[z].offset[1], q_sums[2 * z + 1], offsets);
    }
  }
  offset_total = offsets;
  return total;
}

/// The batches of the row at `row` (load_group_batch).
template <int Bits, std::size_t N, std::size_t G, Scheme S>
KVBITS_ALWAYS_INLINE void load_group_batches(const std::uint8_t* row,
                                             GroupBatch (&batches)[N / 64]) noexcept {
  for (std::size_t z = 0; z < N / 64; ++z) batches[z] = load_group_batch<Bits, G, S>(row, z);
}

/// The sums of q [N] over each group of G elements, into q_sums [N / G].
template <std::size_t N, std::size_t G>
KVBITS_ALWAYS_INLINE void group_sums(const float* q, float* q_sums) noexcept {
  for (std::size_t g = 0; g < N / G; ++g) {
    __m512 sum = _mm512_loadu_ps(q + g * G);
    for (std::size_t i = 16; i < G; i += 16) sum = _mm512_add_ps(sum, _mm512_loadu_ps(q + g * G + i));
    q_sums[g] = _mm512_reduce_add_ps(sum);
  }
}

/// The exact integer sum_i Q_i * code_i of a row's widened codes (load_code_bytes),
/// lane-partial, as floats (the limbs' int32 sums recombined with at most one
/// rounding per lane).
template <std::size_t N>
KVBITS_ALWAYS_INLINE __m512 codes_dot_integer(const QueryLimbs<N>& query,
                                              const __m512i (&code)[N / 64]) noexcept {
  __m512i sums[kQueryLimbs];  // [limb] int32 lanes
  for (std::size_t l = 0; l < kQueryLimbs; ++l) {
    sums[l] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), code[0], query.limb[l][0]);
    for (std::size_t z = 1; z < N / 64; ++z) {
      sums[l] = _mm512_dpbusd_epi32(sums[l], code[z], query.limb[l][z]);
    }
  }
  return limbs_to_float(sums);
}

/// codes_dot_integer of the row whose codes start at `codes`.
template <int Bits, std::size_t N>
KVBITS_ALWAYS_INLINE __m512 row_dot_integer(const QueryLimbs<N>& query, const std::uint8_t* codes) noexcept {
  __m512i code[N / 64];
  load_code_bytes<Bits, N>(codes, code);
  return codes_dot_integer<N>(query, code);
}

/**
 * dot_rows_integer (below) for rows of N / G groups of G = 32 or 64 elements:
 * the same integer products, each group's scale applied to its own lanes
 * before the 16 rows' transposing reduction, and the offset terms added per
 * row (group_batches_dot). @return false when the query does not fit the
 * grid (the caller then runs the float kernel).
 */
template <int Bits, std::size_t N, std::size_t G, Scheme S>
inline bool dot_rows_integer_groups(const float* KVBITS_RESTRICT q, const std::uint8_t* rows,
                                    std::size_t stride, std::size_t count,
                                    float* KVBITS_RESTRICT scores) noexcept {
  using A = xsimd::avx512bw;
  using F = typename Lanes<A>::F;
  QueryLimbs<N> query;
  if (!make_query_limbs<N>(q, query)) return false;
  constexpr std::size_t kGroups = N / G;
  constexpr std::size_t kRowBytes = kGroups * group_bytes(Bits, G, S);
  float q_sums[kGroups];  // [groups] sum of the query over each group
  group_sums<N, G>(q, q_sums);
  const std::size_t ahead = prefetch_distance(stride);
  const F step(query.step);
  std::size_t r = 0;
  for (; r + 16 <= count; r += 16) {
    F products[16];                 // [16 rows] lane-partial sums of scale_g * Q_i * code_i
    alignas(64) float offsets[16];  // [16 rows] sum_g offset_g * q_sums[g]
    for (std::size_t k = 0; k < 16; ++k) {
      prefetch_row<kRowBytes>(rows, stride, count, r + k + ahead);
      GroupBatch batches[N / 64];
      load_group_batches<Bits, N, G, S>(rows + (r + k) * stride, batches);
      products[k] = F(group_batches_dot<N, G>(query, batches, q_sums, offsets[k]));
    }
    xsimd::fma(Lanes<A>::reduce_rows(products), step, F::load_aligned(offsets)).store_unaligned(scores + r);
  }
  for (; r < count; ++r) {
    GroupBatch batches[N / 64];
    load_group_batches<Bits, N, G, S>(rows + r * stride, batches);
    float offset = 0.0f;
    const __m512 product = group_batches_dot<N, G>(query, batches, q_sums, offset);
    scores[r] = multiply_add(_mm512_reduce_add_ps(product), query.step, offset);
  }
  return true;
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
    scores[r] = multiply_add(product, affine.scale * query.step, affine.offset * q_sum);
  }
  return true;
}

#endif

#endif  // KVBITS_XSIMD_KERNELS

}  // namespace simd
}  // namespace KVBITS_ISA_NAMESPACE
}  // namespace kvbits::kernel
