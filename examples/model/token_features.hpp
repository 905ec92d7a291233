// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "kvbits/features/confidence_feature.hpp"
#include "kvbits/features/entropy_feature.hpp"
#include "kvbits/features/feature.hpp"
#include "kvbits/features/feature_set.hpp"
#include "kvbits/features/rarity_feature.hpp"
#include "kvbits/features/unigram_table.hpp"

namespace kvbits::model {

/// The write-time features the runner hands the cache for each token, in this order:
/// entropy, next_token_probability, max_probability, rarity.
using TokenFeatures = FeatureSet<EntropyFeature, ConfidenceFeature, RarityFeature>;

/**
 * Computes a token's write-time features from the model's output at its position and hands
 * them to the cache for every layer in which the token still awaits a decision (in the float
 * window, or younger than the policy's last re-decision age). One object per sequence.
 */
class TokenFeatureFeeder {
 public:
  /**
   * @param vocab    the model's vocabulary size
   * @param unigrams token counts for the rarity feature (kvbits-unigram); without them every
   *                 token is equally rare
   */
  explicit TokenFeatureFeeder(std::size_t vocab, std::shared_ptr<const UnigramTable> unigrams = nullptr)
      : features_(
            EntropyFeature{}, ConfidenceFeature{},
            RarityFeature(unigrams ? std::move(unigrams) : std::make_shared<const UnigramTable>(vocab))),
        probabilities_(vocab) {}

  /**
   * @param cache      the sequence's cache, which stored the token at index `position`
   * @param logits     [vocab] the model's output after the token's forward pass
   * @param token      the token's id
   * @param position   its position (= its index in the cache)
   * @param next_token the token that follows it (sampled or, when teacher forcing, the data's)
   */
  template <class Cache>
  void feed(Cache& cache, std::span<const float> logits, std::int32_t token, std::size_t position,
            std::int32_t next_token) {
    const float top = *std::max_element(logits.begin(), logits.end());
    float total = 0.0f;
    for (std::size_t i = 0; i < logits.size(); ++i) total += probabilities_[i] = std::exp(logits[i] - top);
    for (float& p : probabilities_) p /= total;
    FeatureContext context;
    context.token_id = token;
    context.position = position;
    context.next_token = next_token;
    context.next_token_probabilities = probabilities_;
    features_.extract(context, values_);
    for (std::size_t layer = 0; layer < cache.options().layers; ++layer) {
      if (cache.awaits_decision(layer, position)) cache.set_features(layer, position, values_);
    }
  }

 private:
  TokenFeatures features_;
  std::vector<float> probabilities_;                 // [vocab]
  std::array<float, TokenFeatures::size> values_{};  // the last token's features
};

}  // namespace kvbits::model
