// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kvbits/config.hpp"
#include "kvbits/policy/decision_context.hpp"

namespace kvbits::detail {

/**
 * Attention statistics of the tokens of one stream, slot by slot, in the
 * stream's slot order. Slots mirror PagedStream's exactly (push appends,
 * erase moves the last slot into the hole), so the attention pass updates
 * them with contiguous, vectorisable loops and never gathers by token.
 *
 * A token's query and sample counts are not stored per slot: the layer counts
 * queries and samples, and each slot remembers the layer's counts when its
 * token was stored.
 */
class SlotStatistics {
 public:
  /// Makes room for `slots` entries in total. @throws std::bad_alloc.
  void reserve(std::size_t slots) {
    sum_.reserve(slots);
    sum_squares_.reserve(slots);
    max_.reserve(slots);
    last_.reserve(slots);
    first_query_.reserve(slots);
    first_sample_.reserve(slots);
  }

  /// Becomes a copy of `other` with room for `slots` entries. Strong guarantee. @throws std::bad_alloc.
  void copy_contents(const SlotStatistics& other, std::size_t slots) {
    SlotStatistics copy;
    copy.reserve(std::max(slots, other.sum_.size()));
    copy.sum_.assign(other.sum_.begin(), other.sum_.end());
    copy.sum_squares_.assign(other.sum_squares_.begin(), other.sum_squares_.end());
    copy.max_.assign(other.max_.begin(), other.max_.end());
    copy.last_.assign(other.last_.begin(), other.last_.end());
    copy.first_query_.assign(other.first_query_.begin(), other.first_query_.end());
    copy.first_sample_.assign(other.first_sample_.begin(), other.first_sample_.end());
    *this = std::move(copy);
  }

  /// One slot's statistics, as they travel with a token moving between streams.
  struct Entry {
    float sum = 0.0f;
    float sum_squares = 0.0f;
    float max = 0.0f;
    float last = 0.0f;
    std::uint32_t first_query = 0;
    std::uint32_t first_sample = 0;
  };

  /// @return the statistics of `slot`.
  [[nodiscard]] Entry entry(std::size_t slot) const noexcept {
    return {sum_[slot], sum_squares_[slot], max_[slot], last_[slot], first_query_[slot], first_sample_[slot]};
  }

  /// Appends a slot holding `entry` (room reserved).
  void push(const Entry& entry) noexcept {
    sum_.push_back(entry.sum);
    sum_squares_.push_back(entry.sum_squares);
    max_.push_back(entry.max);
    last_.push_back(entry.last);
    first_query_.push_back(entry.first_query);
    first_sample_.push_back(entry.first_sample);
  }

  /// The live slot `slot` now holds `entry`.
  void assign(std::size_t slot, const Entry& entry) noexcept {
    sum_[slot] = entry.sum;
    sum_squares_[slot] = entry.sum_squares;
    max_[slot] = entry.max;
    last_[slot] = entry.last;
    first_query_[slot] = entry.first_query;
    first_sample_[slot] = entry.first_sample;
  }

  /// Removes `slot` by moving the last slot into it, as PagedStream::erase does.
  void erase(std::size_t slot) noexcept {
    move_last_into(sum_, slot);
    move_last_into(sum_squares_, slot);
    move_last_into(max_, slot);
    move_last_into(last_, slot);
    move_last_into(first_query_, slot);
    move_last_into(first_sample_, slot);
  }

  void clear() noexcept {
    sum_.clear();
    sum_squares_.clear();
    max_.clear();
    last_.clear();
    first_query_.clear();
    first_sample_.clear();
  }

  /**
   * Adds one query head's probabilities p = weight * factor of slots [first, first + count).
   * @param weight [count] unnormalised softmax weights in slot order;
   * @param factor their normalisation (exp(shift - final max) / final sum);
   * @param first_head true for the first head of a query, which restarts `last`.
   */
  void accumulate(std::size_t first, const float* KVBITS_RESTRICT weight, std::size_t count, float factor,
                  bool first_head) noexcept {
    float* KVBITS_RESTRICT sum = sum_.data() + first;
    float* KVBITS_RESTRICT squares = sum_squares_.data() + first;
    float* KVBITS_RESTRICT best = max_.data() + first;
    float* KVBITS_RESTRICT last = last_.data() + first;
    const float keep_last = first_head ? 0.0f : 1.0f;
    for (std::size_t i = 0; i < count; ++i) {
      const float p = weight[i] * factor;
      sum[i] += p;
      squares[i] += p * p;
      best[i] = best[i] > p ? best[i] : p;
      last[i] = last[i] * keep_last + p;
    }
  }

  /// @return the statistics of `slot`, given the layer's current query and sample counts.
  [[nodiscard]] AttentionStats read(std::size_t slot, std::uint32_t queries,
                                    std::uint32_t samples) const noexcept {
    AttentionStats stats;
    stats.queries = queries - first_query_[slot];
    stats.samples = samples - first_sample_[slot];
    stats.sum = sum_[slot];
    stats.sum_squares = sum_squares_[slot];
    stats.max = max_[slot];
    stats.last = last_[slot];
    return stats;
  }

  /**
   * Calls `run(values, bytes)` for each array, in the order a cache file stores
   * them: sum, sum_squares, max, last (floats), first_query, first_sample
   * (32-bit counts), each [size] in slot order.
   */
  template <class Run>
  void for_each_array(Run&& run) const {
    visit_arrays<const std::uint8_t>(*this, run);
  }

  /// As above, with writable arrays: fills statistics sized by resize().
  template <class Run>
  void for_each_array(Run&& run) {
    visit_arrays<std::uint8_t>(*this, run);
  }

  /// Sets `slots` entries (all zero), to be filled through for_each_array. @throws std::bad_alloc.
  void resize(std::size_t slots) {
    sum_.resize(slots);
    sum_squares_.resize(slots);
    max_.resize(slots);
    last_.resize(slots);
    first_query_.resize(slots);
    first_sample_.resize(slots);
  }

  /// Bytes allocated.
  [[nodiscard]] std::size_t allocated_bytes() const noexcept { return sum_.capacity() * kBytesPerSlot; }
  /// Bytes per slot.
  static constexpr std::size_t kBytesPerSlot = 4 * sizeof(float) + 2 * sizeof(std::uint32_t);

 private:
  template <class Byte, class Self, class Run>
  static void visit_arrays(Self& self, Run& run) {
    const auto bytes = [&run](auto& values) {
      run(reinterpret_cast<Byte*>(values.data()), values.size() * sizeof(values[0]));
    };
    bytes(self.sum_);
    bytes(self.sum_squares_);
    bytes(self.max_);
    bytes(self.last_);
    bytes(self.first_query_);
    bytes(self.first_sample_);
  }

  template <class T>
  static void move_last_into(std::vector<T>& x, std::size_t slot) noexcept {
    x[slot] = x.back();
    x.pop_back();
  }

  std::vector<float> sum_;                   // [slots] sum of per-head probabilities
  std::vector<float> sum_squares_;           // [slots] sum of their squares
  std::vector<float> max_;                   // [slots] largest per-head probability
  std::vector<float> last_;                  // [slots] probability summed over heads, latest query
  std::vector<std::uint32_t> first_query_;   // [slots] layer query count when the token was stored
  std::vector<std::uint32_t> first_sample_;  // [slots] layer sample count when the token was stored
};

}  // namespace kvbits::detail
