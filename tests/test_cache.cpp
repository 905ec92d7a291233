// SPDX-License-Identifier: MIT
#include "kvbits/cache/quantized_kv_cache.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <limits>
#include <memory>
#include <new>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "kvbits/kvbits.hpp"
#include "support/attention_reference.hpp"
#include "support/cache_test_data.hpp"

// Counts every allocation of this test program, so a test can prove that a
// call allocates nothing. Under AddressSanitizer, which owns operator new, its
// allocation hook counts instead of a replaced operator new.
namespace {
std::atomic<std::size_t> allocation_count{0};
}  // namespace
float* volatile allocation_escape = nullptr;  // keeps the compiler from eliding a probe allocation

#if defined(__SANITIZE_ADDRESS__)
// Declared here because GCC ships the sanitizer runtime without this header.
extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*,
                                                                             std::size_t),
                                                         void (*free_hook)(const volatile void*));
namespace {
void count_allocation(const volatile void*, std::size_t) {
  allocation_count.fetch_add(1, std::memory_order_relaxed);
}
void ignore_free(const volatile void*) {}
const int kHooksInstalled = __sanitizer_install_malloc_and_free_hooks(count_allocation, ignore_free);
}  // namespace
#else
// The replacement pairs malloc with free; GCC cannot see that and warns when
// it inlines the pair.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t bytes) {
  allocation_count.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(bytes == 0 ? 1 : bytes)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#endif

namespace {

using kvbits::BitDecision;
using kvbits::CacheOptions;
using kvbits::Errc;
using kvbits::KeyTransform;
using kvbits::QuantFormat;
using kvbits::QuantizedKVCache;
using kvbits::StaticPolicy;
using kvbits::TokenInfo;
using kvbits::test::demoted_round_trip;
using kvbits::test::random_vector;
using kvbits::test::reference_attention;
using kvbits::test::relative_error;
using kvbits::test::round_trip;

// Tolerances, each named for what it bounds.
constexpr double kFp16AttentionTolerance = 1e-3;    // 16-bit storage vs FP32 attention
constexpr double kKernelTolerance = 1e-5;           // fused attention vs decode-then-FP32 attention
constexpr double kReceivedSumTolerance = 1e-4;      // sum of received probabilities vs n_heads
constexpr double kTransformNoOpTolerance32 = 1e-5;  // transform on/off at 32 bits
constexpr double kTransformNoOpTolerance16 =
    4e-3;  // 16-bit attention vs FP32, keys with a x40 outlier channel (plain: ~2e-3)
constexpr double kPageOrderTolerance = 1e-5;  // same cache at two page sizes (online-softmax order)

// A policy that returns a scripted decision per position and records every call.
struct ScriptedPolicy {
  struct Call {
    std::size_t layer;
    std::size_t position;
    std::int32_t token_id;
    std::vector<float> features;
  };
  std::shared_ptr<std::vector<BitDecision>> script = std::make_shared<std::vector<BitDecision>>();
  std::shared_ptr<std::vector<Call>> calls = std::make_shared<std::vector<Call>>();

  BitDecision decide(const TokenInfo& info) {
    calls->push_back(
        {info.layer, info.position, info.token_id, {info.features.begin(), info.features.end()}});
    if (script->empty()) return {16, 16};
    return (*script)[info.position % script->size()];
  }
};

// The K/V the cache should hold for tokens appended once (no demotion), from their widths.
template <class Cache>
void expected_store(const Cache& cache, std::size_t layer, const std::vector<float>& keys,
                    const std::vector<float>& values, std::vector<float>& stored_keys,
                    std::vector<float>& stored_values) {
  using B = typename Cache::backend_type;
  const auto& o = cache.options();
  const std::size_t width = o.kv_heads * o.head_dim;
  stored_keys.assign(keys.size(), 0.0f);
  stored_values.assign(values.size(), 0.0f);
  for (std::size_t t = 0; t < cache.size(layer); ++t) {
    const std::span<const float> k(keys.data() + t * width, width);
    const std::span<const float> v(values.data() + t * width, width);
    const BitDecision bits = cache.token_bits(layer, t);
    const auto k_hat = round_trip<B>(k, bits.key_bits, o.key, o.head_dim);
    const auto v_hat = round_trip<B>(v, bits.value_bits, o.value, o.head_dim);
    std::copy(k_hat.begin(), k_hat.end(), stored_keys.begin() + static_cast<std::ptrdiff_t>(t * width));
    std::copy(v_hat.begin(), v_hat.end(), stored_values.begin() + static_cast<std::ptrdiff_t>(t * width));
  }
}

template <class Fn>
void require_error(Fn&& fn, Errc code, const std::string& fragment) {
  try {
    fn();
    FAIL("expected kvbits::Error with code " << kvbits::to_string(code) << " mentioning '" << fragment
                                             << "'");
  } catch (const kvbits::Error& error) {
    INFO("message: " << error.what());
    CHECK(error.code() == code);
    CHECK_THAT(error.what(), Catch::Contains(fragment));
  }
}

CacheOptions make_options(std::size_t kv_heads, std::size_t d, std::size_t capacity) {
  CacheOptions o;
  o.layers = 2;
  o.kv_heads = kv_heads;
  o.head_dim = d;
  o.capacity = capacity;
  return o;
}

}  // namespace

#define KVBITS_TEST_BACKENDS kvbits::ScalarBackend, kvbits::DefaultBackend

