// SPDX-License-Identifier: MIT
// The cache side of adaptive precision: attention statistics, decision
// contexts, age-graded demotion, integer re-quantization, running bits.
#include "kvbits/cache/quantized_kv_cache.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "kvbits/codec/requantize.hpp"
#include "kvbits/kvbits.hpp"
#include "support/attention_reference.hpp"
#include "support/cache_test_data.hpp"
#include "support/require_error.hpp"

namespace {

using kvbits::AttentionStats;
using kvbits::BitDecision;
using kvbits::CacheOptions;
using kvbits::DecisionContext;
using kvbits::Errc;
using kvbits::QuantFormat;
using kvbits::QuantizedKVCache;
using kvbits::Scheme;
using kvbits::TokenInfo;
using kvbits::test::random_vector;
using kvbits::test::reference_attention;
using kvbits::test::reference_probabilities;
using kvbits::test::relative_error;
using kvbits::test::require_error;

// Tolerances, each named for what it bounds.
constexpr double kKernelTolerance = 1e-5;  // fused attention vs decode-then-FP32 attention
// Float sums of per-head probabilities (each ~1e-7 relative off the double
// reference) over a few dozen queries.
constexpr double kStatsTolerance = 1e-4;
// Integer re-quantization vs min/max round-to-nearest of the decoded rows: q / f
// is never a tie (f odd), so codes can differ only where the float path sits
// within float rounding of a .5 boundary or its fp16 scale lands one ulp from
// f * scale; then by one code. Measured: 0 of 51200 codes per case.
constexpr double kMaxRequantizeMismatchRate = 1e-3;
// RMS error of a demotion chain ending at 2 bits vs direct min/max 2-bit
// quantization of the original. The chain keeps the group range, and every
// earlier step rounds on a grid finer than the final one (the 4-bit grid is
// s2 / 5, the 6-bit one s2 / 21), so the extra error is a double rounding of
// size <= (s2 / 5) / 2 that mostly cancels against the final rounding: for
// uniform data the RMS ratio is sqrt(1 + 1/25 + 1/441 + ...) <= 1.02 at worst
// (independent errors); measured 1.001 on Gaussian rows. 1.05 leaves margin.
constexpr double kChainRmsFactor = 1.05;

#define KVBITS_TEST_BACKENDS kvbits::ScalarBackend, kvbits::DefaultBackend

CacheOptions make_options(std::size_t layers, std::size_t kv_heads, std::size_t d, std::size_t capacity) {
  CacheOptions o;
  o.layers = layers;
  o.kv_heads = kv_heads;
  o.head_dim = d;
  o.capacity = capacity;
  return o;
}

// A context policy: first decision by position, then one step narrower (8 -> 4 -> 2)
// at every age, except every fifth token, which then asks for 16/16 (more bits, to be clamped).
struct RecordingPolicy {
  struct Call {
    std::size_t position;
    std::size_t age;
    BitDecision current;
    std::vector<float> features;
    AttentionStats attention;
    double bits;
  };
  std::vector<std::size_t> ages;
  bool statistics = false;
  std::shared_ptr<std::vector<Call>> calls = std::make_shared<std::vector<Call>>();

  [[nodiscard]] std::span<const std::size_t> decision_ages() const { return ages; }
  [[nodiscard]] bool wants_attention_stats() const { return statistics; }

  BitDecision decide(const DecisionContext& c) {
    calls->push_back({c.token.position,
                      c.age,
                      c.current,
                      {c.token.features.begin(), c.token.features.end()},
                      c.attention,
                      c.cache_bits_per_element});
    if (c.current.key_bits == 32) return c.token.position % 2 == 0 ? BitDecision{8, 8} : BitDecision{8, 4};
    if (c.token.position % 5 == 0) return {16, 16};
    const auto narrower = [](int bits) { return bits >= 8 ? 4 : 2; };
    return {narrower(c.current.key_bits), narrower(c.current.value_bits)};
  }
};

// All tokens of a layer decoded, [tokens][kv_heads][d] each.
template <class Cache>
void decode_cache(const Cache& cache, std::size_t layer, std::vector<float>& keys,
                  std::vector<float>& values) {
  const std::size_t width = cache.options().kv_heads * cache.options().head_dim;
  keys.assign(cache.size(layer) * width, 0.0f);
  values.assign(cache.size(layer) * width, 0.0f);
  for (std::size_t t = 0; t < cache.size(layer); ++t) {
    cache.read_token(layer, t, std::span<float>(keys).subspan(t * width, width),
                     std::span<float>(values).subspan(t * width, width));
  }
}

}  // namespace

