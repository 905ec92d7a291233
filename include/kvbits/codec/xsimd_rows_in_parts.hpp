// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kvbits/codec/format.hpp"
#include "kvbits/codec/group_params.hpp"
#include "kvbits/codec/xsimd_code_visitors.hpp"
#include "kvbits/codec/xsimd_dispatch.hpp"
#include "kvbits/codec/xsimd_lanes.hpp"
#include "kvbits/codec/xsimd_prefetch.hpp"
#include "kvbits/codec/xsimd_rows_float.hpp"
#include "kvbits/config.hpp"
#include "kvbits/core/isa_namespace.hpp"
#include "kvbits/core/multiply_add.hpp"

// axpy_rows over 2/4/8-bit rows of one group whose outputs outnumber the
// registers: 128 elements on AVX2 (16 batches), 64 and 128 on SSE and NEON.
// The generic loop loads and stores y for every row and query; here the row
// is taken a part at a time, with the part's outputs of one or several
// queries (the query heads of a KV head) in registers over a chunk of rows,
// each code widened once per part for all queries. Every output takes the
// rows in order, y = fma(w * scale, code, y) as in the generic loop, and the
// offsets are summed apart by explicit multiply-adds and added at the end, so
// a query's sums are the same bits alone or beside other queries.
namespace kvbits::kernel {
inline namespace KVBITS_ISA_NAMESPACE {
namespace simd {

#if KVBITS_XSIMD_KERNELS

/// Whether axpy_rows_in_parts takes Bits-wide rows of N elements in one group
/// (G == N, or G == 0: a run-time group) on A.
template <class A, int Bits, std::size_t N, std::size_t G>
inline constexpr bool kRowsInParts = kPlanar<Bits> && (G == N || G == 0) && N % Lanes<A>::kWidth == 0 &&
                                     N / Lanes<A>::kWidth > 8 && N* Bits / 8 % Lanes<A>::kWidth == 0;

/// The storage order of a planar row's W-lane batches: W code bytes, then
/// each of their fields (f * N * Bits / 8 + j is field f of code byte j).
/// @return the element of lane 0 of batch `batch` in that order.
template <int Bits, std::size_t N, std::size_t W>
constexpr std::size_t storage_batch_element(std::size_t batch) noexcept {
  constexpr std::size_t fields = 8 / Bits;
  return batch % fields * (N * Bits / 8) + batch / fields * W;
}

/// The inverse of storage_batch_element: the batch holding `element` in lane 0.
template <int Bits, std::size_t N, std::size_t W>
constexpr std::size_t storage_batch(std::size_t element) noexcept {
  constexpr std::size_t field_elements = N * Bits / 8;
  return element % field_elements / W * (8 / Bits) + element / field_elements;
}

/**
 * y [Q][N] += sum_r weights[h * weight_stride + r] * decode(row r) for the
 * Q queries over the same one-group rows. The output batches are visited in
 * the codes' storage order, so the batches a part holds share their code
 * bytes: for 4-bit codes, one load widens the two batches of a byte's two
 * fields.
 */
template <class A, int Bits, std::size_t N, Scheme S, std::size_t Q>
inline void axpy_rows_in_parts(const float* KVBITS_RESTRICT weights, std::size_t weight_stride,
                               const std::uint8_t* rows, std::size_t stride, std::size_t count,
                               float* KVBITS_RESTRICT y) noexcept {
  using F = typename Lanes<A>::F;
  constexpr std::size_t width = Lanes<A>::kWidth;
  constexpr std::size_t kBatches = N / width;
  constexpr std::size_t kPart = part_batches<A>(kBatches, Q);
  constexpr std::size_t meta = metadata_bytes(S);
  constexpr std::size_t kRowBytes = group_bytes(Bits, N, S);
  // Each query's offset sum in 8 lanes, row r in lane r % 8: one chain of
  // multiply-adds over all rows would cost its latency per row.
  constexpr std::size_t kOffsetLanes = 8;
  // Rows whose weighted scales are set out before the parts run over them (a
  // multiple of kOffsetLanes, so a row's lane is the same in the chunk and the call).
  constexpr std::size_t kChunkRows = 64;
  static_assert(kChunkRows % kOffsetLanes == 0);
  const std::size_t ahead = prefetch_distance(stride);
  float offsets[Q][kOffsetLanes] = {};      // [query][lane] sum over rows of w * offset
  alignas(64) float scaled[Q][kChunkRows];  // [query][row of the chunk] w * scale
  for (std::size_t first = 0; first < count; first += kChunkRows) {
    const std::size_t chunk = std::min(kChunkRows, count - first);
    const std::uint8_t* chunk_rows = rows + first * stride;
    for (std::size_t r = 0; r < chunk; ++r) {
      prefetch_row<kRowBytes>(chunk_rows, stride, count - first, r + ahead);
      const auto affine = kvbits::detail::load_affine(chunk_rows + r * stride, S, Bits);
      for (std::size_t h = 0; h < Q; ++h) {
        const float w = weights[h * weight_stride + first + r];
        float& lane = offsets[h][r % kOffsetLanes];
        lane = multiply_add(w, affine.offset, lane);
        scaled[h][r] = w * affine.scale;
      }
    }
    unrolled(
        [&](auto part) {
          constexpr std::size_t kFirst = decltype(part)::value * kPart;
          // Query h's outputs of batch kFirst + i.
          const auto output = [&](std::size_t h, std::size_t i) {
            return y + h * N + storage_batch_element<Bits, N, Lanes<A>::kWidth>(kFirst + i);
          };
          F acc[Q][kPart];  // [query][batch of the part]
          for (std::size_t h = 0; h < Q; ++h) {
            for (std::size_t i = 0; i < kPart; ++i) acc[h][i] = F::load_unaligned(output(h, i));
          }
          for (std::size_t r = 0; r < chunk; ++r) {
            for_each_code_in_batches<A, Bits, N, decltype(part)::value * kPart, kPart>(
                chunk_rows + r * stride + meta, [&](auto index, const auto& codes) {
                  constexpr std::size_t i =
                      storage_batch<Bits, N, Lanes<A>::kWidth>(decltype(index)::value) - kFirst;
                  const F values = xsimd::to_float(codes);
                  for (std::size_t h = 0; h < Q; ++h) {
                    acc[h][i] = xsimd::fma(F(scaled[h][r]), values, acc[h][i]);
                  }
                });
          }
          for (std::size_t h = 0; h < Q; ++h) {
            for (std::size_t i = 0; i < kPart; ++i) acc[h][i].store_unaligned(output(h, i));
          }
        },
        std::make_index_sequence<kBatches / kPart>{});
  }
  static_assert(kOffsetLanes == 8, "the lanes are added pairwise below");
  for (std::size_t h = 0; h < Q; ++h) {
    const float* lanes = offsets[h];
    const F offset(((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) +
                   ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7])));
    for (std::size_t i = 0; i < N; i += width) {
      (F::load_unaligned(y + h * N + i) + offset).store_unaligned(y + h * N + i);
    }
  }
}

/**
 * axpy_rows_in_parts for `queries` queries' weights (weights + h *
 * weight_stride) into y [queries][n], in passes of with_query_pass. @return
 * false, writing nothing, when it does not take (Bits, n, group).
 */
template <class A, int Bits, std::size_t G>
inline bool axpy_rows_in_parts_shared(const float* KVBITS_RESTRICT weights, std::size_t weight_stride,
                                      std::size_t queries, std::size_t n, std::size_t runtime_group,
                                      Scheme scheme, const std::uint8_t* rows, std::size_t stride,
                                      std::size_t count, float* KVBITS_RESTRICT y) noexcept {
  bool done = false;
  const auto run = [&](auto length) {
    constexpr std::size_t kN = decltype(length)::value;
    if constexpr (kRowsInParts<A, Bits, kN, G>) {
      if (n != kN || (G == 0 && runtime_group != kN)) return;
      with_scheme(scheme, [&](auto fixed) {
        for (std::size_t first = 0; first < queries;) {
          first += with_query_pass(queries - first, [&](auto pass) {
            axpy_rows_in_parts<A, Bits, kN, fixed.value, pass.value>(
                weights + first * weight_stride, weight_stride, rows, stride, count, y + first * kN);
          });
        }
      });
      done = true;
    }
  };
  run(std::integral_constant<std::size_t, 128>{});
  run(std::integral_constant<std::size_t, 64>{});
  return done;
}

#endif  // KVBITS_XSIMD_KERNELS

}  // namespace simd
}  // namespace KVBITS_ISA_NAMESPACE
}  // namespace kvbits::kernel