TEMPLATE_TEST_CASE("16-bit cache matches FP32 attention", "[cache]", KVBITS_TEST_BACKENDS) {
  std::mt19937 rng(11);
  for (std::size_t d : {8u, 64u, 128u}) {
    for (std::size_t kv_heads : {1u, 4u}) {
      CAPTURE(d, kv_heads);
      const auto o = make_options(kv_heads, d, 300);
      QuantizedKVCache<StaticPolicy, TestType> cache(o, StaticPolicy{{16, 16}});
      const auto keys = random_vector(rng, 300 * kv_heads * d);
      const auto values = random_vector(rng, 300 * kv_heads * d);
      for (std::size_t t = 0; t < 300; ++t) {
        cache.append(1, std::span(keys).subspan(t * kv_heads * d, kv_heads * d),
                     std::span(values).subspan(t * kv_heads * d, kv_heads * d));
      }
      REQUIRE(cache.size(1) == 300);
      REQUIRE(cache.size(0) == 0);
      const auto q = random_vector(rng, 2 * kv_heads * d, 2.0f);
      std::vector<float> out(q.size());
      cache.attend(1, q, out);
      const auto expected = reference_attention(keys, values, q, kv_heads, d);
      CHECK(relative_error(out, expected) < kFp16AttentionTolerance);
    }
  }
}

TEMPLATE_TEST_CASE("every precision mix equals decode-then-FP32 attention", "[cache]", KVBITS_TEST_BACKENDS) {
  std::mt19937 rng(12);
  std::uniform_int_distribution<std::size_t> pick(0, kvbits::kSupportedBits.size() - 1);
  struct Case {
    std::size_t d, kv_heads, heads, group;
    kvbits::Scheme scheme;
    std::size_t window, sinks;
  };
  const Case cases[] = {
      {8, 4, 8, 0, kvbits::Scheme::asymmetric, 0, 0},   {16, 1, 1, 8, kvbits::Scheme::symmetric, 0, 0},
      {24, 2, 6, 8, kvbits::Scheme::asymmetric, 5, 2},  {64, 1, 4, 32, kvbits::Scheme::asymmetric, 0, 0},
      {128, 2, 2, 0, kvbits::Scheme::symmetric, 16, 4}, {256, 1, 1, 64, kvbits::Scheme::asymmetric, 0, 1},
      {40, 1, 3, 8, kvbits::Scheme::asymmetric, 0, 0},
  };
  for (const Case& c : cases) {
    CAPTURE(c.d, c.kv_heads, c.heads, c.group, c.window, c.sinks);
    auto o = make_options(c.kv_heads, c.d, 700);
    o.key.group_size = c.group;
    o.key.scheme = c.scheme;
    o.value.group_size = c.group;
    o.value.scheme = c.scheme;
    o.residual_window = c.window;
    o.sink_tokens = c.sinks;
    ScriptedPolicy policy;
    for (int i = 0; i < 700; ++i) {
      BitDecision bits{kvbits::kSupportedBits[pick(rng)], kvbits::kSupportedBits[pick(rng)]};
      if (i % 3 == 0 && bits.key_bits == bits.value_bits) bits.value_bits = bits.key_bits == 2 ? 8 : 2;
      policy.script->push_back(bits);
    }
    QuantizedKVCache<ScriptedPolicy, TestType> cache(o, policy);
    const std::size_t width = c.kv_heads * c.d;
    const std::size_t tokens = 650;
    const auto keys = random_vector(rng, tokens * width);
    const auto values = random_vector(rng, tokens * width);
    for (std::size_t t = 0; t < tokens; ++t) {
      cache.append(0, std::span(keys).subspan(t * width, width), std::span(values).subspan(t * width, width),
                   TokenInfo{0, t, static_cast<std::int32_t>(t), {}});
    }
    std::vector<float> stored_keys, stored_values;
    expected_store(cache, 0, keys, values, stored_keys, stored_values);
    // The mix really is mixed: several streams and K != V for some tokens.
    const auto report = cache.memory();
    std::size_t key_widths = 0;
    for (std::size_t count : report.layers[0].histogram.key) key_widths += count > 0 ? 1 : 0;
    CHECK(key_widths >= 6);
    for (int step = 0; step < 3; ++step) {
      const auto q = random_vector(rng, c.heads * c.d, 3.0f);
      std::vector<float> out(q.size());
      std::vector<float> received(tokens);
      cache.attend(0, q, out, received);
      std::vector<double> expected_received;
      const auto expected =
          reference_attention(stored_keys, stored_values, q, c.kv_heads, c.d, &expected_received);
      CHECK(relative_error(out, expected) < kKernelTolerance);
      CHECK(relative_error(received, expected_received) < kKernelTolerance);
      double total = 0.0;
      for (float r : received) total += r;
      CHECK(total == Approx(static_cast<double>(c.heads)).epsilon(kReceivedSumTolerance));
    }
  }
}

TEMPLATE_TEST_CASE("GQA maps query head h to kv head h / (n_heads / kv_heads)", "[cache]",
                   KVBITS_TEST_BACKENDS) {
  // Each kv head g stores the constant value g + 1 in every token, so a query
  // head's output names the kv head it read, whatever the scores.
  std::mt19937 rng(13);
  const std::size_t d = 16;
  const std::size_t kv_heads = 3;
  const auto o = make_options(kv_heads, d, 64);
  QuantizedKVCache<StaticPolicy, TestType> cache(o, StaticPolicy{{4, 8}});
  std::vector<float> v(kv_heads * d);
  for (std::size_t g = 0; g < kv_heads; ++g)
    std::fill_n(v.begin() + static_cast<std::ptrdiff_t>(g * d), d, static_cast<float>(g + 1));
  for (int t = 0; t < 40; ++t) cache.append(0, random_vector(rng, kv_heads * d), v);
  for (std::size_t heads : {3u, 6u, 12u}) {
    const auto q = random_vector(rng, heads * d);
    std::vector<float> out(q.size());
    cache.attend(0, q, out);
    for (std::size_t h = 0; h < heads; ++h) {
      const float expected = static_cast<float>(h / (heads / kv_heads) + 1);
      for (std::size_t i = 0; i < d; ++i) {
        INFO("heads " << heads << " head " << h << " element " << i << " expected " << expected << " actual "
                      << out[h * d + i]);
        REQUIRE(out[h * d + i] == Approx(expected).epsilon(1e-4));
      }
    }
  }
  require_error(
      [&] {
        std::vector<float> q(4 * d), out(4 * d);
        cache.attend(0, q, out);
      },
      Errc::shape_mismatch, "multiple of kv_heads");
}

