// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>

#include "kvbits/codec/xsimd_lanes.hpp"
#include "kvbits/config.hpp"
#include "kvbits/core/isa_namespace.hpp"

// Software prefetch for the row kernels: how far ahead, and of which lines.
namespace kvbits::kernel {
inline namespace KVBITS_ISA_NAMESPACE {
namespace simd {

#if KVBITS_XSIMD_KERNELS

/// How far ahead of the row it reads a row kernel prefetches: about what must
/// be in flight to stream cold rows from DRAM at full bandwidth (latency x
/// bandwidth), whatever the row width.
inline constexpr std::size_t kPrefetchBytes = 8192;

/// Rows from the one a row kernel reads to the one it prefetches (kPrefetchBytes ahead).
KVBITS_ALWAYS_INLINE std::size_t prefetch_distance(std::size_t stride) noexcept {
  return kPrefetchBytes / stride + 1;
}

/// Prefetches every cache line of the first `Bytes` bytes of row `r` (nothing
/// when r >= count, so no pointer leaves the rows).
template <std::size_t Bytes>
KVBITS_ALWAYS_INLINE void prefetch_row(const std::uint8_t* rows, std::size_t stride, std::size_t count,
                                       std::size_t r) noexcept {
  if (r >= count) return;
  const std::uint8_t* row = rows + r * stride;
  const auto fetch = [](const std::uint8_t* p) {
#if defined(__x86_64__) || defined(__i386__)
    _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
#else
    __builtin_prefetch(p, 0, 3);
#endif
  };
  for (std::size_t line = 0; line < Bytes; line += 64) fetch(row + line);
  // A row that does not start on a line boundary may end in one more line.
  if constexpr (Bytes % 64 != 0) fetch(row + Bytes - 1);
}

#endif  // KVBITS_XSIMD_KERNELS

}  // namespace simd
}  // namespace KVBITS_ISA_NAMESPACE
}  // namespace kvbits::kernel