TEMPLATE_TEST_CASE("attention statistics equal a recomputation from the probabilities", "[cache][adaptive]",
                   KVBITS_TEST_BACKENDS) {
  std::mt19937 rng(31);
  const std::size_t d = 16, kv_heads = 2, heads = 6, steps = 60;
  const std::size_t width = kv_heads * d;
  auto o = make_options(1, kv_heads, d, 128);
  o.residual_window = 4;
  o.sink_tokens = 1;
  o.key.group_size = 8;
  RecordingPolicy policy;
  policy.ages = {6, 15, 33};
  policy.statistics = true;
  QuantizedKVCache<RecordingPolicy, TestType> cache(o, policy);

  struct Expected {
    std::uint32_t queries = 0;
    double sum = 0.0, sum_squares = 0.0, max = 0.0, last = 0.0;
  };
  std::vector<Expected> expected;
  std::vector<float> keys, values, out(heads * d);
  // Tokens arrive one by one (and a prefill of 5), with attends of varying heads in between.
  for (std::size_t t = 0; t < steps; ++t) {
    cache.append(0, random_vector(rng, width), random_vector(rng, width), TokenInfo{0, t, -1, {}});
    expected.emplace_back();
    if (t % 3 == 2) continue;  // some tokens are appended without a query
    const std::size_t query_heads = t % 2 == 0 ? heads : kv_heads;
    const auto q = random_vector(rng, query_heads * d, 2.0f);
    decode_cache(cache, 0, keys, values);
    const auto p = reference_probabilities(keys, q, kv_heads, d);
    std::vector<float> partial(query_heads * d);
    cache.attend(0, q, partial);
    const std::size_t tokens = cache.size(0);
    for (std::size_t u = 0; u < tokens; ++u) {
      Expected& e = expected[u];
      ++e.queries;
      e.last = 0.0;
      for (std::size_t h = 0; h < query_heads; ++h) {
        const double probability = p[h * tokens + u];
        e.sum += probability;
        e.sum_squares += probability * probability;
        e.max = std::max(e.max, probability);
        e.last += probability;
      }
    }
  }
  // Demotions moved tokens between streams while they collected statistics.
  CHECK(cache.memory().layers[0].histogram.key_tokens(2) > 0);
  for (std::size_t u = 0; u < cache.size(0); ++u) {
    const AttentionStats stats = cache.attention_stats(0, u);
    const Expected& e = expected[u];
    INFO("token " << u << " queries " << stats.queries << " expected " << e.queries << " sum " << stats.sum
                  << " expected " << e.sum << " max " << stats.max << " expected " << e.max);
    REQUIRE(stats.queries == e.queries);
    CHECK(stats.samples >= stats.queries * kv_heads);
    CHECK(stats.sum == Approx(e.sum).epsilon(kStatsTolerance).margin(1e-7));
    CHECK(stats.sum_squares == Approx(e.sum_squares).epsilon(kStatsTolerance).margin(1e-7));
    CHECK(stats.max == Approx(e.max).epsilon(kStatsTolerance).margin(1e-7));
    CHECK(stats.last == Approx(e.last).epsilon(kStatsTolerance).margin(1e-7));
  }
  // samples: the attends alternate n_heads 6 and 2, starting at t = 0 with 6.
  const AttentionStats first = cache.attention_stats(0, 0);
  std::uint32_t samples = 0;
  for (std::size_t t = 0; t < steps; ++t) {
    if (t % 3 != 2)
      samples += t % 2 == 0 ? static_cast<std::uint32_t>(heads) : static_cast<std::uint32_t>(kv_heads);
  }
  CHECK(first.samples == samples);
  // The policy saw the statistics its tokens had at decision time.
  bool saw_attention = false;
  for (const auto& call : *policy.calls) saw_attention = saw_attention || call.attention.queries > 0;
  CHECK(saw_attention);

  SECTION("prefill counts its queries too, and clear() resets") {
    auto small = make_options(1, kv_heads, d, 16);
    RecordingPolicy stats_policy;
    stats_policy.statistics = true;
    QuantizedKVCache<RecordingPolicy, TestType> prefilled(small, stats_policy);
    const auto k = random_vector(rng, 5 * width);
    const auto q = random_vector(rng, 5 * heads * d);
    std::vector<float> o5(q.size());
    prefilled.prefill(0, k, k, q, o5);
    for (std::size_t u = 0; u < 5; ++u) CHECK(prefilled.attention_stats(0, u).queries == 5 - u);
    prefilled.clear();
    prefilled.append(0, random_vector(rng, width), random_vector(rng, width));
    CHECK(prefilled.attention_stats(0, 0).queries == 0);
  }
}

