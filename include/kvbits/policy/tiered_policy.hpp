// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kvbits/core/bit_width.hpp"
#include "kvbits/core/decision.hpp"
#include "kvbits/core/error.hpp"
#include "kvbits/policy/decision_context.hpp"
#include "kvbits/policy/policy.hpp"
#include "kvbits/policy/policy_text.hpp"

namespace kvbits {

/// One age tier of a TieredPolicy: tokens younger than `younger_than` appends get `bits`.
struct AgeTier {
  std::size_t younger_than = 1;  ///< exclusive upper bound of the tier's ages, >= 1
  BitDecision bits{};            ///< widths of tokens in the tier

  /// Member-wise equality.
  friend constexpr bool operator==(const AgeTier&, const AgeTier&) = default;
};

/**
 * Optional widening of attended tokens in a TieredPolicy: a token whose mean
 * per-head attention probability (AttentionStats::mean()) is strictly above a
 * threshold gets its key and/or value width one supported step wider than its
 * tier's (e.g. 4 -> 5, 6 -> 8, 8 -> 16), but never wider than the next younger
 * tier's width nor than the width the token holds now.
 */
struct AttentionRefinement {
  std::optional<float> key_threshold{};    ///< widen keys above this mean attention
  std::optional<float> value_threshold{};  ///< widen values above this mean attention

  /// Member-wise equality.
  friend bool operator==(const AttentionRefinement&, const AttentionRefinement&) = default;
};

/**
 * Precision by age: the newest tokens keep wide keys and values, older ones
 * are narrowed tier by tier, e.g. (text form, see parse_tiers)
 * `1=16/16,4=8/8,16=6/4,64=5/3,*=4/2`: age 0 at 16/16, ages 1..3 at 8/8,
 * 4..15 at 6/4, 16..63 at 5/3, older at 4/2. The cache consults it again at
 * every tier boundary (decision_ages() = 1, 4, 16, 64 here) and lowers the
 * stored token to its new tier.
 *
 * Tiers are monotone: an older tier is never wider, in keys or values, than a
 * younger one. An AttentionRefinement, when set, makes the policy ask the cache
 * for attention statistics.
 */
class TieredPolicy {
 public:
  /**
   * @param tiers the younger tiers, `younger_than` strictly increasing from >= 1; may be empty.
   * @param oldest widths of tokens older than every tier.
   * @param refinement optional widening of attended tokens.
   * @throws Error(invalid_argument) naming the tier that breaks a rule: unsupported widths,
   *         ages not strictly increasing from 1, or a tier wider than the one before it.
   */
  explicit TieredPolicy(std::vector<AgeTier> tiers, BitDecision oldest = {4, 2},
                        AttentionRefinement refinement = {})
      : tiers_(std::move(tiers)), oldest_(oldest) {
    std::optional<BitDecision> younger;
    for (std::size_t i = 0; i <= tiers_.size(); ++i) {
      const BitDecision bits = i < tiers_.size() ? tiers_[i].bits : oldest_;
      const std::string where = i < tiers_.size()
                                    ? "tier " + std::to_string(i) + " '" + tier_text(tiers_[i]) + "'"
                                    : "oldest tier '*=" + kvbits::to_string(oldest_) + "'";
      require_supported_bits(bits, where);
      if (i < tiers_.size()) {
        const std::size_t previous_age = i == 0 ? 0 : tiers_[i - 1].younger_than;
        detail::require(tiers_[i].younger_than > previous_age, Errc::invalid_argument,
                        where + ": ages must be >= 1 and strictly increasing");
        ages_.push_back(tiers_[i].younger_than);
      }
      detail::require(
          !younger || (bits.key_bits <= younger->key_bits && bits.value_bits <= younger->value_bits),
          Errc::invalid_argument,
          where + ": an older tier may not be wider than the tier before it (" +
              (younger ? kvbits::to_string(*younger) : std::string()) + ")");
      younger = bits;
    }
    set_refinement(refinement);
  }

  /**
   * @param refinement the widening of attended tokens; thresholds finite and >= 0.
   * @throws Error(invalid_argument) for a negative or non-finite threshold.
   */
  void set_refinement(const AttentionRefinement& refinement) {
    for (const std::optional<float>& threshold : {refinement.key_threshold, refinement.value_threshold}) {
      detail::require(!threshold || (std::isfinite(*threshold) && *threshold >= 0.0f), Errc::invalid_argument,
                      "attention refinement thresholds must be finite and >= 0");
    }
    refinement_ = refinement;
  }

