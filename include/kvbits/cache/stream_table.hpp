// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cstddef>

#include "kvbits/cache/options.hpp"
#include "kvbits/core/bit_width.hpp"
#include "kvbits/core/decision.hpp"

// Which stream of a layer holds which widths, and how big their pages are.
namespace kvbits::detail {

/// Streams per layer: one per (key bits, value bits) pair, then the float sink/window area.
inline constexpr std::size_t kPairStreams = kSupportedBits.size() * kSupportedBits.size();
inline constexpr std::size_t kResidualStream = kPairStreams;
inline constexpr std::size_t kStreamCount = kPairStreams + 1;

/// Stream holding tokens decided as `bits` (both widths supported).
constexpr std::size_t pair_stream(const BitDecision& bits) noexcept {
  return bits_index(bits.key_bits) * kSupportedBits.size() + bits_index(bits.value_bits);
}

/// Storage widths of a stream (the residual area stores floats).
constexpr BitDecision stream_bits(std::size_t stream) noexcept {
  if (stream == kResidualStream) return {32, 32};
  return {kSupportedBits[stream / kSupportedBits.size()], kSupportedBits[stream % kSupportedBits.size()]};
}

/// Fewest slots in a page of a long cache. Attention does a fixed amount of work per page (a kernel
/// call per plane, a softmax update, a new stream of reads from DRAM); over pages of 32 or 64 rows
/// it made cold 16/32-bit attention 1.2-1.7x a contiguous loop, over 128 or more 1.05-1.15x
/// (docs/benchmarks.md). At the default plane this enlarges only the pages of rows wider than 128
/// bytes: 8- and 16-bit rows from head_dim 128 on, 32-bit rows from head_dim 64 on.
inline constexpr std::size_t kMinPageTokens = 128;

/**
 * Slots per page for rows of `widest_row` bytes: about `plane_bytes` (CacheOptions::page_plane_bytes)
 * per head plane, a multiple of 16, at most the capacity rounded up to 16, and at least
 * kMinPageTokens or, in a cache of fewer than 16 such pages, a sixteenth of the capacity (>= 16):
 * a short cache keeps its smaller pages, whose reserved room weighs more there than the page walk.
 * No row counts as narrower than 16 bytes, which bounds the pages of rows of a few bytes: at most
 * plane_bytes / 16 slots, 1024 with the default planes.
 */
inline std::size_t page_tokens_for(std::size_t widest_row, std::size_t capacity,
                                   std::size_t plane_bytes) noexcept {
  static_assert(kMinPageTokens % 16 == 0 && kMinPageTokens <= kMinPagePlaneBytes / 16,
                "the fewest slots must be a multiple of 16 that every plane size allows");
  const std::size_t fewest = std::clamp<std::size_t>(capacity / 256 * 16, 16, kMinPageTokens);
  std::size_t tokens = std::clamp<std::size_t>(plane_bytes / widest_row, fewest, plane_bytes / 16);
  tokens -= tokens % 16;
  const std::size_t capacity_rounded = (capacity + 15) / 16 * 16;
  return std::min(tokens, capacity_rounded);
}

}  // namespace kvbits::detail
