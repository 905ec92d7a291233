// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "kvbits/cache/options.hpp"
#include "kvbits/core/bit_width.hpp"
#include "kvbits/core/decision.hpp"
#include "kvbits/core/error.hpp"
#include "kvbits/policy/budget_policy.hpp"
#include "kvbits/policy/policy_text.hpp"
#include "kvbits/policy/policy_variant.hpp"
#include "kvbits/policy/random_policy.hpp"
#include "kvbits/policy/rule_policy.hpp"
#include "kvbits/policy/static_policy.hpp"
#include "kvbits/policy/tiered_policy.hpp"
#include "learn/tool_controller.hpp"
#include "model/token_features.hpp"

namespace kvbits::model {

/// The policies a tool can run without a budget.
using BasePolicy =
    PolicyVariant<StaticPolicy, TieredPolicy, RandomPolicy, RulePolicy, learn::ToolLearnedPolicy>;
/// Every policy a tool can run: one of the base policies, or one under a bits budget.
using ToolPolicy = PolicyVariant<StaticPolicy, TieredPolicy, RandomPolicy, RulePolicy,
                                 learn::ToolLearnedPolicy, BudgetPolicy<BasePolicy>>;

/**
 * Reads the items of a `rule:` policy: the default widths `K/V`, then `FEATURE>T=K/V` rules over
 * the runner's write-time features (TokenFeatures::names()).
 * @param items the items after `rule:`, cache options removed
 * @param spec  the whole specification, for error messages
 * @throw Error(invalid_argument) naming the item that does not parse.
 */
inline RulePolicy parse_rule_policy(std::string_view items, std::string_view spec) {
  RulePolicy policy;
  const std::string where = "policy '" + std::string(spec) + "'";
  bool first = true;
  for (const std::string_view raw : kvbits::detail::split(items, ',')) {
    const std::string_view item = kvbits::detail::trim(raw);
    if (first) {
      policy.default_bits = parse_bit_decision(item, where + " default widths");
      first = false;
      continue;
    }
    const std::size_t greater = item.find('>');
    const std::size_t equals = item.find('=');
    kvbits::detail::require(
        greater != std::string_view::npos && equals != std::string_view::npos && greater < equals,
        Errc::invalid_argument, where + ": rule '" + std::string(item) + "' is not FEATURE>THRESHOLD=K/V");
    const std::string_view name = item.substr(0, greater);
    const auto names = TokenFeatures::names();
    const auto found = std::find(names.begin(), names.end(), name);
    kvbits::detail::require(found != names.end(), Errc::invalid_argument,
                            where + ": rule '" + std::string(item) + "' reads unknown feature '" +
                                std::string(name) +
                                "' (entropy, next_token_probability, max_probability, rarity)");
    const auto threshold =
        kvbits::detail::parse_number<float>(item.substr(greater + 1, equals - greater - 1));
    kvbits::detail::require(threshold.has_value(), Errc::invalid_argument,
                            where + ": rule '" + std::string(item) + "' has no numeric threshold");
    policy.feature_rules.push_back({static_cast<std::size_t>(found - names.begin()), *threshold,
                                    parse_bit_decision(item.substr(equals + 1), where)});
  }
  return policy;
}

/// The policy forms as the tools' --help lists them, indented to their option column.
inline constexpr std::string_view kPolicyHelp =
    R"(                        fp32 | fp16 | static:K,V
                        tiers:AGE=K/V,...,*=K/V[,k+=T][,v+=T]   widths by age
                        random:K/V:W,...[,seed=N]              widths drawn from a mix
                        rule:K/V[,FEATURE>T=K/V]...            write-time feature rules
                                                               (entropy, next_token_probability,
                                                               max_probability, rarity; needs
                                                               w>=1)
                        learned:PATH[,budget=B][,q=Q]          a trained controller (kvbits-train's
                                                               weight file, PATH without commas);
                                                               q=Q: cheapest width with cumulative
                                                               probability >= Q instead of the most
                                                               probable; w=1 unless given (w>=1)
                        budget:BITS:POLICY                     POLICY held to BITS bits/element
                      each followed by [,g=G][,w=R][,s=S][,t=hadamard|scale]
)";

