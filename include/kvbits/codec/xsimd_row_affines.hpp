// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>

#include "kvbits/codec/format.hpp"
#include "kvbits/codec/group_params.hpp"
#include "kvbits/codec/xsimd_lanes.hpp"
#include "kvbits/config.hpp"
#include "kvbits/core/isa_namespace.hpp"

// The affine maps (scale, offset) of the first group of W consecutive rows as
// vectors, lane k = row k, for the row kernels that apply them per row.
namespace kvbits::kernel {
inline namespace KVBITS_ISA_NAMESPACE {
namespace simd {

#if KVBITS_XSIMD_KERNELS

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

#endif  // KVBITS_XSIMD_KERNELS

}  // namespace simd
}  // namespace KVBITS_ISA_NAMESPACE
}  // namespace kvbits::kernel
