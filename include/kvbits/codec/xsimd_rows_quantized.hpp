// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "kvbits/codec/format.hpp"
#include "kvbits/codec/group_params.hpp"
#include "kvbits/codec/xsimd_code_visitors.hpp"
#include "kvbits/codec/xsimd_dispatch.hpp"
#include "kvbits/codec/xsimd_lanes.hpp"
#include "kvbits/codec/xsimd_prefetch.hpp"
#include "kvbits/codec/xsimd_row_affines.hpp"
#include "kvbits/config.hpp"
#include "kvbits/core/isa_namespace.hpp"

// dot_rows and axpy_rows over planar 2/4/8-bit rows of a compile-time length
// and group, in float arithmetic: the query or the output accumulator stays in
// registers for the whole call.
namespace kvbits::kernel {
inline namespace KVBITS_ISA_NAMESPACE {
namespace simd {

#if KVBITS_XSIMD_KERNELS

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
  constexpr std::size_t kRowBytes = kGroups * block_bytes;
  const std::size_t ahead = prefetch_distance(stride);
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
          prefetch_row<kRowBytes>(rows, stride, count, r + k + ahead);
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
        prefetch_row<kRowBytes>(rows, stride, count, r + k + ahead);
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
  constexpr std::size_t kRowBytes = kGroups * block_bytes;
  const std::size_t ahead = prefetch_distance(stride);
  F acc[kRegs];  // [N / W] sum over rows of w * scale * code
  for (std::size_t i = 0; i < kRegs; ++i) acc[i] = F(0.0f);
  float offsets[kGroups] = {};  // [groups] sum over rows of w * offset
  const auto row_axpy = [&](const std::uint8_t* row, float w) {
    unrolled(
        [&](auto group) {
          constexpr std::size_t g = group.value;
          const std::uint8_t* block = row + g * block_bytes;
          const auto affine = kvbits::detail::load_affine(block, scheme, Bits);
          offsets[g] = multiply_add(w, affine.offset, offsets[g]);
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
          prefetch_row<kRowBytes>(rows, stride, count, r + k + ahead);
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
    prefetch_row<kRowBytes>(rows, stride, count, r + ahead);
    row_axpy(rows + r * stride, weights[r]);
  }
  for (std::size_t i = 0; i < kRegs; ++i) {
    (F::load_unaligned(y + i * width) + (acc[i] + F(offsets[i * width / G]))).store_unaligned(y + i * width);
  }
}

#endif  // KVBITS_XSIMD_KERNELS

}  // namespace simd
}  // namespace KVBITS_ISA_NAMESPACE
}  // namespace kvbits::kernel