/** Text of the accepted policy syntax, for error messages. */
inline constexpr std::string_view kPolicySyntax =
    "fp32 | fp16 | static:K,V | tiers:AGE=K/V,...,*=K/V[,k+=T][,v+=T] | random:K/V:W,...[,seed=N] | "
    "rule:K/V[,FEATURE>T=K/V]... | learned:PATH[,budget=B][,q=Q] | budget:BITS:POLICY, each followed by "
    "[,g=G][,w=R][,s=S][,t=hadamard|scale]";

/// Which kind of policy a specification names.
enum class PolicyKind {
  fixed,    ///< fp32, fp16, static:K,V
  tiers,    ///< TieredPolicy: widths by age
  random,   ///< RandomPolicy: widths drawn from a mix
  rule,     ///< RulePolicy over the runner's write-time features
  learned,  ///< learn::ToolLearnedPolicy read from a weight file
};

/**
 * A cache configuration as written on the command line. Every form may end with cache options:
 * `g=G` the quantization group size (0 = whole head vector, the default), `w=R` the residual
 * window of recent tokens kept as float, `s=S` the attention-sink tokens kept as float, and
 * `t=hadamard|scale` the key transform.
 *  - `fp32`, `fp16`, `static:K,V`: every token at K key bits and V value bits.
 *  - `tiers:AGE=K/V,...,*=K/V[,k+=T][,v+=T]`: widths by age (kvbits::parse_tiers): `AGE=K/V`
 *    holds for tokens younger than AGE appends, `*=K/V` for the oldest.
 *  - `random:K/V:W,...[,seed=N]`: widths drawn per token from the weighted mix.
 *  - `rule:K/V[,FEATURE>T=K/V]...`: K/V unless a write-time feature (entropy,
 *    next_token_probability, max_probability, rarity) exceeds T; needs w >= 1, since the features of a
 *    token are known only after its forward pass.
 *  - `learned:PATH[,budget=B][,q=Q]`: the tools' learned controller (learn::ToolLearnedPolicy)
 *    with the weights of PATH (kvbits-train); `budget=B` is `budget:B:` written inside (the
 *    budget of a learned policy lowers keys and values each along its own widths,
 *    BudgetLowering::per_side), `q=Q` the width rule of LearnedPolicyOptions::quantile. It
 *    reads the runner's write-time features, so its window is 1 unless `w=` sets it (w=0 is
 *    refused).
 *  - `budget:BITS:POLICY`: POLICY lowered online so the cache averages BITS bits per element.
 */
struct PolicySpec {
  std::string text;                                 ///< the specification as given
  PolicyKind kind = PolicyKind::fixed;              ///< which policy
  BitDecision bits{32, 32};                         ///< widths of every token (fixed)
  std::string items;                                ///< the policy's own items (tiers, random, rule)
  std::uint64_t seed = 0;                           ///< seed= (random)
  std::optional<double> budget;                     ///< budget:BITS
  std::size_t group_size = 0;                       ///< g=; applies to keys and values
  std::size_t residual_window = 0;                  ///< w=
  std::size_t sink_tokens = 0;                      ///< s=
  KeyTransform key_transform = KeyTransform::none;  ///< t=; keys only
  std::string weights;                              ///< PATH (learned)
  std::optional<double> quantile;                   ///< q= (learned)
  /// The controller read from `weights` once at parse time (learned); null otherwise.
  std::shared_ptr<const learn::ToolLearnedPolicy> learned;

  /// @return true when the key transform needs calibration statistics before use.
  [[nodiscard]] bool needs_calibration() const noexcept {
    return key_transform == KeyTransform::channel_scale;
  }

  /// @return true when the policy reads the runner's write-time features.
  [[nodiscard]] bool needs_token_features() const noexcept {
    return kind == PolicyKind::rule || kind == PolicyKind::learned;
  }