TEMPLATE_TEST_CASE("causal prefill equals token-by-token append and attend", "[cache]",
                   KVBITS_TEST_BACKENDS) {
  std::mt19937 rng(14);
  const std::size_t d = 32, kv_heads = 2, heads = 4, steps = 70;
  auto o = make_options(kv_heads, d, 128);
  o.residual_window = 8;
  o.sink_tokens = 2;
  ScriptedPolicy script;
  *script.script = {{4, 2}, {8, 8}, {2, 4}, {16, 3}, {32, 5}};
  QuantizedKVCache<ScriptedPolicy, TestType> batched(o, script);
  ScriptedPolicy script_copy;
  *script_copy.script = *script.script;
  QuantizedKVCache<ScriptedPolicy, TestType> stepped(o, script_copy);
  // Both start from a few tokens so prefill continues a sequence.
  for (int t = 0; t < 3; ++t) {
    const auto k = random_vector(rng, kv_heads * d);
    const auto v = random_vector(rng, kv_heads * d);
    const TokenInfo info{0, static_cast<std::size_t>(t), -1, {}};
    batched.append(0, k, v, info);
    stepped.append(0, k, v, info);
  }
  const auto k = random_vector(rng, steps * kv_heads * d);
  const auto v = random_vector(rng, steps * kv_heads * d);
  const auto q = random_vector(rng, steps * heads * d, 2.0f);
  std::vector<float> out(q.size());
  batched.prefill(0, k, v, q, out);
  REQUIRE(batched.size(0) == 3 + steps);
  std::vector<float> step_out(heads * d);
  for (std::size_t t = 0; t < steps; ++t) {
    stepped.append(0, std::span(k).subspan(t * kv_heads * d, kv_heads * d),
                   std::span(v).subspan(t * kv_heads * d, kv_heads * d), TokenInfo{0, 3 + t, -1, {}});
    stepped.attend(0, std::span(q).subspan(t * heads * d, heads * d), step_out);
    for (std::size_t i = 0; i < heads * d; ++i) {
      INFO("step " << t << " element " << i);
      REQUIRE(out[t * heads * d + i] == step_out[i]);
    }
  }
  REQUIRE(script.calls->size() == script_copy.calls->size());
  // The prefill result is causal: step 0 sees 4 tokens, so it differs from
  // attending with the same query over the finished cache.
  std::vector<float> late(heads * d);
  stepped.attend(0, std::span(q).first(heads * d), late);
  CHECK(relative_error(late, std::span(out).first(heads * d)) > 1e-3);
}

TEMPLATE_TEST_CASE("residual window and sinks hand tokens to the policy when they leave", "[cache]",
                   KVBITS_TEST_BACKENDS) {
  std::mt19937 rng(15);
  const std::size_t d = 8, kv_heads = 4;
  auto o = make_options(kv_heads, d, 64);
  o.residual_window = 3;
  o.sink_tokens = 2;
  ScriptedPolicy policy;
  *policy.script = {{4, 8}};
  QuantizedKVCache<ScriptedPolicy, TestType> cache(o, policy);
  for (std::size_t t = 0; t < 20; ++t) {
    const std::vector<float> features{static_cast<float>(t) * 1.5f, -1.0f};
    cache.append(1, random_vector(rng, kv_heads * d), random_vector(rng, kv_heads * d),
                 TokenInfo{7, 100 + t, static_cast<std::int32_t>(t), features});
    if (t == 9) {
      // Token 8 is in the window: its features can still change.
      const std::vector<float> updated{42.0f};
      cache.set_features(1, 8, updated);
    }
    const std::size_t expected_calls = t >= 5 ? t - 4 : 0;
    INFO("after appending token " << t);
    REQUIRE(policy.calls->size() == expected_calls);
    if (t >= 5) {
      const auto& call = policy.calls->back();
      const std::size_t leaving = t - 3;
      CHECK(call.layer == 1);
      CHECK(call.position == 100 + leaving);
      CHECK(call.token_id == static_cast<std::int32_t>(leaving));
      if (leaving == 8) {
        CHECK(call.features == std::vector<float>{42.0f});
      } else {
        CHECK(call.features == std::vector<float>{static_cast<float>(leaving) * 1.5f, -1.0f});
      }
    }
    for (std::size_t u = 0; u <= t; ++u) {
      const bool residual = u < 2 || u + 3 > t;
      INFO("token " << u);
      CHECK(cache.in_residual(1, u) == residual);
      CHECK(cache.token_bits(1, u) == (residual ? BitDecision{32, 32} : BitDecision{4, 8}));
    }
  }
  const auto report = cache.memory();
  CHECK(report.layers[1].residual_tokens == 5);
  CHECK(report.layers[1].histogram.key_tokens(4) == 15);
  CHECK(report.layers[1].histogram.key_tokens(32) == 5);
  require_error([&] { cache.set_features(1, 0, std::vector<float>{1.0f}); }, Errc::invalid_argument,
                "not in the residual window");
  require_error([&] { cache.set_features(1, 10, std::vector<float>{1.0f}); }, Errc::invalid_argument,
                "not in the residual window");

  SECTION("window 0 decides on insert; sinks are never decided") {
    auto direct = o;
    direct.residual_window = 0;
    ScriptedPolicy p2;
    QuantizedKVCache<ScriptedPolicy, TestType> insert(direct, p2);
    for (std::size_t t = 0; t < 6; ++t) {
      insert.append(0, random_vector(rng, kv_heads * d), random_vector(rng, kv_heads * d),
                    TokenInfo{0, t, -1, {}});
      REQUIRE(p2.calls->size() == (t >= 2 ? t - 1 : 0));
      if (t >= 2) CHECK(p2.calls->back().position == t);
    }
    CHECK(insert.in_residual(0, 1));
    CHECK_FALSE(insert.in_residual(0, 2));
  }
}

