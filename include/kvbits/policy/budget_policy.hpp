// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "kvbits/core/bit_width.hpp"
#include "kvbits/core/decision.hpp"
#include "kvbits/core/error.hpp"
#include "kvbits/policy/decision_context.hpp"
#include "kvbits/policy/policy.hpp"
#include "kvbits/policy/policy_text.hpp"

namespace kvbits {

/**
 * @return the default width ladder of a BudgetPolicy, cheapest first: 2/2, 3/2, 3/3, 4/3, 4/4,
 *         5/4, 5/5, 6/5, 6/6, 8/6, 8/8, 16/8, 16/16. Each rung widens keys or values by one
 *         supported step, keys first, since keys tolerate quantization less well.
 */
inline std::vector<BitDecision> default_width_ladder() {
  return {{2, 2}, {3, 2}, {3, 3}, {4, 3}, {4, 4},  {5, 4},  {5, 5},
          {6, 5}, {6, 6}, {8, 6}, {8, 8}, {16, 8}, {16, 16}};
}

/// Settings of a BudgetPolicy; see BudgetPolicy for the control law.
struct BudgetOptions {
  double target_bits_per_element = 4.5;  ///< average storage bits per K/V element to reach, > 0
  double proportional_gain = 16.0;       ///< Kp: ladder steps per bit/element of error
  double integral_gain = 0.1;            ///< Ki: ladder steps added per decision per bit/element of error
  std::size_t payback_age = 0;           ///< extra re-decision age for lowering old tokens; 0 = none
  std::vector<BitDecision> ladder = default_width_ladder();  ///< rungs, cheapest first
};

/**
 * Wraps a Policy so the cache meets a target average of storage bits per K/V
 * element, as the cache reports it in DecisionContext::cache_bits_per_element
 * (codes, group metadata, sinks and the float window counted).
 *
 * Control law, one step per consultation, with e = cache_bits_per_element - target:
 *   integral <- clamp(integral + Ki * e, 0, L)   (held while the offset is pinned at 0 or L
 *                                                  and e pushes it further: no wind-up)
 *   offset    = clamp(integral + Kp * e, 0, L)     (L = ladder rungs - 1)
 * a PI controller: the integral term finds the offset that holds the average on
 * target, the proportional term damps the loop (the cache's running average
 * integrates the decisions, so integral control alone would oscillate). The
 * defaults Kp = 16 rungs per bit/element and Ki = 0.1 rungs per decision per
 * bit/element bring a simulated cache (4 sinks, an 8-token float window) within
 * 0.1 bits/element of targets from 3.5 to 6 after 400 tokens. The
 * inner decision d is lowered by `offset` rungs of the ladder: by floor(offset),
 * plus one more rung whenever the accumulated fractional parts reach 1
 * (deterministic error diffusion), so a fractional offset is met on average.
 * Lowering starts from the widest rung not above d (when d is not a rung itself,
 * reaching that rung is the first step) and never goes below the cheapest rung;
 * the result is never above d in keys or values, nor above the widths the token
 * holds now.
 *
 * The budget only lowers: when Inner alone stores below the target, the cache
 * lands below it. A cache that reports 0 (before it has stored anything) gets
 * Inner's decisions. Inner's decision_ages() and wants_attention_stats() are
 * forwarded; a nonzero payback_age adds one re-decision age, at which old tokens
 * are lowered by the offset of that moment (paying back young, wide tiers).
 * @tparam Inner the policy whose decisions the budget lowers.
 */
template <Policy Inner>
class BudgetPolicy {
 public:
  /**
   * @param inner the policy to wrap.
   * @param options target, gains, payback age and ladder.
   * @throws Error(invalid_argument) for a target or gain that is not finite and positive
   *         (gains may be 0), or a ladder that is empty, has unsupported widths, or whose
   *         rungs do not widen keys or values, never narrowing either, from one to the next.
   */
  explicit BudgetPolicy(Inner inner, BudgetOptions options = {})
      : inner_(std::move(inner)), options_(std::move(options)) {
    detail::require(std::isfinite(options_.target_bits_per_element) && options_.target_bits_per_element > 0.0,
                    Errc::invalid_argument, "budget target bits per element must be finite and > 0");
    detail::require(std::isfinite(options_.proportional_gain) && options_.proportional_gain >= 0.0 &&
                        std::isfinite(options_.integral_gain) && options_.integral_gain >= 0.0,
                    Errc::invalid_argument, "budget gains must be finite and >= 0");
    const std::vector<BitDecision>& ladder = options_.ladder;
    detail::require(!ladder.empty(), Errc::invalid_argument, "budget width ladder is empty");
    for (std::size_t i = 0; i < ladder.size(); ++i) {
      const std::string where = "budget ladder rung " + std::to_string(i) + " (" + to_string(ladder[i]) + ")";
      require_supported_bits(ladder[i], where);
      detail::require(
          i == 0 || (ladder[i].key_bits >= ladder[i - 1].key_bits &&
                     ladder[i].value_bits >= ladder[i - 1].value_bits && ladder[i] != ladder[i - 1]),
          Errc::invalid_argument,
          where +
              ": each rung must be wider than the one before it in keys or values and "
              "narrower in neither");
    }
    const std::span<const std::size_t> inner_ages = policy_decision_ages(inner_);
    ages_.assign(inner_ages.begin(), inner_ages.end());
    if (options_.payback_age != 0 && !std::binary_search(ages_.begin(), ages_.end(), options_.payback_age)) {
      ages_.insert(std::upper_bound(ages_.begin(), ages_.end(), options_.payback_age), options_.payback_age);
    }
  }

