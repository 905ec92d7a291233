// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "support/bit_decision_text.hpp"
#include "support/require_error.hpp"

#include "kvbits/core/error.hpp"
#include "kvbits/policy/budget_policy.hpp"
#include "kvbits/policy/decision_context.hpp"
#include "kvbits/policy/policy.hpp"
#include "kvbits/policy/random_policy.hpp"
#include "kvbits/policy/rule_policy.hpp"
#include "kvbits/policy/static_policy.hpp"
#include "kvbits/policy/tiered_policy.hpp"

namespace {

using kvbits::BitDecision;
using kvbits::DecisionContext;
using kvbits::FeatureRule;
using kvbits::RulePolicy;
using kvbits::StaticPolicy;
using kvbits::TokenInfo;
using kvbits::test::require_error;

RulePolicy example_rules() {
  RulePolicy policy;
  policy.default_bits = {3, 2};
  policy.protected_positions = 4;
  policy.protected_ids = {13, 29};  // e.g. "." and ","
  policy.protected_bits = {8, 6};
  policy.feature_rules = {
      FeatureRule{0, 2.5f, BitDecision{6, 4}},  // high entropy
      FeatureRule{1, 0.1f, BitDecision{4, 8}},  // much attention received
  };
  return policy;
}

DecisionContext at_age(std::size_t age, BitDecision current = {32, 32}) {
  DecisionContext context;
  context.age = age;
  context.current = current;
  return context;
}

// Budget options whose offset is the error exactly, in whole steps at once (no integral term, no
// per-lowering limit): target 4 bits/element.
kvbits::BudgetOptions proportional_budget() {
  kvbits::BudgetOptions options;
  options.target_bits_per_element = 4.0;
  options.proportional_gain = 1.0;
  options.integral_gain = 0.0;
  options.max_rungs_per_lowering = 0;
  return options;
}

// A budget's decision for a token aged 8 holding `current` while the cache is at `running`.
template <class Budget>
BitDecision decide_at(Budget& policy, double running, BitDecision current = {32, 32}) {
  DecisionContext context = at_age(8, current);
  context.cache_bits_per_element = running;
  return policy.decide(context);
}

DecisionContext attended(std::size_t age, float mean_probability, BitDecision current = {32, 32}) {
  DecisionContext context = at_age(age, current);
  context.attention.queries = 10;
  context.attention.samples = 40;
  context.attention.sum = mean_probability * 40.0f;
  return context;
}

// A policy written against TokenInfo only, as policies were before DecisionContext.
struct PositionParityPolicy {
  BitDecision decide(const TokenInfo& token) const {
    return token.position % 2 == 0 ? BitDecision{8, 8} : BitDecision{4, 4};
  }
};

// Wraps a policy and records its latest decision, to compare a BudgetPolicy's output with it.
template <class Inner>
struct RecordingPolicy {
  Inner inner;
  BitDecision* latest;
  BitDecision decide(const DecisionContext& context) {
    return *latest = kvbits::consult_policy(inner, context);
  }
  std::span<const std::size_t> decision_ages() const { return kvbits::policy_decision_ages(inner); }
};

constexpr double kMetadataBits = 0.5;  // fp16 scale + min per 64-element group
constexpr std::size_t kSinks = 4;      // first tokens kept at 16/16, never decided by the policy

// Storage bits per element of one token, as the cache counts them.
double token_bits(const BitDecision& bits) {
  const auto element_bits = [](int width) { return width >= 16 ? width : width + kMetadataBits; };
  return (element_bits(bits.key_bits) + element_bits(bits.value_bits)) / 2.0;
}

struct SimulationResult {
  double final_bits_per_element = 0.0;
  double worst_error_after_warmup = 0.0;  // largest |running - target| from token `warmup` on
  bool ever_above_inner = false;          // some decision wider than the inner policy's
  bool ever_lowered_young = false;        // some token younger than the protect age lowered
  bool ever_lowered_old = false;          // some token at or past the protect age below the inner's
};

/**
 * A one-layer cache in miniature: sinks at 16/16, a float window of `window` tokens, a
 * decision when a token leaves it and at every declared age, running bits per element passed
 * in the DecisionContext before each decision, and never a raise.
 */
template <class Inner>
SimulationResult simulate_budget(Inner inner, kvbits::BudgetOptions options, std::size_t window,
                                 std::size_t tokens, std::size_t warmup) {
  BitDecision inner_choice{};
  const double target = options.target_bits_per_element;
  kvbits::BudgetPolicy<RecordingPolicy<Inner>> policy(RecordingPolicy<Inner>{std::move(inner), &inner_choice},
                                                      std::move(options));
  const std::vector<std::size_t> ages(policy.decision_ages().begin(), policy.decision_ages().end());
  std::vector<BitDecision> stored;
  double total_bits = 0.0;
  SimulationResult result;
  const auto decide = [&](std::size_t token, std::size_t age) {
    DecisionContext context = at_age(age, stored[token]);
    context.token.position = token;
    context.cache_bits_per_element = total_bits / static_cast<double>(stored.size());
    const BitDecision chosen = policy.decide(context);
    if (chosen.key_bits > inner_choice.key_bits || chosen.value_bits > inner_choice.value_bits) {
      result.ever_above_inner = true;
    }
    const BitDecision unlowered{std::min(inner_choice.key_bits, stored[token].key_bits),
                                std::min(inner_choice.value_bits, stored[token].value_bits)};
    if (chosen != unlowered)
      (age < policy.protect_age() ? result.ever_lowered_young : result.ever_lowered_old) = true;
    const BitDecision kept{std::min(chosen.key_bits, stored[token].key_bits),
                           std::min(chosen.value_bits, stored[token].value_bits)};
    total_bits += token_bits(kept) - token_bits(stored[token]);
    stored[token] = kept;
  };
  for (std::size_t t = 0; t < tokens; ++t) {
    stored.push_back(t < kSinks ? BitDecision{16, 16} : BitDecision{32, 32});
    total_bits += token_bits(stored.back());
    if (t >= window && t - window >= kSinks) decide(t - window, window);
    for (const std::size_t age : ages) {
      if (age > window && t >= age && t - age >= kSinks) decide(t - age, age);
    }
    const double running = total_bits / static_cast<double>(stored.size());
    if (t + 1 >= warmup)
      result.worst_error_after_warmup = std::max(result.worst_error_after_warmup, std::abs(running - target));
  }
  result.final_bits_per_element = total_bits / static_cast<double>(stored.size());
  return result;
}

}  // namespace

