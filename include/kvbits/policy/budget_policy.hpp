// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "kvbits/core/bit_width.hpp"
#include "kvbits/core/byte_io.hpp"
#include "kvbits/core/decision.hpp"
#include "kvbits/core/error.hpp"
#include "kvbits/policy/decision_context.hpp"
#include "kvbits/policy/policy.hpp"
#include "kvbits/policy/policy_state.hpp"
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

/// How a BudgetPolicy lowers a token by a number of steps.
enum class BudgetLowering {
  /// Along BudgetOptions::ladder: a step is one rung, from the widest rung not above the token.
  ladder,
  /**
   * Keys and values each along the supported widths (kSupportedBits): a step narrows one side
   * by one width, the wider side first (values on a tie), never below the cheapest rung's widths
   * of that side. A token's keys and values keep their own widths, so a policy whose widths are
   * far apart (e.g. keys 8, values 2) is not snapped to a rung that narrows its wide side at
   * once (8/2 -> 3/2 on the default ladder).
   */
  per_side,
};

/// Settings of a BudgetPolicy; see BudgetPolicy for the control law.
struct BudgetOptions {
  double target_bits_per_element = 4.5;  ///< average storage bits per K/V element to reach, > 0
  double proportional_gain = 16.0;       ///< Kp: ladder steps per bit/element of error
  double integral_gain = 0.1;            ///< Ki: ladder steps added per decision per bit/element of error
  double integral_band = 0.25;           ///< B: the integrated error is clipped to [-B, B] bits/element, > 0
  /// Tokens younger than this many appends keep Inner's decisions; 0 = Inner's last decision
  /// age, or kDefaultBudgetProtectAge when Inner declares none.
  std::size_t protect_age = 0;
  /// How many lowering ages: protect_age * 2^k for k < lowering_ages, in [1, kMaxBudgetLoweringAges].
  std::size_t lowering_ages = 3;
  /// Most rungs one lowering takes before the last lowering age; 0 = no limit.
  std::size_t max_rungs_per_lowering = 2;
  std::vector<BitDecision> ladder = default_width_ladder();  ///< rungs, cheapest first
  /// How a token is lowered; per_side keeps the ladder's cheapest rung as the floor of each side,
  /// and the offset then counts one-side steps (at most those from 16/16 to that rung: 12 for the
  /// default ladder, as many as its rungs above the cheapest).
  BudgetLowering lowering = BudgetLowering::ladder;
};

/// Protect age of a BudgetPolicy whose Inner declares no decision ages (e.g. a static policy).
inline constexpr std::size_t kDefaultBudgetProtectAge = 8;

/// Most lowering ages a BudgetPolicy accepts (the oldest is protect_age * 2^(this - 1)).
inline constexpr std::size_t kMaxBudgetLoweringAges = 8;