  /**
   * Cache options for a model of the given shape.
   * @param layers   transformer layers
   * @param kv_heads key/value heads
   * @param head_dim head width
   * @param capacity most tokens the cache must hold
   */
  [[nodiscard]] CacheOptions cache_options(std::size_t layers, std::size_t kv_heads, std::size_t head_dim,
                                           std::size_t capacity) const {
    CacheOptions options;
    options.layers = layers;
    options.kv_heads = kv_heads;
    options.head_dim = head_dim;
    options.capacity = capacity;
    options.residual_window = residual_window;
    options.sink_tokens = sink_tokens;
    options.key.group_size = group_size;
    options.key.transform = key_transform;
    options.value.group_size = group_size;
    return options;
  }

  /// @return a fresh policy as specified (random policies restart from their seed).
  [[nodiscard]] ToolPolicy make_policy() const {
    const auto finish = [this](auto policy, BudgetLowering lowering = BudgetLowering::ladder) -> ToolPolicy {
      if (!budget) return policy;
      BudgetOptions options;
      options.target_bits_per_element = *budget;
      options.lowering = lowering;
      return BudgetPolicy<BasePolicy>(BasePolicy(std::move(policy)), options);
    };
    switch (kind) {
      case PolicyKind::tiers:
        return finish(parse_tiers(items));
      case PolicyKind::random:
        return finish(RandomPolicy(parse_width_mix(items), seed));
      case PolicyKind::rule:
        return finish(parse_rule_policy(items, text));
      case PolicyKind::learned:
        if (learned == nullptr) {
          std::string message = "policy '";
          message += text;
          message += "' has no controller weights loaded";
          throw Error(Errc::invalid_argument, message);
        }
        // The controller's key and value widths can be far apart (stories260K: keys 4-8 bits,
        // values 2-3): its budget lowers each side along its own widths.
        return finish(*learned, BudgetLowering::per_side);
      case PolicyKind::fixed:
        break;
    }
    return finish(StaticPolicy{bits});
  }
};

