// SPDX-License-Identifier: MIT
#pragma once

#include "kvbits/core/simd_headers.hpp"

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kvbits/config.hpp"
#include "kvbits/core/fp16.hpp"
#include "kvbits/core/isa_namespace.hpp"
#include "kvbits/core/multiply_add.hpp"

// The per-architecture primitives under the xsimd kernels: what xsimd 8.1 does
// not offer portably (widening byte loads, narrowing byte stores, horizontal
// min/max, fp16 conversion, bit-stream unpacking). Everything else is xsimd.
//
// The architecture is fixed at compile time by the compiler's target, as
// xsimd::default_arch is: on x86 SSE4.2, AVX2 (+FMA) and AVX-512 (F+BW); on
// little-endian AArch64 NEON (baseline there, 128-bit batches). Elsewhere
// KVBITS_XSIMD_KERNELS is 0 and the scalar kernels are used.
#if (defined(__x86_64__) || defined(__i386__)) && defined(__SSE4_2__) && XSIMD_WITH_SSE4_2
#define KVBITS_XSIMD_KERNELS 1
#elif defined(__aarch64__) && !defined(__ARM_BIG_ENDIAN) && XSIMD_WITH_NEON64
#define KVBITS_XSIMD_KERNELS 1
#else
#define KVBITS_XSIMD_KERNELS 0
#endif

