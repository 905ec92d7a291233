// SPDX-License-Identifier: MIT
#pragma once

#include "kvbits/core/simd_headers.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kvbits/codec/format.hpp"
#include "kvbits/codec/group_params.hpp"
#include "kvbits/config.hpp"
#include "kvbits/core/isa_namespace.hpp"

// axpy_rows for 2-bit codes in groups of 8, the one grouped format whose code
// bytes (2 per group) tile no SIMD batch, so the batch kernels of dispatch()
// cannot take it. Small heads (head_dim 8) store values at 2 bits in exactly
// this format, and attention's value pass then spent most of its time in the
// scalar reference. Here a group is one 256-bit batch of 8 floats that stays
// in a register over all rows, with the reference's arithmetic per element,
// so the sums are the reference's bit for bit.
namespace kvbits::kernel {
inline namespace KVBITS_ISA_NAMESPACE {
namespace simd {

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

/// Whether this build has axpy_rows_two_bit_g8.
inline constexpr bool kTwoBitGroupsOf8 = true;

/**
 * y[n] += sum_r weights[r] * decode(rows + r * stride) for 2-bit rows in
 * groups of 8 (n a multiple of 8): per element and row, y += w * scale *
 * code + w * offset as the reference rounds it (one fused multiply-add, which
 * is what detail::multiply_add is on an FMA target, then the add to y), rows
 * in order, so the result equals ScalarKernels::axpy_rows<2> bit for bit.
 */
template <Scheme S>
inline void axpy_rows_two_bit_g8(const float* KVBITS_RESTRICT weights, std::size_t n,
                                 const std::uint8_t* rows, std::size_t stride, std::size_t count,
                                 float* KVBITS_RESTRICT y) noexcept {
  constexpr std::size_t kMeta = metadata_bytes(S);
  constexpr std::size_t kBlockBytes = group_bytes(2, 8, S);
  // Element i is field i / 2 of code byte i % 2 (the planar layout): its
  // shift in the little-endian 16-bit word of both bytes.
  const __m256i shifts = _mm256_setr_epi32(0, 8, 2, 10, 4, 12, 6, 14);
  const __m256i mask = _mm256_set1_epi32(3);
  for (std::size_t g = 0; g < n / 8; ++g) {
    __m256 sum = _mm256_loadu_ps(y + 8 * g);
    const std::uint8_t* block = rows + g * kBlockBytes;
    for (std::size_t r = 0; r < count; ++r, block += stride) {
      const auto affine = kvbits::detail::load_affine(block, S, 2);
      std::uint16_t word;
      std::memcpy(&word, block + kMeta, sizeof word);
      const __m256i codes = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(word), shifts), mask);
      const __m256 term =
          _mm256_fmadd_ps(_mm256_set1_ps(weights[r] * affine.scale), _mm256_cvtepi32_ps(codes),
                          _mm256_set1_ps(weights[r] * affine.offset));
      sum = _mm256_add_ps(sum, term);
    }
    _mm256_storeu_ps(y + 8 * g, sum);
  }
}

#else

inline constexpr bool kTwoBitGroupsOf8 = false;

// Declared only, for the branch of XsimdKernels::axpy_rows that this build discards.
template <Scheme S>
void axpy_rows_two_bit_g8(const float* KVBITS_RESTRICT weights, std::size_t n, const std::uint8_t* rows,
                          std::size_t stride, std::size_t count, float* KVBITS_RESTRICT y) noexcept;

#endif

}  // namespace simd
}  // namespace KVBITS_ISA_NAMESPACE
}  // namespace kvbits::kernel