TEMPLATE_TEST_CASE("demotion re-encodes, keeps attention exact and reuses space", "[cache]",
                   KVBITS_TEST_BACKENDS) {
  using B = TestType;
  std::mt19937 rng(16);
  const std::size_t d = 64, kv_heads = 2, heads = 4, tokens = 400;
  const std::size_t width = kv_heads * d;
  auto o = make_options(kv_heads, d, 600);
  o.key.group_size = 32;
  o.sink_tokens = 1;
  QuantizedKVCache<StaticPolicy, B> cache(o, StaticPolicy{{8, 16}});
  const auto keys = random_vector(rng, 600 * width);
  const auto values = random_vector(rng, 600 * width);
  for (std::size_t t = 0; t < tokens; ++t) {
    cache.append(0, std::span(keys).subspan(t * width, width), std::span(values).subspan(t * width, width));
  }
  std::vector<float> stored_keys, stored_values;
  expected_store(cache, 0, keys, values, stored_keys, stored_values);
  const auto before = cache.memory().layers[0];

  // Demote every third token: keys 8 -> 4 (or 2), values 16 -> 8 (or kept).
  std::size_t demoted = 0;
  for (std::size_t t = 1; t < tokens; t += 3) {
    const BitDecision to = t % 2 == 0 ? BitDecision{4, 8} : BitDecision{2, 16};
    cache.demote(0, t, to.key_bits, to.value_bits);
    ++demoted;
    const std::span<const float> k(keys.data() + t * width, width);
    const std::span<const float> v(values.data() + t * width, width);
    // Keys 8 -> 4 and 8 -> 2 take the integer path, values 16 -> 8 decode + encode.
    const auto k_hat = demoted_round_trip<B>(k, 8, to.key_bits, o.key, d);
    const auto v_hat = demoted_round_trip<B>(v, 16, to.value_bits, o.value, d);
    std::copy(k_hat.begin(), k_hat.end(), stored_keys.begin() + static_cast<std::ptrdiff_t>(t * width));
    std::copy(v_hat.begin(), v_hat.end(), stored_values.begin() + static_cast<std::ptrdiff_t>(t * width));
    REQUIRE(cache.token_bits(0, t) == to);
  }
  // Re-reading every token proves the token index survived the swap-removes.
  std::vector<float> k_out(width), v_out(width);
  for (std::size_t t = 0; t < tokens; ++t) {
    cache.read_token(0, t, k_out, v_out);
    for (std::size_t i = 0; i < width; ++i) {
      INFO("token " << t << " element " << i);
      REQUIRE(k_out[i] == stored_keys[t * width + i]);
      REQUIRE(v_out[i] == stored_values[t * width + i]);
    }
  }
  const auto q = random_vector(rng, heads * d, 2.0f);
  std::vector<float> out(q.size());
  std::vector<float> expected_received;
  std::vector<float> received(tokens);
  cache.attend(0, q, out, received);
  std::vector<double> reference_received;
  std::vector<float> live_keys(stored_keys.begin(),
                               stored_keys.begin() + static_cast<std::ptrdiff_t>(tokens * width));
  std::vector<float> live_values(stored_values.begin(),
                                 stored_values.begin() + static_cast<std::ptrdiff_t>(tokens * width));
  CHECK(relative_error(out, reference_attention(live_keys, live_values, q, kv_heads, d,
                                                &reference_received)) < kKernelTolerance);
  CHECK(relative_error(received, reference_received) < kKernelTolerance);

  const auto after = cache.memory().layers[0];
  CHECK(after.bytes < before.bytes);
  CHECK(after.histogram.key_tokens(8) == tokens - 1 - demoted);
  CHECK(after.histogram.key_tokens(4) + after.histogram.key_tokens(2) == demoted);

  // Appending as many 8/16 tokens as were demoted refills the freed slots:
  // the allocation equals that of a cache built with the same mix directly.
  for (std::size_t t = tokens; t < tokens + demoted; ++t) {
    cache.append(0, std::span(keys).subspan(t * width, width), std::span(values).subspan(t * width, width));
  }
  ScriptedPolicy same_mix;
  QuantizedKVCache<ScriptedPolicy, B> direct(o, same_mix);
  for (std::size_t t = 0; t < tokens + demoted; ++t) {
    *same_mix.script = {t < tokens && t % 3 == 1 ? (t % 2 == 0 ? BitDecision{4, 8} : BitDecision{2, 16})
                                                 : BitDecision{8, 16}};
    direct.append(0, std::span(keys).subspan(t * width, width), std::span(values).subspan(t * width, width));
  }
  CHECK(cache.memory().layers[0].reserved_bytes == direct.memory().layers[0].reserved_bytes);
  CHECK(cache.memory().layers[0].bytes == direct.memory().layers[0].bytes);

  require_error([&] { cache.demote(0, 5, 16, 16); }, Errc::invalid_argument, "never adds bits");
  require_error([&] { cache.demote(0, 0, 4, 4); }, Errc::invalid_argument, "sink/window");
  require_error([&] { cache.demote(0, 5, 7, 4); }, Errc::invalid_argument, "use 2, 3, 4");
  require_error([&] { cache.demote(0, 100000, 4, 4); }, Errc::invalid_argument, "out of range");
  const BitDecision unchanged = cache.token_bits(0, 5);
  cache.demote(0, 5, unchanged.key_bits, unchanged.value_bits);
  CHECK(cache.token_bits(0, 5) == unchanged);
}

