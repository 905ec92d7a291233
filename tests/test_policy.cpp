// SPDX-License-Identifier: MIT
#include "kvbits/cache/quantized_kv_cache.hpp"

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

#include "kvbits/kvbits.hpp"

namespace {

using kvbits::BitDecision;
using kvbits::FeatureRule;
using kvbits::RulePolicy;
using kvbits::StaticPolicy;
using kvbits::TokenInfo;

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
  try {
    static_cast<void>(policy.decide(TokenInfo{0, 10, 100, one}));
    FAIL("expected Error(shape_mismatch)");
  } catch (const kvbits::Error& error) {
    CHECK(error.code() == kvbits::Errc::shape_mismatch);
    CHECK_THAT(error.what(), Catch::Contains("rule 1 reads feature 1 but the token has 1 features"));
  }
  RulePolicy ids_only;
  ids_only.protected_ids = {5};
  CHECK(ids_only.decide(TokenInfo{0, 10, 5, {}}) == BitDecision{8, 8});
}

TEST_CASE("RulePolicy drives a cache through the residual window", "[policy]") {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  kvbits::CacheOptions options;
  options.kv_heads = 4;
  options.head_dim = 8;
  options.capacity = 64;
  options.residual_window = 4;
  kvbits::QuantizedKVCache<RulePolicy, kvbits::DefaultBackend> cache(options, example_rules());
  const std::vector<std::int32_t> ids{1, 13, 2, 3, 4, 5, 29, 6, 7, 8, 9, 10, 11, 12, 14, 15};
  for (std::size_t t = 0; t < ids.size(); ++t) {
    std::vector<float> k(32), v(32);
    for (float& x : k) x = normal(rng);
    for (float& x : v) x = normal(rng);
    const std::vector<float> features{t == 9 ? 3.0f : 0.0f, 0.0f};
    cache.append(0, k, v, TokenInfo{0, t, ids[t], features});
  }
  for (std::size_t t = 0; t < ids.size(); ++t) {
    INFO("token " << t << " id " << ids[t]);
    BitDecision expected{3, 2};
    if (t < 4 || ids[t] == 13 || ids[t] == 29) expected = {8, 6};
    if (t == 9) expected = {6, 4};
    if (t + 4 >= ids.size()) expected = {32, 32};  // still in the window
    CHECK(cache.token_bits(0, t) == expected);
  }
}