/**
 * Wraps a Policy so the cache meets a target average of storage bits per K/V
 * element, as the cache reports it in DecisionContext::cache_bits_per_element
 * (codes, group metadata, sinks and the float window counted), and spends the
 * lowering on old tokens: a token's quantization does most of its damage in
 * its first queries, so narrowing it late costs least.
 *
 * Who is lowered, and when. Tokens younger than the protect age P
 * (BudgetOptions::protect_age) keep Inner's decisions. The lowering ages
 * P, 2P, 4P, ... (BudgetOptions::lowering_ages of them) are merged into Inner's
 * decision_ages(); at each decision of a token aged P or more the controller
 * takes one step, and the lower of Inner's decision and the token's current
 * widths is lowered by `offset` rungs of the ladder. Lowering is cumulative: a
 * token is lowered again at each later lowering age while the cache is above
 * target, so the oldest tokens end cheapest. Before the last lowering age one
 * lowering takes at most BudgetOptions::max_rungs_per_lowering rungs, so while
 * the cache is far above target (young tokens dominate a short document) a
 * token is not crushed at age P: the deeper cut waits for its last lowering age.
 *
 * Control law, one step per decision of a token aged P or more, with
 * e = cache_bits_per_element - target:
 *   integral <- clamp(integral + Ki * clamp(e, -B, B), 0, L)   (B = integral_band)
 *               held while the offset is pinned at 0 or L and e pushes it further (no wind-up)
 *   offset    = clamp(integral + Kp * e, 0, L)                  (L = ladder rungs - 1)
 * (with per_side lowering, L counts one-side steps: see BudgetOptions::lowering),
 * a PI controller: the integral term finds the offset that holds the average on
 * target, the proportional term damps the loop (the cache's running average
 * integrates the decisions, so integral control alone would oscillate).
 * Clipping the integrated error to the band keeps the integral from winding up
 * during the long approach of a cache that starts far above target; an
 * overshoot below target would stay, since lowering cannot be undone. A token
 * is lowered by floor(offset) rungs, plus one more whenever the accumulated
 * fractional parts reach 1 (deterministic error diffusion), so a fractional
 * offset is met on average. Lowering starts from the widest rung not above the
 * starting widths (when they are not a rung, reaching that rung is the first
 * step) and never goes below the cheapest rung; the result is never above
 * Inner's decision in keys or values, nor above the widths the token holds
 * now. With BudgetOptions::lowering = per_side a step narrows one side by one
 * supported width instead (the wider side first; see BudgetLowering), which
 * suits policies whose key and value widths differ by much. The state is a few
 * numbers: O(1) per cache, deterministic.
 *
 * Limits. The budget only lowers: when Inner alone stores below the target, the
 * cache lands below it. A cache that reports 0 (before it has stored anything)
 * gets Inner's decisions. Young tokens are never lowered, so a document too
 * short for its old tokens to pay for them lands above the target: with young
 * tokens averaging Y bits/element over P tokens and the cheapest rung costing
 * C, a document can reach target T only from P * (Y - C) / (T - C) tokens on,
 * and later in practice, since before 4P a token is lowered by at most
 * 2 * max_rungs_per_lowering rungs. E.g. Inner `4=16/16,16=8/8,64=6/6,*=4/4`
 * with 32-element groups (Y ~ 7.9, C = 3) needs 630 tokens for T = 3.5, more
 * than most documents hold. For low targets choose an Inner with narrower or
 * shorter young tiers (e.g. `1=16/16,4=8/8,16=6/6,*=4/4`), or a smaller
 * protect age. Inner's wants_attention_stats() is forwarded.
 * @tparam Inner the policy whose decisions the budget lowers.
 */
template <Policy Inner>
class BudgetPolicy {
 public:
  /**
   * @param inner the policy to wrap.
   * @param options target, gains, integral band, protect age, lowering ages, lowering limit
   *        and ladder.
   * @throws Error(invalid_argument) for a target or integral band that is not finite and
   *         positive, a gain that is not finite and >= 0, a lowering_ages count outside
   *         [1, kMaxBudgetLoweringAges], a protect age so large that the lowering ages
   *         overflow, or a ladder that is empty, has unsupported widths, or whose rungs do not
   *         widen keys or values, never narrowing either, from one to the next.
   */
  explicit BudgetPolicy(Inner inner, BudgetOptions options = {})
      : inner_(std::move(inner)), options_(std::move(options)) {
    detail::require(std::isfinite(options_.target_bits_per_element) && options_.target_bits_per_element > 0.0,
                    Errc::invalid_argument, "budget target bits per element must be finite and > 0");
    detail::require(std::isfinite(options_.proportional_gain) && options_.proportional_gain >= 0.0 &&
                        std::isfinite(options_.integral_gain) && options_.integral_gain >= 0.0,
                    Errc::invalid_argument, "budget gains must be finite and >= 0");
    detail::require(std::isfinite(options_.integral_band) && options_.integral_band > 0.0,
                    Errc::invalid_argument, "budget integral band must be finite and > 0");
    detail::require(options_.lowering_ages >= 1 && options_.lowering_ages <= kMaxBudgetLoweringAges,
                    Errc::invalid_argument,
                    "budget lowering ages must be between 1 and " + std::to_string(kMaxBudgetLoweringAges));
    detail::require(
        options_.protect_age <= (std::numeric_limits<std::size_t>::max() >> kMaxBudgetLoweringAges),
        Errc::invalid_argument, "budget protect age is too large");
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
    protect_age_ = options_.protect_age != 0 ? options_.protect_age
                   : inner_ages.empty()      ? kDefaultBudgetProtectAge
                                             : inner_ages.back();
    last_lowering_age_ = protect_age_ << (options_.lowering_ages - 1);
    top_ = options_.lowering == BudgetLowering::per_side
               ? static_cast<double>(narrowings(16, ladder.front().key_bits) +
                                     narrowings(16, ladder.front().value_bits))
               : static_cast<double>(ladder.size() - 1);
    for (std::size_t k = 0; k < options_.lowering_ages; ++k) {
      const std::size_t age = protect_age_ << k;
      const auto at = std::lower_bound(ages_.begin(), ages_.end(), age);
      if (at == ages_.end() || *at != age) ages_.insert(at, age);
    }
  }

