// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "kvbits/codec/format.hpp"
#include "kvbits/codec/group_params.hpp"
#include "kvbits/codec/xsimd_code_visitors.hpp"
#include "kvbits/codec/xsimd_dispatch.hpp"
#include "kvbits/codec/xsimd_dot_avx2.hpp"
#include "kvbits/codec/xsimd_dot_vnni.hpp"
#include "kvbits/codec/xsimd_lanes.hpp"
#include "kvbits/codec/xsimd_prefetch.hpp"
#include "kvbits/codec/xsimd_row_affines.hpp"
#include "kvbits/codec/xsimd_rows_float.hpp"
#include "kvbits/codec/xsimd_rows_quantized.hpp"
#include "kvbits/config.hpp"
#include "kvbits/core/isa_namespace.hpp"

// dot_rows and axpy_rows over 2/4/8-bit rows for several queries that share
// them: the query heads of one KV head under grouped-query attention. Each
// row's codes are widened once and serve every query; per query the
// arithmetic is that of the one-query kernel, operation for operation, so each
// query's result is bit-identical to a dot_rows / axpy_rows call of its own.
// 16/32-bit rows have nothing to widen; their several-query calls run the
// one-query kernels per query.
namespace kvbits::kernel {
inline namespace KVBITS_ISA_NAMESPACE {
namespace simd {

#if KVBITS_XSIMD_KERNELS

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
/**
 * dot_rows_integer for `queries` <= kMaxSharedQueries queries of N floats
 * each (q [queries][N]) over the same one-group rows: scores of query h go to
 * scores + h * score_stride. @return false, writing nothing, when a query does
 * not fit the integer grid (the caller then runs each query on its own).
 */
template <int Bits, std::size_t N, Scheme S>
inline bool dot_rows_integer_shared(const float* KVBITS_RESTRICT q, std::size_t queries,
                                    const std::uint8_t* rows, std::size_t stride, std::size_t count,
                                    float* KVBITS_RESTRICT scores, std::size_t score_stride) noexcept {
  using A = xsimd::avx512bw;
  using F = typename Lanes<A>::F;
  constexpr std::size_t meta = metadata_bytes(S);
  constexpr std::size_t kRowBytes = meta + N * Bits / 8;
  QueryLimbs<N> query[kMaxSharedQueries];
  float q_sum[kMaxSharedQueries];  // [query] sum of its elements
  for (std::size_t h = 0; h < queries; ++h) {
    if (!make_query_limbs<N>(q + h * N, query[h])) return false;
    __m512 sum = _mm512_loadu_ps(q + h * N);
    for (std::size_t i = 16; i < N; i += 16) sum = _mm512_add_ps(sum, _mm512_loadu_ps(q + h * N + i));
    q_sum[h] = _mm512_reduce_add_ps(sum);
  }
  const std::size_t ahead = prefetch_distance(stride);
  std::size_t r = 0;
  if (stride < kMaxGatherStride) {
    const auto offsets = row_offsets<A>(stride);
    for (; r + 16 <= count; r += 16) {
      F products[kMaxSharedQueries][16];  // [query][16 rows] lane-partial sum_i Q_i * code_i
      for (std::size_t k = 0; k < 16; ++k) {
        prefetch_row<kRowBytes>(rows, stride, count, r + k + ahead);
        __m512i code[N / 64];
        load_code_bytes<Bits, N>(rows + (r + k) * stride + meta, code);
        for (std::size_t h = 0; h < queries; ++h) products[h][k] = F(codes_dot_integer<N>(query[h], code));
      }
      F scale;
      F offset;
      load_affines<A, Bits, S>(rows + r * stride, stride, offsets, scale, offset);
      for (std::size_t h = 0; h < queries; ++h) {
        xsimd::fma(Lanes<A>::reduce_rows(products[h]), scale * F(query[h].step), offset * F(q_sum[h]))
            .store_unaligned(scores + h * score_stride + r);
      }
    }
  }
  for (; r < count; ++r) {
    const std::uint8_t* row = rows + r * stride;
    const auto affine = kvbits::detail::load_affine(row, S, Bits);
    __m512i code[N / 64];
    load_code_bytes<Bits, N>(row + meta, code);
    for (std::size_t h = 0; h < queries; ++h) {
      const float product = _mm512_reduce_add_ps(codes_dot_integer<N>(query[h], code));
      scores[h * score_stride + r] =
          multiply_add(product, affine.scale * query[h].step, affine.offset * q_sum[h]);
    }
  }
  return true;
}
#endif

/**
 * axpy_rows_fixed's one-group path for Q queries' weights (weights + h *
 * weight_stride) into Q outputs (y [Q][N]) over the same rows, whose stride is
 * below kMaxGatherStride, for the Count output registers from First on: each
 * row's codes there are converted to floats once and multiplied into every
 * query's accumulators. Codes outside the part are never converted.
 */
template <class A, int Bits, std::size_t N, Scheme S, std::size_t Q, std::size_t First, std::size_t Count>
inline void axpy_rows_shared_part(const float* KVBITS_RESTRICT weights, std::size_t weight_stride,
                                  const std::uint8_t* rows, std::size_t stride, std::size_t count,
                                  float* KVBITS_RESTRICT y) noexcept {
  using F = typename Lanes<A>::F;
  constexpr std::size_t width = Lanes<A>::kWidth;
  constexpr std::size_t meta = metadata_bytes(S);
  constexpr std::size_t kRowBytes = group_bytes(Bits, N, S);
  const std::size_t ahead = prefetch_distance(stride);
  F acc[Q][Count];   // [query][register of the part] sum over rows of w * scale * code
  F offset_sum[Q];   // [query] lane-partial sum over whole batches of rows of w * offset
  float offsets[Q];  // [query] sum over rows of w * offset
  for (std::size_t h = 0; h < Q; ++h) {
    for (std::size_t i = 0; i < Count; ++i) acc[h][i] = F(0.0f);
    offset_sum[h] = F(0.0f);
    offsets[h] = 0.0f;
  }
  const auto multiply_codes = [&](const std::uint8_t* row, const F(&row_scale)[Q]) {
    for_each_value_fixed<A, Bits, N>(row + meta, [&](auto index, const F& codes) {
      constexpr std::size_t reg = index.value / width;
      if constexpr (reg >= First && reg < First + Count) {
        for (std::size_t h = 0; h < Q; ++h) {
          acc[h][reg - First] = xsimd::fma(row_scale[h], codes, acc[h][reg - First]);
        }
      }
    });
  };
  const auto row_bytes = row_offsets<A>(stride);
  std::size_t r = 0;
  for (; r + width <= count; r += width) {
    F scale;
    F offset;
    load_affines<A, Bits, S>(rows + r * stride, stride, row_bytes, scale, offset);
    alignas(64) float weighted[Q][width];  // [query][W rows] w * scale
    for (std::size_t h = 0; h < Q; ++h) {
      const F w = F::load_unaligned(weights + h * weight_stride + r);
      offset_sum[h] = xsimd::fma(w, offset, offset_sum[h]);
      (w * scale).store_aligned(weighted[h]);
    }
    for (std::size_t k = 0; k < width; ++k) {
      prefetch_row<kRowBytes>(rows, stride, count, r + k + ahead);
      F row_scale[Q];
      for (std::size_t h = 0; h < Q; ++h) row_scale[h] = F(weighted[h][k]);
      multiply_codes(rows + (r + k) * stride, row_scale);
    }
  }
  for (std::size_t h = 0; h < Q; ++h) offsets[h] += xsimd::hadd(offset_sum[h]);
  for (; r < count; ++r) {
    prefetch_row<kRowBytes>(rows, stride, count, r + ahead);
    const std::uint8_t* row = rows + r * stride;
    const auto affine = kvbits::detail::load_affine(row, S, Bits);
    F row_scale[Q];
    for (std::size_t h = 0; h < Q; ++h) {
      const float w = weights[h * weight_stride + r];
      offsets[h] = multiply_add(w, affine.offset, offsets[h]);
      row_scale[h] = F(w * affine.scale);
    }
    multiply_codes(row, row_scale);
  }
  for (std::size_t h = 0; h < Q; ++h) {
    float* out = y + h * N + First * width;
    for (std::size_t i = 0; i < Count; ++i) {
      (F::load_unaligned(out + i * width) + (acc[h][i] + F(offsets[h]))).store_unaligned(out + i * width);
    }
  }
}

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
/**
 * dot_rows_integer_groups for `queries` <= kMaxSharedQueries queries of N
 * floats each (q [queries][N]) over the same rows of G = 32 or 64-element
 * groups: each row's batches are loaded once (load_group_batches) and run
 * against every query. @return false, writing nothing, when a query does not
 * fit the integer grid.
 */
template <int Bits, std::size_t N, std::size_t G, Scheme S>
inline bool dot_rows_integer_groups_shared(const float* KVBITS_RESTRICT q, std::size_t queries,
                                           const std::uint8_t* rows, std::size_t stride, std::size_t count,
                                           float* KVBITS_RESTRICT scores, std::size_t score_stride) noexcept {
  using A = xsimd::avx512bw;
  using F = typename Lanes<A>::F;
  constexpr std::size_t kGroups = N / G;
  constexpr std::size_t kRowBytes = kGroups * group_bytes(Bits, G, S);
  QueryLimbs<N> query[kMaxSharedQueries];
  float q_sums[kMaxSharedQueries][kGroups];  // [query][group] sum of the query over the group
  for (std::size_t h = 0; h < queries; ++h) {
    if (!make_query_limbs<N>(q + h * N, query[h])) return false;
    group_sums<N, G>(q + h * N, q_sums[h]);
  }
  const std::size_t ahead = prefetch_distance(stride);
  std::size_t r = 0;
  for (; r + 16 <= count; r += 16) {
    F products[kMaxSharedQueries][16];                 // [query][16 rows] lane-partial products
    alignas(64) float offsets[kMaxSharedQueries][16];  // [query][16 rows] offset terms
    for (std::size_t k = 0; k < 16; ++k) {
      prefetch_row<kRowBytes>(rows, stride, count, r + k + ahead);
      GroupBatch batches[N / 64];
      load_group_batches<Bits, N, G, S>(rows + (r + k) * stride, batches);
      for (std::size_t h = 0; h < queries; ++h) {
        products[h][k] = F(group_batches_dot<N, G>(query[h], batches, q_sums[h], offsets[h][k]));
      }
    }
    for (std::size_t h = 0; h < queries; ++h) {
      xsimd::fma(Lanes<A>::reduce_rows(products[h]), F(query[h].step), F::load_aligned(offsets[h]))
          .store_unaligned(scores + h * score_stride + r);
    }
  }
  for (; r < count; ++r) {
    GroupBatch batches[N / 64];
    load_group_batches<Bits, N, G, S>(rows + r * stride, batches);
    for (std::size_t h = 0; h < queries; ++h) {
      float offset = 0.0f;
      const __m512 product = group_batches_dot<N, G>(query[h], batches, q_sums[h], offset);
      scores[h * score_stride + r] = multiply_add(_mm512_reduce_add_ps(product), query[h].step, offset);
    }
  }
  return true;
}
#endif

/**
 * axpy_rows_fixed's path for rows of several groups (G < N), for Q queries'
 * weights (weights + h * weight_stride) into y [Q][N] over the same rows, for
 * the Count output registers from First on: each group's codes there are
 * converted to floats once and multiplied into every query's accumulators.
 */
template <class A, int Bits, std::size_t N, std::size_t G, Scheme S, std::size_t Q, std::size_t First,
          std::size_t Count>
inline void axpy_rows_groups_shared_part(const float* KVBITS_RESTRICT weights, std::size_t weight_stride,
                                         const std::uint8_t* rows, std::size_t stride, std::size_t count,
                                         float* KVBITS_RESTRICT y) noexcept {
  using F = typename Lanes<A>::F;
  constexpr std::size_t width = Lanes<A>::kWidth;
  constexpr std::size_t kGroups = N / G;
  constexpr std::size_t block_bytes = group_bytes(Bits, G, S);
  constexpr std::size_t meta = metadata_bytes(S);
  constexpr std::size_t kRowBytes = kGroups * block_bytes;
  const std::size_t ahead = prefetch_distance(stride);
  F acc[Q][Count];            // [query][register of the part] sum over rows of w * scale * code
  float offsets[Q][kGroups];  // [query][group] sum over rows of w * offset
  for (std::size_t h = 0; h < Q; ++h) {
    for (std::size_t i = 0; i < Count; ++i) acc[h][i] = F(0.0f);
    for (std::size_t g = 0; g < kGroups; ++g) offsets[h][g] = 0.0f;
  }
  for (std::size_t r = 0; r < count; ++r) {
    prefetch_row<kRowBytes>(rows, stride, count, r + ahead);
    const std::uint8_t* row = rows + r * stride;
    unrolled(
        [&](auto group) {
          constexpr std::size_t g = decltype(group)::value;
          constexpr std::size_t kFirstReg = g * G / width;
          constexpr std::size_t kEndReg = (g + 1) * G / width;
          const std::uint8_t* block = row + g * block_bytes;
          const auto affine = kvbits::detail::load_affine(block, S, Bits);
          F scale[Q];
          for (std::size_t h = 0; h < Q; ++h) {
            const float w = weights[h * weight_stride + r];
            offsets[h][g] = multiply_add(w, affine.offset, offsets[h][g]);
            scale[h] = F(w * affine.scale);
          }
          if constexpr (kEndReg > First && kFirstReg < First + Count) {
            for_each_value_fixed<A, Bits, G>(block + meta, [&](auto index, const F& codes) {
              constexpr std::size_t reg = (g * G + decltype(index)::value) / width;
              if constexpr (reg >= First && reg < First + Count) {
                for (std::size_t h = 0; h < Q; ++h) {
                  acc[h][reg - First] = xsimd::fma(scale[h], codes, acc[h][reg - First]);
                }
              }
            });
          }
        },
        std::make_index_sequence<kGroups>{});
  }
  for (std::size_t h = 0; h < Q; ++h) {
    float* out = y + h * N;
    for (std::size_t i = 0; i < Count; ++i) {
      const std::size_t reg = First + i;
      (F::load_unaligned(out + reg * width) + (acc[h][i] + F(offsets[h][reg * width / G])))
          .store_unaligned(out + reg * width);
    }
  }
}

/**
 * dot_rows for queries <= kMaxSharedQueries queries (q [queries][n]) over the
 * same rows, scores of query h at scores + h * score_stride, when a shared
 * kernel applies to (Bits, G, n): the rows dot_rows gives the integer AVX-512
 * VNNI kernels (2/3/4/8 bits, one group or groups of 32 or 64 elements per row
 * of 64 or 128) or the integer AVX2 ones (2/4 bits, one group per row of 64 or
 * 128), every query on the integer grid. @return false otherwise; the caller
 * then runs each query through dot_rows, which gives any score already
 * written the same bits.
 */
template <class A, int Bits, std::size_t G>
inline bool dot_rows_shared([[maybe_unused]] const float* KVBITS_RESTRICT q,
                            [[maybe_unused]] std::size_t queries, [[maybe_unused]] std::size_t n,
                            [[maybe_unused]] Scheme scheme, [[maybe_unused]] const std::uint8_t* rows,
                            [[maybe_unused]] std::size_t stride, [[maybe_unused]] std::size_t count,
                            [[maybe_unused]] float* KVBITS_RESTRICT scores,
                            [[maybe_unused]] std::size_t score_stride) noexcept {
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
  // The rows dot_rows sends to the integer kernels (kIntegerDotRows), with one kernel each.
  bool done = false;
  const auto integer = [&](auto length) {
    constexpr std::size_t kN = decltype(length)::value;
    if constexpr (kIntegerDotRows<Bits, kN, G>) {
      if (n != kN) return;
      with_scheme(scheme, [&](auto fixed) {
        if constexpr (kN == G && kPlanar<Bits>) {
          done = dot_rows_integer_shared<Bits, kN, fixed.value>(q, queries, rows, stride, count, scores,
                                                                score_stride);
        } else {
          done = dot_rows_integer_groups_shared<Bits, kN, G, fixed.value>(q, queries, rows, stride, count,
                                                                          scores, score_stride);
        }
      });
    }
  };
  integer(std::integral_constant<std::size_t, 128>{});
  integer(std::integral_constant<std::size_t, 64>{});
  return done;
#elif KVBITS_INTEGER_DOT_AVX2
  return avx2::dot_rows<Bits, G>(q, queries, n, scheme, rows, stride, count, scores, score_stride);
#else
  return false;
#endif
}

/// Calls part(std::integral_constant<size_t, First>) for First = 0, P, 2P, ... < Batches.
template <std::size_t Batches, std::size_t P, class Fn>
KVBITS_ALWAYS_INLINE void for_each_part(Fn&& part) {
  unrolled([&](auto index) { part(std::integral_constant<std::size_t, decltype(index)::value * P>{}); },
           std::make_index_sequence<Batches / P>{});
}

/**
 * axpy_rows for `queries` queries' weights (weights + h * weight_stride) into
 * y [queries][n] over the same rows, when a shared kernel applies: planar
 * codes in rows of 64 or 128 elements that the fixed-length kernel takes on
 * AVX-512. The queries run in
 * balanced passes of at most kMaxSharedQueries, each over parts of the row
 * whose accumulators fit the spare registers (a page's rows are read once per
 * part, from L1; every element is converted once).
 * @return false, writing nothing, when none applies.
 */
template <class A, int Bits, std::size_t G>
inline bool axpy_rows_shared(const float* KVBITS_RESTRICT weights, std::size_t weight_stride,
                             std::size_t queries, std::size_t n, Scheme scheme, const std::uint8_t* rows,
                             std::size_t stride, std::size_t count, float* KVBITS_RESTRICT y) noexcept {
  // Runs pass(Q, weights of the pass, outputs of the pass) over passes of 8, 4, 2 or 1 queries.
  const auto in_passes = [&](auto length, auto&& pass) {
    constexpr std::size_t kN = decltype(length)::value;
    for (std::size_t first = 0; first < queries;) {
      first += with_query_pass(queries - first, [&](auto chosen) {
        pass(chosen, weights + first * weight_stride, y + first * kN);
      });
    }
  };

  bool done = false;
  const auto run = [&](auto length) {
    constexpr std::size_t kN = decltype(length)::value;
    // AVX-512 only: narrower batches would need more parts per row, and each (width, group, pass)
    // is one more instantiation of these kernels in every translation unit that includes them.
    if constexpr (Lanes<A>::kWidth == 16 && G != 0 && G <= kN && kFixedRows<A, Bits, kN, G>) {
      // axpy_rows_fixed's one-group path batches W rows' scales through a gather.
      if (G == kN && stride >= kMaxGatherStride) return;
      constexpr std::size_t kBatches = kN / Lanes<A>::kWidth;
      with_scheme(scheme, [&](auto fixed) {
        in_passes(length, [&](auto chosen, const float* w, float* out) {
          constexpr std::size_t Q = decltype(chosen)::value;
          constexpr std::size_t P = part_batches<A>(kBatches, Q);
          for_each_part<kBatches, P>([&](auto first) {
            constexpr std::size_t kFirst = decltype(first)::value;
            if constexpr (G == kN) {
              axpy_rows_shared_part<A, Bits, kN, fixed.value, Q, kFirst, P>(w, weight_stride, rows, stride,
                                                                            count, out);
            } else {
              axpy_rows_groups_shared_part<A, Bits, kN, G, fixed.value, Q, kFirst, P>(w, weight_stride, rows,
                                                                                      stride, count, out);
            }
          });
        });
      });
      done = true;
    }
  };
  if (n == 128) run(std::integral_constant<std::size_t, 128>{});
  if (n == 64) run(std::integral_constant<std::size_t, 64>{});
  return done;
}

#endif  // KVBITS_XSIMD_KERNELS

}  // namespace simd
}  // namespace KVBITS_ISA_NAMESPACE
}  // namespace kvbits::kernel