TEMPLATE_TEST_CASE("age-graded demotion never raises a width and keeps attention exact", "[cache][adaptive]",
                   KVBITS_TEST_BACKENDS) {
  std::mt19937 rng(32);
  const std::size_t d = 32, kv_heads = 2, heads = 4, steps = 90, window = 3, sinks = 2;
  const std::size_t width = kv_heads * d;
  auto o = make_options(2, kv_heads, d, 100);
  o.residual_window = window;
  o.sink_tokens = sinks;
  o.key.group_size = 16;
  RecordingPolicy policy;
  policy.ages = {2, 5, 11, 40};  // 2 < window: those tokens are still float, never asked at 2
  QuantizedKVCache<RecordingPolicy, TestType> cache(o, policy);
  std::vector<std::vector<BitDecision>> history(steps);  // widths of each token after every append
  for (std::size_t t = 0; t < steps; ++t) {
    cache.append(1, random_vector(rng, width), random_vector(rng, width), TokenInfo{1, t, -1, {}});
    for (std::size_t u = 0; u <= t; ++u) history[u].push_back(cache.token_bits(1, u));
    CHECK(cache.bits_per_element() == cache.memory().total.average_bits);
  }
  for (std::size_t u = 0; u < steps; ++u) {
    for (std::size_t i = 1; i < history[u].size(); ++i) {
      INFO("token " << u << " after append " << u + i);
      CHECK(history[u][i].key_bits <= history[u][i - 1].key_bits);
      CHECK(history[u][i].value_bits <= history[u][i - 1].value_bits);
    }
  }
  // Each decided token was asked at age R, then at every declared age beyond R it reached,
  // with its widths of the moment; sinks never.
  for (std::size_t u = 0; u < steps; ++u) {
    std::vector<std::size_t> ages;
    std::vector<BitDecision> currents;
    for (const auto& call : *policy.calls) {
      if (call.position != u) continue;
      ages.push_back(call.age);
      currents.push_back(call.current);
    }
    std::vector<std::size_t> expected_ages;
    if (u >= sinks && u + window < steps) expected_ages.push_back(window);
    for (std::size_t age : {5u, 11u, 40u}) {
      if (u >= sinks && u + age < steps) expected_ages.push_back(age);
    }
    INFO("token " << u);
    REQUIRE(ages == expected_ages);
    for (std::size_t i = 0; i < ages.size(); ++i) {
      // After the append at which the token reached that age minus one.
      const BitDecision before = i == 0 ? BitDecision{32, 32} : history[u][ages[i] - 1];
      CHECK(currents[i] == before);
    }
  }
  const auto report = cache.memory().layers[1];
  CHECK(report.histogram.key_tokens(2) > 0);
  CHECK(report.histogram.value_tokens(2) > 0);
  CHECK(report.histogram.key_tokens(16) == 0);  // 16/16 requests were clamped

  std::vector<float> keys, values;
  decode_cache(cache, 1, keys, values);
  for (int step = 0; step < 3; ++step) {
    const auto q = random_vector(rng, heads * d, 2.0f);
    std::vector<float> out(q.size()), received(cache.size(1));
    cache.attend(1, q, out, received);
    std::vector<double> expected_received;
    CHECK(relative_error(out, reference_attention(keys, values, q, kv_heads, d, &expected_received)) <
          kKernelTolerance);
    CHECK(relative_error(received, expected_received) < kKernelTolerance);
  }

  SECTION("SIMD and scalar caches store the same widths and values") {
    RecordingPolicy scalar_policy;
    scalar_policy.ages = policy.ages;
    QuantizedKVCache<RecordingPolicy, kvbits::ScalarBackend> scalar(o, scalar_policy);
    RecordingPolicy same_policy;
    same_policy.ages = policy.ages;
    QuantizedKVCache<RecordingPolicy, TestType> same(o, same_policy);
    std::mt19937 replay(33);
    for (std::size_t t = 0; t < steps; ++t) {
      const auto k = random_vector(replay, width);
      const auto v = random_vector(replay, width);
      scalar.append(0, k, v, TokenInfo{0, t, -1, {}});
      same.append(0, k, v, TokenInfo{0, t, -1, {}});
    }
    std::vector<float> scalar_keys, scalar_values, same_keys, same_values;
    decode_cache(scalar, 0, scalar_keys, scalar_values);
    decode_cache(same, 0, same_keys, same_values);
    for (std::size_t u = 0; u < steps; ++u) CHECK(scalar.token_bits(0, u) == same.token_bits(0, u));
    CHECK(relative_error(same_keys, scalar_keys) < kKernelTolerance);
    CHECK(relative_error(same_values, scalar_values) < kKernelTolerance);
  }
}

// Widths from a hash of (position, age): several tokens leave and join the same streams in one
// append, so one plan fills the holes of departed tokens with arriving ones.
struct ShufflingPolicy {
  std::vector<std::size_t> ages;
  bool statistics = true;

