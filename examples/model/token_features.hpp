// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <type_traits>
#include <vector>

#include "kvbits/features/confidence_feature.hpp"
#include "kvbits/features/entropy_feature.hpp"
#include "kvbits/features/feature.hpp"
#include "kvbits/features/feature_set.hpp"
#include "kvbits/features/logit_features.hpp"
#include "kvbits/features/rarity_feature.hpp"
#include "kvbits/features/unigram_table.hpp"

namespace kvbits::model {

/// The write-time features the runner hands the cache for each token, in this order:
/// entropy, next_token_probability, max_probability, rarity. The tools use this set: its
/// entropy is summed in double from the probabilities, so their numbers do not depend on the
/// vector width.
using TokenFeatures = FeatureSet<EntropyFeature, ConfidenceFeature, RarityFeature>;

/// The same features under the same names from the logits in one vectorised pass
/// (LogitFeatures), equal to TokenFeatures up to float rounding: what an engine would run.
using LogitTokenFeatures = FeatureSet<LogitFeatures, RarityFeature>;

/**
 * Computes a token's write-time features from the model's output at its position and hands
 * them to the cache for every layer in which the token still awaits a decision (in the float
 * window, or younger than the policy's last re-decision age). One object per sequence.
 * @tparam Features TokenFeatures (from a softmax) or LogitTokenFeatures (from the logits).
 */
template <class Features>
class BasicTokenFeatureFeeder {
  // Only the probability-based set needs the softmax materialised.
  static constexpr bool kReadsProbabilities = !std::is_same_v<Features, LogitTokenFeatures>;

 public:
  /**
   * @param vocab    the model's vocabulary size
   * @param unigrams token counts for the rarity feature (kvbits-unigram); without them every
   *                 token is equally rare
   */
  explicit BasicTokenFeatureFeeder(std::size_t vocab, std::shared_ptr<const UnigramTable> unigrams = nullptr)
      : features_(make_features(vocab, std::move(unigrams))),
        probabilities_(kReadsProbabilities ? vocab : 0) {}

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
    FeatureContext context;
    context.token_id = token;
    context.position = position;
    context.next_token = next_token;
    context.next_token_logits = logits;
    if constexpr (kReadsProbabilities) {
      const float top = *std::max_element(logits.begin(), logits.end());
      float total = 0.0f;
      for (std::size_t i = 0; i < logits.size(); ++i) total += probabilities_[i] = std::exp(logits[i] - top);
      for (float& p : probabilities_) p /= total;
      context.next_token_probabilities = probabilities_;
    }
    features_.extract(context, values_);
    for (std::size_t layer = 0; layer < cache.options().layers; ++layer) {
      if (cache.awaits_decision(layer, position)) cache.set_features(layer, position, values_);
    }
  }

 private:
  static Features make_features(std::size_t vocab, std::shared_ptr<const UnigramTable> unigrams) {
    RarityFeature rarity(unigrams ? std::move(unigrams) : std::make_shared<const UnigramTable>(vocab));
    if constexpr (kReadsProbabilities) {
      return Features(EntropyFeature{}, ConfidenceFeature{}, std::move(rarity));
    } else {
      return Features(LogitFeatures{}, std::move(rarity));
    }
  }

  Features features_;
  std::vector<float> probabilities_;            // [vocab] for TokenFeatures, else empty
  std::array<float, Features::size> values_{};  // the last token's features
};

/// The feeder of the tools (kvbits-eval, kvbits-label, kvbits-generate).
using TokenFeatureFeeder = BasicTokenFeatureFeeder<TokenFeatures>;
/// The feeder an engine would use: the same features from the logits.
using LogitTokenFeatureFeeder = BasicTokenFeatureFeeder<LogitTokenFeatures>;

}  // namespace kvbits::model
