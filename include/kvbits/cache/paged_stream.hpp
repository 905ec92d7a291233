// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <span>
#include <utility>
#include <vector>

#include "kvbits/cache/row_copy.hpp"
#include "kvbits/codec/format.hpp"
#include "kvbits/config.hpp"

namespace kvbits::detail {

/// Heap bytes aligned for SIMD loads; owns one page.
class AlignedPage {
 public:
  AlignedPage(std::size_t bytes, std::size_t alignment)
      : data_(static_cast<std::uint8_t*>(::operator new (bytes, std::align_val_t{alignment}))),
        alignment_(alignment) {}
  AlignedPage(AlignedPage&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), alignment_(other.alignment_) {}
  AlignedPage& operator=(AlignedPage&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      alignment_ = other.alignment_;
    }
    return *this;
  }
  AlignedPage(const AlignedPage&) = delete;
  AlignedPage& operator=(const AlignedPage&) = delete;
  ~AlignedPage() { release(); }

  [[nodiscard]] std::uint8_t* data() const noexcept { return data_; }

 private:
  void release() noexcept {
    if (data_ != nullptr) ::operator delete (data_, std::align_val_t{alignment_});
  }
  std::uint8_t* data_;
  std::size_t alignment_;
};

/// Marks "no token" in slot bookkeeping.
inline constexpr std::uint32_t kNoToken = std::numeric_limits<std::uint32_t>::max();

/**
 * An append-only stream of tokens that share one key format and one value
 * format, stored in fixed-size pages so that memory follows use.
 *
 * Page layout (`page_tokens` slots; one key row = packed_size(key format,
 * head_dim) bytes, likewise for values; rows are not padded):
 *
 *   [kv_heads][page_tokens][key_row]     key plane
 *   [kv_heads][page_tokens][value_row]   value plane
 *
 * so the rows of one kv head within a page are contiguous at a constant
 * stride, which is what Backend::dot_rows / axpy_rows consume. Slots are
 * dense: slot i lives in page i / page_tokens, and erasing a slot moves the
 * last slot into the hole, so every slot below size() is live and attention
 * over a page never needs a per-row test.
 */
class PagedStream {
 public:
  /**
   * Sets the formats and page geometry; drops all pages. Not for a stream in use.
   * @param alignment byte alignment of every page.
   */
  void configure(const QuantFormat& key, const QuantFormat& value, std::size_t head_dim, std::size_t kv_heads,
                 std::size_t page_tokens, std::size_t alignment) {
    key_format_ = key;
    value_format_ = value;
    key_row_ = packed_size(key, head_dim);
    value_row_ = packed_size(value, head_dim);
    kv_heads_ = kv_heads;
    page_tokens_ = page_tokens;
    alignment_ = alignment;
    count_ = 0;
    pages_.clear();
    slot_token_.clear();
  }

  [[nodiscard]] const QuantFormat& key_format() const noexcept { return key_format_; }
  [[nodiscard]] const QuantFormat& value_format() const noexcept { return value_format_; }
  [[nodiscard]] std::size_t key_row() const noexcept { return key_row_; }
  [[nodiscard]] std::size_t value_row() const noexcept { return value_row_; }
  [[nodiscard]] std::size_t kv_heads() const noexcept { return kv_heads_; }
  [[nodiscard]] std::size_t page_tokens() const noexcept { return page_tokens_; }
  [[nodiscard]] std::size_t size() const noexcept { return count_; }
  [[nodiscard]] std::size_t page_count() const noexcept { return (count_ + page_tokens_ - 1) / page_tokens_; }
  [[nodiscard]] std::size_t allocated_pages() const noexcept { return pages_.size(); }
  [[nodiscard]] std::size_t page_bytes() const noexcept {
    return kv_heads_ * page_tokens_ * (key_row_ + value_row_);
  }

  /// Live slots in page p (all of them except possibly in the last page).
  [[nodiscard]] std::size_t rows_in_page(std::size_t p) const noexcept {
    return std::min(page_tokens_, count_ - p * page_tokens_);
  }

  /// First key row of kv head `head` in page p; rows follow at key_row() bytes.
  [[nodiscard]] const std::uint8_t* key_rows(std::size_t p, std::size_t head) const noexcept {
    return pages_[p].data() + head * page_tokens_ * key_row_;
  }