  [[nodiscard]] std::span<const std::size_t> decision_ages() const { return ages; }
  [[nodiscard]] bool wants_attention_stats() const { return statistics; }

  BitDecision decide(const DecisionContext& c) const {
    static constexpr std::array<int, 5> kWidths = {8, 6, 5, 4, 2};
    const std::size_t hash = (c.token.position * 2654435761u + c.age * 40503u) >> 7;
    return {kWidths[hash % 3 + (c.age > 4 ? 2 : 0)], kWidths[(hash / 3) % 3 + (c.age > 6 ? 2 : 0)]};
  }
};

TEMPLATE_TEST_CASE("many moves in one append store what one demote() at a time stores", "[cache][adaptive]",
                   KVBITS_TEST_BACKENDS) {
  std::mt19937 rng(35);
  const std::size_t d = 16, kv_heads = 2, heads = 4, steps = 120;
  const std::size_t width = kv_heads * d;
  auto o = make_options(1, kv_heads, d, steps);
  o.residual_window = 2;
  o.sink_tokens = 1;
  o.key.group_size = 8;
  ShufflingPolicy planned;
  planned.ages = {3, 4, 5, 7, 8, 11, 13};
  QuantizedKVCache<ShufflingPolicy, TestType> cache(o, planned);
  // The same first decisions, then each change replayed as a demote() of its own.
  QuantizedKVCache<ShufflingPolicy, TestType> replayed(o, ShufflingPolicy{});
  std::size_t changes = 0;
  for (std::size_t t = 0; t < steps; ++t) {
    const auto k = random_vector(rng, width);
    const auto v = random_vector(rng, width);
    cache.append(0, k, v, TokenInfo{0, t, -1, {}});
    replayed.append(0, k, v, TokenInfo{0, t, -1, {}});
    for (std::size_t u = 0; u <= t; ++u) {
      const BitDecision bits = cache.token_bits(0, u);
      if (replayed.token_bits(0, u) == bits) continue;
      replayed.demote(0, u, bits.key_bits, bits.value_bits);
      ++changes;
    }
    if (t % 2 == 0) {
      const auto q = random_vector(rng, heads * d, 2.0f);
      std::vector<float> out(q.size()), replayed_out(q.size());
      cache.attend(0, q, out);
      replayed.attend(0, q, replayed_out);
      CHECK(relative_error(out, replayed_out) < kKernelTolerance);
    }
  }
  CHECK(changes > steps);  // most appends moved several tokens
  CHECK(cache.bits_per_element() == replayed.bits_per_element());
  CHECK(cache.bits_per_element() == cache.memory().total.average_bits);
  std::vector<float> keys(width), values(width), replayed_keys(width), replayed_values(width);
  for (std::size_t u = 0; u < steps; ++u) {
    INFO("token " << u);
    cache.read_token(0, u, keys, values);
    replayed.read_token(0, u, replayed_keys, replayed_values);
    CHECK(keys == replayed_keys);
    CHECK(values == replayed_values);
    const AttentionStats stats = cache.attention_stats(0, u);
    const AttentionStats replayed_stats = replayed.attention_stats(0, u);
    CHECK(stats.queries == replayed_stats.queries);
    CHECK(stats.sum == Approx(replayed_stats.sum).epsilon(kStatsTolerance).margin(1e-7));
    CHECK(stats.max == Approx(replayed_stats.max).epsilon(kStatsTolerance).margin(1e-7));
  }
}

