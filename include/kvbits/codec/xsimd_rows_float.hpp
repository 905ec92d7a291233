// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>

#include "kvbits/codec/xsimd_lanes.hpp"
#include "kvbits/codec/xsimd_prefetch.hpp"
#include "kvbits/config.hpp"
#include "kvbits/core/isa_namespace.hpp"

// dot_rows and axpy_rows over 16/32-bit rows of a compile-time length: the
// query or the output accumulator stays in registers for the whole call.
namespace kvbits::kernel {
inline namespace KVBITS_ISA_NAMESPACE {
namespace simd {

#if KVBITS_XSIMD_KERNELS

/// Vector registers a row kernel may give to accumulators: half the register
/// file (32 on AVX-512 and AArch64, 16 on SSE and AVX2).
template <class A>
inline constexpr std::size_t kSpareRegisters =
#if defined(__aarch64__)
    16;
#else
    Lanes<A>::kWidth == 16 ? 16 : 8;
#endif

/// Output batches per part when Q queries keep an accumulator for each batch
/// of a row of `batches`: as many as fit the spare registers.
template <class A>
constexpr std::size_t part_batches(std::size_t batches, std::size_t queries) noexcept {
  return std::min(batches, std::bit_floor(std::max<std::size_t>(1, kSpareRegisters<A> / queries)));
}

/// Whether the fixed-length float row kernels apply to 16/32-bit rows of N
/// elements on A: the query or accumulator (N / W batches) stays in registers.
template <class A, int Bits, std::size_t N>
inline constexpr bool kFixedFloatRows =
    (Bits == 16 || Bits == 32) && N % Lanes<A>::kWidth == 0 && N / Lanes<A>::kWidth <= 8;

/// Batch `index` (W floats) of a 16/32-bit row.
template <class A, int Bits>
KVBITS_ALWAYS_INLINE typename Lanes<A>::F load_float_row(const std::uint8_t* row,
                                                         std::size_t index) noexcept {
  using L = Lanes<A>;
  if constexpr (Bits == 32) {
    return L::F::load_unaligned(reinterpret_cast<const float*>(row) + index * L::kWidth);
  } else {
    return L::load_halves(row + 2 * index * L::kWidth);
  }
}

/**
 * dot_rows for 16/32-bit rows of N elements: the query stays in registers and
 * W rows' products are reduced together (Lanes::reduce_rows) instead of one
 * horizontal add per row, so a row costs its loads and FMAs.
 */
template <class A, int Bits, std::size_t N>
inline void dot_rows_float(const float* KVBITS_RESTRICT q, const std::uint8_t* rows, std::size_t stride,
                           std::size_t count, float* KVBITS_RESTRICT scores) noexcept {
  using L = Lanes<A>;
  using F = typename L::F;
  constexpr std::size_t width = L::kWidth;
  constexpr std::size_t kRegs = N / width;
  const std::size_t ahead = prefetch_distance(stride);
  F query[kRegs];  // [N / W] the query
  for (std::size_t i = 0; i < kRegs; ++i) query[i] = F::load_unaligned(q + i * width);
  const auto row_dot = [&](const std::uint8_t* row) {
    F even = query[0] * load_float_row<A, Bits>(row, 0);
    F odd(0.0f);
    for (std::size_t i = 1; i < kRegs; ++i) {
      if (i % 2 == 0) {
        even = xsimd::fma(query[i], load_float_row<A, Bits>(row, i), even);
      } else {
        odd = xsimd::fma(query[i], load_float_row<A, Bits>(row, i), odd);
      }
    }
    return even + odd;
  };
  std::size_t r = 0;
  for (; r + width <= count; r += width) {
    F products[width];  // [W rows] lane-partial products
    for (std::size_t k = 0; k < width; ++k) {
      prefetch_row<N * Bits / 8>(rows, stride, count, r + k + ahead);
      products[k] = row_dot(rows + (r + k) * stride);
    }
    L::reduce_rows(products).store_unaligned(scores + r);
  }
  for (; r < count; ++r) scores[r] = xsimd::hadd(row_dot(rows + r * stride));
}

/**
 * axpy_rows for 16/32-bit rows of N elements: the output accumulates in
 * registers over all rows and is added to y once, so no row waits for the
 * previous row's store of y.
 */
template <class A, int Bits, std::size_t N>
inline void axpy_rows_float(const float* KVBITS_RESTRICT weights, const std::uint8_t* rows,
                            std::size_t stride, std::size_t count, float* KVBITS_RESTRICT y) noexcept {
  using F = typename Lanes<A>::F;
  constexpr std::size_t width = Lanes<A>::kWidth;
  constexpr std::size_t kRegs = N / width;
  // Two rows at a time into two sets of accumulators where registers allow:
  // with one chain per register every row would wait on the FMA latency.
  constexpr std::size_t kChains = 2 * kRegs <= kSpareRegisters<A> ? 2 : 1;
  F acc[kChains][kRegs];  // [chain][N / W] sum over rows of w * row
  for (auto& chain : acc) {
    for (F& batch : chain) batch = F(0.0f);
  }
  const std::size_t ahead = prefetch_distance(stride);
  std::size_t r = 0;
  const auto add_row = [&](std::size_t row_index, F(&sum)[kRegs]) {
    prefetch_row<N * Bits / 8>(rows, stride, count, row_index + ahead);
    const std::uint8_t* row = rows + row_index * stride;
    const F w(weights[row_index]);
    for (std::size_t i = 0; i < kRegs; ++i) sum[i] = xsimd::fma(w, load_float_row<A, Bits>(row, i), sum[i]);
  };
  for (; r + kChains <= count; r += kChains) {
    for (std::size_t c = 0; c < kChains; ++c) add_row(r + c, acc[c]);
  }
  for (; r < count; ++r) add_row(r, acc[0]);
  for (std::size_t i = 0; i < kRegs; ++i) {
    F sum = acc[0][i];
    for (std::size_t c = 1; c < kChains; ++c) sum += acc[c][i];
    (F::load_unaligned(y + i * width) + sum).store_unaligned(y + i * width);
  }
}

#endif  // KVBITS_XSIMD_KERNELS

}  // namespace simd
}  // namespace KVBITS_ISA_NAMESPACE
}  // namespace kvbits::kernel