  /// First value row of kv head `head` in page p; rows follow at value_row() bytes.
  [[nodiscard]] const std::uint8_t* value_rows(std::size_t p, std::size_t head) const noexcept {
    return pages_[p].data() + kv_heads_ * page_tokens_ * key_row_ + head * page_tokens_ * value_row_;
  }

  /// Where a slot's rows are: kv head h's key row at key + h * key_step, likewise values.
  template <class Byte>
  struct SlotRows {
    Byte* key;
    Byte* value;
    std::size_t key_step;
    std::size_t value_step;
  };

  /// @return the rows of live slot `slot` (one division for all of its kv heads' rows).
  [[nodiscard]] SlotRows<const std::uint8_t> slot_rows(std::size_t slot) const noexcept {
    const SlotRows<std::uint8_t> rows = rows_of(slot);
    return {rows.key, rows.value, rows.key_step, rows.value_step};
  }

  /// Token stored in each live slot: [size()].
  [[nodiscard]] const std::vector<std::uint32_t>& slot_tokens() const noexcept { return slot_token_; }

  /**
   * Makes room for `extra` more tokens, allocating pages as needed. After it
   * returns, that many push() calls cannot fail. Strong guarantee (pages
   * allocated before a failure stay as spare room).
   * @throws std::bad_alloc.
   */
  void reserve(std::size_t extra) {
    // slot_token_ always has room for every allocated slot, so enough slots means nothing to do.
    if (count_ + extra <= slot_capacity()) return;
    const std::size_t pages = (count_ + extra + page_tokens_ - 1) / page_tokens_;
    slot_token_.reserve(std::max(pages, pages_.size()) * page_tokens_);
    pages_.reserve(pages);
    while (pages_.size() < pages) pages_.emplace_back(page_bytes(), alignment_);
  }

  /// reserve(1).
  void reserve_one() { reserve(1); }

  /// Slots allocated (live and spare).
  [[nodiscard]] std::size_t slot_capacity() const noexcept { return pages_.size() * page_tokens_; }

  /**
   * Appends a token. Requires a prior reserve_one().
   * @param keys [kv_heads][key_row] packed key rows; @param values [kv_heads][value_row].
   * @return the token's slot.
   */
  std::size_t push(std::uint32_t token, const std::uint8_t* keys, const std::uint8_t* values) noexcept {
    const std::size_t slot = count_++;
    slot_token_.push_back(token);  // capacity reserved by reserve_one
    write_rows(slot, keys, values);
    return slot;
  }

  /**
   * Stores a token in the live slot `slot`, replacing the one there (a slot a
   * token has just left, so no row is copied twice).
   * @param keys [kv_heads][key_row] packed key rows; @param values [kv_heads][value_row].
   */
  void overwrite(std::size_t slot, std::uint32_t token, const std::uint8_t* keys,
                 const std::uint8_t* values) noexcept {
    slot_token_[slot] = token;
    write_rows(slot, keys, values);
  }

  /**
   * Removes `slot` by moving the last slot into it. Pages are kept (room
   * reserved for a batch of moves stays valid) until trim().
   * @return the token that now occupies `slot`, or kNoToken when `slot` was last.
   */
  std::uint32_t erase(std::size_t slot) noexcept {
    const std::size_t last = count_ - 1;
    std::uint32_t moved = kNoToken;
    if (slot != last) {
      const SlotRows<std::uint8_t> to = rows_of(slot);
      const SlotRows<std::uint8_t> from = rows_of(last);
      for (std::size_t h = 0; h < kv_heads_; ++h) {
        copy_row(to.key + h * to.key_step, from.key + h * from.key_step, key_row_);
        copy_row(to.value + h * to.value_step, from.value + h * from.value_step, value_row_);
      }
      moved = slot_token_[last];
      slot_token_[slot] = moved;
    }
    slot_token_.pop_back();
    count_ = last;
    return moved;
  }

  /// Drops every token; keeps at most one page for reuse.
  void clear() noexcept {
    count_ = 0;
    slot_token_.clear();
    trim();
  }

  /// Frees pages beyond one spare, so memory follows use without thrashing at a page boundary.
  void trim() noexcept {
    // More than page_count() + 1 pages iff (pages - 2) * page_tokens >= count: no division in the common
    // case.
    if (pages_.size() < 2 || (pages_.size() - 2) * page_tokens_ < count_) return;
    const std::size_t keep = page_count() + 1;
    while (pages_.size() > keep) pages_.pop_back();
  }

