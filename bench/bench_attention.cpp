// SPDX-License-Identifier: MIT
// Decode attention: one query, one KV head, single thread, over contexts of
// 1k, 4k and 32k tokens at head_dim 64 and 128. The FP32 and FP16 baselines
// run first for every shape; each cache variant reports its time as a ratio to
// them (x_fp32, x_fp16) and to a streaming read of the bytes it reads, timed
// just before it (memory_read/<variant>, x_read). The part_ rows time the
// backend's row kernels alone. The paired/ rows time a cache and its baseline
// in alternation, each read cold, with the default page planes and with 64 KiB
// ones (_plane64k).
// Then the adaptive cache: attention with per-token statistics on vs off, and
// a stories260K-shaped decode step's appends with and without decision ages
// against its attention, also with bench_model's tiered policy against the
// static cache of its oldest widths.
#include "kvbits/cache/quantized_kv_cache.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <initializer_list>
#include <map>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include "bench_support.hpp"

#include "kvbits/kvbits.hpp"

namespace {

using kvbits::bench::random_vector;
using kvbits::bench::seconds_per_attend;
using kvbits::bench::thread_seconds;

// The baselines a row is compared with: FP32 and FP16 attention over contiguous
// K and V, and a streaming read of the bytes a cache row reads.
enum class Baseline { fp32, fp16, memory_read };

// Seconds per call of a baseline row, keyed by (baseline, head_dim, context, bytes read);
// bytes is 0 for the attention baselines, which every row of the shape is compared with.
using BaselineKey = std::tuple<Baseline, std::size_t, std::size_t, std::size_t>;
std::map<BaselineKey, double>& baseline_seconds() {
  static std::map<BaselineKey, double> table;
  return table;
}

void compare(benchmark::State& state, const char* counter, const BaselineKey& key, double per_call) {
  if (const auto it = baseline_seconds().find(key); it != baseline_seconds().end()) {
    state.counters[counter] = per_call / it->second;
  }
}

// Shared reporting: ns per context token, GB/s of K+V read, ratio to the FP32 and
// FP16 baselines and to a streaming read of the same bytes (when that row ran first).
void report(benchmark::State& state, std::size_t d, std::size_t tokens, std::size_t kv_bytes, double seconds,
            std::optional<Baseline> baseline = std::nullopt) {
  const double per_call = seconds / static_cast<double>(state.iterations());
  state.counters["ns_per_token"] = per_call * 1e9 / static_cast<double>(tokens);
  state.counters["GB/s"] = static_cast<double>(kv_bytes) / per_call * 1e-9;
  state.counters["bits/elem"] = 8.0 * static_cast<double>(kv_bytes) / static_cast<double>(2 * tokens * d);
  state.SetBytesProcessed(static_cast<std::int64_t>(kv_bytes) * state.iterations());
  if (baseline) {
    const std::size_t bytes = *baseline == Baseline::memory_read ? kv_bytes : 0;
    baseline_seconds()[BaselineKey{*baseline, d, tokens, bytes}] = per_call;
  }
  if (baseline != Baseline::memory_read) {
    compare(state, "x_fp32", BaselineKey{Baseline::fp32, d, tokens, 0}, per_call);
    compare(state, "x_fp16", BaselineKey{Baseline::fp16, d, tokens, 0}, per_call);
    compare(state, "x_read", BaselineKey{Baseline::memory_read, d, tokens, kv_bytes}, per_call);
  }
}

using batch = xsimd::batch<float>;

// kLanes floats at p, loaded from floats or converted from binary16 (F16C when the build has it).
template <class T>
batch load_lanes(const T* p) {
  if constexpr (std::is_same_v<T, float>) {
    return batch::load_aligned(p);
  } else {
#if defined(__AVX512F__)
    if constexpr (batch::size == 16)
      return batch(_mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(p))));
#endif
#if defined(__F16C__)
    if constexpr (batch::size == 8)
      return batch(_mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(p))));
#endif
    alignas(64) float lanes[batch::size];
    for (std::size_t i = 0; i < batch::size; ++i) lanes[i] = kvbits::half_to_float(p[i]);
    return batch::load_aligned(lanes);
  }
}

