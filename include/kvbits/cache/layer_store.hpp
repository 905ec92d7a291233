// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "kvbits/cache/options.hpp"
#include "kvbits/cache/paged_stream.hpp"
#include "kvbits/cache/slot_statistics.hpp"
#include "kvbits/cache/stream_table.hpp"
#include "kvbits/codec/format.hpp"
#include "kvbits/policy/decision_context.hpp"

namespace kvbits::detail {

/// Where a token lives.
struct TokenSlot {
  std::uint32_t stream;  // index into LayerStore's streams
  std::uint32_t slot;    // slot within that stream
};

/// Storage format of one side (K or V) at `bits`.
inline QuantFormat side_format(const KVCodecOptions& codec, int bits) noexcept {
  return {bits, codec.group_size, codec.scheme};
}

/**
 * The tokens of one layer: a paged stream per (key bits, value bits) pair and
 * the float sink/window area, the token index mapping each token to its
 * (stream, slot), optional per-slot attention statistics that travel with
 * their token, and a running count of the bytes the stored K/V occupy.
 *
 * Mutations come in two halves: reserve() may allocate and throw; leave(),
 * arrive(), close() and trim() cannot fail, so a caller can plan a batch of changes,
 * reserve for all of them, then commit.
 */
class LayerStore {
 public:
  /**
   * Configures every stream and reserves the index and the float area.
   * @param residual_slots float slots (effective sinks + window);
   * @param keep_statistics whether slots carry attention statistics.
   */
  void configure(const CacheOptions& options, std::size_t residual_slots, std::size_t alignment,
                 bool keep_statistics) {
    const std::size_t d = options.head_dim;
    for (std::size_t s = 0; s < kPairStreams; ++s) {
      const BitDecision bits = stream_bits(s);
      const QuantFormat key = side_format(options.key, bits.key_bits);
      const QuantFormat value = side_format(options.value, bits.value_bits);
      const std::size_t widest = std::max(packed_size(key, d), packed_size(value, d));
      streams_[s].configure(key, value, d, options.kv_heads,
                            page_tokens_for(widest, options.capacity, options.page_plane_bytes), alignment);
    }
    streams_[kResidualStream].configure(side_format(options.key, 32), side_format(options.value, 32), d,
                                        options.kv_heads, std::max<std::size_t>(residual_slots, 1),
                                        alignment);
    keep_statistics_ = keep_statistics;
    if (residual_slots > 0) reserve(kResidualStream, 1);  // the whole float area, once
    index_.reserve(options.capacity);
    for (std::size_t s = 0; s < kStreamCount; ++s) {
      row_bytes_[s] = streams_[s].key_row() + streams_[s].value_row();
    }
    kv_heads_ = options.kv_heads;
  }

  [[nodiscard]] std::size_t size() const noexcept { return index_.size(); }
  [[nodiscard]] bool empty() const noexcept { return index_.empty(); }
  [[nodiscard]] TokenSlot slot(std::size_t token) const noexcept { return index_[token]; }
  [[nodiscard]] const PagedStream& stream(std::size_t s) const noexcept { return streams_[s]; }
  [[nodiscard]] const std::array<PagedStream, kStreamCount>& streams() const noexcept { return streams_; }
  [[nodiscard]] std::size_t index_capacity() const noexcept { return index_.capacity(); }
  [[nodiscard]] bool in_residual(std::size_t token) const noexcept {
    return index_[token].stream == kResidualStream;
  }
  /// @return the widths a token is stored at (32/32 in the float area).
  [[nodiscard]] BitDecision bits(std::size_t token) const noexcept {
    return stream_bits(index_[token].stream);
  }

  /// Bytes of codes, metadata and float rows of every stored token (what average_bits counts).
  [[nodiscard]] std::size_t stored_bytes() const noexcept { return stored_bytes_; }

  /// Makes room for `extra` more tokens in stream `s`. @throws std::bad_alloc.
  void reserve(std::size_t s, std::size_t extra) {
    streams_[s].reserve(extra);
    if (keep_statistics_) statistics_[s].reserve(streams_[s].slot_capacity());
  }

  /// Marks "a new slot at the end of the stream" for arrive().
  static constexpr std::size_t kNewSlot = static_cast<std::size_t>(-1);

