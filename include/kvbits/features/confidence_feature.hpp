// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <span>
#include <string_view>

#include "kvbits/features/feature.hpp"

namespace kvbits {

/**
 * How confident the model was at the token's position, from
 * FeatureContext::next_token_probabilities:
 *  - out[0] `next_token_probability`: probability it gave the token that
 *    actually followed (`next_token`); 0 when next_token is unknown (-1) or
 *    outside the distribution;
 *  - out[1] `max_probability`: the largest probability of the distribution.
 * Both are 0 when the distribution is empty. Costs O(vocab) for the maximum.
 */
struct ConfidenceFeature {
  static constexpr std::size_t size = 2;  ///< features written
  /// Their names.
  static constexpr std::array<std::string_view, size> kNames = {"next_token_probability", "max_probability"};

  /// @return the features' names.
  static constexpr std::span<const std::string_view, size> names() noexcept { return kNames; }

  /**
   * @param context reads next_token and next_token_probabilities.
   * @param out receives the two probabilities at out[0] and out[1].
   */
  void extract(const FeatureContext& context, std::span<float> out) const {
    detail::check_feature_output(out, size);
    const std::span<const float> probabilities = context.next_token_probabilities;
    const bool next_known =
        context.next_token >= 0 && static_cast<std::size_t>(context.next_token) < probabilities.size();
    out[0] = next_known ? probabilities[static_cast<std::size_t>(context.next_token)] : 0.0f;
    out[1] = probabilities.empty() ? 0.0f : *std::max_element(probabilities.begin(), probabilities.end());
  }
};

static_assert(FeatureExtractor<ConfidenceFeature>, "ConfidenceFeature must satisfy FeatureExtractor");

}  // namespace kvbits