TEST_CASE("StaticPolicy returns its bits for every token", "[policy]") {
  const StaticPolicy policy{{5, 3}};
  const std::vector<float> features{1.0f, 2.0f};
  CHECK(policy.decide(TokenInfo{}) == BitDecision{5, 3});
  CHECK(policy.decide(TokenInfo{2, 77, 9, features}) == BitDecision{5, 3});
  CHECK(StaticPolicy{}.decide(TokenInfo{}) == BitDecision{16, 16});
}

TEST_CASE("RulePolicy takes the widest of the default and every matching rule", "[policy]") {
  const RulePolicy policy = example_rules();
  const std::vector<float> quiet{0.5f, 0.0f};
  const std::vector<float> uncertain{3.0f, 0.0f};
  const std::vector<float> attended{0.5f, 0.2f};
  const std::vector<float> both{3.0f, 0.2f};
  const std::vector<float> at_threshold{2.5f, 0.1f};

  CHECK(policy.decide(TokenInfo{0, 10, 100, quiet}) == BitDecision{3, 2});      // default
  CHECK(policy.decide(TokenInfo{0, 3, 100, quiet}) == BitDecision{8, 6});       // sink position
  CHECK(policy.decide(TokenInfo{0, 4, 100, quiet}) == BitDecision{3, 2});       // first unprotected position
  CHECK(policy.decide(TokenInfo{0, 10, 29, quiet}) == BitDecision{8, 6});       // protected id
  CHECK(policy.decide(TokenInfo{0, 10, 100, uncertain}) == BitDecision{6, 4});  // feature 0
  CHECK(policy.decide(TokenInfo{0, 10, 100, attended}) == BitDecision{4, 8});   // feature 1
  CHECK(policy.decide(TokenInfo{0, 10, 100, both}) == BitDecision{6, 8});       // element-wise max
  CHECK(policy.decide(TokenInfo{0, 10, 13, both}) == BitDecision{8, 8});        // id + features
  CHECK(policy.decide(TokenInfo{0, 10, 100, at_threshold}) == BitDecision{3, 2});  // strictly above only
}

TEST_CASE("RulePolicy rejects a rule reading a feature the token lacks", "[policy]") {
  const RulePolicy policy = example_rules();
  const std::vector<float> one{9.0f};
  require_error(
      [&] {
        static_cast<void>(policy.decide(TokenInfo{0, 10, 100, one}));
      },
      kvbits::Errc::shape_mismatch, "rule 1 reads feature 1 but the token has 1 features");
  RulePolicy ids_only;
  ids_only.protected_ids = {5};
  CHECK(ids_only.decide(TokenInfo{0, 10, 5, {}}) == BitDecision{8, 8});
}

