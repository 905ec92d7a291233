// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "kvbits/codec/format.hpp"
#include "kvbits/codec/group_params.hpp"
#include "kvbits/codec/reference.hpp"
#include "kvbits/codec/xsimd_dispatch.hpp"
#include "kvbits/codec/xsimd_lanes.hpp"
#include "kvbits/config.hpp"
#include "kvbits/core/fp16.hpp"
#include "kvbits/core/isa_namespace.hpp"

// Encoders for AVX-512 builds that compute the parameters of four groups at
// once with vector F16C conversions: bit-exact with the reference (the same
// operations in the same order), several times faster than one scalar
// parameter chain per group when groups are short.
namespace kvbits::kernel {
inline namespace KVBITS_ISA_NAMESPACE {
namespace simd {

#if KVBITS_XSIMD_KERNELS
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__F16C__)
/**
 * The parameters of four groups at once from their ranges, lane k = group k:
 * the same operations as detail::asymmetric_params / symmetric_params, in
 * vectors. F16C's directed-rounding modes are exactly float_to_half_down / _up
 * once the input is clamped to +-65504 (the scalar helpers saturate there),
 * and the divisions are IEEE-exact in both, so the bytes are identical.
 */
struct ParamsFour {
  __m128i scale_half;  // 4 x fp16 in the low 64 bits
  __m128i min_half;    // 4 x fp16 in the low 64 bits (asymmetric only)
  __m128 min;          // half_to_float(min_half); 0 for symmetric
  __m128 inverse;      // 1 / scale, 0 for a constant group
};

KVBITS_ALWAYS_INLINE ParamsFour asymmetric_params_four(__m128 lo, __m128 hi, int bits) noexcept {
  const __m128 top = _mm_set1_ps(kHalfMax);
  const __m128 zero = _mm_setzero_ps();
  hi = _mm_add_ps(hi, zero);  // -0 -> +0, as the scalar helper
  ParamsFour p{};
  // Rounding down, a finite value above 65504 already gives 65504; only the
  // bottom needs the clamp (it would round to -Inf).
  const __m128i min_half =
      _mm_cvtps_ph(_mm_max_ps(lo, _mm_set1_ps(-kHalfMax)), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  // The scalar helper adds +0 to lo first; that only matters for lo = -0, which
  // rounds to 0x8000. Fixing the stored bits keeps the +0 add off the critical
  // path: min = -0 gives the same range (hi - -0 == hi - +0) and the same codes.
  p.min_half =
      _mm_andnot_si128(_mm_cmpeq_epi16(min_half, _mm_set1_epi16(static_cast<short>(0x8000))), min_half);
  p.min = _mm_cvtph_ps(min_half);
  // min(hi, top) is the scalar "hi < kHalfMax ? hi : kHalfMax" (minps returns its second operand unless hi <
  // top).
  const __m128 range = _mm_sub_ps(_mm_min_ps(hi, top), p.min);
  const __m128 step = _mm_div_ps(range, _mm_set1_ps(static_cast<float>(kvbits::detail::max_code(bits))));
  p.scale_half = _mm_cvtps_ph(_mm_min_ps(step, top), _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC);
  const __m128 scale = _mm_cvtph_ps(p.scale_half);
  p.inverse = _mm_and_ps(_mm_div_ps(_mm_set1_ps(1.0f), scale), _mm_cmpgt_ps(scale, zero));
  return p;
}

KVBITS_ALWAYS_INLINE ParamsFour symmetric_params_four(__m128 lo, __m128 hi, int bits) noexcept {
  const __m128 zero = _mm_setzero_ps();
  hi = _mm_add_ps(hi, zero);  // -0 -> +0, as the scalar helper
  const __m128 negated_lo = _mm_sub_ps(zero, lo);
  // The value of largest magnitude is hi on a tie (hi >= -lo), as in the scalar helper.
  const __m128 positive = _mm_cmpge_ps(hi, negated_lo);
  const __m128 magnitude = _mm_blendv_ps(negated_lo, hi, positive);
  const __m128 step =
      _mm_mul_ps(_mm_min_ps(magnitude, _mm_set1_ps(kHalfMax)),
                 _mm_set1_ps(1.0f / static_cast<float>(kvbits::detail::symmetric_offset(bits))));
  const __m128i step_half = _mm_cvtps_ph(step, _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC);
  // Sign bit for a positive m unless the step is zero: the scalar helper's sign-magnitude negation.
  const __m128i negative = _mm_andnot_si128(_mm_cmpeq_epi16(step_half, _mm_setzero_si128()),
                                            _mm_packs_epi32(_mm_castps_si128(positive), _mm_setzero_si128()));
  ParamsFour p{};
  p.scale_half = _mm_or_si128(step_half, _mm_and_si128(negative, _mm_set1_epi16(static_cast<short>(0x8000))));
  p.min_half = _mm_setzero_si128();
  p.min = zero;
  const __m128 scale = _mm_cvtph_ps(p.scale_half);
  p.inverse = _mm_andnot_ps(_mm_cmpeq_ps(scale, zero), _mm_div_ps(_mm_set1_ps(1.0f), scale));
  return p;
}

/**
 * The parameters of four groups from their ranges under scheme S, and each group's block
 * metadata (little-endian fp16 scale, then fp16 min when asymmetric) in metadata[k]
 * (4 words, 16-byte aligned).
 */
template <int Bits, Scheme S>
KVBITS_ALWAYS_INLINE ParamsFour params_four(__m128 lows, __m128 highs, std::uint32_t* metadata) noexcept {
  ParamsFour p;
  if constexpr (S == Scheme::asymmetric) {
    p = asymmetric_params_four(lows, highs, Bits);
  } else {
    p = symmetric_params_four(lows, highs, Bits);
  }
  _mm_store_si128(reinterpret_cast<__m128i*>(metadata), _mm_unpacklo_epi16(p.scale_half, p.min_half));
  return p;
}

/// Whether encode_fixed handles (A, Bits, G): 16-lane batches, planar codes
/// whose parameters come from the range alone (not the 2-bit search), a
/// compile-time group of whole batches of code bytes.
template <class A, int Bits, std::size_t G>
inline constexpr bool kFixedEncode =
    Lanes<A>::kWidth == 16 && kPlanar<Bits> && !kvbits::detail::fits_by_search(Bits) && G != 0 &&
    G * Bits / 8 % 16 == 0;

/**
 * Lane-wise minimum (Max = false) or maximum of the Count batches of F::size floats from batch
 * First at x, as a tree: at G = n every vector is one group, and its range starts the chain
 * (parameters, then codes) that bounds the encode's latency. min and max are exact, so the
 * order changes no result.
 */
template <class F, bool Max, std::size_t First, std::size_t Count>
KVBITS_ALWAYS_INLINE F reduce_batches(const float* KVBITS_RESTRICT x) noexcept {
  if constexpr (Count == 1) {
    return F::load_unaligned(x + First * F::size);
  } else {
    const F a = reduce_batches<F, Max, First, Count / 2>(x);
    const F b = reduce_batches<F, Max, First + Count / 2, Count - Count / 2>(x);
    return Max ? xsimd::max(a, b) : xsimd::min(a, b);
  }
}

/// Which ends of the code range encode_fixed clamps to.
enum class Clamp { none, high, both };

/**
 * encode for a compile-time group on 16-lane batches: the ranges of four
 * groups are reduced together into one 128-bit vector, their parameters are
 * computed with vector F16C conversions (no scalar chain per group), then each
 * group is quantized as in encode_group.
 */
template <class A, int Bits, std::size_t G, Scheme S>
inline void encode_fixed(const float* KVBITS_RESTRICT x, std::size_t n,
                         std::uint8_t* KVBITS_RESTRICT out) noexcept {
  using L = Lanes<A>;
  using F = typename L::F;
  using I = typename L::I;
  constexpr std::size_t width = 16;
  constexpr std::size_t kBatches = G / width;
  constexpr std::size_t stride = G * Bits / 8;
  constexpr bool asymmetric = S == Scheme::asymmetric;
  static_assert(
      !kvbits::detail::sign_picks_grid(Bits),
      "encode_fixed has the mid-tread grid only: widths whose scale sign picks the grid need the search");
  constexpr std::size_t block_bytes = group_bytes(Bits, G, S);
  constexpr std::size_t meta = metadata_bytes(S);
  const std::size_t groups = n / G;
  const F low(asymmetric ? 0.0f : static_cast<float>(kvbits::detail::symmetric_low(Bits)));
  const F high(asymmetric ? static_cast<float>(kvbits::detail::max_code(Bits))
                          : static_cast<float>(kvbits::detail::symmetric_high(Bits)));
  const I bias(asymmetric ? 0 : kvbits::detail::symmetric_offset(Bits));
  for (std::size_t first = 0; first < groups; first += 4) {
    const std::size_t count = groups - first < 4 ? groups - first : 4;
    F lo[4];
    F hi[4];
    for (std::size_t k = 0; k < 4; ++k) {
      // Missing groups of the last chunk copy its first group's range (their results are
      // dropped) rather than reduce it again: at G = n, the cache's default, every vector is one
      // group, and reducing it four times had cost more than quantizing it.
      if (k >= count) {
        lo[k] = lo[0];
        hi[k] = hi[0];
        continue;
      }
      const float* xs = x + (first + k) * G;
      lo[k] = reduce_batches<F, false, 0, kBatches>(xs);
      hi[k] = reduce_batches<F, true, 0, kBatches>(xs);
    }
    const __m128 lows = L::template reduce_four<false>(lo);
    const __m128 highs = L::template reduce_four<true>(hi);
    alignas(16) std::uint32_t metadata[4];
    const ParamsFour p = params_four<Bits, S>(lows, highs, metadata);
    // Groups within +-kHalfMax (no clipped fp16 range) need less clamping, the rounded codes being
    // in range already. Asymmetric: min = fp16-down(lo) <= lo <= x makes x - min >= +0 (and
    // inverse >= 0), and scale >= range / max_code gives (x - min) * inverse <= max_code *
    // (1 + 2^-24)^3 < max_code + 1/2: no clamp. Symmetric: |scale| >= m / offset for the value m
    // of largest magnitude, so |x * inverse| <= offset * (1 + 2^-24)^2 and the low end (-offset,
    // where m lands) cannot be passed; only the other end clips (x = -m gives +offset): the high
    // clamp alone.
    const bool in_half_range = _mm_movemask_ps(_mm_and_ps(_mm_cmpge_ps(lows, _mm_set1_ps(-kHalfMax)),
                                                          _mm_cmple_ps(highs, _mm_set1_ps(kHalfMax)))) == 0xF;
    for (std::size_t k = 0; k < count; ++k) {
      const float* xs = x + (first + k) * G;
      std::uint8_t* block = out + (first + k) * block_bytes;
      std::memcpy(block, &metadata[k], meta);
      // Lane k of the parameters, broadcast in registers (no round trip through the stack).
      const __m512i lane = _mm512_set1_epi32(static_cast<int>(k));
      const F inverse(_mm512_permutexvar_ps(lane, _mm512_castps128_ps512(p.inverse)));
      [[maybe_unused]] const F min(_mm512_permutexvar_ps(lane, _mm512_castps128_ps512(p.min)));
      // detail::asymmetric_code / symmetric_code: clamping before rounding to the
      // integer bounds equals rounding then clamping, and cvtps2dq rounds like
      // std::nearbyint (the current mode). Only the clamps that can act (see in_half_range).
      const auto quantize = [&](auto clamp) {
        const auto code = [&](std::size_t i) {
          F scaled;
          if constexpr (asymmetric) {
            scaled = (F::load_unaligned(xs + i) - min) * inverse;
          } else {
            scaled = F::load_unaligned(xs + i) * inverse;  // x - 0 == x exactly
          }
          if constexpr (decltype(clamp)::value == Clamp::both) {
            scaled = xsimd::min(xsimd::max(scaled, low), high);
          } else if constexpr (decltype(clamp)::value == Clamp::high) {
            scaled = xsimd::min(scaled, high);
          }
          const I rounded(_mm512_cvtps_epi32(scaled));
          if constexpr (asymmetric) {
            return rounded;
          } else {
            return rounded + bias;
          }
        };
        unrolled(
            [&](auto chunk) {
              constexpr std::size_t j = decltype(chunk)::value * width;
              I packed = code(j);
              unrolled(
                  [&](auto field) {
                    constexpr std::size_t f = decltype(field)::value + 1;
                    packed = packed | (code(f * stride + j) << static_cast<std::int32_t>(f * Bits));
                  },
                  std::make_index_sequence<static_cast<std::size_t>(8 / Bits - 1)>{});
              L::store_bytes(packed, block + meta + j);
            },
            std::make_index_sequence<stride / width>{});
      };
      if (!in_half_range) {
        quantize(std::integral_constant<Clamp, Clamp::both>{});
      } else if constexpr (asymmetric) {
        quantize(std::integral_constant<Clamp, Clamp::none>{});
      } else {
        quantize(std::integral_constant<Clamp, Clamp::high>{});
      }
    }
  }
}

/// Whether encode_eights handles Bits: code widths up to a byte whose
/// parameters come from the range alone (not the 2- and 3-bit search).
template <int Bits>
inline constexpr bool kEightsEncode = Bits <= 8 && !kvbits::detail::fits_by_search(Bits);

/// Stores the codes of one group of 8 (byte k = code of element k) in the
/// group's code layout: planar fields for 4 and 8 bits, a bit stream otherwise.
template <int Bits>
KVBITS_ALWAYS_INLINE void store_eight_codes(std::uint64_t codes, std::uint8_t* KVBITS_RESTRICT out) noexcept {
  if constexpr (Bits == 8) {
    std::memcpy(out, &codes, 8);
  } else if constexpr (Bits == 4) {
    // Planar with a 4-byte stride: byte j holds element j low and element 4 + j high.
    const auto packed = static_cast<std::uint32_t>((codes & 0xFFFFFFFFu) | ((codes >> 32) << 4));
    std::memcpy(out, &packed, 4);
  } else {
    static_assert(!kPlanar<Bits>, "store_eight_codes: a planar width without its layout");
#if defined(__BMI2__)
    constexpr std::uint64_t kFieldMask = 0x0101010101010101ull * ((1u << Bits) - 1u);
    const std::uint64_t stream = _pext_u64(codes, kFieldMask);
    std::memcpy(out, &stream, Bits);  // little-endian: the low Bits bytes
#else
    std::uint8_t unpacked[8];
    std::memcpy(unpacked, &codes, 8);
    kernel::detail::pack_codes<Bits>(unpacked, 8, out);
#endif
  }
}

/// Lane i of the result is the minimum (Max = false) or maximum of the 8-lane half holding lane i.
template <bool Max>
KVBITS_ALWAYS_INLINE __m512 reduce_halves(__m512 v) noexcept {
  const auto pick = [](__m512 a, __m512 b) { return Max ? _mm512_max_ps(a, b) : _mm512_min_ps(a, b); };
  v = pick(v, _mm512_permute_ps(v, _MM_SHUFFLE(2, 3, 0, 1)));
  v = pick(v, _mm512_permute_ps(v, _MM_SHUFFLE(1, 0, 3, 2)));
  return pick(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
}

/**
 * encode for groups of 8 (head_dim 8 caches, or per-head groups of 8), n a
 * multiple of 16: two groups per 512-bit batch, the parameters of four groups
 * at once as in encode_fixed, so a group costs a few vector instructions
 * instead of a scalar parameter chain and a horizontal reduction of its own.
 */
template <int Bits, Scheme S>
inline void encode_eights(const float* KVBITS_RESTRICT x, std::size_t n,
                          std::uint8_t* KVBITS_RESTRICT out) noexcept {
  static_assert(kEightsEncode<Bits>, "encode_eights: a width whose parameters need the search");
  constexpr bool asymmetric = S == Scheme::asymmetric;
  constexpr std::size_t meta = metadata_bytes(S);
  constexpr std::size_t block_bytes = group_bytes(Bits, 8, S);
  const __m512 low =
      _mm512_set1_ps(asymmetric ? 0.0f : static_cast<float>(kvbits::detail::symmetric_low(Bits)));
  const __m512 high = _mm512_set1_ps(asymmetric ? static_cast<float>(kvbits::detail::max_code(Bits))
                                                : static_cast<float>(kvbits::detail::symmetric_high(Bits)));
  const __m512i bias = _mm512_set1_epi32(asymmetric ? 0 : kvbits::detail::symmetric_offset(Bits));
  // Lane i of a batch belongs to group i / 8 of its pair: spread the pair's parameters over it.
  const __m512i first_pair = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const __m512i second_pair = _mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m512i group_heads = _mm512_setr_epi32(0, 8, 16, 24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  const std::size_t groups = n / 8;
  for (std::size_t first = 0; first < groups; first += 4) {
    // A last chunk of two groups repeats its pair; the repeat's results are dropped.
    const std::size_t count = groups - first < 4 ? groups - first : 4;
    const float* xs = x + first * 8;
    const __m512 a = _mm512_loadu_ps(xs);
    const __m512 b = count == 4 ? _mm512_loadu_ps(xs + 16) : a;
    const __m128 lows = _mm512_castps512_ps128(
        _mm512_permutex2var_ps(reduce_halves<false>(a), group_heads, reduce_halves<false>(b)));
    const __m128 highs = _mm512_castps512_ps128(
        _mm512_permutex2var_ps(reduce_halves<true>(a), group_heads, reduce_halves<true>(b)));
    alignas(16) std::uint32_t metadata[4];
    const ParamsFour p = params_four<Bits, S>(lows, highs, metadata);
    const __m512 mins = _mm512_castps128_ps512(p.min);
    const __m512 inverses = _mm512_castps128_ps512(p.inverse);
    // The operations of encode_fixed's code(), so the codes are the reference's.
    const auto codes = [&](__m512 v, __m512i pair) {
      __m512 scaled;
      if constexpr (asymmetric) {
        scaled = _mm512_mul_ps(_mm512_sub_ps(v, _mm512_permutexvar_ps(pair, mins)),
                               _mm512_permutexvar_ps(pair, inverses));
      } else {
        scaled = _mm512_mul_ps(v, _mm512_permutexvar_ps(pair, inverses));
      }
      const __m512i rounded = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(scaled, low), high));
      return _mm512_cvtepi32_epi8(asymmetric ? rounded : _mm512_add_epi32(rounded, bias));
    };
    alignas(16) std::uint64_t code_bytes[4] = {};
    _mm_store_si128(reinterpret_cast<__m128i*>(code_bytes), codes(a, first_pair));
    if (count == 4) _mm_store_si128(reinterpret_cast<__m128i*>(code_bytes + 2), codes(b, second_pair));
    for (std::size_t k = 0; k < count; ++k) {
      std::uint8_t* block = out + (first + k) * block_bytes;
      std::memcpy(block, &metadata[k], meta);
      store_eight_codes<Bits>(code_bytes[k], block + meta);
    }
  }
}
#endif
#endif  // KVBITS_XSIMD_KERNELS

}  // namespace simd
}  // namespace KVBITS_ISA_NAMESPACE
}  // namespace kvbits::kernel