  /**
   * Inner's decision; for a token aged protect_age() or more, one control step and
   * that decision lowered by the offset.
   * @param context what the cache knows; reads age, current and cache_bits_per_element,
   *        and passes the whole context to Inner.
   * @return widths no wider than Inner's decision nor than context.current.
   */
  BitDecision decide(const DecisionContext& context) {
    const BitDecision wanted = consult_policy(inner_, context);
    const BitDecision start{std::min(wanted.key_bits, context.current.key_bits),
                            std::min(wanted.value_bits, context.current.value_bits)};
    if (context.age < protect_age_) return start;
    std::size_t steps = control_step(context.cache_bits_per_element);
    if (context.age < last_lowering_age_ && options_.max_rungs_per_lowering != 0) {
      steps = std::min(steps, options_.max_rungs_per_lowering);
    }
    return options_.lowering == BudgetLowering::per_side ? lower_sides(start, steps) : lower(start, steps);
  }

  /// @return Inner's decision ages merged with the lowering ages, strictly increasing.
  [[nodiscard]] std::span<const std::size_t> decision_ages() const noexcept { return ages_; }

  /// @return whether Inner reads attention statistics.
  [[nodiscard]] bool wants_attention_stats() const { return policy_wants_attention_stats(inner_); }

  /// @return the age from which tokens are lowered (BudgetOptions::protect_age resolved).
  [[nodiscard]] std::size_t protect_age() const noexcept { return protect_age_; }

  /// @return the ladder offset, in rungs, of the latest lowering decision (before diffusion).
  [[nodiscard]] double offset() const noexcept { return offset_; }

  [[nodiscard]] const Inner& inner() const noexcept { return inner_; }              ///< the wrapped policy
  [[nodiscard]] const BudgetOptions& options() const noexcept { return options_; }  ///< the settings

  /**
   * @return the settings and Inner's description, the configuration a cache file records, e.g.
   *         "budget:target=4.5,kp=16,ki=0.1,band=0.25,protect=8,ages=3,rungs=2,lowering=ladder,
   *         ladder=2/2 3/2 ... 16/16(static:8/8)".
   */
  [[nodiscard]] std::string describe() const {
    std::string text =
        "budget:target=" + detail::format_number(options_.target_bits_per_element) +
        ",kp=" + detail::format_number(options_.proportional_gain) +
        ",ki=" + detail::format_number(options_.integral_gain) +
        ",band=" + detail::format_number(options_.integral_band) +
        ",protect=" + std::to_string(protect_age_) + ",ages=" + std::to_string(options_.lowering_ages) +
        ",rungs=" + std::to_string(options_.max_rungs_per_lowering) +
        ",lowering=" + (options_.lowering == BudgetLowering::per_side ? "per_side" : "ladder") + ",ladder=";
    for (std::size_t i = 0; i < options_.ladder.size(); ++i) {
      if (i > 0) text += ' ';
      text += kvbits::to_string(options_.ladder[i]);
    }
    return text + "(" + policy_description(inner_) + ")";
  }

  /// Appends the controller's state (integral, offset, diffusion), then Inner's.
  void save_state(ByteWriter& out) const {
    out.f64(integral_);
    out.f64(offset_);
    out.f64(diffusion_);
    save_policy_state(inner_, out);
  }

  /**
   * Reads what save_state wrote.
   * @throws Error(corrupt_data) when it is missing, or a value lies outside the range the
   *         controller keeps it in (integral and offset in [0, steps], diffusion in [0, 1)).
   */
  void load_state(ByteReader& in) {
    const double integral = in.f64("budget integral");
    const double offset = in.f64("budget offset");
    const double diffusion = in.f64("budget diffusion");
    const auto within = [](double v, double low, double high) { return v >= low && v <= high; };
    if (!within(integral, 0.0, top_) || !within(offset, 0.0, top_) || !within(diffusion, 0.0, 1.0) ||
        diffusion == 1.0) {
      in.fail("budget state (integral " + detail::format_number(integral) + ", offset " +
              detail::format_number(offset) + ", diffusion " + detail::format_number(diffusion) +
              ") is outside the controller's range");
    }
    load_policy_state(inner_, in);
    integral_ = integral;
    offset_ = offset;
    diffusion_ = diffusion;
  }

