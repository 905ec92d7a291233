// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "kvbits/codec/format.hpp"
#include "kvbits/codec/group_params.hpp"
#include "kvbits/codec/reference.hpp"
#include "kvbits/codec/xsimd_lanes.hpp"
#include "kvbits/config.hpp"

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
//
// A kernel runs on the widest architecture whose batch tiles the group's code
// bytes (planar formats) or whole code units (bit streams); e.g. 2-bit G = 32
// has 8 bytes of codes per field and runs on 256-bit batches under AVX-512,
// n = 8 at 16/32 bits on 256-bit ones. When none fits (2-bit G = 8 has 2 code
// bytes per field) and for 16 bits without F16C, the scalar reference kernel
// runs. The choice is made once per call, never inside a row loop.
namespace kvbits::kernel {

namespace simd {

template <int Bits>
inline constexpr bool kPlanar = Bits == 2 || Bits == 4 || Bits == 8;

/// Whether this build has Bits-wide kernels at all: 16 bits needs F16C
/// (x86-64-v2 has none, so it uses the scalar reference there).
template <int Bits>
inline constexpr bool kHasKernels =
#if defined(__F16C__)
    true;
#else
    Bits != 16;
#endif

/// Whether architecture A can run the Bits-wide kernels for (n, group).
template <int Bits, class A>
constexpr bool fits(std::size_t n, std::size_t group) noexcept {
  constexpr std::size_t width = Lanes<A>::kWidth;
  if constexpr (Bits == 32 || Bits == 16) {
    return n % width == 0;
  } else if constexpr (kPlanar<Bits>) {
    return group * Bits / 8 % width == 0;
  } else {
    return group % Lanes<A>::kStreamCodes == 0;
  }
}

template <int Bits, class Fn>
KVBITS_ALWAYS_INLINE decltype(auto) pick_arch(std::size_t, std::size_t, ArchChain<>, Fn&& fn) {
  return fn(NoArch{});
}

template <int Bits, class Fn, class A, class... Rest>
KVBITS_ALWAYS_INLINE decltype(auto) pick_arch(std::size_t n, std::size_t group, ArchChain<A, Rest...>,
                                              Fn&& fn) {
  if constexpr (kHasKernels<Bits>) {
    if (fits<Bits, A>(n, group)) return fn(A{});
  }
  return pick_arch<Bits>(n, group, ArchChain<Rest...>{}, std::forward<Fn>(fn));
}

/**
 * The one place where a call's run-time shape becomes compile-time: calls
 * fn(arch, std::integral_constant<size_t, G>) with the architecture to use
 * (NoArch = scalar reference) and the group size when it is one of the hot
 * ones (32, 64, 128), else G = 0 meaning "use the run-time group".
 */
template <int Bits, class Fn>
KVBITS_ALWAYS_INLINE decltype(auto) dispatch(std::size_t n, std::size_t group, Fn&& fn) {
  return pick_arch<Bits>(n, group, Archs{}, [&](auto arch) {
    if constexpr (std::is_same_v<decltype(arch), NoArch> || !is_grouped_bits(Bits)) {
      return fn(arch, std::integral_constant<std::size_t, 0>{});
    } else {
      switch (group) {
        case 32:
          return fn(arch, std::integral_constant<std::size_t, 32>{});
        case 64:
          return fn(arch, std::integral_constant<std::size_t, 64>{});
        case 128:
          return fn(arch, std::integral_constant<std::size_t, 128>{});
        default:
          return fn(arch, std::integral_constant<std::size_t, 0>{});
      }
    }
  });
}

/// Runs fn(std::integral_constant<Scheme, S>) for the run-time scheme, so the
/// kernels below take it as a compile-time parameter.
template <class Fn>
KVBITS_ALWAYS_INLINE void with_scheme(Scheme scheme, Fn&& fn) {
  if (scheme == Scheme::asymmetric) {
    fn(std::integral_constant<Scheme, Scheme::asymmetric>{});
  } else {
    fn(std::integral_constant<Scheme, Scheme::symmetric>{});
  }
}

template <class Fn, std::size_t... Index>
KVBITS_ALWAYS_INLINE void unrolled(Fn&& fn, std::index_sequence<Index...>) {
  (fn(std::integral_constant<std::size_t, Index>{}), ...);
}

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
      if constexpr (decltype(round_down)::value) {
        scaled = xsimd::floor(ratio);
      } else {
        scaled = xsimd::nearbyint(ratio);
      }
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

/// Whether encode_fixed handles (A, Bits, G): 16-lane batches, planar codes
/// whose parameters come from the range alone (not the 2-bit search), a
/// compile-time group of whole batches of code bytes.
template <class A, int Bits, std::size_t G>
inline constexpr bool kFixedEncode =
    Lanes<A>::kWidth == 16 && kPlanar<Bits> && !kvbits::detail::fits_by_search(Bits) && G != 0 &&
    G * Bits / 8 % 16 == 0;

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
      // Missing groups of the last chunk repeat its first group; their results are dropped.
      const float* xs = x + (first + (k < count ? k : 0)) * G;
      lo[k] = F::load_unaligned(xs);
      hi[k] = lo[k];
      for (std::size_t i = 1; i < kBatches; ++i) {
        const F v = F::load_unaligned(xs + i * width);
        lo[k] = xsimd::min(lo[k], v);
        hi[k] = xsimd::max(hi[k], v);
      }
    }
    const __m128 lows = L::template reduce_four<false>(lo);
    const __m128 highs = L::template reduce_four<true>(hi);
    ParamsFour p;
    if constexpr (asymmetric) {
      p = asymmetric_params_four(lows, highs, Bits);
    } else {
      p = symmetric_params_four(lows, highs, Bits);
    }
    // Block metadata: little-endian fp16 scale, then fp16 min when asymmetric.
    alignas(16) std::uint32_t metadata[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(metadata), _mm_unpacklo_epi16(p.scale_half, p.min_half));
    alignas(16) float mins[4];
    alignas(16) float inverses[4];
    _mm_store_ps(mins, p.min);
    _mm_store_ps(inverses, p.inverse);
    for (std::size_t k = 0; k < count; ++k) {
      const float* xs = x + (first + k) * G;
      std::uint8_t* block = out + (first + k) * block_bytes;
      std::memcpy(block, &metadata[k], meta);
      const F inverse(inverses[k]);
      // detail::asymmetric_code / symmetric_code: clamping before rounding to the
      // integer bounds equals rounding then clamping, and cvtps2dq rounds like
      // std::nearbyint (the current mode).
      const auto code = [&](std::size_t i) {
        F scaled;
        if constexpr (asymmetric) {
          scaled = (F::load_unaligned(xs + i) - F(mins[k])) * inverse;
        } else {
          scaled = F::load_unaligned(xs + i) * inverse;  // x - 0 == x exactly
        }
        const I rounded(_mm512_cvtps_epi32(xsimd::min(xsimd::max(scaled, low), high)));
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
    }
  }
}
#endif

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