namespace kvbits::kernel {
inline namespace KVBITS_ISA_NAMESPACE {
namespace simd {

/// A list of xsimd architectures, widest first.
template <class... Archs>
struct ArchChain {};

/// Stands for "no SIMD architecture fits": the caller uses the scalar kernels.
struct NoArch {
  static constexpr const char* name() noexcept { return "none"; }
};

using kvbits::detail::multiply_add;

#if KVBITS_XSIMD_KERNELS && defined(__aarch64__)

using Arch128 = xsimd::neon64;
using Archs = ArchChain<Arch128>;
using WidestArch = Arch128;

#elif KVBITS_XSIMD_KERNELS

#if XSIMD_WITH_FMA3_SSE
using Arch128 = xsimd::fma3<xsimd::sse4_2>;
#else
using Arch128 = xsimd::sse4_2;
#endif
#if XSIMD_WITH_FMA3_AVX2
using Arch256 = xsimd::fma3<xsimd::avx2>;
#elif XSIMD_WITH_AVX2
using Arch256 = xsimd::avx2;
#endif

// Narrower architectures stay in the chain: a group whose code bytes do not
// fill a 512-bit register is still processed by 256- or 128-bit batches.
#if XSIMD_WITH_AVX512BW
using Archs = ArchChain<xsimd::avx512bw, Arch256, Arch128>;
using WidestArch = xsimd::avx512bw;
#elif XSIMD_WITH_AVX2
using Archs = ArchChain<Arch256, Arch128>;
using WidestArch = Arch256;
#else
using Archs = ArchChain<Arch128>;
using WidestArch = Arch128;
#endif

#endif

#if KVBITS_XSIMD_KERNELS

/// Little-endian value of exactly `Bytes` (<= 8) bytes at p, read as
/// power-of-two pieces so that no stack round trip (and no store-forwarding
/// stall) is needed.
template <std::size_t Bytes>
KVBITS_ALWAYS_INLINE std::uint64_t load_little_endian(const std::uint8_t* p) noexcept {
  static_assert(Bytes <= 8, "one 64-bit word");
  if constexpr (Bytes == 8) {
    std::uint64_t word;
    std::memcpy(&word, p, 8);
    return word;
  } else {
    std::uint64_t value = 0;
    constexpr std::size_t kAt2 = Bytes & 4;
    constexpr std::size_t kAt1 = kAt2 + (Bytes & 2);
    if constexpr ((Bytes & 4) != 0) {
      std::uint32_t piece;
      std::memcpy(&piece, p, 4);
      value = piece;
    }
    if constexpr ((Bytes & 2) != 0) {
      std::uint16_t piece;
      std::memcpy(&piece, p + kAt2, 2);
      value |= static_cast<std::uint64_t>(piece) << (8 * kAt2);
    }
    if constexpr ((Bytes & 1) != 0) value |= static_cast<std::uint64_t>(p[kAt1]) << (8 * kAt1);
    return value;
  }
}

/**
 * Lookup tables that unpack `Codes` consecutive codes of a little-endian bit
 * stream: code e lives in the 16-bit window starting at byte e*Bits/8, shifted
 * right by e*Bits%8 (Bits <= 6 so a code never spans three bytes).
 */
template <int Bits, std::size_t Codes>
struct StreamTables {
  static constexpr std::array<std::int8_t, 4 * Codes> kShuffle = [] {
    std::array<std::int8_t, 4 * Codes> table{};
    for (std::size_t e = 0; e < Codes; ++e) {
      const std::size_t byte = e * Bits / 8;
      table[4 * e] = static_cast<std::int8_t>(byte);
      table[4 * e + 1] = static_cast<std::int8_t>(byte + 1);
      table[4 * e + 2] = -1;  // pshufb (and TBL) write zero for a set top bit
      table[4 * e + 3] = -1;
    }
    return table;
  }();
  static constexpr std::array<std::int32_t, Codes> kShift = [] {
    std::array<std::int32_t, Codes> table{};
    for (std::size_t e = 0; e < Codes; ++e) table[e] = static_cast<std::int32_t>(e * Bits % 8);
    return table;
  }();
  // SSE has no per-lane variable shift: x >> s == (x * 2^(8-s)) >> 8 for 16-bit x.
  static constexpr std::array<std::int32_t, Codes> kMultiplier = [] {
    std::array<std::int32_t, Codes> table{};
    for (std::size_t e = 0; e < Codes; ++e) table[e] = std::int32_t{1} << (8 - e * Bits % 8);
    return table;
  }();
};

/**
 * Primitives for one architecture A with W float lanes.
 *  - load_bytes: W bytes -> W int32 lanes (zero-extended);
 *  - store_bytes: the low byte of each of W int32 lanes (values 0..255) -> W bytes;
 *  - reduce_min / reduce_max: horizontal min / max of W floats;
 *  - load_halves / store_halves: W binary16 <-> W floats (RNE; stores expect
 *    values already clamped to +-65504);
 *  - load_stream<Bits>: kStreamCodes codes of a bit-stream unit sequence ->
 *    kStreamCodes / W batches, reading exactly kStreamCodes * Bits / 8 bytes;
 *  - reduce_rows: W batches -> one batch whose lane k is the sum of batch k;
 *  - reduce_rows_as_hadd: the same, with lane k equal to xsimd::hadd(batch k)
 *    bit for bit (its pairs, in its order), so a kernel can reduce W rows at
 *    once and still give the scores of one horizontal add per row.
 */
template <class A, std::size_t W = xsimd::batch<float, A>::size>
struct Lanes;

#if defined(__aarch64__)

template <class A>
struct Lanes<A, 4> {
  using F = xsimd::batch<float, A>;
  using I = xsimd::batch<std::int32_t, A>;
  static constexpr std::size_t kWidth = 4;
  static constexpr std::size_t kStreamCodes = 8;

  static KVBITS_ALWAYS_INLINE I load_bytes(const std::uint8_t* p) noexcept {
    const uint8x8_t bytes = vcreate_u8(load_little_endian<4>(p));
    return I(vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(vmovl_u8(bytes)))));
  }
  static KVBITS_ALWAYS_INLINE void store_bytes(const I& v, std::uint8_t* p) noexcept {
    const uint16x4_t words = vmovn_u32(vreinterpretq_u32_s32(v));
    const std::uint32_t word = vget_lane_u32(vreinterpret_u32_u8(vmovn_u16(vcombine_u16(words, words))), 0);
    std::memcpy(p, &word, sizeof word);
  }
  static KVBITS_ALWAYS_INLINE float reduce_min(const F& v) noexcept { return vminvq_f32(v); }
  static KVBITS_ALWAYS_INLINE float reduce_max(const F& v) noexcept { return vmaxvq_f32(v); }
  // FCVTL widens exactly; FCVTN rounds to nearest even and keeps subnormals
  // under the default FPCR (round to nearest, no flush to zero), as F16C does.
  static KVBITS_ALWAYS_INLINE F load_halves(const std::uint8_t* p) noexcept {
    return F(vcvt_f32_f16(vreinterpret_f16_u64(vcreate_u64(load_little_endian<8>(p)))));
  }
  static KVBITS_ALWAYS_INLINE void store_halves(const F& v, std::uint8_t* p) noexcept {
    const std::uint64_t halves = vget_lane_u64(vreinterpret_u64_f16(vcvt_f16_f32(v)), 0);
    std::memcpy(p, &halves, sizeof halves);
  }
  template <int Bits>
  static KVBITS_ALWAYS_INLINE void load_stream(const std::uint8_t* p, I (&out)[2]) noexcept {
    using T = StreamTables<Bits, 8>;
    static_assert(Bits <= 8, "one 64-bit word of codes");
    // TBL writes zero for an out-of-range index, as pshufb does for a set top bit,
    // so the shuffle table serves both; NEON shifts right by a negative left shift.
    const uint8x16_t raw = vcombine_u8(vcreate_u8(load_little_endian<Bits>(p)), vdup_n_u8(0));
    const uint32x4_t mask = vdupq_n_u32((1u << Bits) - 1u);
    for (std::size_t half = 0; half < 2; ++half) {
      const uint8x16_t index =
          vld1q_u8(reinterpret_cast<const std::uint8_t*>(T::kShuffle.data() + 16 * half));
      const uint32x4_t window = vreinterpretq_u32_u8(vqtbl1q_u8(raw, index));
      const int32x4_t shift = vnegq_s32(vld1q_s32(T::kShift.data() + 4 * half));
      out[half] = I(vreinterpretq_s32_u32(vandq_u32(vshlq_u32(window, shift), mask)));
    }
  }
  static KVBITS_ALWAYS_INLINE F reduce_rows(const F (&rows)[kWidth]) noexcept { return xsimd::haddp(rows); }
  static KVBITS_ALWAYS_INLINE F reduce_rows_as_hadd(const F (&rows)[kWidth]) noexcept {
    alignas(16) float sums[kWidth];
    for (std::size_t k = 0; k < kWidth; ++k) sums[k] = xsimd::hadd(rows[k]);
    return F::load_aligned(sums);
  }
};

#else

/// Loads exactly `Bytes` bytes from p into the low bytes of a zeroed register
/// (never reads past the end of a packed vector).
template <std::size_t Bytes>
KVBITS_ALWAYS_INLINE __m128i load_partial(const std::uint8_t* p) noexcept {
  static_assert(Bytes > 0 && Bytes <= 16, "one 128-bit register");
  const std::uint64_t low = load_little_endian<(Bytes < 8 ? Bytes : 8)>(p);
  std::uint64_t high = 0;
  if constexpr (Bytes > 8) high = load_little_endian<Bytes - 8>(p + 8);
  return _mm_set_epi64x(static_cast<long long>(high), static_cast<long long>(low));
}

template <class A>
struct Lanes<A, 4> {
  using F = xsimd::batch<float, A>;
  using I = xsimd::batch<std::int32_t, A>;
  static constexpr std::size_t kWidth = 4;
  static constexpr std::size_t kStreamCodes = 8;