  /// Where a moving token leaves from and the statistics it takes along.
  struct Departure {
    TokenSlot from;
    SlotStatistics::Entry statistics;
  };

  /**
   * Token `token` starts a move: its bytes stop counting and its slot becomes
   * a hole, which an arriving token must fill (arrive) or close() must close
   * before the store is read again.
   */
  [[nodiscard]] Departure leave(std::size_t token) noexcept {
    const TokenSlot from = index_[token];
    stored_bytes_ -= kv_heads_ * row_bytes_[from.stream];
    return {from, keep_statistics_ ? statistics_[from.stream].entry(from.slot) : SlotStatistics::Entry{}};
  }

  /**
   * Token `token` (a moving one, or the next new one: size()) arrives in
   * stream `s`, in the hole `slot` of that stream or, given kNewSlot, in a new
   * slot (room reserved).
   * @param keys [kv_heads][key row of s]; @param values [kv_heads][value row of s].
   */
  void arrive(std::size_t token, std::size_t s, std::size_t slot, const std::uint8_t* keys,
              const std::uint8_t* values, const SlotStatistics::Entry& statistics) noexcept {
    const auto id = static_cast<std::uint32_t>(token);
    if (slot == kNewSlot) {
      slot = streams_[s].push(id, keys, values);
      if (keep_statistics_) statistics_[s].push(statistics);
    } else {
      streams_[s].overwrite(slot, id, keys, values);
      if (keep_statistics_) statistics_[s].assign(slot, statistics);
    }
    const TokenSlot at{static_cast<std::uint32_t>(s), static_cast<std::uint32_t>(slot)};
    if (token == index_.size()) {
      index_.push_back(at);  // capacity reserved
    } else {
      index_[token] = at;
    }
    stored_bytes_ += kv_heads_ * row_bytes_[s];
  }

  /**
   * Closes a hole no token arrived in by moving its stream's last slot into
   * it. Close the holes of one stream from the highest slot down, so the slot
   * moved is never another hole. The stream keeps its pages until trim().
   */
  void close(std::size_t s, std::size_t hole) noexcept {
    if (keep_statistics_) statistics_[s].erase(hole);
    const std::uint32_t moved = streams_[s].erase(hole);
    if (moved != kNoToken) index_[moved].slot = static_cast<std::uint32_t>(hole);
  }

  /// @return the statistics of a token stored now: no query has seen it yet.
  [[nodiscard]] SlotStatistics::Entry new_token_statistics() const noexcept {
    SlotStatistics::Entry entry;
    entry.first_query = queries_;
    entry.first_sample = samples_;
    return entry;
  }

  /**
   * Becomes a copy of `other`, a store configured with the same options (so
   * the same streams): its tokens, their widths and statistics, with the
   * same room reserved.
   * Strong guarantee. @throws std::bad_alloc.
   */
  void copy_contents(const LayerStore& other) {
    std::array<PagedStream, kStreamCount> streams;
    std::array<SlotStatistics, kStreamCount> statistics;
    for (std::size_t s = 0; s < kStreamCount; ++s) {
      streams[s] = other.streams_[s].clone();
      if (keep_statistics_) statistics[s].copy_contents(other.statistics_[s], streams[s].slot_capacity());
    }
    std::vector<TokenSlot> index;
    index.reserve(std::max(index_.capacity(), other.index_.size()));
    index.assign(other.index_.begin(), other.index_.end());
    // Nothing below throws.
    streams_ = std::move(streams);
    statistics_ = std::move(statistics);
    index_ = std::move(index);
    stored_bytes_ = other.stored_bytes_;
    queries_ = other.queries_;
    samples_ = other.samples_;
  }

  /// Releases the spare pages of stream `s` beyond one.
  void trim(std::size_t s) noexcept { streams_[s].trim(); }

  /// Drops every token and statistic; keeps a spare page per stream.
  void clear() noexcept {
    for (PagedStream& stream : streams_) stream.clear();
    for (SlotStatistics& stats : statistics_) stats.clear();
    index_.clear();
    stored_bytes_ = 0;
    queries_ = 0;
    samples_ = 0;
  }

  [[nodiscard]] bool keeps_statistics() const noexcept { return keep_statistics_; }