TEMPLATE_TEST_CASE("key transforms are exact no-ops without quantization and help outliers", "[cache]",
                   KVBITS_TEST_BACKENDS) {
  std::mt19937 rng(17);
  const std::size_t d = 64, kv_heads = 2, heads = 4, tokens = 200;
  const std::size_t width = kv_heads * d;
  auto keys = random_vector(rng, tokens * width);
  for (std::size_t t = 0; t < tokens; ++t) {
    for (std::size_t g = 0; g < kv_heads; ++g) keys[t * width + g * d + 5] *= 40.0f;  // outlier channel
  }
  const auto values = random_vector(rng, tokens * width);
  const auto q = random_vector(rng, heads * d);

  const auto run = [&](int bits, KeyTransform key_transform, KeyTransform value_transform,
                       std::vector<float>* key_error) {
    auto o = make_options(kv_heads, d, tokens);
    o.key.transform = key_transform;
    o.value.transform = value_transform;
    QuantizedKVCache<StaticPolicy, TestType> cache(o, StaticPolicy{{bits, bits}});
    if (key_transform == KeyTransform::channel_scale) cache.calibrate_key_scales(0, keys);
    for (std::size_t t = 0; t < tokens; ++t) {
      cache.append(0, std::span(keys).subspan(t * width, width), std::span(values).subspan(t * width, width));
    }
    std::vector<float> out(heads * d);
    cache.attend(0, q, out);
    if (key_error != nullptr) {
      double squared = 0.0;
      std::vector<float> k_out(width), v_out(width);
      for (std::size_t t = 0; t < tokens; ++t) {
        cache.read_token(0, t, k_out, v_out);
        for (std::size_t i = 0; i < width; ++i) {
          const double e = static_cast<double>(k_out[i]) - static_cast<double>(keys[t * width + i]);
          squared += e * e;
        }
      }
      key_error->push_back(static_cast<float>(std::sqrt(squared / static_cast<double>(tokens * width))));
    }
    return out;
  };

  const auto exact = reference_attention(keys, values, q, kv_heads, d);
  {
    // 32 bits: the transforms change nothing but float rounding.
    const auto plain = run(32, KeyTransform::none, KeyTransform::none, nullptr);
    CHECK(relative_error(run(32, KeyTransform::hadamard, KeyTransform::none, nullptr), plain) <
          kTransformNoOpTolerance32);
    CHECK(relative_error(run(32, KeyTransform::channel_scale, KeyTransform::none, nullptr), plain) <
          kTransformNoOpTolerance32);
    CHECK(relative_error(run(32, KeyTransform::hadamard, KeyTransform::hadamard, nullptr), plain) <
          kTransformNoOpTolerance32);
  }
  {
    // 16 bits: a transformed cache is as close to FP32 attention as the plain
    // one, i.e. the transform adds nothing beyond fp16 rounding.
    const double plain_error =
        relative_error(run(16, KeyTransform::none, KeyTransform::none, nullptr), exact);
    const double hadamard_error =
        relative_error(run(16, KeyTransform::hadamard, KeyTransform::none, nullptr), exact);
    const double scaled_error =
        relative_error(run(16, KeyTransform::channel_scale, KeyTransform::none, nullptr), exact);
    const double both_error =
        relative_error(run(16, KeyTransform::hadamard, KeyTransform::hadamard, nullptr), exact);
    INFO("16-bit error vs FP32: none " << plain_error << ", hadamard " << hadamard_error << ", channel_scale "
                                       << scaled_error << ", hadamard K+V " << both_error);
    CHECK(plain_error < kTransformNoOpTolerance16);
    CHECK(hadamard_error < kTransformNoOpTolerance16);
    CHECK(scaled_error < kTransformNoOpTolerance16);
    CHECK(both_error < kTransformNoOpTolerance16);
  }

  std::vector<float> errors;
  const auto plain4 = run(4, KeyTransform::none, KeyTransform::none, &errors);
  const auto hadamard4 = run(4, KeyTransform::hadamard, KeyTransform::none, &errors);
  const auto scaled4 = run(4, KeyTransform::channel_scale, KeyTransform::none, &errors);
  INFO("RMS key error at 4 bits: none " << errors[0] << ", hadamard " << errors[1] << ", channel_scale "
                                        << errors[2]);
  CHECK(errors[1] < 0.5f * errors[0]);
  CHECK(errors[2] < 0.5f * errors[0]);
  // And attention is closer to the FP32 result.
  CHECK(relative_error(hadamard4, exact) < relative_error(plain4, exact));
  CHECK(relative_error(scaled4, exact) < relative_error(plain4, exact));
}

