// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <utility>
#include <variant>

#include "kvbits/core/byte_io.hpp"
#include "kvbits/core/decision.hpp"
#include "kvbits/policy/decision_context.hpp"
#include "kvbits/policy/policy.hpp"
#include "kvbits/policy/policy_state.hpp"

namespace kvbits {

/**
 * One of several policies, chosen at run time, behind one cache type: an engine
 * that reads its policy from a configuration keeps a single
 * QuantizedKVCache<PolicyVariant<...>> instead of one cache type per policy.
 * Every call forwards to the held policy (decide, decision_ages,
 * wants_attention_stats), so the variant behaves exactly as that policy would.
 * @tparam Ps the policies it may hold.
 */
template <Policy... Ps>
class PolicyVariant {
 public:
  /// @param policy the policy to hold (any of Ps); implicit, as a variant's converting constructor.
  template <class P>
  // The constraint admits only what the variant takes, never a PolicyVariant: copies and moves
  // still reach the copy and move constructors.
  // NOLINTNEXTLINE(google-explicit-constructor, bugprone-forwarding-reference-overload)
  requires(std::is_constructible_v<std::variant<Ps...>, P&&>) PolicyVariant(P&& policy)
      : held_(std::forward<P>(policy)) {}

  /// @return the held policy's decision for `context`.
  [[nodiscard]] BitDecision decide(const DecisionContext& context) {
    return std::visit([&](auto& policy) { return consult_policy(policy, context); }, held_);
  }

  /// @return the held policy's re-decision ages (empty when it has none).
  [[nodiscard]] std::span<const std::size_t> decision_ages() const {
    return std::visit([](const auto& policy) { return policy_decision_ages(policy); }, held_);
  }

  /// @return true when the held policy reads attention statistics.
  [[nodiscard]] bool wants_attention_stats() const {
    return std::visit([](const auto& policy) { return policy_wants_attention_stats(policy); }, held_);
  }

  /// @return the held policy's description (empty when it has none).
  [[nodiscard]] std::string describe() const {
    return std::visit([](const auto& policy) { return policy_description(policy); }, held_);
  }

  /// Appends the held policy's state (nothing when it keeps none).
  void save_state(ByteWriter& out) const {
    std::visit([&](const auto& policy) { save_policy_state(policy, out); }, held_);
  }

  /// Reads what save_state wrote into the held policy. @throws as that policy's load_state.
  void load_state(ByteReader& in) {
    std::visit([&](auto& policy) { load_policy_state(policy, in); }, held_);
  }

  /// @return the held policy when it is a P, else nullptr.
  template <class P>
  [[nodiscard]] const P* get_if() const noexcept {
    return std::get_if<P>(&held_);
  }

 private:
  std::variant<Ps...> held_;
};

}  // namespace kvbits
