// SPDX-License-Identifier: MIT
// Attention from several threads: attend_parallel's head and token splits, attends
// with per-thread scratch on one cache, and the ThreadPool they run on. CI runs
// this file under ThreadSanitizer as well.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <random>
#include <span>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "kvbits/kvbits.hpp"
#include "support/attention_reference.hpp"
#include "support/cache_test_data.hpp"

namespace {

using kvbits::BitDecision;
using kvbits::CacheOptions;
using kvbits::QuantizedKVCache;
using kvbits::ThreadPool;
using kvbits::TokenInfo;
using kvbits::test::random_vector;
using kvbits::test::relative_error;

// A token split merges partial softmax states by log-sum-exp: the same terms summed in
// another order, so outputs differ from the serial pass by float rounding only (measured
// <= 2.1e-6 relative, received probabilities included, at 1.5k tokens).
constexpr double kSplitTolerance = 1e-5;

// 2, 4 and 8 bits by position, K and V alike, and attention statistics when asked.
struct MixedPolicy {
  bool statistics = false;
  [[nodiscard]] bool wants_attention_stats() const noexcept { return statistics; }
  [[nodiscard]] BitDecision decide(const kvbits::DecisionContext& context) const noexcept {
    const int widths[] = {2, 4, 8, 4};
    const int bits = widths[context.token.position % 4];
    return {bits, bits};
  }
};

template <class Cache>
void fill(Cache& cache, std::size_t tokens, std::mt19937& rng) {
  const std::size_t width = cache.options().kv_heads * cache.options().head_dim;
  for (std::size_t t = 0; t < tokens; ++t) {
    cache.append(0, random_vector(rng, width), random_vector(rng, width), TokenInfo{0, t, -1, {}});
  }
}

CacheOptions options_for(std::size_t kv_heads, std::size_t d, std::size_t capacity) {
  CacheOptions o;
  o.layers = 1;
  o.kv_heads = kv_heads;
  o.head_dim = d;
  o.capacity = capacity;
  o.residual_window = 8;
  o.sink_tokens = 2;
  o.key.group_size = 32;
  return o;
}

}  // namespace

TEST_CASE("ThreadPool runs every unit exactly once, loop after loop", "[threads]") {
  // Zero: every wait sleeps at once; the default: waits spin first; one microsecond: some loops
  // find their workers spinning and some asleep.
  const auto budget = GENERATE(std::chrono::nanoseconds::zero(), ThreadPool::kDefaultSpinBudget,
                               std::chrono::nanoseconds(std::chrono::microseconds(1)));
  for (std::size_t threads : {1u, 2u, 3u}) {
    ThreadPool pool(threads, budget);
    CHECK(pool.threads() == threads);
    CHECK(pool.spin_budget() == budget);
    for (std::size_t count : {0u, 1u, 2u, 7u, 64u}) {
      for (int loop = 0; loop < 20; ++loop) {
        std::vector<std::atomic<int>> hits(count);
        pool.run(count, [&](std::size_t u) { hits[u].fetch_add(1); });
        for (std::size_t u = 0; u < count; ++u) REQUIRE(hits[u].load() == 1);
      }
    }
  }
}

TEST_CASE("ThreadPool takes loops from several threads in turn", "[threads]") {
  ThreadPool pool(2, GENERATE(std::chrono::nanoseconds::zero(), ThreadPool::kDefaultSpinBudget));
  std::atomic<int> total{0};
  std::vector<std::thread> callers;
  callers.reserve(3);
  for (int c = 0; c < 3; ++c) {
    callers.emplace_back([&] {
      for (int loop = 0; loop < 50; ++loop) pool.run(5, [&](std::size_t) { total.fetch_add(1); });
    });
  }
  for (std::thread& caller : callers) caller.join();
  CHECK(total.load() == 3 * 50 * 5);
}