TEMPLATE_TEST_CASE("errors are clear and leave the cache usable and unchanged", "[cache]",
                   KVBITS_TEST_BACKENDS) {
  std::mt19937 rng(18);
  const std::size_t d = 16, kv_heads = 2, heads = 2;
  const std::size_t width = kv_heads * d;
  auto o = make_options(kv_heads, d, 10);
  o.residual_window = 2;
  ScriptedPolicy policy;
  *policy.script = {{4, 4}};
  QuantizedKVCache<ScriptedPolicy, TestType> cache(o, policy);
  for (int t = 0; t < 9; ++t) cache.append(0, random_vector(rng, width), random_vector(rng, width));
  const auto q = random_vector(rng, heads * d);
  std::vector<float> before(heads * d), after(heads * d);
  cache.attend(0, q, before);
  const auto bytes_before = cache.memory().total.bytes;
  const auto unchanged = [&] {
    REQUIRE(cache.size(0) == 9);
    CHECK(cache.memory().total.bytes == bytes_before);
    cache.attend(0, q, after);
    for (std::size_t i = 0; i < after.size(); ++i) {
      INFO("element " << i << " expected " << before[i] << " actual " << after[i]);
      REQUIRE(after[i] == before[i]);
    }
  };
  const auto good = random_vector(rng, width);

  require_error([&] { cache.append(0, std::vector<float>(width - 1), good); }, Errc::shape_mismatch,
                "key [kv_heads][head_dim] holds 31 elements, expected 32");
  unchanged();
  require_error([&] { cache.append(0, good, std::vector<float>(width + 8)); }, Errc::shape_mismatch, "value");
  unchanged();
  auto bad = good;
  bad[7] = std::numeric_limits<float>::quiet_NaN();
  require_error([&] { cache.append(0, bad, good); }, Errc::non_finite_input,
                "key has NaN or Inf at element 7");
  unchanged();
  bad[7] = std::numeric_limits<float>::infinity();
  require_error([&] { cache.append(0, good, bad); }, Errc::non_finite_input, "value");
  unchanged();
  require_error([&] { cache.append(2, good, good); }, Errc::invalid_argument, "layer 2 is out of range");
  unchanged();
  // A policy returning an unsupported width fails the append that needs it.
  *policy.script = {{7, 4}};
  require_error([&] { cache.append(0, good, good); }, Errc::invalid_argument,
                "policy returned key/value bits 7/4");
  unchanged();
  *policy.script = {{4, 4}};
  std::vector<float> out(heads * d);
  require_error([&] { cache.attend(0, std::vector<float>(d + 1), out); }, Errc::shape_mismatch,
                "query holds 17");
  require_error(
      [&] {
        std::vector<float> small_out(d);
        cache.attend(0, q, small_out);
      },
      Errc::shape_mismatch, "attention output");
  require_error(
      [&] {
        std::vector<float> small_received(3);
        cache.attend(0, q, out, small_received);
      },
      Errc::shape_mismatch, "received");
  auto bad_q = q;
  bad_q[0] = std::numeric_limits<float>::quiet_NaN();
  require_error([&] { cache.attend(0, bad_q, out); }, Errc::non_finite_input, "query");
  require_error([&] { cache.attend(1, q, out); }, Errc::invalid_argument, "holds no tokens");
  unchanged();

  cache.append(0, good, good);  // the tenth token fills the capacity
  require_error([&] { cache.append(0, good, good); }, Errc::capacity_exhausted, "capacity of 10 tokens");
  CHECK(cache.size(0) == 10);
  std::vector<float> full(heads * d);
  cache.attend(0, q, full);
  require_error([&] { cache.append(0, good, good); }, Errc::capacity_exhausted, "capacity");
  cache.attend(0, q, after);
  CHECK(after == full);
  require_error(
      [&] {
        std::vector<float> k2(2 * width), o2(2 * heads * d);
        auto c2 = cache.options();
        QuantizedKVCache<StaticPolicy, TestType> small(c2);
        for (int t = 0; t < 9; ++t) small.append(0, good, good);
        small.prefill(0, k2, k2, o2, o2);
      },
      Errc::capacity_exhausted, "exceeds the capacity");

  cache.clear();
  CHECK(cache.size(0) == 0);
  require_error([&] { cache.attend(0, q, out); }, Errc::invalid_argument, "holds no tokens");
  cache.append(0, good, good);
  CHECK(cache.size(0) == 1);
}

TEST_CASE("bad cache options are rejected by name", "[cache]") {
  using Cache = QuantizedKVCache<StaticPolicy, kvbits::ScalarBackend>;
  const auto expect = [](CacheOptions o, Errc code, const std::string& fragment) {
    require_error([&] { Cache cache(o); }, code, fragment);
  };
  const auto base = make_options(2, 64, 100);
  auto o = base;
  o.layers = 0;
  expect(o, Errc::invalid_argument, "layers");
  o = base;
  o.kv_heads = 0;
  expect(o, Errc::invalid_argument, "kv_heads");
  for (std::size_t d : {0u, 12u, 264u}) {
    o = base;
    o.head_dim = d;
    expect(o, Errc::invalid_argument, "head_dim " + std::to_string(d));
  }
  o = base;
  o.capacity = 0;
  expect(o, Errc::invalid_argument, "capacity");
  o = base;
  o.key.group_size = 12;
  expect(o, Errc::invalid_argument, "key.group_size 12");
  o = base;
  o.value.group_size = 128;
  expect(o, Errc::invalid_argument, "value.group_size 128");
  o = base;
  o.head_dim = 24;
  o.key.transform = KeyTransform::hadamard;
  expect(o, Errc::invalid_argument, "power-of-two head_dim");
  o = base;
  o.value.transform = KeyTransform::channel_scale;
  expect(o, Errc::unsupported, "keys only");
  for (std::size_t bytes :
       {std::size_t{0}, std::size_t{2048}, std::size_t{12288}, std::size_t{65535}, std::size_t{1} << 21}) {
    o = base;
    o.page_plane_bytes = bytes;
    expect(o, Errc::invalid_argument,
           "page_plane_bytes " + std::to_string(bytes) + " must be a power of two in [4096, 1048576]");
  }
  for (std::size_t bytes : {kvbits::kMinPagePlaneBytes, kvbits::kMaxPagePlaneBytes}) {
    o = base;
    o.page_plane_bytes = bytes;
    Cache bounds(o);
    CHECK(bounds.options().page_plane_bytes == bytes);
  }

  // Channel scales: only with the transform, only before tokens, only positive.
  Cache plain(base);
  require_error([&] { plain.calibrate_key_scales(0, std::vector<float>(128, 1.0f)); }, Errc::unsupported,
                "channel_scale");
  o = base;
  o.key.transform = KeyTransform::channel_scale;
  Cache scaled(o);
  require_error([&] { scaled.calibrate_key_scales(0, std::vector<float>(100, 1.0f)); }, Errc::shape_mismatch,
                "sample keys");
  require_error([&] { scaled.set_key_scales(0, std::vector<float>(128, 0.0f)); }, Errc::invalid_argument,
                "> 0");
  std::vector<float> samples(128 * 3, 0.25f);
  samples[5] = -3.0f;
  scaled.calibrate_key_scales(0, samples);
  CHECK(scaled.key_scales(0)[5] == 4.0f);
  CHECK(scaled.key_scales(0)[6] == 0.25f);
  scaled.append(0, std::vector<float>(128, 1.0f), std::vector<float>(128, 1.0f));
  require_error([&] { scaled.calibrate_key_scales(0, samples); }, Errc::invalid_argument, "before appending");
}