// The FP32 (T = float) and FP16 (T = binary16 bits) baselines: contiguous K
// [N][D] and V [N][D], one pass of FMA dot products, one vectorised exp pass,
// one pass of FMA accumulation with the output held in registers. D is a
// template parameter so loops fully unroll.
template <std::size_t D, class T = float>
struct Fp32Attention {
  static constexpr std::size_t kLanes = batch::size;
  static_assert(D % kLanes == 0, "head_dim must fill whole SIMD registers");
  static constexpr std::size_t kRegs = D / kLanes;

  static void run(const float* q, const T* keys, const T* values, std::size_t tokens, float* scores,
                  float* out) {
    batch qv[kRegs];
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
    for (std::size_t j = 0; j < kRegs; ++j) qv[j] = batch::load_unaligned(q + j * kLanes) * batch(scale);
    for (std::size_t t = 0; t < tokens; ++t) {
      const T* k = keys + t * D;
      batch acc0 = qv[0] * load_lanes(k);
      batch acc1(0.0f);
      for (std::size_t j = 1; j < kRegs; j += 2) {
        acc1 = xsimd::fma(qv[j], load_lanes(k + j * kLanes), acc1);
        if (j + 1 < kRegs) acc0 = xsimd::fma(qv[j + 1], load_lanes(k + (j + 1) * kLanes), acc0);
      }
      scores[t] = xsimd::hadd(acc0 + acc1);
    }
    const float max = kvbits::detail::max_of(scores, tokens);
    const float sum = kvbits::detail::exp_shift_sum(scores, tokens, max);
    batch acc[kRegs];
    for (std::size_t j = 0; j < kRegs; ++j) acc[j] = batch(0.0f);
    for (std::size_t t = 0; t < tokens; ++t) {
      const batch p(scores[t]);
      const T* v = values + t * D;
      for (std::size_t j = 0; j < kRegs; ++j) acc[j] = xsimd::fma(p, load_lanes(v + j * kLanes), acc[j]);
    }
    const batch inverse(1.0f / sum);
    for (std::size_t j = 0; j < kRegs; ++j) (acc[j] * inverse).store_unaligned(out + j * kLanes);
  }
};

// n random values stored as T (float, or binary16 bits for std::uint16_t), 64-byte aligned.
template <class T>
std::vector<T, xsimd::aligned_allocator<T, 64>> random_stored(std::mt19937& rng, std::size_t n) {
  const auto x = random_vector(rng, n);
  std::vector<T, xsimd::aligned_allocator<T, 64>> stored(n);
  std::transform(x.begin(), x.end(), stored.begin(), [](float value) {
    if constexpr (std::is_same_v<T, float>) {
      return value;
    } else {
      return kvbits::float_to_half(value);
    }
  });
  return stored;
}