namespace detail {

inline std::size_t parse_count(std::string_view digits, std::string_view spec, std::string_view what) {
  std::size_t value = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  kvbits::detail::require(error == std::errc{} && end == digits.data() + digits.size() && !digits.empty(),
                          Errc::invalid_argument,
                          "policy '" + std::string(spec) + "': " + std::string(what) + " '" +
                              std::string(digits) + "' is not a non-negative integer");
  return value;
}

inline int parse_bits(std::string_view digits, std::string_view spec, std::string_view what) {
  const std::size_t value = parse_count(digits, spec, what);
  const int bits = value <= 64 ? static_cast<int>(value) : -1;
  kvbits::detail::require(is_supported_bits(bits), Errc::invalid_argument,
                          "policy '" + std::string(spec) + "': " + std::string(what) + " " +
                              std::string(digits) + " is not one of " + supported_bits_text());
  return bits;
}

// Applies one cache option item (g=, w=, s=, t=) to `spec`; false when `item` is none.
inline bool apply_cache_option(std::string_view item, PolicySpec& spec) {
  const std::size_t equals = item.find('=');
  if (equals == std::string_view::npos) return false;
  const std::string_view name = item.substr(0, equals);
  const std::string_view value = item.substr(equals + 1);
  if (name == "g") {
    spec.group_size = parse_count(value, spec.text, "group size");
  } else if (name == "w") {
    spec.residual_window = parse_count(value, spec.text, "residual window");
  } else if (name == "s") {
    spec.sink_tokens = parse_count(value, spec.text, "sink tokens");
  } else if (name == "t" && value == "hadamard") {
    spec.key_transform = KeyTransform::hadamard;
  } else if (name == "t" && value == "scale") {
    spec.key_transform = KeyTransform::channel_scale;
  } else if (name == "t") {
    throw Error(Errc::invalid_argument, "policy '" + spec.text + "': unknown key transform '" +
                                            std::string(item) + "' (t=hadamard|scale)");
  } else if (name == "seed" && spec.kind == PolicyKind::random) {
    spec.seed = parse_count(value, spec.text, "seed");
  } else {
    return false;
  }
  return true;
}

// Applies one of the learned policy's own items (budget=B, q=Q) to `spec`.
inline void apply_learned_option(std::string_view item, PolicySpec& spec) {
  const auto fail = [&](std::string_view why) {
    std::string message = "policy '";
    message += spec.text;
    message += "': '";
    message += item;
    message += "' ";
    message += why;
    return Error(Errc::invalid_argument, message);
  };
  if (item.starts_with("budget=")) {
    const auto target = kvbits::detail::parse_number<double>(item.substr(7));
    if (!target || *target <= 0.0) throw fail("is not a positive number of bits per element");
    if (spec.budget) throw fail("gives the budget a second time");
    spec.budget = *target;
  } else if (item.starts_with("q=")) {
    const auto q = kvbits::detail::parse_number<double>(item.substr(2));
    if (!q || *q <= 0.0 || *q > 1.0) throw fail("is not a quantile in (0, 1]");
    spec.quantile = *q;
  } else {
    throw fail("is not an item of learned:PATH[,budget=B][,q=Q] nor a cache option g=, w=, s=, t=");
  }
}

// The learned policy's window: 1 unless `items` set w=, which must then be >= 1 (the controller
// reads write-time features, known only after the token's forward pass).
inline void finish_learned_options(PolicySpec& spec, std::string_view items) {
  bool window_given = false;
  for (const std::string_view raw : kvbits::detail::split(items, ',')) {
    window_given = window_given || kvbits::detail::trim(raw).starts_with("w=");
  }
  if (!window_given) spec.residual_window = 1;
  if (spec.residual_window >= 1) return;
  std::string message = "policy '";
  message += spec.text;
  message +=
      "': the learned controller reads features known only after a token's forward pass; use w=1 or more";
  throw Error(Errc::invalid_argument, message);
}

// The LearnedPolicyOptions of a learned spec: the controller's decision ages and q=.
inline LearnedPolicyOptions learned_options(const PolicySpec& spec) {
  LearnedPolicyOptions options;
  options.decision_ages.assign(learn::kDecisionAges.begin(), learn::kDecisionAges.end());
  options.quantile = spec.quantile;
  return options;
}

}  // namespace detail

/**
 * The cache options of a learned policy without its weights, as kvbits-label needs them to label
 * decisions the way `learned:PATH,OPTIONS` will make them.
 * @param options g=, w=, s=, t= items separated by commas (may be empty); w defaults to 1
 * @return a learned specification with no controller loaded (make_policy() refuses it).
 * @throw Error(invalid_argument) naming an item that does not parse.
 */
inline PolicySpec parse_learned_cache_options(std::string_view options) {
  PolicySpec spec;
  spec.kind = PolicyKind::learned;
  spec.text = "learned cache options ";
  spec.text += options;
  for (const std::string_view raw : kvbits::detail::split(options, ',')) {
    const std::string_view item = kvbits::detail::trim(raw);
    if (item.empty() || detail::apply_cache_option(item, spec)) continue;
    std::string message = "'";
    message += options;
    message += "': '";
    message += item;
    message += "' is not a cache option (g=G, w=R, s=S, t=hadamard|scale)";
    throw Error(Errc::invalid_argument, message);
  }
  detail::finish_learned_options(spec, options);
  return spec;
}

/**
 * Parses a policy specification (see PolicySpec).
 * @param text e.g. "fp16", "static:4,4", "tiers:1=16/16,4=8/8,*=4/2,g=32", "budget:4.5:tiers:...",
 *             "learned:weights.kvbc,budget=8.5,t=scale"
 * @return the parsed specification, its policy built once so that every error shows here (a
 *         learned policy's weight file is read here, once);
 *         cache-level rules (group size dividing head_dim, ...) are checked by the cache itself.
 * @throw Error(invalid_argument) naming the part that does not parse.
 */