/// Rows the fixed-length row kernels prefetch ahead of the one they process.
inline constexpr std::size_t kPrefetchRows = 16;

/// Prefetches the start of row `r` (nothing when r >= count, so no pointer leaves the rows).
KVBITS_ALWAYS_INLINE void prefetch_row(const std::uint8_t* rows, std::size_t stride, std::size_t count,
                                       std::size_t r) noexcept {
  if (r < count) _mm_prefetch(reinterpret_cast<const char*>(rows + r * stride), _MM_HINT_T0);
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
      if constexpr (kvbits::detail::sign_picks_grid(Bits))
        zero = xsimd::select(scale < F(0.0f), zero - F(0.5f), zero);
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
  for (std::size_t k = 0; k < width; ++k)
    offsets[k] = static_cast<std::int32_t>(k * (stride < kMaxGatherStride ? stride : 0));
  return I::load_aligned(offsets);
}

/// Mask of one Bits-wide code field.
template <int Bits>
inline constexpr int max_field = (1 << Bits) - 1;

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
        _mm512_setr_ps(0, 1 & max_field<Bits>, 2 & max_field<Bits>, 3 & max_field<Bits>, 4 & max_field<Bits>,
                       5 & max_field<Bits>, 6 & max_field<Bits>, 7 & max_field<Bits>, 8 & max_field<Bits>,
                       9 & max_field<Bits>, 10 & max_field<Bits>, 11 & max_field<Bits>, 12 & max_field<Bits>,
                       13 & max_field<Bits>, 14 & max_field<Bits>, 15 & max_field<Bits>);
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
          prefetch_row(rows, stride, count, r + k + kPrefetchRows);
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
        prefetch_row(rows, stride, count, r + k + kPrefetchRows);
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
          prefetch_row(rows, stride, count, r + k + kPrefetchRows);
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
    prefetch_row(rows, stride, count, r + kPrefetchRows);
    row_axpy(rows + r * stride, weights[r]);
  }
  for (std::size_t i = 0; i < kRegs; ++i) {
    (F::load_unaligned(y + i * width) + (acc[i] + F(offsets[i * width / G]))).store_unaligned(y + i * width);
  }
}

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

template <class A, int Bits, std::size_t G>
inline void dot_rows(const float* KVBITS_RESTRICT q, std::size_t n, std::size_t runtime_group, Scheme scheme,
                     const std::uint8_t* rows, std::size_t stride, std::size_t count,
                     float* KVBITS_RESTRICT scores) noexcept {
  using L = Lanes<A>;
  using F = typename L::F;
  constexpr std::size_t width = L::kWidth;
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

}  // namespace kvbits::kernel