  static KVBITS_ALWAYS_INLINE I load_bytes(const std::uint8_t* p) noexcept {
    std::int32_t word;
    std::memcpy(&word, p, sizeof word);
    return I(_mm_cvtepu8_epi32(_mm_cvtsi32_si128(word)));
  }
  static KVBITS_ALWAYS_INLINE void store_bytes(const I& v, std::uint8_t* p) noexcept {
    const __m128i words = _mm_packus_epi32(v, v);
    const std::int32_t word = _mm_cvtsi128_si32(_mm_packus_epi16(words, words));
    std::memcpy(p, &word, sizeof word);
  }
  static KVBITS_ALWAYS_INLINE float reduce_min(const F& v) noexcept {
    const __m128 m = _mm_min_ps(v, _mm_movehl_ps(v, v));
    return _mm_cvtss_f32(_mm_min_ss(m, _mm_shuffle_ps(m, m, 1)));
  }
  static KVBITS_ALWAYS_INLINE float reduce_max(const F& v) noexcept {
    const __m128 m = _mm_max_ps(v, _mm_movehl_ps(v, v));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)));
  }
#if defined(__F16C__)
  static KVBITS_ALWAYS_INLINE F load_halves(const std::uint8_t* p) noexcept {
    return F(_mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
  static KVBITS_ALWAYS_INLINE void store_halves(const F& v, std::uint8_t* p) noexcept {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
#endif
  template <int Bits>
  static KVBITS_ALWAYS_INLINE void load_stream(const std::uint8_t* p, I (&out)[2]) noexcept {
    using T = StreamTables<Bits, 8>;
    const __m128i raw = load_partial<Bits>(p);
    const __m128i mask = _mm_set1_epi32((1 << Bits) - 1);
    for (std::size_t half = 0; half < 2; ++half) {
      const __m128i window = _mm_shuffle_epi8(
          raw, _mm_loadu_si128(reinterpret_cast<const __m128i*>(T::kShuffle.data() + 16 * half)));
      const __m128i scaled = _mm_mullo_epi32(
          window, _mm_loadu_si128(reinterpret_cast<const __m128i*>(T::kMultiplier.data() + 4 * half)));
      out[half] = I(_mm_and_si128(_mm_srli_epi32(scaled, 8), mask));
    }
  }
  static KVBITS_ALWAYS_INLINE F reduce_rows(const F (&rows)[kWidth]) noexcept { return xsimd::haddp(rows); }
  // xsimd's SSE3 hadd: (x0 + x1) + (x2 + x3).
  static KVBITS_ALWAYS_INLINE F reduce_rows_as_hadd(const F (&rows)[kWidth]) noexcept {
    return F(_mm_hadd_ps(_mm_hadd_ps(rows[0], rows[1]), _mm_hadd_ps(rows[2], rows[3])));
  }
};

#if defined(__AVX2__)
template <class A>
struct Lanes<A, 8> {
  using F = xsimd::batch<float, A>;
  using I = xsimd::batch<std::int32_t, A>;
  static constexpr std::size_t kWidth = 8;
  static constexpr std::size_t kStreamCodes = 8;

  static KVBITS_ALWAYS_INLINE I load_bytes(const std::uint8_t* p) noexcept {
    return I(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
  static KVBITS_ALWAYS_INLINE void store_bytes(const I& v, std::uint8_t* p) noexcept {
    const __m256i x = v;
    const __m128i words = _mm_packus_epi32(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_packus_epi16(words, words));
  }
  static KVBITS_ALWAYS_INLINE float reduce_min(const F& v) noexcept {
    const __m256 x = v;
    return Lanes<Arch128>::reduce_min(_mm_min_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1)));
  }
  static KVBITS_ALWAYS_INLINE float reduce_max(const F& v) noexcept {
    const __m256 x = v;
    return Lanes<Arch128>::reduce_max(_mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1)));
  }
  static KVBITS_ALWAYS_INLINE F load_halves(const std::uint8_t* p) noexcept {
    return F(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
  static KVBITS_ALWAYS_INLINE void store_halves(const F& v, std::uint8_t* p) noexcept {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
  template <int Bits>
  static KVBITS_ALWAYS_INLINE void load_stream(const std::uint8_t* p, I (&out)[1]) noexcept {
    using T = StreamTables<Bits, 8>;
    const __m256i raw = _mm256_broadcastsi128_si256(load_partial<Bits>(p));
    const __m256i window =
        _mm256_shuffle_epi8(raw, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(T::kShuffle.data())));
    const __m256i shifted =
        _mm256_srlv_epi32(window, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(T::kShift.data())));
    out[0] = I(_mm256_and_si256(shifted, _mm256_set1_epi32((1 << Bits) - 1)));
  }
  static KVBITS_ALWAYS_INLINE F reduce_rows(const F (&rows)[kWidth]) noexcept { return xsimd::haddp(rows); }
  // xsimd's AVX hadd: y_j = x_j + x_(j+4), then (y0 + y1) + (y2 + y3).
  static KVBITS_ALWAYS_INLINE F reduce_rows_as_hadd(const F (&rows)[kWidth]) noexcept {
    __m256 y[4];  // [pairs] y of rows 2i | 2i+1, 4 lanes each
    for (std::size_t i = 0; i < 4; ++i) {
      y[i] = _mm256_add_ps(_mm256_permute2f128_ps(rows[2 * i], rows[2 * i + 1], 0x20),
                           _mm256_permute2f128_ps(rows[2 * i], rows[2 * i + 1], 0x31));
    }
    // Rows 0, 2, 4, 6 in the low half, 1, 3, 5, 7 in the high half.
    const __m256 sums = _mm256_hadd_ps(_mm256_hadd_ps(y[0], y[1]), _mm256_hadd_ps(y[2], y[3]));
    return F(_mm256_permutevar8x32_ps(sums, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  }
};
#endif

#if defined(__AVX512F__) && defined(__AVX512BW__)
template <class A>
struct Lanes<A, 16> {
  using F = xsimd::batch<float, A>;
  using I = xsimd::batch<std::int32_t, A>;
  static constexpr std::size_t kWidth = 16;
  static constexpr std::size_t kStreamCodes = 16;

  static KVBITS_ALWAYS_INLINE I load_bytes(const std::uint8_t* p) noexcept {
    return I(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
  static KVBITS_ALWAYS_INLINE void store_bytes(const I& v, std::uint8_t* p) noexcept {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_cvtepi32_epi8(v));
  }
  static KVBITS_ALWAYS_INLINE float reduce_min(const F& v) noexcept { return _mm512_reduce_min_ps(v); }
  static KVBITS_ALWAYS_INLINE float reduce_max(const F& v) noexcept { return _mm512_reduce_max_ps(v); }
  static KVBITS_ALWAYS_INLINE F load_halves(const std::uint8_t* p) noexcept {
    return F(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))));
  }
  static KVBITS_ALWAYS_INLINE void store_halves(const F& v, std::uint8_t* p) noexcept {
    // The masked form: GCC's unoptimised macro for the plain one passes -1 as a mask.
    const __m256i halves = _mm512_mask_cvtps_ph(_mm256_setzero_si256(), static_cast<__mmask16>(0xFFFFu), v,
                                                _MM_FROUND_TO_NEAREST_INT);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), halves);
  }
  template <int Bits>
  static KVBITS_ALWAYS_INLINE void load_stream(const std::uint8_t* p, I (&out)[1]) noexcept {
    using T = StreamTables<Bits, 16>;
    // Every 128-bit lane sees all 2 * Bits bytes, so the table can use absolute
    // byte indices. (The maskz form avoids GCC's undefined-source warning.)
    const __m512i raw = _mm512_maskz_broadcast_i32x4(0xFFFF, load_partial<2 * Bits>(p));
    const __m512i window = _mm512_shuffle_epi8(raw, _mm512_loadu_si512(T::kShuffle.data()));
    const __m512i shifted = _mm512_srlv_epi32(window, _mm512_loadu_si512(T::kShift.data()));
    out[0] = I(_mm512_and_si512(shifted, _mm512_set1_epi32((1 << Bits) - 1)));
  }
  /// Lane k of the result is the minimum (Max = false) or maximum of batch k.
  template <bool Max>
  static KVBITS_ALWAYS_INLINE __m128 reduce_four(const F (&v)[4]) noexcept {
    const auto pick = [](__m512 a, __m512 b) { return Max ? _mm512_max_ps(a, b) : _mm512_min_ps(a, b); };
    // [v0 | v1] and [v2 | v3] in 8 lanes each, then [v0 | v1 | v2 | v3] in 4 lanes each.
    const __m512 a0 = pick(_mm512_shuffle_f32x4(v[0], v[1], _MM_SHUFFLE(1, 0, 1, 0)),
                           _mm512_shuffle_f32x4(v[0], v[1], _MM_SHUFFLE(3, 2, 3, 2)));
    const __m512 a1 = pick(_mm512_shuffle_f32x4(v[2], v[3], _MM_SHUFFLE(1, 0, 1, 0)),
                           _mm512_shuffle_f32x4(v[2], v[3], _MM_SHUFFLE(3, 2, 3, 2)));
    __m512 b = pick(_mm512_shuffle_f32x4(a0, a1, _MM_SHUFFLE(2, 0, 2, 0)),
                    _mm512_shuffle_f32x4(a0, a1, _MM_SHUFFLE(3, 1, 3, 1)));
    b = pick(b, _mm512_permute_ps(b, _MM_SHUFFLE(2, 3, 0, 1)));
    b = pick(b, _mm512_permute_ps(b, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm512_castps512_ps128(
        _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12), b));
  }
  // xsimd 8.1's AVX-512 haddp returns the sums in a permuted lane order, so
  // this is a transposing tree of its own: halve every batch while pairing
  // batches, four times, then one permute restores the row order.
  static KVBITS_ALWAYS_INLINE F reduce_rows(const F (&rows)[kWidth]) noexcept {
    __m512 a[8];
    for (std::size_t k = 0; k < 8; ++k) {
      a[k] = _mm512_add_ps(_mm512_shuffle_f32x4(rows[k], rows[k + 8], _MM_SHUFFLE(1, 0, 1, 0)),
                           _mm512_shuffle_f32x4(rows[k], rows[k + 8], _MM_SHUFFLE(3, 2, 3, 2)));
    }
    __m512 b[4];
    for (std::size_t k = 0; k < 4; ++k) {
      b[k] = _mm512_add_ps(_mm512_shuffle_f32x4(a[k], a[k + 4], _MM_SHUFFLE(2, 0, 2, 0)),
                           _mm512_shuffle_f32x4(a[k], a[k + 4], _MM_SHUFFLE(3, 1, 3, 1)));
    }
    __m512 c[2];
    for (std::size_t k = 0; k < 2; ++k) {
      c[k] = _mm512_add_ps(_mm512_shuffle_ps(b[k], b[k + 2], _MM_SHUFFLE(1, 0, 1, 0)),
                           _mm512_shuffle_ps(b[k], b[k + 2], _MM_SHUFFLE(3, 2, 3, 2)));
    }
    // Lane p now holds the sum of row {0,2,1,3,8,10,9,11,4,6,5,7,12,14,13,15}[p]
    // (the permutation is its own inverse).
    const __m512 sums = _mm512_add_ps(_mm512_shuffle_ps(c[0], c[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                      _mm512_shuffle_ps(c[0], c[1], _MM_SHUFFLE(3, 1, 3, 1)));
    return F(
        _mm512_permutexvar_ps(_mm512_setr_epi32(0, 2, 1, 3, 8, 10, 9, 11, 4, 6, 5, 7, 12, 14, 13, 15), sums));
  }
  // xsimd's AVX-512 hadd: z_j = x_j + x_(j+8), then its AVX hadd of z.
  static KVBITS_ALWAYS_INLINE F reduce_rows_as_hadd(const F (&rows)[kWidth]) noexcept {
    __m512 z[8];  // [pairs] z of rows 2i | 2i+1, 8 lanes each
    for (std::size_t i = 0; i < 8; ++i) {
      z[i] = _mm512_add_ps(_mm512_shuffle_f32x4(rows[2 * i], rows[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                           _mm512_shuffle_f32x4(rows[2 * i], rows[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    }
    __m512 y[4];  // [quads] y_j = z_j + z_(j+4) of rows 4i .. 4i+3, 4 lanes each
    for (std::size_t i = 0; i < 4; ++i) {
      y[i] = _mm512_add_ps(_mm512_shuffle_f32x4(z[2 * i], z[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                           _mm512_shuffle_f32x4(z[2 * i], z[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    }
    // _mm256_hadd_ps in every 128-bit block: [a0 + a1, a2 + a3, b0 + b1, b2 + b3].
    const auto hadd = [](__m512 a, __m512 b) {
      return _mm512_add_ps(_mm512_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                           _mm512_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
    };
    // Block b holds rows b, 4 + b, 8 + b, 12 + b.
    const __m512 sums = hadd(hadd(y[0], y[1]), hadd(y[2], y[3]));
    return F(
        _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), sums));
  }
};
#endif

#endif  // __aarch64__

#else

// No architecture is ever picked, but the dispatch templates still name Lanes.
template <class A>
struct Lanes;

using Archs = ArchChain<>;
using WidestArch = NoArch;

#endif  // KVBITS_XSIMD_KERNELS

}  // namespace simd
}  // namespace KVBITS_ISA_NAMESPACE
}  // namespace kvbits::kernel