  /**
   * @param context reads age, current and, with a refinement, attention.
   * @return the widths of the tier of context.age, widened per the refinement, never above
   *         context.current.
   */
  [[nodiscard]] BitDecision decide(const DecisionContext& context) const noexcept {
    const std::size_t tier = tier_index(context.age);
    BitDecision bits = tier_bits(tier);
    if (wants_attention_stats()) {
      const BitDecision cap = tier == 0 ? BitDecision{32, 32} : tier_bits(tier - 1);
      const float attention = context.attention.mean();
      if (refinement_.key_threshold && attention > *refinement_.key_threshold) {
        bits.key_bits = std::min(next_wider_bits(bits.key_bits), cap.key_bits);
      }
      if (refinement_.value_threshold && attention > *refinement_.value_threshold) {
        bits.value_bits = std::min(next_wider_bits(bits.value_bits), cap.value_bits);
      }
    }
    return {std::min(bits.key_bits, context.current.key_bits),
            std::min(bits.value_bits, context.current.value_bits)};
  }

  /// @return the tier boundaries, the ages at which a token moves to an older tier.
  [[nodiscard]] std::span<const std::size_t> decision_ages() const noexcept { return ages_; }

  /// @return true when a refinement is set, so decide() reads attention statistics.
  [[nodiscard]] bool wants_attention_stats() const noexcept {
    return refinement_.key_threshold.has_value() || refinement_.value_threshold.has_value();
  }

  /// @return the widths of a token `age` appends old, without refinement.
  [[nodiscard]] BitDecision bits_for_age(std::size_t age) const noexcept {
    return tier_bits(tier_index(age));
  }

  [[nodiscard]] std::span<const AgeTier> tiers() const noexcept { return tiers_; }  ///< the younger tiers
  [[nodiscard]] BitDecision oldest() const noexcept { return oldest_; }             ///< the oldest tier
  [[nodiscard]] const AttentionRefinement& refinement() const noexcept { return refinement_; }  ///< widening

  /// @return the text parse_tiers reads back as this policy, e.g. "1=16/16,*=4/2,v+=0.02".
  [[nodiscard]] std::string to_string() const {
    std::string text;
    for (const AgeTier& tier : tiers_) text += tier_text(tier) + ",";
    text += "*=" + kvbits::to_string(oldest_);
    if (refinement_.key_threshold) text += ",k+=" + detail::format_number(*refinement_.key_threshold);
    if (refinement_.value_threshold) text += ",v+=" + detail::format_number(*refinement_.value_threshold);
    return text;
  }

  /// @return "tiers:" and to_string(), the configuration a cache file records.
  [[nodiscard]] std::string describe() const { return "tiers:" + to_string(); }

 private:
  static std::string tier_text(const AgeTier& tier) {
    return std::to_string(tier.younger_than) + "=" + kvbits::to_string(tier.bits);
  }

  static int next_wider_bits(int bits) noexcept {
    const auto wider = std::upper_bound(kSupportedBits.begin(), kSupportedBits.end(), bits);
    return wider == kSupportedBits.end() ? bits : *wider;
  }

  // Index of the tier holding `age`; tiers_.size() is the oldest tier.
  [[nodiscard]] std::size_t tier_index(std::size_t age) const noexcept {
    std::size_t tier = 0;
    while (tier < tiers_.size() && age >= tiers_[tier].younger_than) ++tier;
    return tier;
  }

  [[nodiscard]] BitDecision tier_bits(std::size_t tier) const noexcept {
    return tier < tiers_.size() ? tiers_[tier].bits : oldest_;
  }

