// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <string_view>

#include "kvbits/features/feature.hpp"
#include "kvbits/features/log_count.hpp"
#include "kvbits/features/scalar_feature.hpp"

namespace kvbits {

/**
 * The token's absolute position as log1p(position): 0 for the first token,
 * which attention sinks make special.
 */
struct PositionFeature : detail::ScalarFeature<PositionFeature> {
  /// The feature's name.
  static constexpr std::array<std::string_view, 1> kNames = {"log_position"};

  /// @return the feature for `context`.
  [[nodiscard]] float value(const FeatureContext& context) const noexcept {
    return detail::log_count(context.position);
  }
};

static_assert(FeatureExtractor<PositionFeature>, "PositionFeature must satisfy FeatureExtractor");

}  // namespace kvbits
