// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kvbits/cache/options.hpp"
#include "kvbits/core/decision.hpp"

namespace kvbits::detail {

/// What the policy will see for a token it may still be asked about.
struct TokenNote {
  std::size_t position = 0;
  std::int32_t token_id = -1;
  std::uint32_t feature_count = 0;
  std::array<float, kMaxTokenFeatures> features{};  // [feature_count] used
};

/**
 * The TokenInfo of the newest tokens of one layer, in a fixed ring: token t
 * at t % ring_size. The ring covers every token the policy may still be
 * consulted about (window tokens and tokens younger than the last decision
 * age), so it never allocates after configure().
 */
class TokenNotes {
 public:
  /// @param ring_size entries (>= 1): max(window, last decision age) + 1, at most the capacity.
  void configure(std::size_t ring_size) { ring_.assign(std::max<std::size_t>(ring_size, 1), TokenNote{}); }

  /**
   * @throws Error(shape_mismatch) unless `features` fits a note.
   */
  static void require_fits(std::span<const float> features, const char* what) {
    require_lazy(features.size() <= kMaxTokenFeatures, Errc::shape_mismatch, [&] {
      return std::string(what) + " hold " + std::to_string(features.size()) +
             " features; the cache keeps at most kMaxTokenFeatures = " + std::to_string(kMaxTokenFeatures) +
             " per token";
    });
  }

  /// Records token `token` (features fit).
  void write(std::size_t token, const TokenInfo& info) noexcept {
    TokenNote& note = ring_[token % ring_.size()];
    note.position = info.position;
    note.token_id = info.token_id;
    set_features(token, info.features);
  }

  /// Replaces a token's features (they fit).
  void set_features(std::size_t token, std::span<const float> features) noexcept {
    TokenNote& note = ring_[token % ring_.size()];
    note.feature_count = static_cast<std::uint32_t>(features.size());
    std::copy(features.begin(), features.end(), note.features.begin());
  }

  /// @return the TokenInfo of a token still in the ring; its features view the ring.
  [[nodiscard]] TokenInfo info(std::size_t layer, std::size_t token) const noexcept {
    const TokenNote& note = ring_[token % ring_.size()];
    return {layer, note.position, note.token_id,
            std::span<const float>(note.features.data(), note.feature_count)};
  }

  [[nodiscard]] std::size_t ring_size() const noexcept { return ring_.size(); }

  /// The ring, entry by entry: token t's note at t % ring_size().
  [[nodiscard]] std::span<const TokenNote> entries() const noexcept { return ring_; }

  /// Replaces ring entry `i` (< ring_size(); note.feature_count <= kMaxTokenFeatures).
  void restore_entry(std::size_t i, const TokenNote& note) noexcept { ring_[i] = note; }

  [[nodiscard]] std::size_t allocated_bytes() const noexcept { return ring_.capacity() * sizeof(TokenNote); }

 private:
  std::vector<TokenNote> ring_;  // [ring_size]: token t at t % ring_size
};

}  // namespace kvbits::detail