  std::vector<AgeTier> tiers_;        // younger tiers, younger_than strictly increasing
  BitDecision oldest_{4, 2};          // tokens older than every tier
  AttentionRefinement refinement_{};  // widening of attended tokens
  std::vector<std::size_t> ages_;     // [tiers_.size()] the tiers' younger_than
};

static_assert(Policy<TieredPolicy>, "TieredPolicy must satisfy the Policy concept");

/**
 * @param item one comma-separated item of a policy text, e.g. "16=6/4", "*=4/2", "v+=0.02" or "g=32".
 * @return true when parse_tiers reads `item` (AGE=K/V, *=K/V, k+=T, v+=T), false for items
 *         meant for someone else, such as the cache options g=, s=, t=, w= of the tools.
 */
inline bool is_tier_item(std::string_view item) noexcept {
  item = detail::trim(item);
  if (item.starts_with("k+=") || item.starts_with("v+=") || item.starts_with("*=")) return true;
  const std::size_t equals = item.find('=');
  return equals != std::string_view::npos &&
         detail::parse_number<std::size_t>(item.substr(0, equals)).has_value();
}

/**
 * Reads a TieredPolicy from text: comma-separated items, spaces around items ignored,
 *  - `AGE=K/V`: tokens younger than AGE appends (>= 1, strictly increasing) get K/V bits;
 *  - `*=K/V`: every older token; required, after the AGE items;
 *  - `k+=T` / `v+=T` (optional, after `*`): keys / values one supported width wider,
 *    capped at the next younger tier, for tokens whose mean per-head attention
 *    (AttentionStats::mean()) is strictly above T (see AttentionRefinement).
 * Widths are those of kSupportedBits, and an older tier is never wider than a
 * younger one. Anything else is an error: a tool whose policy text also carries
 * cache options (`g=`, `s=`, `t=`, `w=`) passes only the items is_tier_item() accepts.
 * Example: "1=16/16,4=8/8,16=6/4,64=5/3,*=4/2,v+=0.02". TieredPolicy::to_string() round-trips.
 * @param text the items.
 * @return the policy.
 * @throws Error(invalid_argument) naming the offending item.
 */
inline TieredPolicy parse_tiers(std::string_view text) {
  std::vector<AgeTier> tiers;
  std::optional<BitDecision> oldest;
  AttentionRefinement refinement;
  const auto fail = [text](std::string_view item, const std::string& why) -> Error {
    return Error(Errc::invalid_argument,
                 "tiers '" + std::string(text) + "': item '" + std::string(item) + "' " + why);
  };
  for (const std::string_view raw : detail::split(text, ',')) {
    const std::string_view item = detail::trim(raw);
    const std::string where = "tiers item '" + std::string(item) + "'";
    const std::size_t equals = item.find('=');
    if (item.starts_with("k+=") || item.starts_with("v+=")) {
      if (!oldest) throw fail(item, "must follow the oldest tier '*=K/V'");
      const std::optional<float> threshold = detail::parse_number<float>(item.substr(3));
      if (!threshold || !std::isfinite(*threshold) || *threshold < 0.0f) {
        throw fail(item, "needs a finite attention threshold >= 0, e.g. v+=0.02");
      }
      std::optional<float>& slot =
          item.front() == 'k' ? refinement.key_threshold : refinement.value_threshold;
      if (slot) throw fail(item, "repeats a refinement");
      slot = threshold;
    } else if (item.starts_with("*=")) {
      if (oldest) throw fail(item, "repeats the oldest tier '*'");
      oldest = parse_bit_decision(item.substr(2), where);
    } else if (is_tier_item(item)) {
      if (oldest) throw fail(item, "comes after the oldest tier '*'; tiers go from youngest to oldest");
      const std::optional<std::size_t> age = detail::parse_number<std::size_t>(item.substr(0, equals));
      if (*age == 0) throw fail(item, "has age 0; AGE means 'younger than AGE appends' and must be >= 1");
      if (!tiers.empty() && *age <= tiers.back().younger_than) {
        throw fail(item, "has age " + std::to_string(*age) + ", not above the previous tier's " +
                             std::to_string(tiers.back().younger_than) + "; ages must strictly increase");
      }
      tiers.push_back(AgeTier{*age, parse_bit_decision(item.substr(equals + 1), where)});
    } else {
      throw fail(item,
                 "is not AGE=K/V, *=K/V, k+=THRESHOLD or v+=THRESHOLD (cache options such as g=, s=, t=, "
                 "w= must be removed first; see is_tier_item)");
    }
  }
  if (!oldest) {
    throw Error(Errc::invalid_argument, "tiers '" + std::string(text) + "': missing the oldest tier '*=K/V'");
  }
  return TieredPolicy(std::move(tiers), *oldest, refinement);
}

}  // namespace kvbits