  /**
   * One control step, then Inner's decision lowered by the offset.
   * @param context what the cache knows; reads cache_bits_per_element and current, and
   *        passes the whole context to Inner.
   * @return widths no wider than Inner's decision nor than context.current.
   */
  BitDecision decide(const DecisionContext& context) {
    const BitDecision wanted = consult_policy(inner_, context);
    const std::size_t steps = control_step(context.cache_bits_per_element);
    const BitDecision lowered = lower(wanted, steps);
    return {std::min(lowered.key_bits, context.current.key_bits),
            std::min(lowered.value_bits, context.current.value_bits)};
  }

  /// @return Inner's re-decision ages, with payback_age merged in when set.
  [[nodiscard]] std::span<const std::size_t> decision_ages() const noexcept { return ages_; }

  /// @return whether Inner reads attention statistics.
  [[nodiscard]] bool wants_attention_stats() const { return policy_wants_attention_stats(inner_); }

  /// @return the ladder offset, in rungs, of the latest decision (before diffusion).
  [[nodiscard]] double offset() const noexcept { return offset_; }

  [[nodiscard]] const Inner& inner() const noexcept { return inner_; }              ///< the wrapped policy
  [[nodiscard]] const BudgetOptions& options() const noexcept { return options_; }  ///< the settings

 private:
  // Advances the controller by one decision; returns whole rungs to lower this token by.
  std::size_t control_step(double bits_per_element) noexcept {
    // A cache that has stored nothing yet reports 0: nothing to correct.
    const double error = bits_per_element > 0.0 ? bits_per_element - options_.target_bits_per_element : 0.0;
    const auto top = static_cast<double>(options_.ladder.size() - 1);
    const double proportional = options_.proportional_gain * error;
    // Conditional integration: while the offset is pinned at an end of the ladder and the error
    // pushes further that way, the integral holds still, so it has no wind-up to undo later.
    const double unclamped = integral_ + proportional;
    const bool pinned = (unclamped >= top && error > 0.0) || (unclamped <= 0.0 && error < 0.0);
    if (!pinned) integral_ = std::clamp(integral_ + options_.integral_gain * error, 0.0, top);
    offset_ = std::clamp(integral_ + proportional, 0.0, top);
    const double whole = std::floor(offset_);
    diffusion_ += offset_ - whole;
    std::size_t steps = static_cast<std::size_t>(whole);
    if (diffusion_ >= 1.0) {
      diffusion_ -= 1.0;
      ++steps;
    }
    return steps;
  }

  // `wanted` lowered by `steps` rungs of the ladder, never above it.
  [[nodiscard]] BitDecision lower(const BitDecision& wanted, std::size_t steps) const noexcept {
    const std::vector<BitDecision>& ladder = options_.ladder;
    std::size_t below = ladder.size();  // one past the widest rung not above `wanted`
    while (below > 0 && !(ladder[below - 1].key_bits <= wanted.key_bits &&
                          ladder[below - 1].value_bits <= wanted.value_bits)) {
      --below;
    }
    if (steps == 0 || below == 0) return wanted;
    const std::size_t rung = below - 1;
    // Reaching the rung is itself the first step when `wanted` is between rungs.
    const std::size_t descent = ladder[rung] == wanted ? steps : steps - 1;
    return ladder[rung - std::min(descent, rung)];
  }

  Inner inner_;                    // the policy whose decisions are lowered
  BudgetOptions options_;          // target, gains, payback age, ladder
  std::vector<std::size_t> ages_;  // Inner's decision ages with payback_age merged in, increasing
  double integral_ = 0.0;          // integral term, in rungs, within [0, ladder.size() - 1]
  double offset_ = 0.0;            // latest offset, in rungs
  double diffusion_ = 0.0;         // accumulated fractional rungs not yet applied, in [0, 1)
};

}  // namespace kvbits