TEST_CASE("decision contexts: window 0, ages, features and bits of the cache", "[cache][adaptive]") {
  std::mt19937 rng(34);
  const std::size_t d = 8, width = 8;
  auto o = make_options(1, 1, d, 64);
  RecordingPolicy policy;
  policy.ages = {4, 9};
  QuantizedKVCache<RecordingPolicy, kvbits::ScalarBackend> cache(o, policy);
  for (std::size_t t = 0; t < 14; ++t) {
    const std::vector<float> features{static_cast<float>(t)};
    const double bits_before = cache.bits_per_element();
    cache.append(0, random_vector(rng, width), random_vector(rng, width), TokenInfo{0, t, -1, features});
    const auto& insert = policy.calls->at(policy.calls->size() - (t >= 9 ? 3 : t >= 4 ? 2 : 1));
    CHECK(insert.position == t);
    CHECK(insert.age == 0);
    CHECK(insert.current == BitDecision{32, 32});
    CHECK(insert.bits == bits_before);
    if (t == 5) {
      // Token 3 is decided (window 0) and 2 appends old: still younger than age 9.
      cache.set_features(0, 3, std::vector<float>{-7.0f, 8.0f});
    }
  }
  // Token 4 kept the features it was appended with.
  std::vector<float> token3_features, token4_features;
  for (const auto& call : *policy.calls) {
    if (call.position == 3 && call.age == 9) token3_features = call.features;
    if (call.position == 4 && call.age == 9) token4_features = call.features;
  }
  CHECK(token3_features == std::vector<float>{-7.0f, 8.0f});
  CHECK(token4_features == std::vector<float>{4.0f});
  CHECK(cache.awaits_decision(0, 13));
  CHECK(cache.awaits_decision(0, 5));  // age 8 < 9
  CHECK_FALSE(cache.awaits_decision(0, 4));
  require_error([&] { cache.set_features(0, 1, std::vector<float>{1.0f}); }, Errc::invalid_argument,
                "not younger than the last decision age");
  require_error([&] { cache.set_features(0, 12, std::vector<float>(kvbits::kMaxTokenFeatures + 1)); },
                Errc::shape_mismatch, "at most kMaxTokenFeatures");
  require_error(
      [&] {
        cache.append(0, random_vector(rng, width), random_vector(rng, width),
                     TokenInfo{0, 14, -1, std::vector<float>(kvbits::kMaxTokenFeatures + 1)});
      },
      Errc::shape_mismatch, "features");
  CHECK(cache.size(0) == 14);
}

TEST_CASE("policy decision ages are validated", "[cache][adaptive]") {
  const auto o = make_options(1, 1, 8, 16);
  for (const auto& ages :
       {std::vector<std::size_t>{0}, std::vector<std::size_t>{3, 3}, std::vector<std::size_t>{5, 2}}) {
    RecordingPolicy policy;
    policy.ages = ages;
    require_error([&] { QuantizedKVCache<RecordingPolicy, kvbits::ScalarBackend> cache(o, policy); },
                  Errc::invalid_argument, "strictly increasing and >= 1");
  }
  RecordingPolicy far;
  far.ages = {1, 1000000};  // beyond the capacity: never reached, costs nothing
  QuantizedKVCache<RecordingPolicy, kvbits::ScalarBackend> cache(o, far);
  std::mt19937 rng(35);
  for (int t = 0; t < 16; ++t) cache.append(0, random_vector(rng, 8), random_vector(rng, 8));
  CHECK(cache.size(0) == 16);
}

TEST_CASE("a TokenInfo-only policy runs unchanged, also with decision ages", "[cache][adaptive]") {
  struct Halving {
    std::vector<std::size_t> ages{3};
    [[nodiscard]] std::span<const std::size_t> decision_ages() const { return ages; }
    [[nodiscard]] BitDecision decide(const TokenInfo& token) const {
      return token.token_id < 0 ? BitDecision{8, 8} : BitDecision{4, 2};
    }
  };
  static_assert(kvbits::TokenInfoPolicy<Halving> && !kvbits::ContextPolicy<Halving>);
  std::mt19937 rng(36);
  auto o = make_options(1, 1, 16, 32);
  o.residual_window = 1;
  QuantizedKVCache<Halving, kvbits::DefaultBackend> cache(o);
  QuantizedKVCache<kvbits::StaticPolicy, kvbits::DefaultBackend> plain(o, kvbits::StaticPolicy{{4, 4}});
  for (std::size_t t = 0; t < 10; ++t) {
    const auto k = random_vector(rng, 16);
    cache.append(0, k, k, TokenInfo{0, t, -1, {}});
    plain.append(0, k, k);
  }
  // Same answer at age 1 and age 3: nothing moves, and no statistics are kept.
  CHECK(cache.token_bits(0, 2) == BitDecision{8, 8});
  CHECK(cache.attention_stats(0, 2).queries == 0);
  std::vector<float> out(16);
  plain.attend(0, random_vector(rng, 16), out);
  CHECK(plain.attention_stats(0, 0).queries == 0);
}

TEST_CASE("a policy exception during a revisit leaves the cache unchanged", "[cache][adaptive]") {
  struct Throwing {
    std::vector<std::size_t> ages{2};
    std::shared_ptr<bool> armed = std::make_shared<bool>(false);
    [[nodiscard]] std::span<const std::size_t> decision_ages() const { return ages; }
    BitDecision decide(const DecisionContext& c) {
      if (*armed && c.age == 2) throw std::runtime_error("policy failed");
      return c.current.key_bits == 32 ? BitDecision{8, 8} : BitDecision{2, 2};
    }
  };
  std::mt19937 rng(37);
  auto o = make_options(1, 1, 16, 32);
  Throwing policy;
  QuantizedKVCache<Throwing, kvbits::DefaultBackend> cache(o, policy);
  for (int t = 0; t < 6; ++t) cache.append(0, random_vector(rng, 16), random_vector(rng, 16));
  const auto q = random_vector(rng, 16);
  std::vector<float> before(16), after(16);
  cache.attend(0, q, before);
  const auto memory = cache.memory().total;
  const double bits = cache.bits_per_element();
  *policy.armed = true;
  CHECK_THROWS_AS(cache.append(0, random_vector(rng, 16), random_vector(rng, 16)), std::runtime_error);
  CHECK(cache.size(0) == 6);
  CHECK(cache.memory().total.bytes == memory.bytes);
  CHECK(cache.bits_per_element() == bits);
  CHECK(cache.token_bits(0, 4) == BitDecision{8, 8});
  cache.attend(0, q, after);
  CHECK(after == before);
}

