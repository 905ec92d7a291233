// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kvbits/cache/layer_store.hpp"
#include "kvbits/cache/stream_table.hpp"

namespace kvbits::detail {

/**
 * The changes one append (or demote) makes to a layer, planned before any of
 * them is applied so that the operation keeps the strong guarantee: the
 * policy calls and re-encodes fill the plan (may throw), reserve() allocates
 * room for all of it (may throw), commit() applies it (cannot fail).
 *
 * A plan holds at most `max_moves` token moves plus one inserted token; every
 * move's packed rows wait in its own staging slot.
 */
class MovePlan {
 public:
  /// @param row_bytes bytes of the widest packed rows of one token (kv_heads * head_dim floats).
  void configure(std::size_t max_moves, std::size_t row_bytes) {
    row_bytes_ = row_bytes;
    keys_.assign((max_moves + 1) * row_bytes, 0);
    values_.assign((max_moves + 1) * row_bytes, 0);
    moves_.reserve(max_moves + 1);
    departures_.resize(max_moves + 1);
    open_.resize(max_moves + 1);
  }

  /// Starts a new plan.
  void clear() noexcept {
    moves_.clear();
    staged_ = 0;
    insert_stream_ = kResidualStream;
    insert_keys_ = nullptr;
    insert_values_ = nullptr;
  }

  /// Staging rows for the next staged token: [kv_heads][packed key row], then stage().
  [[nodiscard]] std::uint8_t* next_keys() noexcept { return keys_.data() + staged_ * row_bytes_; }
  [[nodiscard]] std::uint8_t* next_values() noexcept { return values_.data() + staged_ * row_bytes_; }

  /// The token at `token` moves from stream `source` to `target` with the rows just staged.
  void stage_move(std::size_t token, std::size_t source, std::size_t target) noexcept {
    moves_.push_back({token, source, target, staged_++});
  }

  /// The appended token goes to `stream` with rows `keys`, `values` (staged or the caller's).
  void set_insert(std::size_t stream, const std::uint8_t* keys, const std::uint8_t* values) noexcept {
    insert_stream_ = stream;
    insert_keys_ = keys;
    insert_values_ = values;
  }

  /// Rows just staged become the appended token's.
  void stage_insert(std::size_t stream) noexcept {
    set_insert(stream, next_keys(), next_values());
    ++staged_;
  }

  /// Makes room in every target stream for the pushes of this plan. @throws std::bad_alloc.
  void reserve(LayerStore& store, bool with_insert) const {
    // The float area holds sinks + window exactly: a token leaving it frees the slot the new one takes.
    if (with_insert && insert_stream_ != kResidualStream) {
      store.reserve(insert_stream_, pushes_into(insert_stream_, true));
    }
    for (const Move& move : moves_) store.reserve(move.target, pushes_into(move.target, with_insert));
  }

  /**
   * Applies the plan. Every moving token leaves its slot first; each hole is
   * then taken by a token arriving in the same stream (a move or the insert),
   * and only the holes left over are closed by moving their stream's last
   * slot into them. A chain of tier moves (insert -> A, A -> B, B -> C) so
   * writes each token's rows once and moves no bystander.
   */
  void commit(LayerStore& store, bool with_insert) noexcept {
    for (std::size_t i = 0; i < moves_.size(); ++i) {
      departures_[i] = store.leave(moves_[i].token);
      open_[i] = true;
    }
    for (std::size_t i = 0; i < moves_.size(); ++i) {
      const Move& move = moves_[i];
      store.arrive(move.token, move.target, take_hole(move.target), keys_.data() + move.staging * row_bytes_,
                   values_.data() + move.staging * row_bytes_, departures_[i].statistics);
    }
    if (with_insert) {
      store.arrive(store.size(), insert_stream_, take_hole(insert_stream_), insert_keys_, insert_values_,
                   store.new_token_statistics());
    }
    close_open_holes(store);
    for (const Move& move : moves_) store.trim(move.source);
  }

  [[nodiscard]] std::size_t moves() const noexcept { return moves_.size(); }

 private:
  struct Move {
    std::size_t token;
    std::size_t source;   // stream it leaves
    std::size_t target;   // stream it joins
    std::size_t staging;  // its staging slot
  };

  // The slot of an open hole in `stream`, now taken, or LayerStore::kNewSlot.
  std::size_t take_hole(std::size_t stream) noexcept {
    for (std::size_t i = 0; i < moves_.size(); ++i) {
      if (open_[i] && departures_[i].from.stream == stream) {
        open_[i] = false;
        return departures_[i].from.slot;
      }
    }
    return LayerStore::kNewSlot;
  }

  // Highest slot first, so a stream's last slot is never itself an open hole.
  void close_open_holes(LayerStore& store) noexcept {
    for (;;) {
      std::size_t highest = moves_.size();
      for (std::size_t i = 0; i < moves_.size(); ++i) {
        if (open_[i] &&
            (highest == moves_.size() || departures_[i].from.slot > departures_[highest].from.slot)) {
          highest = i;
        }
      }
      if (highest == moves_.size()) return;
      open_[highest] = false;
      store.close(departures_[highest].from.stream, departures_[highest].from.slot);
    }
  }

  std::size_t pushes_into(std::size_t stream, bool with_insert) const noexcept {
    std::size_t count = with_insert && insert_stream_ == stream ? 1 : 0;
    for (const Move& move : moves_) count += move.target == stream ? 1 : 0;
    return count;
  }

  std::size_t row_bytes_ = 0;
  std::vector<std::uint8_t> keys_;                 // [max_moves + 1][kv_heads][packed key row] staged rows
  std::vector<std::uint8_t> values_;               // [max_moves + 1][kv_heads][packed value row] staged rows
  std::vector<Move> moves_;                        // [moves] capacity reserved
  std::size_t staged_ = 0;                         // staging slots used
  std::vector<LayerStore::Departure> departures_;  // [max_moves + 1] where each move's token left
  std::vector<char> open_;  // [max_moves + 1] its hole still waits for a token (not vector<bool>: no proxies)
  std::size_t insert_stream_ = kResidualStream;
  const std::uint8_t* insert_keys_ = nullptr;    // [kv_heads][key row of insert_stream_]
  const std::uint8_t* insert_values_ = nullptr;  // [kv_heads][value row of insert_stream_]
};

}  // namespace kvbits::detail
