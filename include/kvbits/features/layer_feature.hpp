// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <string_view>

#include "kvbits/features/feature.hpp"
#include "kvbits/features/scalar_feature.hpp"

namespace kvbits {

/**
 * The index of the layer deciding, as a float: 0 for the first layer.
 */
struct LayerFeature : detail::ScalarFeature<LayerFeature> {
  /// The feature's name.
  static constexpr std::array<std::string_view, 1> kNames = {"layer"};

  /// @return the feature for `context`.
  [[nodiscard]] float value(const FeatureContext& context) const noexcept {
    return static_cast<float>(context.layer);
  }
};

static_assert(FeatureExtractor<LayerFeature>, "LayerFeature must satisfy FeatureExtractor");

}  // namespace kvbits
