// SPDX-License-Identifier: MIT
// Decode attention: one query, one KV head, single thread, over contexts of
// 1k, 4k and 32k tokens at head_dim 64 and 128. The FP32 baseline runs first
// for every shape; each cache variant reports its time as a ratio to it.
// Then the adaptive cache: attention with per-token statistics on vs off, and
// a stories260K-shaped decode step's appends with and without decision ages
// against its attention, also with bench_model's tiered policy against the
// static cache of its oldest widths.
#include "kvbits/cache/quantized_kv_cache.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <map>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include "kvbits/kvbits.hpp"

namespace {

// Thread CPU time: the machine is shared, and wall time would charge this
// benchmark for other processes' time slices.
double thread_seconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + 1e-9 * static_cast<double>(now.tv_nsec);
}

std::vector<float> random_vector(std::mt19937& rng, std::size_t n) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(n);
  for (float& value : x) value = normal(rng);
  return x;
}

// Seconds per attend of the FP32 baseline, keyed by (head_dim, context).
std::map<std::pair<std::size_t, std::size_t>, double>& baseline_seconds() {
  static std::map<std::pair<std::size_t, std::size_t>, double> table;
  return table;
}

// Shared reporting: ns per context token, GB/s of K+V read, ratio to FP32.
void report(benchmark::State& state, std::size_t d, std::size_t tokens, std::size_t kv_bytes, double seconds,
            bool is_baseline) {
  const double per_call = seconds / static_cast<double>(state.iterations());
  state.counters["ns_per_token"] = per_call * 1e9 / static_cast<double>(tokens);
  state.counters["GB/s"] = static_cast<double>(kv_bytes) / per_call * 1e-9;
  state.counters["bits/elem"] = 8.0 * static_cast<double>(kv_bytes) / static_cast<double>(2 * tokens * d);
  state.SetBytesProcessed(static_cast<std::int64_t>(kv_bytes) * state.iterations());
  const auto key = std::make_pair(d, tokens);
  if (is_baseline) baseline_seconds()[key] = per_call;
  if (const auto it = baseline_seconds().find(key); it != baseline_seconds().end()) {
    state.counters["x_fp32"] = per_call / it->second;
  }
}

// The FP32 baseline: contiguous K [N][D] and V [N][D], one pass of FMA dot
// products, one vectorised exp pass, one pass of FMA accumulation with the
// output held in registers. D is a template parameter so loops fully unroll.
template <std::size_t D>
struct Fp32Attention {
  using batch = xsimd::batch<float>;
  static constexpr std::size_t kLanes = batch::size;
  static_assert(D % kLanes == 0, "head_dim must fill whole SIMD registers");
  static constexpr std::size_t kRegs = D / kLanes;

  static void run(const float* q, const float* keys, const float* values, std::size_t tokens, float* scores,
                  float* out) {
    batch qv[kRegs];
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
    for (std::size_t j = 0; j < kRegs; ++j) qv[j] = batch::load_unaligned(q + j * kLanes) * batch(scale);
    for (std::size_t t = 0; t < tokens; ++t) {
      const float* k = keys + t * D;
      batch acc0 = qv[0] * batch::load_aligned(k);
      batch acc1(0.0f);
      for (std::size_t j = 1; j < kRegs; j += 2) {
        acc1 = xsimd::fma(qv[j], batch::load_aligned(k + j * kLanes), acc1);
        if (j + 1 < kRegs) acc0 = xsimd::fma(qv[j + 1], batch::load_aligned(k + (j + 1) * kLanes), acc0);
      }
      scores[t] = xsimd::hadd(acc0 + acc1);
    }
    const float max = kvbits::detail::max_of(scores, tokens);
    const float sum = kvbits::detail::exp_shift_sum(scores, tokens, max);
    batch acc[kRegs];
    for (std::size_t j = 0; j < kRegs; ++j) acc[j] = batch(0.0f);
    for (std::size_t t = 0; t < tokens; ++t) {
      const batch p(scores[t]);
      const float* v = values + t * D;
      for (std::size_t j = 0; j < kRegs; ++j)
        acc[j] = xsimd::fma(p, batch::load_aligned(v + j * kLanes), acc[j]);
    }
    const batch inverse(1.0f / sum);
    for (std::size_t j = 0; j < kRegs; ++j) (acc[j] * inverse).store_unaligned(out + j * kLanes);
  }
};

