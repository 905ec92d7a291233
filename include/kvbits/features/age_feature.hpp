// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <string_view>

#include "kvbits/features/feature.hpp"
#include "kvbits/features/log_count.hpp"
#include "kvbits/features/scalar_feature.hpp"

namespace kvbits {

/**
 * The token's age as log1p(age), age = appends to the layer since its own:
 * 0 for the newest token, growing slowly for old ones.
 */
struct AgeFeature : detail::ScalarFeature<AgeFeature> {
  /// The feature's name.
  static constexpr std::array<std::string_view, 1> kNames = {"log_age"};

  /// @return the feature for `context`.
  [[nodiscard]] float value(const FeatureContext& context) const noexcept {
    return detail::log_count(context.age);
  }
};

static_assert(FeatureExtractor<AgeFeature>, "AgeFeature must satisfy FeatureExtractor");

}  // namespace kvbits