 private:
  // Advances the controller by one decision; returns whole rungs to lower this token by.
  std::size_t control_step(double bits_per_element) noexcept {
    // A cache that has stored nothing yet reports 0: nothing to correct.
    const double error = bits_per_element > 0.0 ? bits_per_element - options_.target_bits_per_element : 0.0;
    const double top = top_;
    const double proportional = options_.proportional_gain * error;
    // Conditional integration: while the offset is pinned at an end of the ladder and the error
    // pushes further that way, the integral holds still, so it has no wind-up to undo later.
    const double unclamped = integral_ + proportional;
    const bool pinned = (unclamped >= top && error > 0.0) || (unclamped <= 0.0 && error < 0.0);
    // The integrated error is clipped to the band, so the long approach of a cache that starts far
    // above target winds the integral up no faster than a small error would.
    const double clipped = std::clamp(error, -options_.integral_band, options_.integral_band);
    if (!pinned) integral_ = std::clamp(integral_ + options_.integral_gain * clipped, 0.0, top);
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

  // `start` lowered by `steps` rungs of the ladder, never above it.
  [[nodiscard]] BitDecision lower(const BitDecision& start, std::size_t steps) const noexcept {
    const std::vector<BitDecision>& ladder = options_.ladder;
    std::size_t below = ladder.size();  // one past the widest rung not above `start`
    while (below > 0 && !(ladder[below - 1].key_bits <= start.key_bits &&
                          ladder[below - 1].value_bits <= start.value_bits)) {
      --below;
    }
    if (steps == 0 || below == 0) return start;
    const std::size_t rung = below - 1;
    // Reaching the rung is itself the first step when `start` is between rungs.
    const std::size_t descent = ladder[rung] == start ? steps : steps - 1;
    return ladder[rung - std::min(descent, rung)];
  }

  // `start` narrowed by `steps` one-side steps along the supported widths, the wider side first.
  [[nodiscard]] BitDecision lower_sides(const BitDecision& start, std::size_t steps) const noexcept {
    const BitDecision floor = options_.ladder.front();
    BitDecision out = start;
    for (std::size_t s = 0; s < steps; ++s) {
      const bool key_can = out.key_bits > floor.key_bits;
      const bool value_can = out.value_bits > floor.value_bits;
      if (!key_can && !value_can) break;
      int& side = key_can && (!value_can || out.key_bits > out.value_bits) ? out.key_bits : out.value_bits;
      side = narrower_supported(side);
    }
    return out;
  }

  // Supported widths strictly between `from` and `to` plus one: one-side steps from `from` down to `to`.
  [[nodiscard]] static constexpr std::size_t narrowings(int from, int to) noexcept {
    std::size_t count = 0;
    for (const int candidate : kSupportedBits) count += candidate >= to && candidate < from ? 1 : 0;
    return count;
  }

  // The supported width just below `bits` (bits itself when none is).
  [[nodiscard]] static constexpr int narrower_supported(int bits) noexcept {
    int below = bits;
    for (const int candidate : kSupportedBits) {
      if (candidate < bits) below = candidate;
    }
    return below;
  }

  Inner inner_;                        // the policy whose decisions are lowered
  BudgetOptions options_;              // target, gains, band, ages, lowering limit, ladder
  std::size_t protect_age_ = 0;        // options_.protect_age resolved, >= 1
  std::size_t last_lowering_age_ = 0;  // protect_age_ * 2^(lowering_ages - 1): lowerings unlimited from here
  std::vector<std::size_t> ages_;      // Inner's decision ages merged with the lowering ages, increasing
  double top_ = 0.0;                   // most steps: rungs - 1, or one-side steps to the cheapest rung
  double integral_ = 0.0;              // integral term, in steps, within [0, top_]
  double offset_ = 0.0;                // latest offset, in steps
  double diffusion_ = 0.0;             // accumulated fractional steps not yet applied, in [0, 1)
};

}  // namespace kvbits
