// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <string_view>

#include "kvbits/features/feature.hpp"

namespace kvbits::detail {

/**
 * The FeatureExtractor boilerplate of a feature that is one number: derive as
 * `struct F : ScalarFeature<F>` and provide
 *  - `static constexpr std::array<std::string_view, 1> kNames`, the feature's name;
 *  - `float value(const FeatureContext&) const`, the feature.
 * @tparam Derived the feature type (CRTP).
 */
template <class Derived>
struct ScalarFeature {
  static constexpr std::size_t size = 1;

  /// @return the feature's name, Derived::kNames.
  static constexpr std::span<const std::string_view, size> names() noexcept { return Derived::kNames; }

  /**
   * @param context the token's context.
   * @param out receives Derived::value(context) at out[0].
   */
  void extract(const FeatureContext& context, std::span<float> out) const {
    check_feature_output(out, size);
    out[0] = static_cast<const Derived&>(*this).value(context);
  }
};

}  // namespace kvbits::detail