TEST_CASE("Policies written against TokenInfo or DecisionContext both satisfy Policy", "[policy]") {
  STATIC_REQUIRE(kvbits::Policy<StaticPolicy>);
  STATIC_REQUIRE(kvbits::TokenInfoPolicy<StaticPolicy>);
  STATIC_REQUIRE(kvbits::Policy<RulePolicy>);
  STATIC_REQUIRE(kvbits::Policy<PositionParityPolicy>);
  STATIC_REQUIRE_FALSE(kvbits::ContextPolicy<PositionParityPolicy>);
  STATIC_REQUIRE(kvbits::ContextPolicy<kvbits::TieredPolicy>);
  STATIC_REQUIRE(kvbits::Policy<kvbits::TieredPolicy>);
  STATIC_REQUIRE(kvbits::Policy<kvbits::RandomPolicy>);
  STATIC_REQUIRE(kvbits::Policy<kvbits::BudgetPolicy<StaticPolicy>>);
  STATIC_REQUIRE(kvbits::Policy<kvbits::BudgetPolicy<PositionParityPolicy>>);
  STATIC_REQUIRE_FALSE(kvbits::Policy<int>);

  DecisionContext context = at_age(16, {8, 8});
  context.token.position = 3;
  StaticPolicy fixed{{5, 3}};
  PositionParityPolicy parity;
  kvbits::TieredPolicy tiered = kvbits::parse_tiers("4=8/8,*=4/2");
  CHECK(kvbits::consult_policy(fixed, context) == BitDecision{5, 3});
  CHECK(kvbits::consult_policy(parity, context) == BitDecision{4, 4});  // reads context.token
  context.token.position = 2;
  CHECK(kvbits::consult_policy(parity, context) == BitDecision{8, 8});
  CHECK(kvbits::consult_policy(tiered, context) == BitDecision{4, 2});  // reads context.age
  CHECK(kvbits::policy_decision_ages(fixed).empty());
  CHECK_FALSE(kvbits::policy_wants_attention_stats(parity));
  CHECK(std::vector<std::size_t>(kvbits::policy_decision_ages(tiered).begin(),
                                 kvbits::policy_decision_ages(tiered).end()) == std::vector<std::size_t>{4});
}

TEST_CASE("TieredPolicy decides by age tier, at every boundary", "[policy][tiered]") {
  const kvbits::TieredPolicy policy = kvbits::parse_tiers("1=16/16,4=8/8,16=6/4,64=5/3,*=4/2");
  const std::vector<std::pair<std::size_t, BitDecision>> expected{
      {0, {16, 16}}, {1, {8, 8}},  {3, {8, 8}},  {4, {6, 4}},     {15, {6, 4}},
      {16, {5, 3}},  {63, {5, 3}}, {64, {4, 2}}, {100000, {4, 2}}};
  for (const auto& [age, bits] : expected) {
    INFO("age " << age << " expected " << kvbits::to_string(bits));
    CHECK(policy.decide(at_age(age)) == bits);
    CHECK(policy.bits_for_age(age) == bits);
  }
  CHECK(std::vector<std::size_t>(policy.decision_ages().begin(), policy.decision_ages().end()) ==
        std::vector<std::size_t>{1, 4, 16, 64});
  CHECK_FALSE(policy.wants_attention_stats());
  // Never above the widths held now.
  CHECK(policy.decide(at_age(4, {5, 8})) == BitDecision{5, 4});
  CHECK(kvbits::parse_tiers("*=3/2").decide(at_age(0)) == BitDecision{3, 2});
  CHECK(kvbits::parse_tiers("*=3/2").decision_ages().empty());
}

