// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>

#include "kvbits/cache/layer_store.hpp"
#include "kvbits/cache/memory_report.hpp"
#include "kvbits/cache/options.hpp"
#include "kvbits/cache/token_notes.hpp"

namespace kvbits::detail {

/**
 * Storage bits per K/V element: 8 * stored bytes / (tokens * kv_heads * head_dim * 2).
 * The one formula behind LayerMemory::average_bits and the cache's running
 * bits_per_element(), so the two agree exactly.
 */
inline double average_bits(std::size_t stored_bytes, std::size_t tokens,
                           const CacheOptions& options) noexcept {
  const std::size_t elements = tokens * options.kv_heads * options.head_dim * 2;
  if (elements == 0) return 0.0;
  return 8.0 * static_cast<double>(stored_bytes) / static_cast<double>(elements);
}

/// Bytes of group metadata in one packed head vector.
inline std::size_t row_metadata_bytes(const QuantFormat& format, std::size_t head_dim) noexcept {
  if (!is_grouped_bits(format.bits)) return 0;
  return head_dim / effective_group_size(format, head_dim) * metadata_bytes(format.scheme);
}

/// Memory of one layer: bytes by kind, widths histogram, average bits.
inline LayerMemory layer_memory(const LayerStore& store, const TokenNotes& notes,
                                const CacheOptions& options) {
  const std::size_t d = options.head_dim;
  const std::size_t kv_heads = options.kv_heads;
  LayerMemory m;
  m.tokens = store.size();
  for (std::size_t s = 0; s < kStreamCount; ++s) {
    const PagedStream& stream = store.stream(s);
    m.reserved_bytes += stream.allocated_bytes();
    const std::size_t count = stream.size();
    m.index_bytes += count * sizeof(std::uint32_t);
    if (count == 0) continue;
    const BitDecision bits = stream_bits(s);
    m.histogram.key[bits_index(bits.key_bits)] += count;
    m.histogram.value[bits_index(bits.value_bits)] += count;
    if (s == kResidualStream) {
      m.residual_tokens += count;
      m.residual_bytes += count * kv_heads * (stream.key_row() + stream.value_row());
      continue;
    }
    const std::size_t key_meta = row_metadata_bytes(stream.key_format(), d);
    const std::size_t value_meta = row_metadata_bytes(stream.value_format(), d);
    m.metadata_bytes += count * kv_heads * (key_meta + value_meta);
    m.code_bytes += count * kv_heads * (stream.key_row() - key_meta + stream.value_row() - value_meta);
  }
  m.index_bytes += m.tokens * sizeof(TokenSlot);
  m.reserved_bytes += store.index_capacity() * sizeof(TokenSlot);
  // Notes of the newest tokens (those the policy may still be asked about), statistics of all.
  m.index_bytes += std::min(m.tokens, notes.ring_size()) * sizeof(TokenNote);
  m.reserved_bytes += notes.allocated_bytes();
  if (store.keeps_statistics()) {
    m.index_bytes += m.tokens * SlotStatistics::kBytesPerSlot;
    m.reserved_bytes += store.statistics_bytes();
  }
  m.bytes = m.code_bytes + m.metadata_bytes + m.residual_bytes + m.index_bytes;
  m.average_bits = average_bits(m.code_bytes + m.metadata_bytes + m.residual_bytes, m.tokens, options);
  return m;
}

/// total += m, field by field (average_bits excluded).
inline void accumulate(LayerMemory& total, const LayerMemory& m) noexcept {
  total.tokens += m.tokens;
  total.residual_tokens += m.residual_tokens;
  total.code_bytes += m.code_bytes;
  total.metadata_bytes += m.metadata_bytes;
  total.residual_bytes += m.residual_bytes;
  total.index_bytes += m.index_bytes;
  total.bytes += m.bytes;
  total.reserved_bytes += m.reserved_bytes;
  total.histogram += m.histogram;
}

/**
 * The memory report of a cache.
 * @param layers [layers] of a type with members `store` (LayerStore) and `notes` (TokenNotes).
 */
template <class Layers>
MemoryReport cache_memory(const Layers& layers, const CacheOptions& options) {
  MemoryReport report;
  report.layers.reserve(layers.size());
  for (const auto& layer : layers) {
    report.layers.push_back(layer_memory(layer.store, layer.notes, options));
    accumulate(report.total, report.layers.back());
  }
  const LayerMemory& t = report.total;
  report.total.average_bits =
      average_bits(t.code_bytes + t.metadata_bytes + t.residual_bytes, t.tokens, options);
  return report;
}

/// Running totals of the whole cache, kept O(1) by the mutating paths.
struct StorageTally {
  std::size_t stored_bytes = 0;  // codes + metadata + float rows of every layer
  std::size_t tokens = 0;        // tokens of every layer
};

/**
 * @return the totals of `layers` counted afresh (after a load).
 * @param layers [layers] of a type with a member `store` (LayerStore).
 */
template <class Layers>
StorageTally count_storage(const Layers& layers) noexcept {
  StorageTally tally;
  for (const auto& layer : layers) {
    tally.stored_bytes += layer.store.stored_bytes();
    tally.tokens += layer.store.size();
  }
  return tally;
}

}  // namespace kvbits::detail
