// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "kvbits/codec/format.hpp"
#include "kvbits/codec/group_params.hpp"
#include "kvbits/codec/xsimd_code_visitors.hpp"
#include "kvbits/codec/xsimd_dispatch.hpp"
#include "kvbits/codec/xsimd_dot_avx2.hpp"
#include "kvbits/codec/xsimd_dot_vnni.hpp"
#include "kvbits/codec/xsimd_lanes.hpp"
#include "kvbits/codec/xsimd_rows_quantized.hpp"
#include "kvbits/config.hpp"
#include "kvbits/core/isa_namespace.hpp"
#include "kvbits/core/multiply_add.hpp"

// dot_rows over 2- to 8-bit rows whose length has no kernel of its own (head_dim 8 or 16,
// say, or 3/5/6-bit bit streams), for one query or for several that share the rows: the
// query heads of one KV head under grouped-query attention widen each row's codes once.
namespace kvbits::kernel {
inline namespace KVBITS_ISA_NAMESPACE {
namespace simd {

#if KVBITS_XSIMD_KERNELS

/// Whether dot_rows on A sends rows of n elements with a group of G (0 = run-time) to
/// dot_rows_any_length whatever the query: no fixed-length or integer kernel claims them.
template <class A, int Bits, std::size_t G>
constexpr bool takes_any_length_rows(std::size_t n) noexcept {
  if constexpr (Bits >= 16) {
    return false;
  } else {
    const bool fixed = (kFixedRows<A, Bits, 128, G> && n == 128) || (kFixedRows<A, Bits, 64, G> && n == 64);
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
    const bool integer =
        (kIntegerDotRows<Bits, 128, G> && n == 128) || (kIntegerDotRows<Bits, 64, G> && n == 64);
#elif KVBITS_INTEGER_DOT_AVX2
    const bool integer = avx2::takes_rows<Bits, G>(n);
#else
    const bool integer = false;
#endif
    return !fixed && !integer;
  }
}

/// Most queries one dot_rows_any_length pass holds on A: W rows' totals per query stay in
/// registers, and 16 of them leave room for the codes and the query.
template <class A>
inline constexpr std::size_t kAnyLengthQueries = Lanes<A>::kWidth >= 16 ? 1 : 16 / Lanes<A>::kWidth;

/**
 * dot_rows for any length and group, for Q queries (query h at q + h * n, its scores at
 * scores + h * score_stride) over the same rows. Each row's codes are widened once and
 * multiplied into every query's sums; per query the operations and their order are those of
 * Q = 1, so each query's scores are bit for bit those of a call of its own. W rows' totals
 * are reduced together, each lane summed as xsimd::hadd sums one row, so the rows of the
 * per-row tail loop get the same scores as the others.
 */
template <class A, int Bits, std::size_t G, std::size_t Q>
inline void dot_rows_any_length(const float* KVBITS_RESTRICT q, std::size_t n, std::size_t runtime_group,
                                Scheme scheme, const std::uint8_t* rows, std::size_t stride,
                                std::size_t count, float* KVBITS_RESTRICT scores,
                                std::size_t score_stride) noexcept {
  using L = Lanes<A>;
  using F = typename L::F;
  constexpr std::size_t width = L::kWidth;
  const std::size_t group = G != 0 ? G : runtime_group;
  const std::size_t groups = n / group;
  const std::size_t block_bytes = group_bytes(Bits, group, scheme);
  const std::size_t meta = metadata_bytes(scheme);
  // Per-query precomputation, hoisted out of the row loop: the offset term of
  // a group is offset * sum(q over the group).
  float q_sums[Q][kMaxVectorLength / 8];
  for (std::size_t h = 0; h < Q; ++h) {
    for (std::size_t g = 0; g < groups; ++g) {
      F sum(0.0f);
      for (std::size_t i = 0; i < group; i += width) sum += F::load_unaligned(q + h * n + g * group + i);
      q_sums[h][g] = xsimd::hadd(sum);
    }
  }
  // One row for every query: the scaled code products as a batch, the offset terms as a scalar.
  const auto row_dot = [&](const std::uint8_t* row, F(&total)[Q], float(&offset_total)[Q]) {
    for (std::size_t h = 0; h < Q; ++h) {
      total[h] = F(0.0f);
      offset_total[h] = 0.0f;
    }
    for (std::size_t g = 0; g < groups; ++g) {
      const std::uint8_t* block = row + g * block_bytes;
      const auto affine = kvbits::detail::load_affine(block, scheme, Bits);
      F products[Q];
      for (std::size_t h = 0; h < Q; ++h) products[h] = F(0.0f);
      for_each_code<A, Bits>(block + meta, group, [&](std::size_t i, const auto& codes) {
        const F values = xsimd::to_float(codes);
        for (std::size_t h = 0; h < Q; ++h) {
          products[h] = xsimd::fma(F::load_unaligned(q + h * n + g * group + i), values, products[h]);
        }
      });
      for (std::size_t h = 0; h < Q; ++h) {
        total[h] = xsimd::fma(products[h], F(affine.scale), total[h]);
        offset_total[h] = kvbits::detail::multiply_add(affine.offset, q_sums[h][g], offset_total[h]);
      }
    }
  };
  std::size_t r = 0;
  for (; r + width <= count; r += width) {
    F totals[Q][width];                   // [query][W rows] per-row scaled products
    alignas(64) float offsets[Q][width];  // [query][W rows] per-row offset terms
    for (std::size_t k = 0; k < width; ++k) {
      F total[Q];
      float offset_total[Q];
      row_dot(rows + (r + k) * stride, total, offset_total);
      for (std::size_t h = 0; h < Q; ++h) {
        totals[h][k] = total[h];
        offsets[h][k] = offset_total[h];
      }
    }
    for (std::size_t h = 0; h < Q; ++h) {
      (L::reduce_rows_as_hadd(totals[h]) + F::load_aligned(offsets[h]))
          .store_unaligned(scores + h * score_stride + r);
    }
  }
  for (; r < count; ++r) {
    F total[Q];
    float offset_total[Q];
    row_dot(rows + r * stride, total, offset_total);
    for (std::size_t h = 0; h < Q; ++h) {
      scores[h * score_stride + r] = xsimd::hadd(total[h]) + offset_total[h];
    }
  }
}

/**
 * dot_rows_any_length for `queries` queries in passes of at most kAnyLengthQueries<A>, for rows
 * of one group (head_dim 8 in groups of 8, say).
 * @return false, scoring nothing, when dot_rows would not take its any-length path for n or a
 * row holds several groups.
 */
template <class A, int Bits, std::size_t G>
inline bool dot_rows_any_length_shared(const float* KVBITS_RESTRICT q, std::size_t queries, std::size_t n,
                                       std::size_t runtime_group, Scheme scheme, const std::uint8_t* rows,
                                       std::size_t stride, std::size_t count, float* KVBITS_RESTRICT scores,
                                       std::size_t score_stride) noexcept {
  if constexpr (Bits >= 16 || kAnyLengthQueries<A> == 1) {
    return false;
  } else {
    // One group per row only: with several, the shared pass's scores differed from each query's own
    // call in the last bits (test_codec, n = 32 in groups of 16), for a reason not yet found.
    if (!takes_any_length_rows<A, Bits, G>(n) || (G != 0 ? G : runtime_group) != n) return false;
    static_assert(kAnyLengthQueries<A> == 2 || kAnyLengthQueries<A> == 4, "passes of 4, 2 and 1 queries");
    for (std::size_t first = 0; first < queries;) {
      const auto pass = [&](auto take) {
        dot_rows_any_length<A, Bits, G, take.value>(q + first * n, n, runtime_group, scheme, rows, stride,
                                                    count, scores + first * score_stride, score_stride);
        first += take.value;
      };
      const std::size_t left = queries - first;
      if constexpr (kAnyLengthQueries<A> >= 4) {
        if (left >= 4) {
          pass(std::integral_constant<std::size_t, 4>{});
          continue;
        }
      }
      if (left >= 2) {
        pass(std::integral_constant<std::size_t, 2>{});
      } else {
        pass(std::integral_constant<std::size_t, 1>{});
      }
    }
    return true;
  }
}

#endif  // KVBITS_XSIMD_KERNELS

}  // namespace simd
}  // namespace KVBITS_ISA_NAMESPACE
}  // namespace kvbits::kernel
