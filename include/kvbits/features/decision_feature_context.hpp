// SPDX-License-Identifier: MIT
#pragma once

#include "kvbits/features/feature.hpp"
#include "kvbits/policy/decision_context.hpp"

namespace kvbits {

/**
 * The FeatureContext a policy can build when the cache consults it: layer,
 * position, token id, age and attention statistics from `decision`. The
 * write-time parts (next_token, next_token_probabilities) are left unknown, so
 * distribution features give their neutral values.
 * @param decision what the cache passed to the policy.
 * @return the feature context of the token being decided.
 */
constexpr FeatureContext make_feature_context(const DecisionContext& decision) noexcept {
  FeatureContext context;
  context.token_id = decision.token.token_id;
  context.position = decision.token.position;
  context.layer = decision.token.layer;
  context.age = decision.age;
  context.attention = decision.attention;
  return context;
}

}  // namespace kvbits
