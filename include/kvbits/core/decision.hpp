// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace kvbits {

/// Most features a cache keeps per token for later decisions (see QuantizedKVCache::set_features).
inline constexpr std::size_t kMaxTokenFeatures = 16;

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
  int key_bits = 16;    ///< a width of kSupportedBits (32 = plain float)
  int value_bits = 16;  ///< a width of kSupportedBits

  /// Member-wise equality.
  friend constexpr bool operator==(const BitDecision&, const BitDecision&) = default;
};

}  // namespace kvbits