TEST_CASE("memory report counts bytes, bits and widths exactly", "[cache]") {
  std::mt19937 rng(19);
  const std::size_t d = 64, kv_heads = 2;
  auto o = make_options(kv_heads, d, 100);
  o.sink_tokens = 2;
  o.key.group_size = 32;  // 4-bit key row: 2 groups * (4 metadata + 16 code) bytes
  ScriptedPolicy policy;
  *policy.script = {{4, 8}, {4, 8}, {4, 8}, {2, 16}};
  QuantizedKVCache<ScriptedPolicy, kvbits::ScalarBackend> cache(o, policy);
  for (std::size_t t = 0; t < 10; ++t) {
    cache.append(0, random_vector(rng, kv_heads * d), random_vector(rng, kv_heads * d),
                 TokenInfo{0, t, -1, {}});
  }
  // Tokens 2..9: positions 3 and 7 -> 2/16, the other six -> 4/8.
  const auto m = cache.memory();
  const auto& layer = m.layers[0];
  CHECK(layer.tokens == 10);
  CHECK(layer.residual_tokens == 2);
  CHECK(layer.residual_bytes == 2 * kv_heads * d * 4 * 2);
  const std::size_t key4_meta = 2 * 4, value8_meta = 4, key2_meta = 2 * 4;
  CHECK(layer.metadata_bytes == kv_heads * (6 * (key4_meta + value8_meta) + 2 * key2_meta));
  const std::size_t code = kv_heads * (6 * (32 + 64) + 2 * (16 + 128));
  CHECK(layer.code_bytes == code);
  const double elements = 10.0 * kv_heads * d * 2;
  CHECK(layer.average_bits ==
        Approx(8.0 * static_cast<double>(layer.code_bytes + layer.metadata_bytes + layer.residual_bytes) /
               elements));
  CHECK(layer.bytes == layer.code_bytes + layer.metadata_bytes + layer.residual_bytes + layer.index_bytes);
  CHECK(layer.reserved_bytes >= layer.bytes);
  CHECK(layer.histogram.key_tokens(4) == 6);
  CHECK(layer.histogram.key_tokens(2) == 2);
  CHECK(layer.histogram.key_tokens(32) == 2);
  CHECK(layer.histogram.value_tokens(8) == 6);
  CHECK(layer.histogram.value_tokens(16) == 2);
  CHECK(m.layers[1].tokens == 0);
  CHECK(m.total.tokens == 10);
  CHECK(m.total.code_bytes == layer.code_bytes);
  CHECK(m.total.average_bits == Approx(layer.average_bits));
}

TEMPLATE_TEST_CASE("attend does not allocate in steady state", "[cache]", KVBITS_TEST_BACKENDS) {
  std::mt19937 rng(20);
  const std::size_t d = 32, kv_heads = 2, heads = 8;
  auto o = make_options(kv_heads, d, 300);
  o.residual_window = 7;
  o.sink_tokens = 3;
  o.key.transform = KeyTransform::hadamard;
  o.value.transform = KeyTransform::hadamard;
  ScriptedPolicy policy;
  *policy.script = {{2, 4}, {8, 8}, {4, 3}, {16, 32}};
  QuantizedKVCache<ScriptedPolicy, TestType> cache(o, policy);
  for (std::size_t t = 0; t < 250; ++t) {
    cache.append(0, random_vector(rng, kv_heads * d), random_vector(rng, kv_heads * d),
                 TokenInfo{0, t, -1, {}});
  }
  const auto q = random_vector(rng, heads * d);
  std::vector<float> out(heads * d), received(250);
  cache.attend(0, q, out, received);  // grows scratch to its steady-state size
  cache.attend(0, q, out);
  const std::size_t before = allocation_count.load();
  // The counter works: a vector allocation is seen.
  std::vector<float> probe(100);
  allocation_escape = probe.data();
  REQUIRE(allocation_count.load() > before);
  const std::size_t start = allocation_count.load();
  for (int step = 0; step < 3; ++step) {
    cache.attend(0, q, out, received);
    cache.attend(0, q, out);
  }
  CHECK(allocation_count.load() == start);
}

TEMPLATE_TEST_CASE("attend with attention statistics and decision ages does not allocate", "[cache]",
                   KVBITS_TEST_BACKENDS) {
  struct StatisticsPolicy {
    std::vector<std::size_t> ages{4, 16};
    [[nodiscard]] std::span<const std::size_t> decision_ages() const { return ages; }
    [[nodiscard]] bool wants_attention_stats() const { return true; }
    [[nodiscard]] BitDecision decide(const kvbits::DecisionContext& c) const {
      return c.current.key_bits == 32 ? BitDecision{8, 8} : BitDecision{4, 4};
    }
  };
  std::mt19937 rng(21);
  const std::size_t d = 32, kv_heads = 2, heads = 4;
  auto o = make_options(kv_heads, d, 300);
  o.residual_window = 3;
  QuantizedKVCache<StatisticsPolicy, TestType> cache(o);
  for (std::size_t t = 0; t < 200; ++t)
    cache.append(0, random_vector(rng, kv_heads * d), random_vector(rng, kv_heads * d));
  const auto q = random_vector(rng, heads * d);
  std::vector<float> out(heads * d), received(200);
  cache.attend(0, q, out, received);  // grows scratch to its steady-state size
  const std::size_t start = allocation_count.load();
  for (int step = 0; step < 3; ++step) {
    cache.attend(0, q, out, received);
    cache.attend(0, q, out);
  }
  CHECK(allocation_count.load() == start);
  CHECK(cache.attention_stats(0, 10).queries == 7);
}

