// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cmath>
#include <string_view>

#include "kvbits/features/feature.hpp"
#include "kvbits/features/scalar_feature.hpp"

namespace kvbits {

/**
 * Entropy, in nats, of the model's next-token distribution at the token's
 * position: -sum p log p over FeatureContext::next_token_probabilities. High
 * where the model was uncertain what comes next. Costs O(vocab).
 *
 * Neutral value: 0 when the distribution is empty. Precondition: a non-empty
 * distribution is non-negative and sums to about 1 (checked in debug builds only).
 */
struct EntropyFeature : detail::ScalarFeature<EntropyFeature> {
  /// The feature's name.
  static constexpr std::array<std::string_view, 1> kNames = {"entropy"};

  /// @return the entropy of context.next_token_probabilities.
  [[nodiscard]] float value(const FeatureContext& context) const {
    double entropy = 0.0;
    double total = 0.0;
    for (const float p : context.next_token_probabilities) {
      total += p;
      // p log p -> 0 as p -> 0, so zero probabilities contribute nothing.
      if (p > 0.0f) entropy -= static_cast<double>(p) * std::log(static_cast<double>(p));
    }
    KVBITS_DEBUG_REQUIRE(context.next_token_probabilities.empty() || std::abs(total - 1.0) < 1e-2,
                         Errc::invalid_argument, "next_token_probabilities must sum to 1");
    static_cast<void>(total);
    return static_cast<float>(entropy);
  }
};

static_assert(FeatureExtractor<EntropyFeature>, "EntropyFeature must satisfy FeatureExtractor");

}  // namespace kvbits