  /**
   * @return a deep copy: the same formats and geometry, tokens, allocated
   * pages and slot room, so room reserved here is reserved in the copy.
   * @throws std::bad_alloc.
   */
  [[nodiscard]] PagedStream clone() const {
    PagedStream copy;
    copy.key_format_ = key_format_;
    copy.value_format_ = value_format_;
    copy.key_row_ = key_row_;
    copy.value_row_ = value_row_;
    copy.kv_heads_ = kv_heads_;
    copy.page_tokens_ = page_tokens_;
    copy.alignment_ = alignment_;
    copy.count_ = count_;
    copy.pages_.reserve(pages_.capacity());
    for (const AlignedPage& page : pages_) {
      copy.pages_.emplace_back(page_bytes(), alignment_);
      std::memcpy(copy.pages_.back().data(), page.data(), page_bytes());
    }
    copy.slot_token_.reserve(slot_token_.capacity());
    copy.slot_token_.assign(slot_token_.begin(), slot_token_.end());
    return copy;
  }

  /**
   * Calls `run(rows, bytes)` for every run of live rows, in the order a cache
   * file stores a stream: for each kv head its key rows page by page, then
   * likewise the value rows. A run is the rows of one kv head in one page,
   * which are contiguous.
   */
  template <class Run>
  void for_each_row_run(Run&& run) const {
    visit_row_runs<const std::uint8_t>(run);
  }

  /// As above, with writable rows: fills a stream made by restore().
  template <class Run>
  void for_each_row_run(Run&& run) {
    visit_row_runs<std::uint8_t>(run);
  }

  /**
   * Makes an empty stream hold `tokens.size()` live slots, slot i holding
   * token tokens[i]; their rows are unspecified until written through
   * for_each_row_run. Allocates only the pages those slots need.
   * @throws std::bad_alloc.
   */
  void restore(std::span<const std::uint32_t> tokens) {
    reserve(tokens.size());
    slot_token_.assign(tokens.begin(), tokens.end());
    count_ = tokens.size();
  }

  /// Bytes allocated for pages and slot bookkeeping.
  [[nodiscard]] std::size_t allocated_bytes() const noexcept {
    return pages_.size() * page_bytes() + slot_token_.capacity() * sizeof(std::uint32_t);
  }

 private:
  template <class Byte, class Run>
  void visit_row_runs(Run& run) const {
    const std::size_t pages = page_count();
    const std::size_t value_plane = kv_heads_ * page_tokens_ * key_row_;
    for (std::size_t h = 0; h < kv_heads_; ++h) {
      for (std::size_t p = 0; p < pages; ++p) {
        Byte* rows = pages_[p].data() + h * page_tokens_ * key_row_;
        run(rows, rows_in_page(p) * key_row_);
      }
    }
    for (std::size_t h = 0; h < kv_heads_; ++h) {
      for (std::size_t p = 0; p < pages; ++p) {
        Byte* rows = pages_[p].data() + value_plane + h * page_tokens_ * value_row_;
        run(rows, rows_in_page(p) * value_row_);
      }
    }
  }

  void write_rows(std::size_t slot, const std::uint8_t* keys, const std::uint8_t* values) noexcept {
    const SlotRows<std::uint8_t> to = rows_of(slot);
    for (std::size_t h = 0; h < kv_heads_; ++h) {
      copy_row(to.key + h * to.key_step, keys + h * key_row_, key_row_);
      copy_row(to.value + h * to.value_step, values + h * value_row_, value_row_);
    }
  }

  // One division per slot rather than one per row: push and erase copy every kv head's rows.
  SlotRows<std::uint8_t> rows_of(std::size_t slot) const noexcept {
    std::uint8_t* page = pages_[slot / page_tokens_].data();
    const std::size_t within = slot % page_tokens_;
    return {page + within * key_row_, page + kv_heads_ * page_tokens_ * key_row_ + within * value_row_,
            page_tokens_ * key_row_, page_tokens_ * value_row_};
  }

  QuantFormat key_format_{};
  QuantFormat value_format_{};
  std::size_t key_row_ = 0;    // bytes of one packed key head vector
  std::size_t value_row_ = 0;  // bytes of one packed value head vector
  std::size_t kv_heads_ = 0;
  std::size_t page_tokens_ = 1;            // slots per page
  std::size_t alignment_ = 64;             // byte alignment of every page
  std::size_t count_ = 0;                  // live slots
  std::vector<AlignedPage> pages_;         // [allocated pages], layout above
  std::vector<std::uint32_t> slot_token_;  // [count_] token index of each slot
};

}  // namespace kvbits::detail