TEST_CASE("page tokens follow the page plane bytes", "[cache]") {
  using kvbits::detail::page_tokens_for;
  const std::size_t large = std::size_t{1} << 20;  // a capacity that never limits the page
  // The default: clamp(16384 / row, fewest, 1024), a multiple of 16, at most the capacity rounded
  // up to 16, where fewest is 128, or a sixteenth of the capacity (a multiple of 16, >= 16) when
  // that is less.
  CHECK(kvbits::CacheOptions{}.page_plane_bytes == 16384);
  const std::size_t capacities[] = {1, 100, 512, 1000, 2047, 2048, large};
  const std::size_t fewest[] = {16, 16, 32, 48, 112, 128, 128};
  for (std::size_t row = 1; row <= 2048; ++row) {
    for (std::size_t c = 0; c < std::size(capacities); ++c) {
      std::size_t expected = std::clamp<std::size_t>(16384 / row, fewest[c], 1024);
      expected = std::min(expected - expected % 16, (capacities[c] + 15) / 16 * 16);
      INFO("row " << row << " capacity " << capacities[c] << " expected " << expected);
      REQUIRE(page_tokens_for(row, capacities[c], kvbits::kDefaultPagePlaneBytes) == expected);
    }
  }
  // Rows of up to 128 bytes, and in caches of at most 512 tokens rows of up to 512 bytes (every row
  // of the two evaluation models), keep the pages they had before the floor: clamp(16384 / row,
  // 16, 1024).
  for (std::size_t row = 1; row <= 512; ++row) {
    for (std::size_t capacity : {std::size_t{512}, large}) {
      if (capacity == large && row > 128) continue;
      std::size_t before = std::clamp<std::size_t>(16384 / row, 16, 1024);
      before = std::min(before - before % 16, capacity);
      REQUIRE(page_tokens_for(row, capacity, kvbits::kDefaultPagePlaneBytes) == before);
    }
  }
  // head_dim 128 in a long cache: 32-bit rows (512 bytes) and 16-bit ones (256) get 128 slots.
  CHECK(page_tokens_for(512, large, kvbits::kDefaultPagePlaneBytes) == 128);
  CHECK(page_tokens_for(256, large, kvbits::kDefaultPagePlaneBytes) == 128);
  // head_dim 128 rows: 32-bit 512 bytes, 16-bit 256, 4-bit 64 codes + 4 metadata.
  CHECK(page_tokens_for(512, large, 65536) == 128);
  CHECK(page_tokens_for(256, large, 65536) == 256);
  CHECK(page_tokens_for(68, large, 65536) == 960);
  CHECK(page_tokens_for(68, large, 4096) == 128);
  // At least 128 slots however wide the row in a long cache; narrow rows are counted as 16 bytes.
  CHECK(page_tokens_for(2048, large, 4096) == 128);
  CHECK(page_tokens_for(2048, 1000, 4096) == 48);
  CHECK(page_tokens_for(6, large, 65536) == 4096);
  CHECK(page_tokens_for(6, large, std::size_t{1} << 20) == 65536);
  CHECK(page_tokens_for(68, 100, 65536) == 112);
}

TEMPLATE_TEST_CASE("larger page planes change the page size and not the attention", "[cache]",
                   KVBITS_TEST_BACKENDS) {
  const std::size_t d = 128, kv_heads = 2, heads = 4, tokens = 1000;
  const std::size_t width = kv_heads * d;
  struct Case {
    int bits;
    std::size_t page16k, page64k;  // slots per page at 16 and 64 KiB planes
  };
  // 32-bit rows get the floor of 128 slots at 16 KiB, the slots 64 KiB holds as well.
  for (const Case c : {Case{32, 128, 128}, Case{16, 128, 256}, Case{4, 240, 960}}) {
    CAPTURE(c.bits);
    std::mt19937 rng(22);
    auto o = make_options(kv_heads, d, 4096);
    auto large = o;
    large.page_plane_bytes = 65536;
    using Cache = QuantizedKVCache<StaticPolicy, TestType>;
    Cache small_pages(o, StaticPolicy{{c.bits, c.bits}});
    Cache large_pages(large, StaticPolicy{{c.bits, c.bits}});

    // One token reserves one page of its stream: the difference is the larger page's extra
    // slots (their K/V rows and slot map entries).
    const auto k0 = random_vector(rng, width);
    const auto v0 = random_vector(rng, width);
    small_pages.append(0, k0, v0);
    large_pages.append(0, k0, v0);
    const std::size_t row = kvbits::packed_size(QuantFormat{c.bits, 0, kvbits::Scheme::asymmetric}, d);
    const std::size_t extra_slots = c.page64k - c.page16k;
    CHECK(large_pages.memory().total.reserved_bytes - small_pages.memory().total.reserved_bytes ==
          extra_slots * (kv_heads * 2 * row + sizeof(std::uint32_t)));

    for (std::size_t t = 1; t < tokens; ++t) {
      const auto k = random_vector(rng, width);
      const auto v = random_vector(rng, width);
      small_pages.append(0, k, v);
      large_pages.append(0, k, v);
    }
    CHECK(large_pages.memory().total.bytes == small_pages.memory().total.bytes);
    const auto serial = [](std::size_t count, auto&& unit) {
      for (std::size_t u = 0; u < count; ++u) unit(u);
    };
    auto scratch = large_pages.attention_scratch();
    for (int step = 0; step < 3; ++step) {
      const auto q = random_vector(rng, heads * d, 3.0f);
      std::vector<float> expected(q.size()), out(q.size()), with_scratch(q.size()), split(q.size());
      std::vector<float> expected_received(tokens), received(tokens);
      small_pages.attend(0, q, expected, expected_received);
      large_pages.attend(0, q, out, received);
      CHECK(relative_error(out, expected) < kPageOrderTolerance);
      CHECK(relative_error(received, expected_received) < kPageOrderTolerance);
      large_pages.attend(0, q, with_scratch, scratch);
      CHECK(with_scratch == out);
      // More tasks than KV heads: each head's pages split into ranges.
      large_pages.attend_parallel(0, q, split, 2 * kv_heads, serial);
      CHECK(relative_error(split, expected) < kPageOrderTolerance);
    }
  }
}