TEST_CASE("parse_tiers names the offending item", "[policy][tiered]") {
  using kvbits::Errc;
  const std::vector<std::pair<std::string, std::string>> cases{
      {"", "item '' is not AGE=K/V"},
      {"1=16/16,4=8/8", "missing the oldest tier '*=K/V'"},
      {"0=8/8,*=4/2", "item '0=8/8' has age 0"},
      {"4=8/8,4=6/4,*=4/2", "item '4=6/4' has age 4, not above the previous tier's 4"},
      {"4=8/8,2=16/16,*=4/2", "item '2=16/16' has age 2"},
      {"4=7/4,*=4/2", "tiers item '4=7/4': widths 7/4 must each be 2, 3, 4, 5, 6, 8, 16 or 32"},
      {"4=8,*=4/2", "widths '8' are not KEY/VALUE bits"},
      {"4=8/x,*=4/2", "widths '8/x' are not KEY/VALUE bits"},
      {"4=8/4,*=4/8", "oldest tier '*=4/8': an older tier may not be wider than the tier before it (8/4)"},
      {"4=8/4,16=16/4,*=4/2", "tier 1 '16=16/4': an older tier may not be wider"},
      {"*=4/2,4=8/8", "item '4=8/8' comes after the oldest tier"},
      {"*=4/2,*=2/2", "item '*=2/2' repeats the oldest tier"},
      {"*=4/2,g=32", "item 'g=32' is not AGE=K/V, *=K/V, k+=THRESHOLD or v+=THRESHOLD"},
      {"tiers:1=16/16,*=4/2", "item 'tiers:1=16/16' is not AGE=K/V"},
      {"v+=0.02,*=4/2", "item 'v+=0.02' must follow the oldest tier"},
      {"*=4/2,v+=-1", "item 'v+=-1' needs a finite attention threshold >= 0"},
      {"*=4/2,k+=nan", "item 'k+=nan' needs a finite attention threshold"},
      {"*=4/2,v+=0.1,v+=0.2", "item 'v+=0.2' repeats a refinement"},
  };
  for (const auto& [text, message] : cases) {
    INFO("text '" << text << "'");
    require_error([&] { static_cast<void>(kvbits::parse_tiers(text)); }, Errc::invalid_argument, message);
  }
  require_error(
      [] {
        kvbits::TieredPolicy({{4, {8, 8}}, {2, {4, 4}}}, {4, 2});
      },
      Errc::invalid_argument, "tier 1 '2=4/4': ages must be >= 1 and strictly increasing");
  require_error([] { kvbits::TieredPolicy({}, {4, 7}); }, Errc::invalid_argument, "oldest tier '*=4/7'");
}

TEST_CASE("is_tier_item separates tier items from a tool's cache options", "[policy][tiered]") {
  for (const char* item : {"16=6/4", "*=4/2", "v+=0.02", "k+=1", " 1=16/16 "}) {
    INFO(item);
    CHECK(kvbits::is_tier_item(item));
  }
  for (const char* item : {"g=32", "s=4", "t=0.5", "w=16", "tiers:1=16/16", "", "=8/8"}) {
    INFO(item);
    CHECK_FALSE(kvbits::is_tier_item(item));
  }
}

TEST_CASE("TieredPolicy::to_string round-trips", "[policy][tiered]") {
  for (const std::string text : {"1=16/16,4=8/8,16=6/4,64=5/3,*=4/2", "*=32/32",
                                 "8=8/4,*=3/2,k+=0.05,v+=0.02", "2=16/16,*=2/2,v+=0.3333333"}) {
    INFO(text);
    const kvbits::TieredPolicy policy = kvbits::parse_tiers(text);
    CHECK(policy.to_string() == text);
    const kvbits::TieredPolicy again = kvbits::parse_tiers(policy.to_string());
    CHECK(again.refinement() == policy.refinement());
    CHECK(
        std::equal(again.tiers().begin(), again.tiers().end(), policy.tiers().begin(), policy.tiers().end()));
    CHECK(again.oldest() == policy.oldest());
  }
  // Spaces around items are accepted; to_string writes none.
  CHECK(kvbits::parse_tiers(" 4=8/8 , *=4/2 ").to_string() == "4=8/8,*=4/2");
}

TEST_CASE("TieredPolicy widens attended tokens one step, capped by the younger tier and current",
          "[policy][tiered]") {
  kvbits::TieredPolicy policy = kvbits::parse_tiers("1=16/16,4=8/8,16=6/4,64=5/3,*=4/2,v+=0.02");
  CHECK(policy.wants_attention_stats());
  CHECK(policy.decide(attended(20, 0.03f)) == BitDecision{5, 4});  // 5/3 -> values 4 (tier above: 6/4)
  CHECK(policy.decide(attended(20, 0.02f)) == BitDecision{5, 3});  // strictly above only
  CHECK(policy.decide(attended(20, 0.01f)) == BitDecision{5, 3});
  CHECK(policy.decide(attended(8, 0.5f)) == BitDecision{6, 5});           // 6/4 -> values 5 (tier above: 8/8)
  CHECK(policy.decide(attended(2, 0.5f)) == BitDecision{8, 16});          // 8/8 -> 16, tier above 16/16
  CHECK(policy.decide(attended(20, 0.5f, {8, 3})) == BitDecision{5, 3});  // never above current
  CHECK(policy.decide(at_age(20)) == BitDecision{5, 3});                  // no statistics: mean 0

  const kvbits::TieredPolicy capped = kvbits::parse_tiers("4=8/4,*=4/4,v+=0.01,k+=0.01");
  CHECK(capped.decide(attended(10, 0.5f)) == BitDecision{5, 4});  // values capped at the tier above's 4

  kvbits::TieredPolicy in_code = kvbits::parse_tiers("4=8/8,*=4/2");
  CHECK_FALSE(in_code.wants_attention_stats());
  in_code.set_refinement({0.1f, std::nullopt});
  CHECK(in_code.wants_attention_stats());
  CHECK(in_code.decide(attended(10, 0.2f)) == BitDecision{5, 2});
  CHECK(in_code.to_string() == "4=8/8,*=4/2,k+=0.1");
  require_error(
      [&] {
        in_code.set_refinement({-0.5f, std::nullopt});
      },
      kvbits::Errc::invalid_argument, "thresholds must be finite and >= 0");
  CHECK(in_code.refinement().key_threshold == 0.1f);  // unchanged after the error
}