TEST_CASE("a window and sinks larger than the capacity keep every token float", "[cache][adaptive]") {
  std::mt19937 rng(38);
  const std::size_t d = 16, kv_heads = 2, heads = 4, width = kv_heads * d;
  auto o = make_options(1, kv_heads, d, 24);
  o.residual_window = 32;
  o.sink_tokens = 4;
  QuantizedKVCache<kvbits::StaticPolicy, kvbits::DefaultBackend> cache(o, kvbits::StaticPolicy{{2, 2}});
  const auto keys = random_vector(rng, 24 * width);
  const auto values = random_vector(rng, 24 * width);
  for (std::size_t t = 0; t < 24; ++t) {
    cache.append(0, std::span(keys).subspan(t * width, width), std::span(values).subspan(t * width, width));
  }
  for (std::size_t t = 0; t < 24; ++t) CHECK(cache.in_residual(0, t));
  const auto q = random_vector(rng, heads * d);
  std::vector<float> out(q.size());
  cache.attend(0, q, out);
  CHECK(relative_error(out, reference_attention(keys, values, q, kv_heads, d)) < kKernelTolerance);
  CHECK(cache.bits_per_element() == 32.0);
  auto only_sinks = o;
  only_sinks.sink_tokens = 100;
  QuantizedKVCache<kvbits::StaticPolicy, kvbits::DefaultBackend> sinks(only_sinks);
  for (std::size_t t = 0; t < 24; ++t) sinks.append(0, random_vector(rng, width), random_vector(rng, width));
  CHECK(sinks.in_residual(0, 23));
}

TEST_CASE("integer re-quantization agrees with min/max re-quantization of the decoded rows",
          "[codec][adaptive]") {
  std::mt19937 rng(39);
  const std::size_t n = 128;
  struct Pair {
    int from, to;
  };
  for (const Pair pair : {Pair{8, 4}, Pair{4, 2}, Pair{8, 2}, Pair{6, 3}, Pair{6, 2}}) {
    for (std::size_t group : {8u, 32u, 128u}) {
      const QuantFormat wide{pair.from, group, Scheme::asymmetric};
      const QuantFormat narrow{pair.to, group, Scheme::asymmetric};
      REQUIRE(kvbits::has_integer_requantize(wide, narrow));
      std::size_t codes = 0, mismatches = 0, larger = 0;
      std::vector<std::uint8_t> packed(kvbits::packed_size(wide, n)), fast(kvbits::packed_size(narrow, n));
      std::vector<float> decoded(n);
      for (int trial = 0; trial < 400; ++trial) {
        auto x = random_vector(rng, n, trial % 4 == 0 ? 100.0f : 1.0f);
        if (trial % 7 == 0) x[static_cast<std::size_t>(trial) % n] *= 30.0f;  // an outlier
        kvbits::ScalarBackend::encode(wide, x, packed);
        kvbits::ScalarBackend::decode(wide, packed, decoded);
        kvbits::requantize(wide, narrow, n, packed, fast);
        const std::size_t block = kvbits::group_bytes(pair.to, group, Scheme::asymmetric);
        for (std::size_t g = 0; g < n / group; ++g) {
          const float* ys = decoded.data() + g * group;
          const auto [lo, hi] = std::minmax_element(ys, ys + group);
          const auto params = kvbits::detail::asymmetric_params(*lo, *hi, pair.to);
          const std::uint8_t* b = fast.data() + g * block;
          const auto fast_affine = kvbits::detail::load_affine(b, Scheme::asymmetric, pair.to);
          CHECK(fast_affine.offset == params.min);  // the min is kept exactly
          CHECK(fast_affine.scale >= params.scale * (1.0f - 1e-3f));
          for (std::size_t i = 0; i < group; ++i) {
            const int expected = kvbits::detail::asymmetric_code(ys[i], params, pair.to);
            int actual = 0;
            kvbits::dispatch_bits(pair.to, [&](auto bits) {
              if constexpr (kvbits::is_grouped_bits(bits.value)) {
                actual = kvbits::kernel::detail::unpack_code<bits.value>(b + 4, group, i);
              }
            });
            ++codes;
            if (actual != expected) {
              ++mismatches;
              if (std::abs(actual - expected) > 1) ++larger;
            }
          }
        }
      }
      const double rate = static_cast<double>(mismatches) / static_cast<double>(codes);
      INFO(pair.from << " -> " << pair.to << " bits, group " << group << ": " << mismatches << " of " << codes
                     << " codes differ (rate " << rate << "), " << larger << " by more than one");
      CHECK(larger == 0);
      CHECK(rate <= kMaxRequantizeMismatchRate);
    }
  }
  require_error(
      [] {
        std::vector<std::uint8_t> in(kvbits::packed_size({8, 32, Scheme::symmetric}, 32)), out(16);
        kvbits::requantize({8, 32, Scheme::symmetric}, {4, 32, Scheme::symmetric}, 32, in, out);
      },
      Errc::invalid_argument, "asymmetric");
}

