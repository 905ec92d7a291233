// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <string_view>

#include "kvbits/features/feature.hpp"
#include "kvbits/features/scalar_feature.hpp"

namespace kvbits {

/**
 * Variance of the attention probability the token receives, over every
 * (query, query head) sample the cache saw: AttentionStats::variance(), the
 * population variance of the per-head softmax weight. High for tokens a few
 * heads single out. Neutral value: 0 before any query (or when the cache keeps
 * no statistics).
 */
struct AttentionVarianceFeature : detail::ScalarFeature<AttentionVarianceFeature> {
  /// The feature's name.
  static constexpr std::array<std::string_view, 1> kNames = {"attention_variance"};

  /// @return the feature for `context`.
  [[nodiscard]] float value(const FeatureContext& context) const noexcept {
    return context.attention.variance();
  }
};

static_assert(FeatureExtractor<AttentionVarianceFeature>,
              "AttentionVarianceFeature must satisfy FeatureExtractor");

}  // namespace kvbits