TEST_CASE("BudgetPolicy lands on its target in a simulated cache", "[policy][budget]") {
  constexpr double kTargetTolerance = 0.1;  // bits per element, from token kWarmup on
  constexpr std::size_t kWarmup = 800;
  constexpr std::size_t kTokens = 1500;
  for (const double target : {3.5, 4.5, 6.0}) {
    for (const std::size_t window : {std::size_t{0}, std::size_t{8}}) {
      kvbits::BudgetOptions options;
      options.target_bits_per_element = target;
      INFO("target " << target << " window " << window);
      const SimulationResult wide =
          simulate_budget(StaticPolicy{{16, 16}}, options, window, kTokens, kWarmup);
      INFO("static 16/16 inner: final " << wide.final_bits_per_element << " worst error "
                                        << wide.worst_error_after_warmup);
      CHECK(wide.worst_error_after_warmup <= kTargetTolerance);
      CHECK_FALSE(wide.ever_above_inner);
      CHECK_FALSE(wide.ever_lowered_young);
      CHECK(wide.ever_lowered_old);

      const SimulationResult mixed =
          simulate_budget(kvbits::RandomPolicy(kvbits::parse_width_mix("8/8:1,16/8:1,6/6:1"), 7), options,
                          window, kTokens, kWarmup);
      INFO("random inner: final " << mixed.final_bits_per_element << " worst error "
                                  << mixed.worst_error_after_warmup);
      CHECK(mixed.worst_error_after_warmup <= kTargetTolerance);
      CHECK_FALSE(mixed.ever_above_inner);
      CHECK_FALSE(mixed.ever_lowered_young);
    }
  }
  SECTION("with a tiered inner policy, lowering only tokens past its last tier") {
    for (const double target : {4.5, 5.5}) {
      kvbits::BudgetOptions options;
      options.target_bits_per_element = target;
      const SimulationResult tiered = simulate_budget(
          kvbits::parse_tiers("1=16/16,4=8/8,16=8/6,64=6/5,*=6/4"), options, 8, kTokens, kWarmup);
      INFO("target " << target << " final " << tiered.final_bits_per_element << " worst error "
                     << tiered.worst_error_after_warmup);
      CHECK(tiered.worst_error_after_warmup <= kTargetTolerance);
      CHECK_FALSE(tiered.ever_above_inner);
      CHECK_FALSE(tiered.ever_lowered_young);
      CHECK(tiered.ever_lowered_old);
    }
  }
  SECTION("an inner policy cheaper than the target is passed through, never raised") {
    kvbits::BudgetOptions options;
    options.target_bits_per_element = 8.0;
    const SimulationResult cheap = simulate_budget(StaticPolicy{{4, 2}}, options, 0, 600, 600);
    // Only the first old tokens, while the sinks hold the average above 8, are lowered.
    const double inner_only = (4 * 16.0 + 596 * token_bits({4, 2})) / 600.0;
    CHECK(cheap.final_bits_per_element <= inner_only);
    CHECK(cheap.final_bits_per_element > inner_only - 0.05);
    CHECK_FALSE(cheap.ever_above_inner);
  }
}

