// SPDX-License-Identifier: MIT
// Decode attention when query heads share KV heads (grouped-query attention) and when one
// pass runs on several threads: 8 query heads over 2 KV heads against one head at the same
// width, and attend_parallel on 2 threads against attend, at N = 32k, head_dim 128.
// Wall-clock time throughout (threads), medians of repetitions; each row's ratio is to a
// row measured earlier in the same run.
#include <benchmark/benchmark.h>

#include "bench_support.hpp"

#include <chrono>
#include <cstddef>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "kvbits/kvbits.hpp"

namespace {

using kvbits::bench::random_vector;

constexpr std::size_t kDim = 128;
constexpr std::size_t kTokens = 32768;

using Cache = kvbits::QuantizedKVCache<kvbits::StaticPolicy>;

// One cache per (KV heads, width), filled once and shared by the rows that read it.
Cache& filled_cache(std::size_t kv_heads, int bits) {
  static std::map<std::pair<std::size_t, int>, Cache> caches;
  const auto key = std::make_pair(kv_heads, bits);
  auto found = caches.find(key);
  if (found != caches.end()) return found->second;
  kvbits::CacheOptions options;
  options.kv_heads = kv_heads;
  options.head_dim = kDim;
  options.capacity = kTokens;
  Cache cache(options, kvbits::StaticPolicy{{bits, bits}});
  std::mt19937 rng(1);
  for (std::size_t t = 0; t < kTokens; ++t) {
    const auto k = random_vector(rng, kv_heads * kDim);
    const auto v = random_vector(rng, kv_heads * kDim);
    cache.append(0, k, v, kvbits::TokenInfo{0, t, -1, {}});
  }
  return caches.emplace(key, std::move(cache)).first->second;
}

// Seconds per attend of the reference rows, by name, for the ratios of later rows.
std::map<std::string, double>& reference_seconds() {
  static std::map<std::string, double> seconds;
  return seconds;
}

// Times `attend` (one decode step of attention) and reports ns per context token and,
// when `reference` was measured, the ratio to it.
template <class Attend>
void time_attend(benchmark::State& state, Attend&& attend, const std::string& name,
                 const std::string& reference) {
  attend();  // scratch grows outside the timed loop
  double seconds = 0.0;
  for (auto _ : state) {
    const auto begin = std::chrono::steady_clock::now();
    attend();
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    seconds += elapsed;
    state.SetIterationTime(elapsed);
  }
  const double per_call = seconds / static_cast<double>(state.iterations());
  reference_seconds()[name] = per_call;
  state.counters["ns_per_token"] = per_call * 1e9 / static_cast<double>(kTokens);
  const auto found = reference_seconds().find(reference);
  if (!reference.empty() && found != reference_seconds().end())
    state.counters["ratio"] = per_call / found->second;
  state.SetLabel(std::string(kvbits::DefaultBackend::name()));
}

void bench_heads(benchmark::State& state, std::size_t kv_heads, std::size_t heads, int bits) {
  Cache& cache = filled_cache(kv_heads, bits);
  std::mt19937 rng(2);
  const auto q = random_vector(rng, heads * kDim);
  std::vector<float> out(q.size());
  const std::string width = "/bits" + std::to_string(bits);
  time_attend(
      state, [&] { cache.attend(0, q, out); }, "heads" + std::to_string(heads) + width,
      heads == 1 ? std::string() : "heads1" + width);
  benchmark::DoNotOptimize(out.data());
}

void bench_threads(benchmark::State& state, std::size_t kv_heads, std::size_t heads, int bits,
                   std::size_t threads) {
  Cache& cache = filled_cache(kv_heads, bits);
  static kvbits::ThreadPool pool(2);
  std::mt19937 rng(3);
  const auto q = random_vector(rng, heads * kDim);
  std::vector<float> out(q.size());
  const std::string shape =
      "heads" + std::to_string(heads) + "_kv" + std::to_string(kv_heads) + "/bits" + std::to_string(bits);
  time_attend(
      state, [&] { cache.attend_parallel(0, q, out, threads, pool); },
      shape + "/threads" + std::to_string(threads), threads == 1 ? std::string() : shape + "/threads1");
  benchmark::DoNotOptimize(out.data());
}

const int kRegistered = [] {
  const std::string suffix = "/d128/N32768";
  for (int bits : {2, 4, 8, 16}) {
    // One query head over one KV head first: the reference of the grouped rows.
    benchmark::RegisterBenchmark(("gqa/heads1_kv1/bits" + std::to_string(bits) + suffix).c_str(),
                                 [bits](benchmark::State& s) { bench_heads(s, 1, 1, bits); })
        ->UseManualTime();
    benchmark::RegisterBenchmark(("gqa/heads8_kv2/bits" + std::to_string(bits) + suffix).c_str(),
                                 [bits](benchmark::State& s) { bench_heads(s, 2, 8, bits); })
        ->UseManualTime();
  }
  for (const auto& [kv_heads, heads] : {std::pair<std::size_t, std::size_t>{2, 8}, {1, 1}}) {
    for (std::size_t threads : {1u, 2u}) {
      const std::string name = "threads/heads" + std::to_string(heads) + "_kv" + std::to_string(kv_heads) +
                               "/bits4" + suffix + "/threads" + std::to_string(threads);
      benchmark::RegisterBenchmark(name.c_str(), [kv_heads = kv_heads, heads = heads,
                                                  threads](benchmark::State& s) {
        bench_threads(s, kv_heads, heads, 4, threads);
      })->UseManualTime();
    }
  }
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