// T = float: the FP32 baseline; T = std::uint16_t: the FP16 one (binary16 bits).
template <std::size_t D, class T = float>
void bench_fp32(benchmark::State& state, std::size_t tokens) {
  std::mt19937 rng(1);
  const auto keys = random_stored<T>(rng, tokens * D);
  const auto values = random_stored<T>(rng, tokens * D);
  const auto q = random_vector(rng, D);
  std::vector<float> scores(tokens), out(D);
  const double start = thread_seconds();
  for (auto _ : state) {
    Fp32Attention<D, T>::run(q.data(), keys.data(), values.data(), tokens, scores.data(), out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  const double seconds = thread_seconds() - start;
  report(state, D, tokens, 2 * tokens * D * sizeof(T), seconds,
         std::is_same_v<T, float> ? Baseline::fp32 : Baseline::fp16);
}

// The memory floor: one streaming read of `bytes` contiguous bytes (integer adds
// into four accumulators, so neither FP latency nor denormals set the pace).
void bench_read(benchmark::State& state, std::size_t d, std::size_t tokens, std::size_t bytes) {
  using word = xsimd::batch<std::uint32_t>;
  constexpr std::size_t kStep = 4 * word::size;
  const std::size_t words = (bytes / sizeof(std::uint32_t) + kStep - 1) / kStep * kStep;
  std::vector<std::uint32_t, xsimd::aligned_allocator<std::uint32_t, 64>> buffer(words);
  for (std::size_t i = 0; i < words; ++i) buffer[i] = static_cast<std::uint32_t>(i * 2654435761u);
  const double start = thread_seconds();
  for (auto _ : state) {
    word acc[4] = {word(0u), word(0u), word(0u), word(0u)};
    for (std::size_t i = 0; i < words; i += kStep) {
      for (std::size_t a = 0; a < 4; ++a) acc[a] += word::load_aligned(buffer.data() + i + a * word::size);
    }
    const word sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    benchmark::DoNotOptimize(sum);
  }
  const double seconds = thread_seconds() - start;
  report(state, d, tokens, bytes, seconds, Baseline::memory_read);
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

// One KV head of `tokens` random tokens under `policy`, pages of `plane_bytes` per plane; rng is
// left after the tokens.
template <class Policy>
kvbits::QuantizedKVCache<Policy, kvbits::DefaultBackend> make_cache(
    std::size_t d, std::size_t tokens, Policy policy, std::mt19937& rng,
    std::size_t plane_bytes = kvbits::kDefaultPagePlaneBytes) {
  kvbits::CacheOptions options;
  options.kv_heads = 1;
  options.head_dim = d;
  options.capacity = tokens;
  options.page_plane_bytes = plane_bytes;
  kvbits::QuantizedKVCache<Policy, kvbits::DefaultBackend> cache(options, policy);
  for (std::size_t t = 0; t < tokens; ++t) {
    const auto k = random_vector(rng, d);
    const auto v = random_vector(rng, d);
    cache.append(0, k, v, kvbits::TokenInfo{0, t, -1, {}});
  }
  return cache;
}

// Bytes of K and V one attend over `cache` reads.
template <class Cache>
std::size_t kv_bytes_of(const Cache& cache) {
  const auto memory = cache.memory().total;
  return memory.code_bytes + memory.metadata_bytes + memory.residual_bytes;
}

template <class Policy>
void bench_cache(benchmark::State& state, std::size_t d, std::size_t tokens, Policy policy) {
  std::mt19937 rng(1);
  auto cache = make_cache(d, tokens, policy, rng);
  const auto q = random_vector(rng, d);
  std::vector<float> out(d);
  const std::size_t kv_bytes = kv_bytes_of(cache);
  const double seconds = seconds_per_attend(state, cache, q, out) * static_cast<double>(state.iterations());
  state.SetLabel(std::string(kvbits::DefaultBackend::name()));
  report(state, d, tokens, kv_bytes, seconds);
}

// The memory-read baseline for bench_cache(d, tokens, policy): a streaming read of as many bytes.
template <class Policy>
void bench_cache_read(benchmark::State& state, std::size_t d, std::size_t tokens, Policy policy) {
  std::mt19937 rng(1);
  bench_read(state, d, tokens, kv_bytes_of(make_cache(d, tokens, policy, rng)));
}

// A cache and its baseline (FP32 for T = float, FP16 for T = binary16 bits) on
// the same shape, timed in alternation inside one benchmark loop: on a shared
// machine whose memory bandwidth drifts with other jobs, the per-iteration
// pairing keeps the ratio (x_base) meaningful where separately timed rows drift.
template <std::size_t D, class T, class Policy>
void bench_paired(benchmark::State& state, std::size_t tokens, Policy policy,
                  std::size_t plane_bytes = kvbits::kDefaultPagePlaneBytes) {
  std::mt19937 rng(1);
  const auto keys = random_stored<T>(rng, tokens * D);
  const auto values = random_stored<T>(rng, tokens * D);
  auto cache = make_cache(D, tokens, policy, rng, plane_bytes);
  const auto q = random_vector(rng, D);
  std::vector<float> scores(tokens), out(D);
  cache.attend(0, q, out);
  double base = 0.0;
  double mine = 0.0;
  for (auto _ : state) {
    const double start = thread_seconds();
    Fp32Attention<D, T>::run(q.data(), keys.data(), values.data(), tokens, scores.data(), out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
    const double middle = thread_seconds();
    cache.attend(0, q, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
    base += middle - start;
    mine += thread_seconds() - middle;
  }
  const double calls = static_cast<double>(state.iterations());
  state.counters["ns_per_token"] = mine / calls * 1e9 / static_cast<double>(tokens);
  state.counters["base_ns_per_token"] = base / calls * 1e9 / static_cast<double>(tokens);
  state.counters["GB/s"] = static_cast<double>(kv_bytes_of(cache)) / (mine / calls) * 1e-9;
  state.counters["x_base"] = mine / base;
  state.SetLabel(std::string(kvbits::DefaultBackend::name()));
}

// The parts of one attend, timed alone over N contiguous packed rows: the
// backend's dot_rows (scores) and axpy_rows (weighted values) and the softmax
// passes. They show which part dominates the cache's time.
enum class Part { dot_rows, axpy_rows, softmax };

void bench_part(benchmark::State& state, std::size_t d, std::size_t tokens, int bits, Part part,
                std::size_t group = 0) {
  using B = kvbits::DefaultBackend;
  const kvbits::QuantFormat format{bits, group, kvbits::Scheme::asymmetric};
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
  if (part != Part::softmax) state.counters["GB/s"] = static_cast<double>(rows.size()) / per_call * 1e-9;
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
  const double per_call = seconds_per_attend(state, cache, q, out);
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

// The real tiered policy of bench_model's stories260K row, the static cache of its oldest widths,
// and at 8.5 bits/element the best static configuration (an fp16 window of 16) and the tiers that
// beat it (docs/results.md): the tiers' demotions cost what their appends add to the static one's.
kvbits::TieredPolicy stories_tiers() {
  return kvbits::TieredPolicy({{4, {16, 16}}, {16, {8, 8}}, {64, {6, 4}}}, {5, 3});
}
kvbits::TieredPolicy stories_oldest() { return kvbits::TieredPolicy({}, {5, 3}); }
kvbits::TieredPolicy stories_best_static_8_5() { return kvbits::TieredPolicy({{16, {16, 16}}}, {5, 3}); }
kvbits::TieredPolicy stories_best_tiers_8_5() {
  return kvbits::TieredPolicy({{4, {16, 16}}, {16, {8, 6}}, {64, {6, 4}}}, {5, 3});
}

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
      {"static:5,3", stories_oldest},
      {"tiers:4=16/16,16=8/8,64=6/4,*=5/3", stories_tiers},
      {"tiers:16=16/16,*=5/3", stories_best_static_8_5},
      {"tiers:4=16/16,16=8/6,64=6/4,*=5/3", stories_best_tiers_8_5}};
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

// The baselines and cache rows of one shape; `widths` are the static caches' bit widths.
template <std::size_t D>
void register_shape(std::size_t tokens, std::initializer_list<int> widths = {32, 16, 8, 4, 2},
                    bool mixed = true) {
  const std::string suffix = "/d" + std::to_string(D) + "/N" + std::to_string(tokens);
  benchmark::RegisterBenchmark(("fp32_baseline" + suffix).c_str(),
                               [tokens](benchmark::State& s) { bench_fp32<D>(s, tokens); });
  benchmark::RegisterBenchmark(("fp16_baseline" + suffix).c_str(),
                               [tokens](benchmark::State& s) { bench_fp32<D, std::uint16_t>(s, tokens); });
  // Each cache row follows a streaming read of the bytes it reads (memory_read/<row>), its x_read.
  const auto with_read = [&](const std::string& name, auto policy) {
    benchmark::RegisterBenchmark(
        ("memory_read/" + name + suffix).c_str(),
        [tokens, policy](benchmark::State& s) { bench_cache_read(s, D, tokens, policy); });
    benchmark::RegisterBenchmark((name + suffix).c_str(), [tokens, policy](benchmark::State& s) {
      bench_cache(s, D, tokens, policy);
    });
  };
  for (int bits : widths) with_read("static" + std::to_string(bits), kvbits::StaticPolicy{{bits, bits}});
  if (mixed) with_read("mixed_2_4_8", MixedPolicy{});
}

}  // namespace

int main(int argc, char** argv) {
  for (std::size_t tokens : {1024u, 4096u, 32768u}) {
    register_shape<64>(tokens);
    register_shape<128>(tokens);
  }
  // Cold for the 16- and 32-bit caches: 128k tokens are 64 MB of FP16 and 128 MB
  // of FP32 K+V, beyond any last-level cache this runs on.
  register_shape<128>(131072, {32, 16}, false);
  for (std::size_t tokens : {32768u, 131072u}) {
    const std::string suffix = "/d128/N" + std::to_string(tokens);
    benchmark::RegisterBenchmark(("paired/static32_vs_fp32" + suffix).c_str(), [tokens](benchmark::State& s) {
      bench_paired<128, float>(s, tokens, kvbits::StaticPolicy{{32, 32}});
    });
    benchmark::RegisterBenchmark(("paired/static16_vs_fp16" + suffix).c_str(), [tokens](benchmark::State& s) {
      bench_paired<128, std::uint16_t>(s, tokens, kvbits::StaticPolicy{{16, 16}});
    });
  }
  for (int bits : {8, 4, 2}) {
    benchmark::RegisterBenchmark(("paired/static" + std::to_string(bits) + "_vs_fp32/d128/N32768").c_str(),
                                 [bits](benchmark::State& s) {
                                   bench_paired<128, float>(s, 32768, kvbits::StaticPolicy{{bits, bits}});
                                 });
  }
  benchmark::RegisterBenchmark("paired/mixed_2_4_8_vs_fp32/d128/N32768", [](benchmark::State& s) {
    bench_paired<128, float>(s, 32768, MixedPolicy{});
  });
  // The same cold pairs with 64 KiB page planes (CacheOptions::page_plane_bytes): a 16-bit page of
  // 256 tokens instead of 128, a 4-bit one of 960 instead of 240; a 32-bit page holds 128 either way.
  constexpr std::size_t kLargePlane = 65536;
  for (std::size_t tokens : {32768u, 131072u}) {
    const std::string suffix = "/d128/N" + std::to_string(tokens);
    benchmark::RegisterBenchmark(
        ("paired/static32_plane64k_vs_fp32" + suffix).c_str(), [tokens](benchmark::State& s) {
          bench_paired<128, float>(s, tokens, kvbits::StaticPolicy{{32, 32}}, kLargePlane);
        });
    benchmark::RegisterBenchmark(
        ("paired/static16_plane64k_vs_fp16" + suffix).c_str(), [tokens](benchmark::State& s) {
          bench_paired<128, std::uint16_t>(s, tokens, kvbits::StaticPolicy{{16, 16}}, kLargePlane);
        });
  }
  benchmark::RegisterBenchmark("paired/static4_plane64k_vs_fp32/d128/N32768", [](benchmark::State& s) {
    bench_paired<128, float>(s, 32768, kvbits::StaticPolicy{{4, 4}}, kLargePlane);
  });
  for (int bits : {2, 4, 8, 16, 32}) {
    const std::string suffix = "/bits" + std::to_string(bits) + "/d128/N32768";
    benchmark::RegisterBenchmark(("part_dot_rows" + suffix).c_str(), [bits](benchmark::State& s) {
      bench_part(s, 128, 32768, bits, Part::dot_rows);
    });
    benchmark::RegisterBenchmark(("part_axpy_rows" + suffix).c_str(), [bits](benchmark::State& s) {
      bench_part(s, 128, 32768, bits, Part::axpy_rows);
    });
  }
  // Rows of several groups (g = 32 at head_dim 64 and 128, as in the g=32 caches), 3 bits included.
  for (int bits : {2, 3, 4, 8}) {
    for (std::size_t d : {64u, 128u}) {
      const std::string suffix = "/bits" + std::to_string(bits) + "/g32/d" + std::to_string(d) + "/N32768";
      benchmark::RegisterBenchmark(("part_dot_rows" + suffix).c_str(), [bits, d](benchmark::State& s) {
        bench_part(s, d, 32768, bits, Part::dot_rows, 32);
      });
      benchmark::RegisterBenchmark(("part_axpy_rows" + suffix).c_str(), [bits, d](benchmark::State& s) {
        bench_part(s, d, 32768, bits, Part::axpy_rows, 32);
      });
    }
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