TEST_CASE("BudgetPolicy leaves young tokens to the inner policy and lowers old ones", "[policy][budget]") {
  kvbits::BudgetOptions options;
  options.target_bits_per_element = 4.0;
  options.proportional_gain = 1.0;
  options.integral_gain = 0.0;  // offset = running - target exactly
  kvbits::BudgetPolicy<kvbits::TieredPolicy> policy(kvbits::parse_tiers("1=16/16,16=8/8,*=6/6"), options);
  REQUIRE(policy.protect_age() == 16);  // the inner policy's last decision age
  const auto decide = [&policy](std::size_t age, BitDecision current, double running = 7.0) {
    DecisionContext context = at_age(age, current);
    context.cache_bits_per_element = running;
    return policy.decide(context);
  };
  CHECK(decide(0, {32, 32}) == BitDecision{16, 16});  // far above target, yet young: untouched
  CHECK(decide(1, {16, 16}) == BitDecision{8, 8});
  CHECK(decide(15, {8, 8}) == BitDecision{8, 8});
  CHECK(policy.offset() == 0.0);  // young decisions do not step the controller
  // Old: the inner's 6/6 lowered by at most max_rungs_per_lowering = 2 rungs before age 64.
  CHECK(decide(16, {8, 8}) == BitDecision{5, 5});
  CHECK(policy.offset() == 3.0);
  CHECK(decide(32, {5, 5}) == BitDecision{4, 4});  // cumulative: from the current widths on
  CHECK(decide(64, {4, 4}) == BitDecision{3, 2});  // last lowering age: all 3 rungs
  CHECK(decide(64, {4, 4}, 100.0) == BitDecision{2, 2});
  CHECK(decide(32, {5, 5}, 3.0) == BitDecision{5, 5});  // below target: kept
  CHECK(decide(0, {32, 32}, 100.0) == BitDecision{16, 16});

  SECTION("a protect age of its own moves the boundary") {
    options.protect_age = 4;
    kvbits::BudgetPolicy<kvbits::TieredPolicy> early(kvbits::parse_tiers("1=16/16,16=8/8,*=6/6"), options);
    DecisionContext context = at_age(4, {8, 8});
    context.cache_bits_per_element = 5.0;
    CHECK(early.decide(context) == BitDecision{8, 6});
  }
}

TEST_CASE("BudgetPolicy lowers along its ladder with error diffusion", "[policy][budget]") {
  const kvbits::BudgetOptions options = proportional_budget();
  const auto decide = [](auto& policy, double running, BitDecision current = {32, 32}) {
    return decide_at(policy, running, current);
  };
  SECTION("a fractional offset alternates, whole ones step down") {
    kvbits::BudgetPolicy<StaticPolicy> policy(StaticPolicy{{16, 16}}, options);
    CHECK(decide(policy, 4.5) == BitDecision{16, 16});  // 0.5 accumulated
    CHECK(decide(policy, 4.5) == BitDecision{16, 8});   // 1.0 reached: one rung
    CHECK(decide(policy, 4.5) == BitDecision{16, 16});
    CHECK(decide(policy, 4.5) == BitDecision{16, 8});
    CHECK(decide(policy, 6.0) == BitDecision{8, 8});  // two rungs
    CHECK(policy.offset() == 2.0);
    CHECK(decide(policy, 100.0) == BitDecision{2, 2});        // pinned at the cheapest rung
    CHECK(decide(policy, 3.0) == BitDecision{16, 16});        // below target: the inner decision
    CHECK(decide(policy, 0.0) == BitDecision{16, 16});        // nothing stored yet
    CHECK(decide(policy, 6.0, {8, 4}) == BitDecision{4, 4});  // lowered from the current widths
  }
  SECTION("an inner decision between rungs reaches the rung below it first") {
    kvbits::BudgetPolicy<StaticPolicy> between(StaticPolicy{{8, 2}}, options);
    CHECK(decide(between, 5.0) == BitDecision{3, 2});
    CHECK(decide(between, 6.0) == BitDecision{2, 2});
    kvbits::BudgetPolicy<StaticPolicy> floating(StaticPolicy{{32, 32}}, options);
    CHECK(decide(floating, 5.0) == BitDecision{16, 16});
    kvbits::BudgetPolicy<StaticPolicy> below_ladder(StaticPolicy{{2, 2}}, options);
    CHECK(decide(below_ladder, 9.0) == BitDecision{2, 2});
  }
}

