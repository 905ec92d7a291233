// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace kvbits::detail {

inline constexpr std::uint64_t kFnv1a64Offset = 0xcbf29ce484222325ULL;  ///< FNV-1a 64 starting value
inline constexpr std::uint64_t kFnv1a64Prime = 0x100000001b3ULL;        ///< FNV-1a 64 multiplier

/**
 * FNV-1a, 64-bit (Fowler, Noll, Vo): catches flipped bits and truncation in a
 * file; not a defence against deliberate tampering.
 * @param bytes the data.
 * @param hash the running hash, kFnv1a64Offset to start.
 * @return the hash of everything folded in so far.
 */
constexpr std::uint64_t fnv1a64(std::span<const std::byte> bytes,
                                std::uint64_t hash = kFnv1a64Offset) noexcept {
  for (const std::byte b : bytes) {
    hash ^= static_cast<std::uint64_t>(b);
    hash *= kFnv1a64Prime;
  }
  return hash;
}

/**
 * A 64-bit checksum of bytes fed in pieces of any size, for data too large for
 * a byte-at-a-time hash (FNV-1a runs one dependent multiply per byte). Each
 * 32-byte block is read as four 8-byte words in host byte order; lane i folds
 * word i as h = rotl((h ^ word) * kMultiplier, 29), so the four multiply
 * chains overlap. The final partial block is zero-padded, and value() folds
 * the byte count and the four lanes into one word.
 *
 * Every step is a bijection of the lane for a given word, so changing the
 * bytes of any one 8-byte word (one flipped bit or several) always changes the
 * result; other damage is missed with probability about 2^-64. It catches
 * corruption and truncation, not deliberate tampering.
 */
class WordChecksum {
 public:
  /// Folds in `bytes`, which follow everything folded in before.
  void update(std::span<const std::byte> bytes) noexcept {
    if (bytes.empty()) return;  // its data() may be null, which memcpy must not see
    length_ += bytes.size();
    const std::byte* at = bytes.data();
    std::size_t left = bytes.size();
    if (pending_size_ > 0 || left < kBlockBytes) {
      const std::size_t take = std::min(left, kBlockBytes - pending_size_);
      std::memcpy(pending_.data() + pending_size_, at, take);
      pending_size_ += take;
      at += take;
      left -= take;
      if (pending_size_ < kBlockBytes) return;
      fold_block(pending_.data());
      pending_size_ = 0;
    }
    for (; left >= kBlockBytes; at += kBlockBytes, left -= kBlockBytes) fold_block(at);
    std::memcpy(pending_.data(), at, left);
    pending_size_ = left;
  }

  /// @return the checksum of everything folded in so far (more may follow).
  [[nodiscard]] std::uint64_t value() const noexcept {
    WordChecksum tail = *this;
    if (tail.pending_size_ > 0) {
      std::memset(tail.pending_.data() + tail.pending_size_, 0, kBlockBytes - tail.pending_size_);
      tail.fold_block(tail.pending_.data());
    }
    std::uint64_t hash = step(kFnv1a64Offset, length_);
    for (const std::uint64_t lane : tail.lanes_) hash = step(hash, lane);
    return hash ^ (hash >> 32);
  }

 private:
  static constexpr std::size_t kLanes = 4;
  static constexpr std::size_t kBlockBytes = kLanes * sizeof(std::uint64_t);
  static constexpr std::uint64_t kMultiplier = 0x9e3779b97f4a7c15ULL;  // odd: 2^64 / golden ratio

  static constexpr std::uint64_t step(std::uint64_t hash, std::uint64_t word) noexcept {
    return std::rotl((hash ^ word) * kMultiplier, 29);
  }

  void fold_block(const std::byte* block) noexcept {
    for (std::size_t i = 0; i < kLanes; ++i) {
      std::uint64_t word;
      std::memcpy(&word, block + i * sizeof(word), sizeof(word));
      lanes_[i] = step(lanes_[i], word);
    }
  }

  // Distinct starting lanes, so equal words in different lanes fold differently.
  std::array<std::uint64_t, kLanes> lanes_ = {kFnv1a64Offset, kFnv1a64Offset + 1, kFnv1a64Offset + 2,
                                              kFnv1a64Offset + 3};
  std::array<std::byte, kBlockBytes> pending_{};  // bytes of an incomplete block
  std::size_t pending_size_ = 0;
  std::uint64_t length_ = 0;  // bytes folded in
};

}  // namespace kvbits::detail