TEST_CASE("attend_parallel by KV heads is bit-identical to attend", "[threads]") {
  std::mt19937 rng(41);
  const std::size_t kv_heads = 4, d = 64, heads = 8, tokens = 700;
  for (bool statistics : {false, true}) {
    MixedPolicy policy;
    policy.statistics = statistics;
    QuantizedKVCache<MixedPolicy> serial(options_for(kv_heads, d, tokens), policy);
    fill(serial, tokens, rng);
    QuantizedKVCache<MixedPolicy> parallel = serial;
    ThreadPool pool(2);
    for (std::size_t tasks : {1u, 2u, 3u, 4u}) {
      INFO("tasks " << tasks << " statistics " << statistics);
      const auto q = random_vector(rng, heads * d, 2.0f);
      std::vector<float> expected(q.size()), out(q.size()), expected_received(tokens), received(tokens);
      serial.attend(0, q, expected, expected_received);
      parallel.attend_parallel(0, q, out, tasks, pool, received);
      CHECK(out == expected);
      CHECK(received == expected_received);
    }
    for (std::size_t t = 0; t < tokens; t += 37) {
      const auto a = serial.attention_stats(0, t);
      const auto b = parallel.attention_stats(0, t);
      CHECK(a.queries == b.queries);
      CHECK(a.sum == b.sum);
      CHECK(a.max == b.max);
    }
  }
}

TEST_CASE("attend_parallel over token ranges matches attend within float rounding", "[threads]") {
  std::mt19937 rng(42);
  const std::size_t d = 128, tokens = 1500;
  for (std::size_t kv_heads : {1u, 2u}) {
    MixedPolicy policy;
    policy.statistics = true;
    QuantizedKVCache<MixedPolicy> serial(options_for(kv_heads, d, tokens), policy);
    fill(serial, tokens, rng);
    QuantizedKVCache<MixedPolicy> parallel = serial;
    ThreadPool pool(2);
    for (std::size_t heads : {kv_heads, 4 * kv_heads}) {
      for (std::size_t tasks : {2u, 4u, 7u}) {
        INFO("kv_heads " << kv_heads << " heads " << heads << " tasks " << tasks);
        const auto q = random_vector(rng, heads * d, 2.0f);
        std::vector<float> expected(q.size()), out(q.size()), expected_received(tokens), received(tokens);
        serial.attend(0, q, expected, expected_received);
        parallel.attend_parallel(0, q, out, tasks, pool, received);
        CHECK(relative_error(out, expected) < kSplitTolerance);
        CHECK(relative_error(received, expected_received) < kSplitTolerance);
      }
    }
    for (std::size_t t = 0; t < tokens; t += 53) {
      const auto a = serial.attention_stats(0, t);
      const auto b = parallel.attention_stats(0, t);
      CHECK(a.queries == b.queries);
      CHECK(b.sum == Approx(a.sum).epsilon(kSplitTolerance).margin(1e-9));
    }
  }
}

TEST_CASE("threads attend one cache at once with scratch of their own", "[threads]") {
  std::mt19937 rng(43);
  const std::size_t kv_heads = 2, d = 64, heads = 8, tokens = 600, queries = 40;
  QuantizedKVCache<MixedPolicy> cache(options_for(kv_heads, d, tokens));
  fill(cache, tokens, rng);
  std::vector<std::vector<float>> q(queries), expected(queries);
  for (std::size_t i = 0; i < queries; ++i) {
    q[i] = random_vector(rng, heads * d, 2.0f);
    expected[i].resize(heads * d);
    cache.attend(0, q[i], expected[i]);
  }
  std::vector<std::vector<float>> got(queries, std::vector<float>(heads * d));
  std::vector<std::thread> threads;
  threads.reserve(3);
  for (std::size_t worker = 0; worker < 3; ++worker) {
    threads.emplace_back([&, worker] {
      auto scratch = cache.attention_scratch();
      for (std::size_t i = worker; i < queries; i += 3) cache.attend(0, q[i], got[i], scratch);
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (std::size_t i = 0; i < queries; ++i) CHECK(got[i] == expected[i]);
}