TEST_CASE("BudgetPolicy lowers keys and values each along its own widths when asked", "[policy][budget]") {
  kvbits::BudgetOptions options = proportional_budget();
  options.lowering = kvbits::BudgetLowering::per_side;
  const auto decide = [](auto& policy, double running, BitDecision current = {32, 32}) {
    return decide_at(policy, running, current);
  };
  SECTION("lopsided widths lower the wide side one width at a time") {
    kvbits::BudgetPolicy<StaticPolicy> policy(StaticPolicy{{8, 2}}, options);
    CHECK(decide(policy, 5.0) == BitDecision{6, 2});  // the ladder would snap 8/2 to 3/2
    CHECK(decide(policy, 6.0) == BitDecision{5, 2});
    CHECK(decide(policy, 8.0) == BitDecision{3, 2});
    CHECK(decide(policy, 100.0) == BitDecision{2, 2});  // every side at the cheapest rung's width
    CHECK(decide(policy, 3.0) == BitDecision{8, 2});    // below target: the inner decision
  }
  SECTION("the wider side goes first, values on a tie") {
    kvbits::BudgetPolicy<StaticPolicy> policy(StaticPolicy{{16, 8}}, options);
    CHECK(decide(policy, 5.0) == BitDecision{8, 8});
    CHECK(decide(policy, 6.0) == BitDecision{8, 6});
    CHECK(decide(policy, 7.0) == BitDecision{6, 6});
    CHECK(decide(policy, 6.0, {5, 4}) == BitDecision{4, 3});  // lowered from the current widths
  }
  SECTION("the cheapest rung is each side's floor") {
    options.ladder = {{4, 2}, {8, 2}, {8, 4}};
    kvbits::BudgetPolicy<StaticPolicy> policy(StaticPolicy{{8, 8}}, options);
    CHECK(decide(policy, 100.0) == BitDecision{4, 2});  // at most 4 + 6 steps: 16 -> 4 and 16 -> 2
    CHECK(decide(policy, 7.0) == BitDecision{6, 5});
  }
  SECTION("the default stays the ladder") {
    CHECK(kvbits::BudgetOptions{}.lowering == kvbits::BudgetLowering::ladder);
  }
}

TEST_CASE("BudgetPolicy forwards ages and attention needs and checks its options", "[policy][budget]") {
  const auto ages_of = [](const auto& policy) {
    return std::vector<std::size_t>(policy.decision_ages().begin(), policy.decision_ages().end());
  };
  kvbits::BudgetOptions options;
  const kvbits::BudgetPolicy<kvbits::TieredPolicy> tiered(kvbits::parse_tiers("1=16/16,16=8/4,*=4/2,v+=0.1"),
                                                          options);
  CHECK(ages_of(tiered) == std::vector<std::size_t>{1, 16, 32, 64});  // P = 16, then 2P and 4P
  CHECK(kvbits::policy_wants_attention_stats(tiered));
  options.protect_age = 8;
  const kvbits::BudgetPolicy<kvbits::TieredPolicy> merged(kvbits::parse_tiers("1=16/16,16=8/4,*=4/2"),
                                                          options);
  CHECK(ages_of(merged) == std::vector<std::size_t>{1, 8, 16, 32});  // 16 is both: not repeated
  CHECK_FALSE(kvbits::policy_wants_attention_stats(merged));
  options.protect_age = 0;
  options.lowering_ages = 1;
  const kvbits::BudgetPolicy<kvbits::TieredPolicy> single(kvbits::parse_tiers("1=16/16,16=8/4,*=4/2"),
                                                          options);
  CHECK(ages_of(single) == std::vector<std::size_t>{1, 16});
  const kvbits::BudgetPolicy<StaticPolicy> fixed(StaticPolicy{});
  CHECK(fixed.protect_age() == kvbits::kDefaultBudgetProtectAge);
  CHECK(ages_of(fixed) == std::vector<std::size_t>{8, 16, 32});

  using kvbits::Errc;
  const auto with = [](auto change) {
    kvbits::BudgetOptions bad;
    change(bad);
    return [bad] { kvbits::BudgetPolicy<StaticPolicy>(StaticPolicy{}, bad); };
  };
  require_error(with([](kvbits::BudgetOptions& o) { o.target_bits_per_element = 0.0; }),
                Errc::invalid_argument, "target bits per element must be finite and > 0");
  require_error(with([](kvbits::BudgetOptions& o) { o.integral_gain = -1.0; }), Errc::invalid_argument,
                "gains must be finite and >= 0");
  require_error(with([](kvbits::BudgetOptions& o) { o.integral_band = 0.0; }), Errc::invalid_argument,
                "integral band must be finite and > 0");
  require_error(with([](kvbits::BudgetOptions& o) { o.lowering_ages = 0; }), Errc::invalid_argument,
                "lowering ages must be between 1 and 8");
  require_error(with([](kvbits::BudgetOptions& o) { o.lowering_ages = kvbits::kMaxBudgetLoweringAges + 1; }),
                Errc::invalid_argument, "lowering ages must be between 1 and 8");
  require_error(with([](kvbits::BudgetOptions& o) { o.protect_age = std::size_t{1} << 60; }),
                Errc::invalid_argument, "protect age is too large");
  require_error(with([](kvbits::BudgetOptions& o) { o.ladder.clear(); }), Errc::invalid_argument,
                "ladder is empty");
  require_error(with([](kvbits::BudgetOptions& o) {
                  o.ladder = {{4, 4}, {5, 3}};
                }),
                Errc::invalid_argument, "rung 1 (5/3): each rung must be wider");
  require_error(with([](kvbits::BudgetOptions& o) {
                  o.ladder = {{4, 4}, {4, 4}};
                }),
                Errc::invalid_argument, "rung 1 (4/4)");
  require_error(with([](kvbits::BudgetOptions& o) {
                  o.ladder = {{4, 7}};
                }),
                Errc::invalid_argument, "rung 0 (4/7): widths 4/7 must each be");
}