inline PolicySpec parse_policy(std::string_view text) {
  PolicySpec spec;
  spec.text = std::string(text);
  const auto malformed = [&spec] {
    return Error(Errc::invalid_argument,
                 "policy '" + spec.text + "' is not of the form " + std::string(kPolicySyntax));
  };
  std::string_view rest = text;
  if (rest.starts_with("budget:")) {
    rest.remove_prefix(7);
    const std::size_t colon = rest.find(':');
    if (colon == std::string_view::npos) throw malformed();
    const auto target = kvbits::detail::parse_number<double>(rest.substr(0, colon));
    kvbits::detail::require(target && *target > 0.0, Errc::invalid_argument,
                            "policy '" + spec.text + "': budget '" + std::string(rest.substr(0, colon)) +
                                "' is not a positive number of bits per element");
    spec.budget = *target;
    rest.remove_prefix(colon + 1);
  }
  // fp32 and fp16 name their widths; the other kinds are followed by ':' and their items.
  const std::size_t end_of_kind = rest.find_first_of(":,");
  const std::string_view kind = rest.substr(0, end_of_kind);
  const bool named_widths = kind == "fp32" || kind == "fp16";
  if (named_widths) {
    if (end_of_kind != std::string_view::npos && rest[end_of_kind] == ':') throw malformed();
    spec.kind = PolicyKind::fixed;
    spec.bits = kind == "fp32" ? BitDecision{32, 32} : BitDecision{16, 16};
  } else if (end_of_kind == std::string_view::npos || rest[end_of_kind] != ':') {
    throw malformed();
  } else if (kind == "static") {
    spec.kind = PolicyKind::fixed;
  } else if (kind == "tiers") {
    spec.kind = PolicyKind::tiers;
  } else if (kind == "random") {
    spec.kind = PolicyKind::random;
  } else if (kind == "rule") {
    spec.kind = PolicyKind::rule;
  } else if (kind == "learned") {
    spec.kind = PolicyKind::learned;
  } else {
    throw malformed();
  }
  const std::string_view items =
      end_of_kind == std::string_view::npos ? std::string_view{} : rest.substr(end_of_kind + 1);
  std::vector<std::string_view> own;
  if (end_of_kind != std::string_view::npos) {
    for (const std::string_view raw : kvbits::detail::split(items, ',')) {
      const std::string_view item = kvbits::detail::trim(raw);
      if (!detail::apply_cache_option(item, spec)) own.push_back(item);
    }
  }
  kvbits::detail::require(
      !named_widths || own.empty(), Errc::invalid_argument,
      "policy '" + spec.text + "': " + std::string(kind) + " takes only g=, w=, s=, t= options");
  if (spec.kind == PolicyKind::fixed && !named_widths) {
    kvbits::detail::require(
        own.size() == 2, Errc::invalid_argument,
        "policy '" + spec.text + "' needs key and value bits and name=value options: static:K,V");
    spec.bits = {detail::parse_bits(own[0], text, "key bits"),
                 detail::parse_bits(own[1], text, "value bits")};
  }
  if (spec.kind == PolicyKind::learned) {
    if (own.empty() || own.front().empty() || own.front().find('=') != std::string_view::npos) {
      std::string message = "policy '";
      message += spec.text;
      message += "' needs the weight file first: learned:PATH[,budget=B][,q=Q]";
      throw Error(Errc::invalid_argument, message);
    }
    spec.weights = std::string(own.front());
    for (std::size_t i = 1; i < own.size(); ++i) detail::apply_learned_option(own[i], spec);
    detail::finish_learned_options(spec, items);
    spec.learned = std::make_shared<const learn::ToolLearnedPolicy>(
        learn::ToolLearnedPolicy::load(spec.weights, {}, detail::learned_options(spec)));
  } else {
    for (const std::string_view item : own) {
      if (!spec.items.empty()) spec.items += ',';
      spec.items += item;
    }
  }
  kvbits::detail::require(
      !spec.needs_token_features() || spec.residual_window >= 1, Errc::invalid_argument,
      "policy '" + spec.text +
          "': rule policies read features known only after a token's forward pass; add w=1 "
          "or more");
  static_cast<void>(spec.make_policy());
  return spec;
}

}  // namespace kvbits::model
