// SPDX-License-Identifier: MIT
#pragma once

// Intrinsics first, so that Eigen parses them under kvbits' GCC 12 warning fix.
#include "kvbits/core/simd_headers.hpp"

#include <array>
#include <cstddef>
#include <string_view>

#include "kvbits/controller/inputs.hpp"
#include "kvbits/controller/mlp.hpp"
#include "kvbits/controller/width_list.hpp"
#include "kvbits/features/age_feature.hpp"
#include "kvbits/features/attention_variance_feature.hpp"
#include "kvbits/features/feature_set.hpp"
#include "kvbits/features/layer_feature.hpp"
#include "kvbits/features/position_feature.hpp"
#include "kvbits/features/received_mass_feature.hpp"
#include "kvbits/policy/learned_policy.hpp"
#include "model/token_features.hpp"

namespace kvbits::learn {

/**
 * The one learned controller the tools know: kvbits-label records its inputs, kvbits-train fits
 * it, and `learned:PATH` policies run it. Change it here and every tool follows; weight files
 * made for another shape are refused by name (the file lists its inputs, layer sizes and widths).
 *
 * Inputs, in order:
 *  - from the decision context (the cache's view when it asks): log_age, received_mass,
 *    attention_variance (attention statistics the cache keeps while the policy reads them),
 *    layer, log_position;
 *  - supplied by the runner in TokenInfo::features (model::TokenFeatureFeeder, after the token's
 *    forward pass): entropy, next_token_probability, max_probability, rarity.
 */
using ControllerFeatures =
    FeatureSet<AgeFeature, ReceivedMassFeature, AttentionVarianceFeature, LayerFeature, PositionFeature>;
/// The write-time features the controller reads from TokenInfo::features.
using ControllerSupplied = model::TokenFeatures;
/// The widths each head chooses from, cheapest first.
using ControllerWidths = WidthList<2, 3, 4, 5, 6, 8, 16>;
/// The controller: 9 inputs, hidden layers of 32 and 16 ReLU units, a key and a value head.
using ControllerNet =
    Mlp<ControllerFeatures::size + ControllerSupplied::size, Hidden<32, 16>, ControllerWidths>;
/// Builds the controller's input vector from a DecisionContext, as the policy does.
using ControllerInputVector = ControllerInputs<ControllerFeatures, ControllerSupplied>;
/// The policy `learned:PATH` runs.
using ToolLearnedPolicy = LearnedPolicy<ControllerFeatures, ControllerNet, ControllerSupplied>;

/// Inputs per decision.
inline constexpr std::size_t kControllerInputs = ControllerNet::kInputs;
/// Width classes per head.
inline constexpr std::size_t kControllerWidths = ControllerNet::kWidths;

/// The ages at which the controller is asked (the LearnedPolicy default): the first decision,
/// when a token leaves the one-token float window, then three re-decisions that keep or lower.
inline constexpr std::array<std::size_t, 4> kDecisionAges = {1, 4, 16, 64};

/// @return the names of the controller's inputs, in input order.
constexpr std::span<const std::string_view, kControllerInputs> controller_input_names() noexcept {
  return ToolLearnedPolicy::names();
}

}  // namespace kvbits::learn