TEST_CASE("RandomPolicy draws its mix at the given frequencies", "[policy][random]") {
  kvbits::RandomPolicy policy(kvbits::parse_width_mix("4/2:0.25,8/4:0.75,16/16:0"), 42);
  constexpr int kDraws = 20000;
  constexpr double kFrequencyTolerance = 0.02;  // about 6 standard deviations at 20000 draws
  int narrow = 0;
  int wide = 0;
  for (int i = 0; i < kDraws; ++i) {
    const BitDecision bits = policy.decide(TokenInfo{});
    if (bits == BitDecision{4, 2})
      ++narrow;
    else if (bits == BitDecision{8, 4})
      ++wide;
    else
      FAIL("drew " << kvbits::to_string(bits) << ", which has weight 0 or is not in the mix");
  }
  CHECK(std::abs(narrow / double(kDraws) - 0.25) < kFrequencyTolerance);
  CHECK(std::abs(wide / double(kDraws) - 0.75) < kFrequencyTolerance);
}

TEST_CASE("RandomPolicy is deterministic given the seed and call order", "[policy][random]") {
  const std::vector<kvbits::WeightedBits> mix = kvbits::parse_width_mix("2/2,3/3,4/4,5/5,6/6,8/8");
  kvbits::RandomPolicy first(mix, 9);
  kvbits::RandomPolicy second(mix, 9);
  kvbits::RandomPolicy other(mix, 10);
  std::vector<BitDecision> a, b, c;
  for (int i = 0; i < 200; ++i) {
    a.push_back(first.decide(TokenInfo{}));
    b.push_back(second.decide(TokenInfo{}));
    c.push_back(other.decide(TokenInfo{}));
  }
  CHECK(a == b);
  CHECK(a != c);
  kvbits::RandomPolicy copy = first;  // continues the same sequence independently
  CHECK(copy.decide(TokenInfo{}) == first.decide(TokenInfo{}));
}

TEST_CASE("parse_width_mix reads K/V:WEIGHT items and round-trips", "[policy][random]") {
  const std::vector<kvbits::WeightedBits> mix = kvbits::parse_width_mix("4/2:0.5, 8/4:1.5,16/8");
  REQUIRE(mix.size() == 3);
  CHECK(mix[0] == kvbits::WeightedBits{{4, 2}, 0.5});
  CHECK(mix[1] == kvbits::WeightedBits{{8, 4}, 1.5});
  CHECK(mix[2] == kvbits::WeightedBits{{16, 8}, 1.0});
  CHECK(kvbits::width_mix_to_string(mix) == "4/2:0.5,8/4:1.5,16/8:1");
  CHECK(kvbits::parse_width_mix(kvbits::width_mix_to_string(mix)) == mix);

  using kvbits::Errc;
  require_error([] { kvbits::parse_width_mix("4/2:x"); }, Errc::invalid_argument,
                "width mix item '4/2:x': the weight after ':' must be a finite number >= 0");
  require_error([] { kvbits::parse_width_mix("4/2:-1"); }, Errc::invalid_argument, "item '4/2:-1'");
  require_error([] { kvbits::parse_width_mix("4/2:1,7/2:1"); }, Errc::invalid_argument,
                "width mix item '7/2:1': widths 7/2 must each be");
  require_error([] { kvbits::parse_width_mix("4-2:1"); }, Errc::invalid_argument, "are not KEY/VALUE bits");
  require_error([] { kvbits::parse_width_mix(""); }, Errc::invalid_argument, "width mix item ''");
  require_error([] { kvbits::RandomPolicy({}); }, Errc::invalid_argument, "at least one entry");
  require_error(
      [] {
        kvbits::RandomPolicy({{{4, 4}, 0.0}});
      },
      Errc::invalid_argument, "must sum to a finite value > 0");
  require_error(
      [] {
        kvbits::RandomPolicy({{{4, 4}, 1.0}, {{4, 4}, -1.0}});
      },
      Errc::invalid_argument, "entry 1 (4/4): weight must be finite and >= 0");
}
