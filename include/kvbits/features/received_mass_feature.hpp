// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <string_view>

#include "kvbits/features/feature.hpp"
#include "kvbits/features/scalar_feature.hpp"

namespace kvbits {

/**
 * Attention mass the token receives per query: AttentionStats::sum / queries,
 * i.e. the mean over queries of its softmax probability summed over the query
 * heads, in [0, query heads]. (AttentionStats::mean() is the same per head.)
 * Neutral value: 0 before any query.
 */
struct ReceivedMassFeature : detail::ScalarFeature<ReceivedMassFeature> {
  /// The feature's name.
  static constexpr std::array<std::string_view, 1> kNames = {"received_mass"};

  /// @return the feature for `context`.
  [[nodiscard]] float value(const FeatureContext& context) const noexcept {
    const AttentionStats& attention = context.attention;
    return attention.queries == 0 ? 0.0f : attention.sum / static_cast<float>(attention.queries);
  }
};

static_assert(FeatureExtractor<ReceivedMassFeature>, "ReceivedMassFeature must satisfy FeatureExtractor");

}  // namespace kvbits
