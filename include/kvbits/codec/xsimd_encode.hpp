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
#include "kvbits/codec/xsimd_code_visitors.hpp"
#include "kvbits/codec/xsimd_dispatch.hpp"
#include "kvbits/codec/xsimd_encode_avx512.hpp"
#include "kvbits/codec/xsimd_lanes.hpp"
#include "kvbits/config.hpp"
#include "kvbits/core/fp16.hpp"
#include "kvbits/core/isa_namespace.hpp"

// Encode and decode of whole vectors on xsimd batches. Encode is bit-exact with
// the reference: the group range is reduced with vectors, then
// detail::group_params computes the metadata exactly as the reference does (at 2
// and 3 bits both call the same compiled detail::fit_group_params for the whole
// vector), and each code is the same clamp(nearbyint((x - min) * inverse_scale))
// evaluated lane-wise (no fused operation can change it). Decode produces the
// same codes; the decoded floats may differ from the reference by FMA contraction.
namespace kvbits::kernel {
inline namespace KVBITS_ISA_NAMESPACE {
namespace simd {

#if KVBITS_XSIMD_KERNELS

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

#endif  // KVBITS_XSIMD_KERNELS

}  // namespace simd
}  // namespace KVBITS_ISA_NAMESPACE
}  // namespace kvbits::kernel