TEMPLATE_TEST_CASE("demotion chains stay near direct 2-bit quantization", "[cache][adaptive]",
                   KVBITS_TEST_BACKENDS) {
  std::mt19937 rng(40);
  const std::size_t d = 64, tokens = 300;
  for (std::size_t group : {0u, 32u}) {
    auto o = make_options(1, 1, d, tokens);
    o.key.group_size = group;
    o.value.group_size = group;
    QuantizedKVCache<kvbits::StaticPolicy, TestType> chain(o, kvbits::StaticPolicy{{8, 8}});
    const auto x = random_vector(rng, tokens * d);
    for (std::size_t t = 0; t < tokens; ++t) {
      const std::span<const float> row(x.data() + t * d, d);
      chain.append(0, row, row);
      // Keys 8 -> 6 -> 4 -> 2 (decode + encode twice, then integer), values 8 -> 4 -> 2 (integer).
      chain.demote(0, t, 6, 4);
      chain.demote(0, t, 4, 2);
      chain.demote(0, t, 2, 2);
    }
    double chain_key = 0.0, chain_value = 0.0, direct = 0.0;
    std::vector<float> k(d), v(d);
    for (std::size_t t = 0; t < tokens; ++t) {
      chain.read_token(0, t, k, v);
      const float* xs = x.data() + t * d;
      const std::size_t g_size = group == 0 ? d : group;
      for (std::size_t g = 0; g < d / g_size; ++g) {
        const auto [lo, hi] = std::minmax_element(xs + g * g_size, xs + (g + 1) * g_size);
        const auto params = kvbits::detail::asymmetric_params(*lo, *hi, 2);
        for (std::size_t i = g * g_size; i < (g + 1) * g_size; ++i) {
          const float x2 = params.min + params.scale * static_cast<float>(
                                                           kvbits::detail::asymmetric_code(xs[i], params, 2));
          direct += (x2 - xs[i]) * (x2 - xs[i]);
        }
      }
      for (std::size_t i = 0; i < d; ++i) {
        chain_key += (k[i] - xs[i]) * (k[i] - xs[i]);
        chain_value += (v[i] - xs[i]) * (v[i] - xs[i]);
      }
    }
    const double key_ratio = std::sqrt(chain_key / direct);
    const double value_ratio = std::sqrt(chain_value / direct);
    INFO("group " << group << ": RMS chain / direct min/max 2-bit: keys (8-6-4-2) " << key_ratio
                  << ", values (8-4-2) " << value_ratio);
    CHECK(key_ratio <= kChainRmsFactor);
    CHECK(value_ratio <= kChainRmsFactor);
    CHECK(chain.memory().total.histogram.key_tokens(2) == tokens);
  }
}

TEST_CASE("bits_per_element equals memory().total.average_bits", "[cache][adaptive]") {
  std::mt19937 rng(41);
  auto o = make_options(3, 2, 16, 64);
  o.residual_window = 5;
  o.sink_tokens = 2;
  o.value.group_size = 8;
  RecordingPolicy policy;
  policy.ages = {7, 20};
  QuantizedKVCache<RecordingPolicy, kvbits::DefaultBackend> cache(o, policy);
  CHECK(cache.bits_per_element() == 0.0);
  for (std::size_t t = 0; t < 60; ++t) {
    for (std::size_t layer = 0; layer < 3; ++layer) {
      if (layer == 2 && t % 2 == 1) continue;  // layers of different lengths
      cache.append(layer, random_vector(rng, 32), random_vector(rng, 32), TokenInfo{layer, t, -1, {}});
      REQUIRE(cache.bits_per_element() == cache.memory().total.average_bits);
    }
    if (t > 30) {
      const BitDecision now = cache.token_bits(0, 3);
      cache.demote(0, 3, std::min(now.key_bits, 3), std::min(now.value_bits, 5));
      REQUIRE(cache.bits_per_element() == cache.memory().total.average_bits);
    }
  }
  CHECK(cache.bits_per_element() < 32.0);
  cache.clear();
  CHECK(cache.bits_per_element() == 0.0);
  CHECK(cache.memory().total.average_bits == 0.0);
}

