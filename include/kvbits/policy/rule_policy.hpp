// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kvbits/core/decision.hpp"
#include "kvbits/core/error.hpp"
#include "kvbits/policy/policy.hpp"
#include "kvbits/policy/policy_text.hpp"

namespace kvbits {

/// One threshold rule of a RulePolicy: `features[feature] > threshold` grants `bits`.
struct FeatureRule {
  std::size_t feature = 0;  ///< index into TokenInfo::features
  float threshold = 0.0f;   ///< the rule matches when the feature is strictly above this
  BitDecision bits{};       ///< precision granted when it matches
};

/**
 * A hand-written precision policy over caller-supplied facts about a token.
 *
 * Rule format. A token starts at `default_bits`. Each rule that matches
 * raises the key and the value precision (separately) to at least the rule's
 * bits; the result is the element-wise maximum over `default_bits` and every
 * matching rule, so rule order never matters and more evidence never costs a
 * token precision. The rules are:
 *  - position: `token.position < protected_positions` (attention sinks at the
 *    start of the sequence) grants `protected_bits`;
 *  - token id: `token.token_id` in `protected_ids` (e.g. punctuation and
 *    separators, which attention tends to concentrate on) grants `protected_bits`;
 *  - features: every FeatureRule with `token.features[rule.feature] > rule.threshold`
 *    grants `rule.bits`.
 * A FeatureRule that reads past the end of `token.features` is an error, not a
 * silent non-match: it means the caller forgot to supply the features.
 */
struct RulePolicy {
  BitDecision default_bits{4, 4};             ///< precision of a token no rule matches
  std::size_t protected_positions = 0;        ///< positions [0, this) get protected_bits
  std::vector<std::int32_t> protected_ids{};  ///< token ids that get protected_bits
  BitDecision protected_bits{8, 8};           ///< precision of protected positions / ids
  std::vector<FeatureRule> feature_rules{};   ///< threshold rules on TokenInfo::features

  /**
   * @param token the token leaving the full-precision window (or being inserted).
   * @return the widest precision among the default and every matching rule.
   * @throws Error(shape_mismatch) when a feature rule indexes past token.features.
   */
  [[nodiscard]] BitDecision decide(const TokenInfo& token) const {
    BitDecision result = default_bits;
    const auto grant = [&result](const BitDecision& bits) {
      result.key_bits = std::max(result.key_bits, bits.key_bits);
      result.value_bits = std::max(result.value_bits, bits.value_bits);
    };
    if (token.position < protected_positions) grant(protected_bits);
    if (std::find(protected_ids.begin(), protected_ids.end(), token.token_id) != protected_ids.end()) {
      grant(protected_bits);
    }
    for (std::size_t r = 0; r < feature_rules.size(); ++r) {
      const FeatureRule& rule = feature_rules[r];
      if (rule.feature >= token.features.size()) {
        throw Error(Errc::shape_mismatch, "rule " + std::to_string(r) + " reads feature " +
                                              std::to_string(rule.feature) + " but the token has " +
                                              std::to_string(token.features.size()) + " features");
      }
      if (token.features[rule.feature] > rule.threshold) grant(rule.bits);
    }
    return result;
  }

  /**
   * @return the rules as text, the configuration a cache file records, e.g.
   *         "rule:4/4,positions<4=8/8,ids=13 29=8/8,f0>2.5=8/4".
   */
  [[nodiscard]] std::string describe() const {
    std::string text = "rule:" + to_string(default_bits);
    text += ",positions<" + std::to_string(protected_positions) + "=" + to_string(protected_bits);
    text += ",ids=";
    for (std::size_t i = 0; i < protected_ids.size(); ++i) {
      if (i > 0) text += ' ';
      text += std::to_string(protected_ids[i]);
    }
    text += '=';
    text += to_string(protected_bits);
    for (const FeatureRule& rule : feature_rules) {
      text += ",f" + std::to_string(rule.feature) + ">" + detail::format_number(rule.threshold) + "=" +
              to_string(rule.bits);
    }
    return text;
  }
};

static_assert(Policy<RulePolicy>, "RulePolicy must satisfy the Policy concept");

}  // namespace kvbits
