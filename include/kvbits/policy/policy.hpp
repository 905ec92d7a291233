// SPDX-License-Identifier: MIT
#pragma once

#include <concepts>
#include <cstddef>
#include <span>

#include "kvbits/core/decision.hpp"
#include "kvbits/policy/decision_context.hpp"

namespace kvbits {

/// A policy that decides from what was known when the token was written.
template <class P>
concept TokenInfoPolicy = requires(P& policy, const TokenInfo& token) {
  { policy.decide(token) } -> std::convertible_to<BitDecision>;
};

/// A policy that decides from the whole DecisionContext (age, attention statistics, widths now).
template <class P>
concept ContextPolicy = requires(P& policy, const DecisionContext& context) {
  { policy.decide(context) } -> std::convertible_to<BitDecision>;
};

/**
 * A Policy decides the storage widths of a token. It provides
 * `BitDecision decide(const TokenInfo&)` or `BitDecision decide(const DecisionContext&)`,
 * and may also provide
 *  - `std::span<const std::size_t> decision_ages() const`: ages (appends to the layer
 *    since the token's own, strictly increasing, each >= 1) at which the cache
 *    consults it again for a stored token, which it may then keep or lower, never raise;
 *  - `bool wants_attention_stats() const`: true when decide() reads
 *    DecisionContext::attention, so the cache keeps per-token statistics.
 */
template <class P>
concept Policy = TokenInfoPolicy<P> || ContextPolicy<P>;

/// @return the policy's decision for `context`, through whichever decide() it has.
template <Policy P>
BitDecision consult_policy(P& policy, const DecisionContext& context) {
  if constexpr (ContextPolicy<P>) {
    return policy.decide(context);
  } else {
    return policy.decide(context.token);
  }
}

/// @return the policy's re-decision ages, empty when it declares none.
template <Policy P>
std::span<const std::size_t> policy_decision_ages(const P& policy) {
  if constexpr (requires {
                  { policy.decision_ages() } -> std::convertible_to<std::span<const std::size_t>>;
                }) {
    return policy.decision_ages();
  } else {
    return {};
  }
}

/// @return true when the policy reads attention statistics.
template <Policy P>
bool policy_wants_attention_stats(const P& policy) {
  if constexpr (requires {
                  { policy.wants_attention_stats() } -> std::convertible_to<bool>;
                }) {
    return policy.wants_attention_stats();
  } else {
    return false;
  }
}

}  // namespace kvbits
