// SPDX-License-Identifier: MIT
#pragma once

#include "kvbits/core/simd_headers.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kvbits/codec/format.hpp"
#include "kvbits/codec/group_params.hpp"
#include "kvbits/codec/reference.hpp"
#include "kvbits/codec/xsimd_dispatch.hpp"
#include "kvbits/config.hpp"
#include "kvbits/core/isa_namespace.hpp"

// dot_rows and axpy_rows for 2-bit codes in groups of 8, the one grouped
// format whose code bytes (2 per group) tile no SIMD batch, so the batch
// kernels of dispatch() cannot take it. Small heads (head_dim 8) store keys
// and values at 2 bits in exactly this format, and attention then spent most
// of its time in the scalar reference. These kernels do the reference's
// arithmetic per element, in its order, so their results are the reference's
// bit for bit: dot_rows runs 8 rows side by side (lane k = row k), axpy_rows
// keeps each group's 8 outputs in a register over all rows.
namespace kvbits::kernel {
inline namespace KVBITS_ISA_NAMESPACE {
namespace simd {

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

/// Whether this build has dot_rows_two_bit_g8 and axpy_rows_two_bit_g8.
inline constexpr bool kTwoBitGroupsOf8 = true;

// Element i of a group is field i / 2 of code byte i % 2 (the planar layout):
// its shift in the little-endian 16-bit word of both bytes.
inline constexpr int kTwoBitShifts[8] = {0, 8, 2, 10, 4, 12, 6, 14};

/// The low 16 bits of each 32-bit lane, as 8 16-bit lanes.
KVBITS_ALWAYS_INLINE __m128i narrow_low_halves(__m256i x) noexcept {
  const __m256i low = _mm256_and_si256(x, _mm256_set1_epi32(0xFFFF));
  return _mm_packus_epi32(_mm256_castsi256_si128(low), _mm256_extracti128_si256(low, 1));
}

/// -scale * detail::symmetric_zero(scale, 2) lane by lane: mid-rise (scale < 0) groups have their zero half a
/// step lower.
KVBITS_ALWAYS_INLINE __m256 symmetric_offsets(__m256 scale) noexcept {
  const auto zero = static_cast<float>(kvbits::detail::symmetric_offset(2));
  const __m256 mid_rise = _mm256_cmp_ps(scale, _mm256_setzero_ps(), _CMP_LT_OQ);
  const __m256 zeros = _mm256_blendv_ps(_mm256_set1_ps(zero), _mm256_set1_ps(zero - 0.5f), mid_rise);
  return _mm256_mul_ps(_mm256_xor_ps(scale, _mm256_set1_ps(-0.0f)), zeros);
}

/**
 * scores[r] = q . decode(rows + r * stride) for 2-bit rows in groups of 8 (n a
 * multiple of 8), as the reference computes it: per group, sum q_i * code_i
 * in element order, each product rounded on its own (detail::rounded_product),
 * then offset * sum q + scale * that in one multiply-add, added to the row's
 * total group by group.
 */
template <Scheme S>
inline void dot_rows_two_bit_g8(const float* KVBITS_RESTRICT q, std::size_t n, const std::uint8_t* rows,
                                std::size_t stride, std::size_t count,
                                float* KVBITS_RESTRICT scores) noexcept {
  constexpr std::size_t kMeta = metadata_bytes(S);
  constexpr std::size_t kBlockBytes = group_bytes(2, 8, S);
  const __m256i mask = _mm256_set1_epi32(3);
  const __m256 zero = _mm256_setzero_ps();
  std::size_t r = 0;
  for (; r + 8 <= count; r += 8) {
    __m256 total = _mm256_setzero_ps();
    for (std::size_t g = 0; g < n / 8; ++g) {
      const float* q_group = q + 8 * g;
      alignas(32) std::uint32_t metadata[8];  // [8 rows] the group's fp16 scale, then min (asymmetric)
      alignas(32) std::uint32_t words[8];     // [8 rows] the group's two code bytes
      for (std::size_t k = 0; k < 8; ++k) {
        const std::uint8_t* block = rows + (r + k) * stride + g * kBlockBytes;
        std::uint32_t meta = 0;
        std::uint16_t word = 0;
        std::memcpy(&meta, block, kMeta);
        std::memcpy(&word, block + kMeta, sizeof word);
        metadata[k] = meta;
        words[k] = word;
      }
      const __m256i meta = _mm256_load_si256(reinterpret_cast<const __m256i*>(metadata));
      const __m256i codes = _mm256_load_si256(reinterpret_cast<const __m256i*>(words));
      const __m256 scale = _mm256_cvtph_ps(narrow_low_halves(meta));
      __m256 offset;
      if constexpr (S == Scheme::asymmetric) {
        offset = _mm256_cvtph_ps(narrow_low_halves(_mm256_srli_epi32(meta, 16)));
      } else {
        offset = symmetric_offsets(scale);
      }
      float q_sum = 0.0f;
      __m256 qc_sum = zero;
      for (std::size_t i = 0; i < 8; ++i) {
        q_sum += q_group[i];
        const __m256i code = _mm256_and_si256(_mm256_srli_epi32(codes, kTwoBitShifts[i]), mask);
        qc_sum = _mm256_add_ps(qc_sum,
                               _mm256_fmadd_ps(_mm256_set1_ps(q_group[i]), _mm256_cvtepi32_ps(code), zero));
      }
      total =
          _mm256_add_ps(total, _mm256_fmadd_ps(offset, _mm256_set1_ps(q_sum), _mm256_mul_ps(scale, qc_sum)));
    }
    _mm256_storeu_ps(scores + r, total);
  }
  for (; r < count; ++r) scores[r] = ScalarKernels::dot<2>(q, rows + r * stride, n, 8, S);
}

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
  const __m256i shifts = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kTwoBitShifts));
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

// Declared only, for the branches of XsimdKernels that this build discards.
template <Scheme S>
void dot_rows_two_bit_g8(const float* KVBITS_RESTRICT q, std::size_t n, const std::uint8_t* rows,
                         std::size_t stride, std::size_t count, float* KVBITS_RESTRICT scores) noexcept;
template <Scheme S>
void axpy_rows_two_bit_g8(const float* KVBITS_RESTRICT weights, std::size_t n, const std::uint8_t* rows,
                          std::size_t stride, std::size_t count, float* KVBITS_RESTRICT y) noexcept;

#endif

/**
 * Runs kernel(std::integral_constant<Scheme, S>) for the run-time scheme and
 * returns true when (Bits, group) is this header's format and the build has
 * its kernels; otherwise runs nothing and returns false.
 */
template <int Bits, class Kernel>
KVBITS_ALWAYS_INLINE bool run_two_bit_g8([[maybe_unused]] std::size_t group, [[maybe_unused]] Scheme scheme,
                                         [[maybe_unused]] Kernel&& kernel) {
  if constexpr (Bits == 2 && kTwoBitGroupsOf8) {
    if (group == 8) {
      with_scheme(scheme, kernel);
      return true;
    }
  }
  return false;
}

}  // namespace simd
}  // namespace KVBITS_ISA_NAMESPACE
}  // namespace kvbits::kernel
