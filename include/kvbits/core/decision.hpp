// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace kvbits {

/**
 * What a policy knows about a token when it decides the token's precision.
 * `features` is the token's saliency feature vector (entropy, rarity,
 * attention variance, confidence, ...) in the order of the feature set that
 * produced it; empty when the caller supplies none.
 */
struct TokenInfo {
  std::size_t layer = 0;              ///< layer whose K/V are being stored
  std::size_t position = 0;           ///< absolute position in the sequence
  std::int32_t token_id = -1;         ///< vocabulary id, -1 when unknown
  std::span<const float> features{};  ///< [feature_count]
};

/// Storage precision chosen for one token's key and value vectors.
struct BitDecision {
  int key_bits = 16;    ///< 2, 3, 4, 5, 6, 8, 16 or 32 (plain float)
  int value_bits = 16;  ///< same set as key_bits

  friend constexpr bool operator==(const BitDecision&, const BitDecision&) = default;
};

}  // namespace kvbits
