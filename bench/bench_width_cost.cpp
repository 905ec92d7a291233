// SPDX-License-Identifier: MIT
// Attention time per context token of each width the learned controller chooses from, at the
// two shipped models' shapes: the measurements its cost(b) is fitted to (docs/learned.md).
//  - stories260K: head_dim 8, 4 KV heads, 8 query heads, one group per head row, t=scale keys;
//  - bible919K: head_dim 64, 1 KV head, 2 query heads, groups of 32.
// For each shape and context length N, one layer's attention (every query head) over a static
// cache of N random tokens, single thread, thread CPU time. The rows of a shape are
// both/16 (keys and values at 16 bits: the baseline, first), then for each width b of the
// controller's list key/b (keys at b, values at 16), value/b (values at b, keys at 16) and
// both/b; x_16 is a row's time over its shape's both/16 row.
#include "kvbits/core/simd_headers.hpp"

#include <cstddef>
#include <ctime>
#include <map>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include "bench_support.hpp"

#include "kvbits/kvbits.hpp"
#include "learn/tool_controller.hpp"

namespace {

using kvbits::bench::random_vector;
using kvbits::bench::seconds_per_attend;

/// A model's attention shape and the cache options its weights were labelled with.
struct Shape {
  const char* name;
  std::size_t head_dim;
  std::size_t kv_heads;
  std::size_t query_heads;
  std::size_t group_size;  // 0 = one group per head row
  kvbits::KeyTransform key_transform;
};

constexpr Shape kShapes[] = {
    {"stories260K", 8, 4, 8, 0, kvbits::KeyTransform::channel_scale},
    {"bible919K", 64, 1, 2, 32, kvbits::KeyTransform::none},
};

// Seconds per call of each shape's both/16 row, keyed by (shape, context).
std::map<std::pair<std::string, std::size_t>, double>& baseline_seconds() {
  static std::map<std::pair<std::string, std::size_t>, double> table;
  return table;
}

void bench_width(benchmark::State& state, const Shape& shape, std::size_t tokens, kvbits::BitDecision bits,
                 bool baseline) {
  kvbits::CacheOptions options;
  options.kv_heads = shape.kv_heads;
  options.head_dim = shape.head_dim;
  options.capacity = tokens;
  options.key.group_size = shape.group_size;
  options.key.transform = shape.key_transform;
  options.value.group_size = shape.group_size;
  kvbits::QuantizedKVCache<kvbits::StaticPolicy, kvbits::DefaultBackend> cache(options,
                                                                               kvbits::StaticPolicy{bits});
  std::mt19937 rng(1);
  const std::size_t row = shape.kv_heads * shape.head_dim;
  for (std::size_t t = 0; t < tokens; ++t) {
    cache.append(0, random_vector(rng, row), random_vector(rng, row), kvbits::TokenInfo{0, t, -1, {}});
  }
  const auto q = random_vector(rng, shape.query_heads * shape.head_dim);
  std::vector<float> out(q.size());
  const double per_call = seconds_per_attend(state, cache, q, out);
  state.counters["ns_per_token"] = per_call * 1e9 / static_cast<double>(tokens);
  const auto key = std::make_pair(std::string(shape.name), tokens);
  if (baseline) baseline_seconds()[key] = per_call;
  if (const auto it = baseline_seconds().find(key); it != baseline_seconds().end()) {
    state.counters["x_16"] = per_call / it->second;
  }
  state.SetLabel(std::string(kvbits::DefaultBackend::name()));
}

void register_shape(const Shape& shape, std::size_t tokens) {
  const std::string prefix = std::string("width_cost/") + shape.name + "/N" + std::to_string(tokens) + "/";
  const auto add = [&](const std::string& name, kvbits::BitDecision bits, bool baseline) {
    benchmark::RegisterBenchmark((prefix + name).c_str(),
                                 [&shape, tokens, bits, baseline](benchmark::State& s) {
                                   bench_width(s, shape, tokens, bits, baseline);
                                 });
  };
  add("both/16", {16, 16}, true);
  for (const int b : kvbits::learn::ControllerWidths::kValues) {
    if (b == 16) continue;
    add("key/" + std::to_string(b), {b, 16}, false);
    add("value/" + std::to_string(b), {16, b}, false);
    add("both/" + std::to_string(b), {b, b}, false);
  }
}

}  // namespace

int main(int argc, char** argv) {
  for (const Shape& shape : kShapes) {
    for (const std::size_t tokens : {512u, 4096u}) register_shape(shape, tokens);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
