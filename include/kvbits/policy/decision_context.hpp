// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>

#include "kvbits/core/decision.hpp"

namespace kvbits {

/**
 * Attention one stored token has received in one layer, accumulated by the
 * cache inside its fused attention pass when the policy asks for it
 * (see policy_wants_attention_stats). A "sample" is one (query step, query
 * head) pair; per-head probabilities are the softmax weights of that head.
 */
struct AttentionStats {
  std::uint32_t queries = 0;  ///< attend() calls (decode steps) that saw this token
  std::uint32_t samples = 0;  ///< (query, query head) pairs that saw it: queries * n_heads
  float sum = 0.0f;           ///< sum over samples of the per-head probability
  float sum_squares = 0.0f;   ///< sum over samples of its square
  float max = 0.0f;           ///< largest per-head probability seen
  float last = 0.0f;          ///< probability summed over heads at the latest query

  /// @return mean per-head probability over samples (0 before any query).
  [[nodiscard]] constexpr float mean() const noexcept {
    return samples == 0 ? 0.0f : sum / static_cast<float>(samples);
  }
  /// @return population variance of the per-head probability over samples (0 before any query).
  [[nodiscard]] constexpr float variance() const noexcept {
    if (samples == 0) return 0.0f;
    const float m = mean();
    const float v = sum_squares / static_cast<float>(samples) - m * m;
    return v > 0.0f ? v : 0.0f;
  }
};

/**
 * Everything a policy may look at when it decides, or re-decides, the widths
 * of one token. A policy whose decide() takes a TokenInfo keeps working: the
 * cache hands it `token` only.
 */
struct DecisionContext {
  TokenInfo token{};                    ///< layer, position, id and features of the token
  AttentionStats attention{};           ///< all zero unless the policy wants attention statistics
  std::size_t age = 0;                  ///< appends to the layer since the token's own (0 = newest)
  BitDecision current{32, 32};          ///< widths the token holds now (32/32 in the float area)
  double cache_bits_per_element = 0.0;  ///< running storage bits per K/V element of the whole
                                        ///< cache: codes, metadata, sinks and window counted
};

}  // namespace kvbits