  /// Counts one attention query of `heads` query heads against every stored token.
  void count_query(std::size_t heads) const noexcept {
    ++queries_;
    samples_ += static_cast<std::uint32_t>(heads);
  }

  /// Per-slot statistics of stream `s`, updated by the attention pass.
  [[nodiscard]] SlotStatistics& statistics(std::size_t s) const noexcept { return statistics_[s]; }

  /// @return the attention statistics of a token (keeps_statistics() must hold).
  [[nodiscard]] AttentionStats attention_stats(std::size_t token) const noexcept {
    const TokenSlot at = index_[token];
    return statistics_[at.stream].read(at.slot, queries_, samples_);
  }

  /// Attention queries counted in this layer (statistics hold their count when their token was stored).
  [[nodiscard]] std::uint32_t queries() const noexcept { return queries_; }
  /// (Query, query head) pairs counted in this layer.
  [[nodiscard]] std::uint32_t samples() const noexcept { return samples_; }

  /**
   * Restoring, step 1 (once per non-empty stream of a store holding no tokens
   * yet): stream `s` gets the live slots of `slot_tokens`, in slot order, and as
   * many statistics entries when they are kept, all to be filled by the caller
   * through the returned stream's for_each_row_run and statistics(s).
   * @throws std::bad_alloc.
   */
  PagedStream& restore_stream(std::size_t s, std::span<const std::uint32_t> slot_tokens) {
    reserve(s, slot_tokens.size());
    streams_[s].restore(slot_tokens);
    if (keep_statistics_) statistics_[s].resize(slot_tokens.size());
    return streams_[s];
  }

  /**
   * Restoring, step 2: rebuilds the token index from the streams' slot maps,
   * sets the layer's counters and recounts the stored bytes.
   * @param size tokens in the layer: the sum of the restored streams' sizes, at most the capacity.
   * @return false unless every token in [0, size) sits in exactly one slot; the store must then be
   *         discarded.
   */
  [[nodiscard]] bool finish_restore(std::size_t size, std::uint32_t queries, std::uint32_t samples) {
    constexpr auto kUnplaced = static_cast<std::uint32_t>(kStreamCount);
    index_.assign(size, TokenSlot{kUnplaced, 0});
    stored_bytes_ = 0;
    for (std::size_t s = 0; s < kStreamCount; ++s) {
      const std::vector<std::uint32_t>& tokens = streams_[s].slot_tokens();
      for (std::size_t slot = 0; slot < tokens.size(); ++slot) {
        const std::uint32_t token = tokens[slot];
        if (token >= size || index_[token].stream != kUnplaced) return false;
        index_[token] = {static_cast<std::uint32_t>(s), static_cast<std::uint32_t>(slot)};
      }
      stored_bytes_ += tokens.size() * kv_heads_ * row_bytes_[s];
    }
    for (const TokenSlot& at : index_) {
      if (at.stream == kUnplaced) return false;
    }
    queries_ = queries;
    samples_ = samples;
    return true;
  }

  /// Bytes allocated for statistics.
  [[nodiscard]] std::size_t statistics_bytes() const noexcept {
    std::size_t bytes = 0;
    for (const SlotStatistics& stats : statistics_) bytes += stats.allocated_bytes();
    return bytes;
  }

 private:
  std::array<PagedStream, kStreamCount> streams_;      // pair streams, then the float area
  std::vector<TokenSlot> index_;                       // [size]: token -> (stream, slot); capacity reserved
  std::array<std::size_t, kStreamCount> row_bytes_{};  // key row + value row bytes of each stream
  std::size_t kv_heads_ = 1;
  std::size_t stored_bytes_ = 0;  // sum over tokens of kv_heads * row_bytes_[their stream]
  bool keep_statistics_ = false;
  // Attention statistics are written by the (const) attention pass, like its
  // scratch: a cache object is not used from two threads at once.
  mutable std::array<SlotStatistics, kStreamCount> statistics_;  // [stream][slot], mirrors streams_
  mutable std::uint32_t queries_ = 0;                            // attention queries counted
  mutable std::uint32_t samples_ = 0;                            // (query, query head) pairs counted
};

}  // namespace kvbits::detail
