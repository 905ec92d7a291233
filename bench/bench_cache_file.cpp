// SPDX-License-Identifier: MIT
// Cache files: save and load of a model-sized cache (32 layers x 8 kv heads x head_dim 128 x
// 4096 tokens, widths drawn from a six-pair mix, groups of 32, a 64-token float window and 4
// sinks) to and from memory, through a stream over a preallocated buffer, with a memcpy of the
// file's bytes as the baseline in the same binary. bytes/s counts the file's bytes for all
// three, so the rates read directly as ratios (speed_vs_memcpy reports them).
#include <benchmark/benchmark.h>

#include "bench_support.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <istream>
#include <ostream>
#include <span>
#include <sstream>
#include <streambuf>
#include <string>
#include <utility>
#include <vector>

#include "kvbits/cache/quantized_kv_cache.hpp"
#include "kvbits/core/random.hpp"
#include "kvbits/policy/random_policy.hpp"

namespace {

using kvbits::bench::thread_seconds;

using Cache = kvbits::QuantizedKVCache<kvbits::RandomPolicy>;

constexpr std::size_t kLayers = 32;
constexpr std::size_t kKvHeads = 8;
constexpr std::size_t kHeadDim = 128;
constexpr std::size_t kTokens = 4096;
constexpr std::size_t kDistinctTokens = 64;  // token vectors cycled through: filling needs no more

kvbits::CacheOptions cache_options() {
  kvbits::CacheOptions o;
  o.layers = kLayers;
  o.kv_heads = kKvHeads;
  o.head_dim = kHeadDim;
  o.capacity = kTokens;
  o.residual_window = 64;
  o.sink_tokens = 4;
  o.key.group_size = 32;
  o.value.group_size = 32;
  return o;
}

kvbits::RandomPolicy cache_policy() {
  return kvbits::RandomPolicy(kvbits::parse_width_mix("2/2:1,4/2:2,4/4:2,8/4:2,8/8:1,16/8:0.5"), 1);
}

// Filled once: 131072 appends take a while.
const Cache& filled_cache() {
  static const Cache cache = [] {
    Cache c(cache_options(), cache_policy());
    const std::size_t width = kKvHeads * kHeadDim;
    kvbits::detail::SplitMix64 random(2);
    std::vector<float> keys(kDistinctTokens * width), values(kDistinctTokens * width);
    for (float& x : keys) x = static_cast<float>(random.symmetric()) * 2.0f;
    for (float& x : values) x = static_cast<float>(random.symmetric());
    for (std::size_t t = 0; t < kTokens; ++t) {
      const std::size_t row = (t % kDistinctTokens) * width;
      for (std::size_t l = 0; l < kLayers; ++l) {
        c.append(l, std::span<const float>(keys).subspan(row, width),
                 std::span<const float>(values).subspan(row, width));
      }
    }
    return c;
  }();
  return cache;
}

// A stream buffer over caller-owned memory: writes fill it and reads drain it without
// allocating, so the benchmark times the cache file code, not a string growing.
class MemoryBuffer : public std::streambuf {
 public:
  explicit MemoryBuffer(std::span<char> bytes) {
    setp(bytes.data(), bytes.data() + bytes.size());
    setg(bytes.data(), bytes.data(), bytes.data() + bytes.size());
  }
  [[nodiscard]] std::size_t written() const { return static_cast<std::size_t>(pptr() - pbase()); }
};

// The file of filled_cache(), written once.
const std::vector<char>& cache_file() {
  static const std::vector<char> file = [] {
    std::ostringstream out(std::ios::binary);
    filled_cache().save(out);
    const std::string bytes = std::move(out).str();
    return std::vector<char>(bytes.begin(), bytes.end());
  }();
  return file;
}

double& memcpy_rate() {
  static double rate = 0.0;
  return rate;
}

// bytes/s of the file's bytes; speed_vs_memcpy once the memcpy baseline has run.
void report(benchmark::State& state, double seconds, bool baseline) {
  const double bytes = static_cast<double>(cache_file().size()) * static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.counters["file_MB"] = static_cast<double>(cache_file().size()) / 1e6;
  const double rate = seconds > 0.0 ? bytes / seconds : 0.0;
  if (baseline) {
    memcpy_rate() = rate;
  } else if (memcpy_rate() > 0.0) {
    state.counters["speed_vs_memcpy"] = rate / memcpy_rate();
  }
}

// CPU time of this thread, as Google Benchmark's rates use: other processes on the machine do not count.
void bench_memcpy(benchmark::State& state) {
  const std::vector<char>& file = cache_file();
  std::vector<char> target(file.size());
  const double start = thread_seconds();
  for (auto _ : state) {
    std::memcpy(target.data(), file.data(), file.size());
    benchmark::DoNotOptimize(target.data());
    benchmark::ClobberMemory();
  }
  report(state, thread_seconds() - start, true);
}

void bench_save(benchmark::State& state) {
  const Cache& cache = filled_cache();
  std::vector<char> target(cache_file().size());
  const double start = thread_seconds();
  for (auto _ : state) {
    MemoryBuffer buffer(target);
    std::ostream out(&buffer);
    cache.save(out);
    benchmark::DoNotOptimize(target.data());
  }
  report(state, thread_seconds() - start, false);
}

void bench_load(benchmark::State& state) {
  std::vector<char> file = cache_file();
  Cache destination(cache_options(), cache_policy());
  const double start = thread_seconds();
  for (auto _ : state) {
    MemoryBuffer buffer(file);
    std::istream in(&buffer);
    destination.load(in);
    benchmark::DoNotOptimize(&destination);
  }
  report(state, thread_seconds() - start, false);
  if (destination.size(kLayers - 1) != kTokens) state.SkipWithError("the loaded cache is incomplete");
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::RegisterBenchmark("cache_file/memcpy", bench_memcpy)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("cache_file/save", bench_save)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("cache_file/load", bench_load)->Unit(benchmark::kMillisecond);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