template <std::size_t D>
void bench_fp32(benchmark::State& state, std::size_t tokens) {
  std::mt19937 rng(1);
  std::vector<float, xsimd::aligned_allocator<float, 64>> keys(tokens * D), values(tokens * D);
  const auto k = random_vector(rng, tokens * D);
  const auto v = random_vector(rng, tokens * D);
  std::copy(k.begin(), k.end(), keys.begin());
  std::copy(v.begin(), v.end(), values.begin());
  const auto q = random_vector(rng, D);
  std::vector<float> scores(tokens), out(D);
  const double start = thread_seconds();
  for (auto _ : state) {
    Fp32Attention<D>::run(q.data(), keys.data(), values.data(), tokens, scores.data(), out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  const double seconds = thread_seconds() - start;
  report(state, D, tokens, 2 * tokens * D * sizeof(float), seconds, true);
}

// 25% 2-bit, 50% 4-bit, 25% 8-bit tokens (K and V alike), interleaved by position.
struct MixedPolicy {
  [[nodiscard]] kvbits::BitDecision decide(const kvbits::TokenInfo& token) const noexcept {
    switch (token.position % 4) {
      case 0:
        return {2, 2};
      case 3:
        return {8, 8};
      default:
        return {4, 4};
    }
  }
};

template <class Policy>
void bench_cache(benchmark::State& state, std::size_t d, std::size_t tokens, Policy policy) {
  kvbits::CacheOptions options;
  options.kv_heads = 1;
  options.head_dim = d;
  options.capacity = tokens;
  kvbits::QuantizedKVCache<Policy, kvbits::DefaultBackend> cache(options, policy);
  std::mt19937 rng(1);
  for (std::size_t t = 0; t < tokens; ++t) {
    const auto k = random_vector(rng, d);
    const auto v = random_vector(rng, d);
    cache.append(0, k, v, kvbits::TokenInfo{0, t, -1, {}});
  }
  const auto q = random_vector(rng, d);
  std::vector<float> out(d);
  const auto memory = cache.memory().total;
  const std::size_t kv_bytes = memory.code_bytes + memory.metadata_bytes + memory.residual_bytes;
  cache.attend(0, q, out);  // grow scratch outside the timed loop
  const double start = thread_seconds();
  for (auto _ : state) {
    cache.attend(0, q, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  const double seconds = thread_seconds() - start;
  state.SetLabel(std::string(kvbits::DefaultBackend::name()));
  report(state, d, tokens, kv_bytes, seconds, false);
}

// The parts of one attend, timed alone over N contiguous packed rows: the
// backend's dot_rows (scores) and axpy_rows (weighted values) and the softmax
// passes. They show which part dominates the cache's time.
enum class Part { dot_rows, axpy_rows, softmax };

void bench_part(benchmark::State& state, std::size_t d, std::size_t tokens, int bits, Part part) {
  using B = kvbits::DefaultBackend;
  const kvbits::QuantFormat format{bits, 0, kvbits::Scheme::asymmetric};
  const std::size_t row = kvbits::packed_size(format, d);
  std::vector<std::uint8_t> rows(tokens * row);
  std::mt19937 rng(1);
  for (std::size_t t = 0; t < tokens; ++t) {
    B::encode(format, random_vector(rng, d), std::span<std::uint8_t>(rows).subspan(t * row, row));
  }
  const auto q = random_vector(rng, d);
  std::vector<float> scores(tokens), weights(tokens, 1.0f / static_cast<float>(tokens)), out(d);
  const double start = thread_seconds();
  for (auto _ : state) {
    switch (part) {
      case Part::dot_rows:
        B::dot_rows(format, q.data(), d, rows.data(), row, tokens, scores.data());
        break;
      case Part::axpy_rows:
        B::axpy_rows(format, weights.data(), d, rows.data(), row, tokens, out.data());
        break;
      case Part::softmax: {
        const float max = kvbits::detail::max_of(scores.data(), tokens);
        benchmark::DoNotOptimize(kvbits::detail::exp_shift_sum(scores.data(), tokens, max));
        break;
      }
    }
    benchmark::DoNotOptimize(scores.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  const double seconds = thread_seconds() - start;
  const double per_call = seconds / static_cast<double>(state.iterations());
  state.counters["ns_per_token"] = per_call * 1e9 / static_cast<double>(tokens);
  state.SetLabel(std::string(B::name()));
}

// A policy that wants attention statistics and otherwise acts as MixedPolicy.
struct StatisticsPolicy {
  [[nodiscard]] bool wants_attention_stats() const noexcept { return true; }
  [[nodiscard]] kvbits::BitDecision decide(const kvbits::TokenInfo& token) const noexcept {
    return MixedPolicy{}.decide(token);
  }
};

// Attention of `heads` query heads over one KV head of N tokens, with or without statistics:
// the statistics' cost is the ratio of the two rows.
template <class Policy>
void bench_statistics(benchmark::State& state, std::size_t d, std::size_t tokens, std::size_t heads) {
  kvbits::CacheOptions options;
  options.kv_heads = 1;
  options.head_dim = d;
  options.capacity = tokens;
  kvbits::QuantizedKVCache<Policy, kvbits::DefaultBackend> cache(options);
  std::mt19937 rng(1);
  for (std::size_t t = 0; t < tokens; ++t) {
    cache.append(0, random_vector(rng, d), random_vector(rng, d), kvbits::TokenInfo{0, t, -1, {}});
  }
  const auto q = random_vector(rng, heads * d);
  std::vector<float> out(heads * d);
  cache.attend(0, q, out);
  const double start = thread_seconds();
  for (auto _ : state) {
    cache.attend(0, q, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  const double per_call = (thread_seconds() - start) / static_cast<double>(state.iterations());
  state.counters["ns_per_token"] = per_call * 1e9 / static_cast<double>(tokens);
  state.counters["heads"] = static_cast<double>(heads);
  state.SetLabel(std::string(kvbits::DefaultBackend::name()));
}

// Tiers-like re-decisions: 8/8 when a token is first decided, then one step narrower
// at each age (8 -> 6 -> 4 -> 2), so every age re-encodes its token.
struct TieredContextPolicy {
  std::array<std::size_t, 4> ages{1, 4, 16, 64};
  bool revisit = true;
  [[nodiscard]] std::span<const std::size_t> decision_ages() const noexcept {
    return revisit ? std::span<const std::size_t>(ages) : std::span<const std::size_t>();
  }
  [[nodiscard]] kvbits::BitDecision decide(const kvbits::DecisionContext& c) const noexcept {
    const auto narrower = [](int bits) { return bits > 8 ? 8 : bits == 8 ? 6 : bits == 6 ? 4 : 2; };
    return {narrower(c.current.key_bits), narrower(c.current.value_bits)};
  }
};

enum class StepPart { append_with_ages, append_without_ages, attention };

// The real tiered policy of bench_model's stories260K row and the static cache of its oldest widths.
kvbits::TieredPolicy stories_tiers() {
  return kvbits::TieredPolicy({{4, {16, 16}}, {16, {8, 8}}, {64, {6, 4}}}, {5, 3});
}
kvbits::TieredPolicy stories_oldest() { return kvbits::TieredPolicy({}, {5, 3}); }

// One decode step of a stories260K-shaped cache (5 layers, 4 KV heads, 8 query
// heads, head_dim 8) holding `start` to `capacity` tokens: its appends or its
// attention, in ns per step (thread CPU time).
template <class Policy>
void bench_decode_step(benchmark::State& state, StepPart part, Policy policy, std::size_t start,
                       std::size_t capacity) {
  constexpr std::size_t kLayers = 5, kKvHeads = 4, kHeads = 8, kDim = 8;
  kvbits::CacheOptions options;
  options.layers = kLayers;
  options.kv_heads = kKvHeads;
  options.head_dim = kDim;
  options.capacity = capacity;
  kvbits::QuantizedKVCache<Policy, kvbits::DefaultBackend> cache(options, std::move(policy));
  std::mt19937 rng(1);
  const auto k = random_vector(rng, 4096 * kKvHeads * kDim);
  const auto q = random_vector(rng, kHeads * kDim);
  std::vector<float> out(kHeads * kDim);
  std::size_t next = 0;
  const auto append_step = [&] {
    const std::span<const float> row(k.data() + (next++ % 4096) * kKvHeads * kDim, kKvHeads * kDim);
    for (std::size_t l = 0; l < kLayers; ++l) cache.append(l, row, row);
  };
  const auto refill = [&] {
    cache.clear();
    for (std::size_t t = 0; t < start; ++t) append_step();
  };
  refill();
  double seconds = 0.0;
  for (auto _ : state) {
    if (cache.size(0) == capacity) refill();
    const double begin = thread_seconds();
    if (part == StepPart::attention) {
      for (std::size_t l = 0; l < kLayers; ++l) cache.attend(l, q, out);
      benchmark::DoNotOptimize(out.data());
    } else {
      append_step();
    }
    seconds += thread_seconds() - begin;
    if (part == StepPart::attention) append_step();  // the context grows as in decoding
  }
  state.counters["ns_per_step"] = seconds * 1e9 / static_cast<double>(state.iterations());
  state.SetLabel(std::string(kvbits::DefaultBackend::name()));
}

void register_decode_steps() {
  // The context policy: no window, decided on insert, revisited at every age (512-1024 tokens).
  const auto context = [](bool revisit) {
    TieredContextPolicy policy;
    policy.revisit = revisit;
    return policy;
  };
  benchmark::RegisterBenchmark("decode_step_attention/stories260K", [context](benchmark::State& s) {
    bench_decode_step(s, StepPart::attention, context(true), 512, 1024);
  });
  benchmark::RegisterBenchmark("decode_step_append_no_ages/stories260K", [context](benchmark::State& s) {
    bench_decode_step(s, StepPart::append_without_ages, context(false), 512, 1024);
  });
  benchmark::RegisterBenchmark("decode_step_append_ages_1_4_16_64/stories260K",
                               [context](benchmark::State& s) {
                                 bench_decode_step(s, StepPart::append_with_ages, context(true), 512, 1024);
                               });
  // bench_model's policies over 128-384 tokens (its 512-token runs average 256): the tiered
  // minus the static rows are the demotion work (appends) and the cost of more streams (attention).
  const std::pair<const char*, kvbits::TieredPolicy (*)()> policies[] = {
      {"static:5,3", stories_oldest}, {"tiers:4=16/16,16=8/8,64=6/4,*=5/3", stories_tiers}};
  for (const auto& [name, make] : policies) {
    benchmark::RegisterBenchmark(("decode_step_append/stories260K/" + std::string(name)).c_str(),
                                 [make = make](benchmark::State& s) {
                                   bench_decode_step(s, StepPart::append_with_ages, make(), 128, 384);
                                 });
    benchmark::RegisterBenchmark(
        ("decode_step_attention/stories260K/" + std::string(name)).c_str(),
        [make = make](benchmark::State& s) { bench_decode_step(s, StepPart::attention, make(), 128, 384); });
  }
}

template <std::size_t D>
void register_shape(std::size_t tokens) {
  const std::string suffix = "/d" + std::to_string(D) + "/N" + std::to_string(tokens);
  benchmark::RegisterBenchmark(("fp32_baseline" + suffix).c_str(),
                               [tokens](benchmark::State& s) { bench_fp32<D>(s, tokens); });
  for (int bits : {16, 8, 4, 2}) {
    benchmark::RegisterBenchmark(("static" + std::to_string(bits) + suffix).c_str(),
                                 [tokens, bits](benchmark::State& s) {
                                   bench_cache(s, D, tokens, kvbits::StaticPolicy{{bits, bits}});
                                 });
  }
  benchmark::RegisterBenchmark(("mixed_2_4_8" + suffix).c_str(),
                               [tokens](benchmark::State& s) { bench_cache(s, D, tokens, MixedPolicy{}); });
}

}  // namespace

int main(int argc, char** argv) {
  for (std::size_t tokens : {1024u, 4096u, 32768u}) {
    register_shape<64>(tokens);
    register_shape<128>(tokens);
  }
  for (int bits : {2, 4, 8, 16, 32}) {
    const std::string suffix = "/bits" + std::to_string(bits) + "/d128/N32768";
    benchmark::RegisterBenchmark(("part_dot_rows" + suffix).c_str(), [bits](benchmark::State& s) {
      bench_part(s, 128, 32768, bits, Part::dot_rows);
    });
    benchmark::RegisterBenchmark(("part_axpy_rows" + suffix).c_str(), [bits](benchmark::State& s) {
      bench_part(s, 128, 32768, bits, Part::axpy_rows);
    });
  }
  benchmark::RegisterBenchmark("part_softmax/N32768",
                               [](benchmark::State& s) { bench_part(s, 128, 32768, 4, Part::softmax); });
  for (std::size_t heads : {1u, 4u}) {
    const std::string suffix = "/d128/N32768/heads" + std::to_string(heads);
    benchmark::RegisterBenchmark(("statistics_off" + suffix).c_str(), [heads](benchmark::State& s) {
      bench_statistics<MixedPolicy>(s, 128, 32768, heads);
    });
    benchmark::RegisterBenchmark(("statistics_on" + suffix).c_str(), [heads](benchmark::State& s) {
      bench_statistics<StatisticsPolicy>(s, 128, 32768, heads);
    });
  }
  register_decode_steps();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