TEST_CASE("RulePolicy drives a cache through the residual window", "[cache][policy]") {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  CacheOptions options;
  options.kv_heads = 4;
  options.head_dim = 8;
  options.capacity = 64;
  options.residual_window = 4;
  kvbits::RulePolicy rules;
  rules.default_bits = {3, 2};
  rules.protected_positions = 4;
  rules.protected_ids = {13, 29};  // e.g. "." and ","
  rules.protected_bits = {8, 6};
  rules.feature_rules = {kvbits::FeatureRule{0, 2.5f, BitDecision{6, 4}}};  // high entropy
  QuantizedKVCache<kvbits::RulePolicy, kvbits::DefaultBackend> cache(options, rules);
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

TEMPLATE_TEST_CASE("a copied cache continues exactly like the original and shares nothing",
                   "[cache][adaptive]", KVBITS_TEST_BACKENDS) {
  using Cache = QuantizedKVCache<kvbits::TieredPolicy, TestType>;
  constexpr std::size_t kLayers = 2;
  constexpr std::size_t kKvHeads = 2;
  constexpr std::size_t kHeads = 4;
  constexpr std::size_t kDim = 32;
  constexpr std::size_t kWidth = kKvHeads * kDim;
  constexpr std::size_t kPrefill = 40;
  constexpr std::size_t kSteps = 80;
  CacheOptions options = make_options(kLayers, kKvHeads, kDim, 100);
  options.sink_tokens = 2;
  // Float young tokens, three demotions, keys of much-attended tokens wider: statistics on.
  const auto policy = kvbits::parse_tiers("4=16/16,16=8/8,32=6/4,*=4/2,k+=0.05");
  std::mt19937 rng(31);
  const std::vector<float> keys = random_vector(rng, kSteps * kWidth);
  const std::vector<float> values = random_vector(rng, kSteps * kWidth);
  const std::vector<float> queries = random_vector(rng, kSteps * kHeads * kDim);
  // One decode step: append token t to every layer, then attend with its query.
  const auto step = [&](Cache& cache, std::size_t t) {
    std::vector<float> out(kLayers * kHeads * kDim);
    for (std::size_t l = 0; l < kLayers; ++l) {
      cache.append(l, std::span<const float>(keys).subspan(t * kWidth, kWidth),
                   std::span<const float>(values).subspan(t * kWidth, kWidth), TokenInfo{l, t, 0, {}});
      cache.attend(l, std::span<const float>(queries).subspan(t * kHeads * kDim, kHeads * kDim),
                   std::span<float>(out).subspan(l * kHeads * kDim, kHeads * kDim));
    }
    return out;
  };
  Cache original(options, policy);
  for (std::size_t t = 0; t < kPrefill; ++t) step(original, t);

  Cache copy(original);
  Cache assigned(options, policy);
  step(assigned, 0);
  assigned = original;
  for (std::size_t t = kPrefill; t < kSteps; ++t) {
    const auto expected = step(original, t);
    REQUIRE(step(copy, t) == expected);  // bit-identical: same bytes, statistics and decisions
    REQUIRE(step(assigned, t) == expected);
  }
  for (std::size_t l = 0; l < kLayers; ++l) {
    for (std::size_t t = 0; t < kSteps; ++t) {
      CHECK(copy.token_bits(l, t) == original.token_bits(l, t));
      const AttentionStats a = copy.attention_stats(l, t);
      const AttentionStats b = original.attention_stats(l, t);
      CHECK(a.queries == b.queries);
      CHECK(a.sum == b.sum);
      CHECK(a.max == b.max);
    }
  }
  CHECK(copy.memory().total.bytes == original.memory().total.bytes);
  CHECK(copy.memory().total.reserved_bytes == original.memory().total.reserved_bytes);

  // The copy owns its pages: clearing it leaves the original's tokens as they were.
  std::vector<float> before_keys, before_values, after_keys, after_values;
  decode_cache(original, 0, before_keys, before_values);
  copy.clear();
  CHECK(copy.size(0) == 0);
  CHECK(original.size(0) == kSteps);
  decode_cache(original, 0, after_keys, after_values);
  CHECK(after_keys == before_keys);
  CHECK(after_values == before_values);
}
