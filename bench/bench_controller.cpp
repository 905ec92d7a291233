// SPDX-License-Identifier: MIT
// The learned controller's cost. First the controller alone: Mlp::predict and
// LearnedPolicy::decide (with and without a quantile) per decision, for the tools' controller
// (examples/learn/tool_controller.hpp) at the shipped stories260K 8.5-bit weights. Then one
// decode step of a cache run by that policy against a static cache of similar bits, for a
// stories260K-shaped cache and a head_dim-128, 32-layer one: its appends (with the decisions,
// demotions and re-packs), the write-time features of the token (entropy, confidence, rarity
// over the vocabulary), and its attention (with the statistics the policy reads).
#include "kvbits/core/simd_headers.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include "bench_support.hpp"

#include "kvbits/kvbits.hpp"
#include "learn/tool_controller.hpp"
#include "model/token_features.hpp"

namespace {

using kvbits::bench::random_vector;
using kvbits::bench::thread_seconds;

namespace learn = kvbits::learn;
using Net = learn::ControllerNet;

// The shipped stories260K 8.5-bit controller; seeded random weights when the file is missing.
learn::ToolLearnedPolicy shipped_policy(kvbits::LearnedPolicyOptions options = {}) {
  const std::filesystem::path path =
      std::filesystem::path(KVBITS_SOURCE_DIR) / "examples" / "weights" / "stories260K-8.5.kvbc";
  if (std::filesystem::is_regular_file(path)) {
    return learn::ToolLearnedPolicy::load(path, {}, std::move(options));
  }
  auto net = std::make_unique<Net>();
  kvbits::initialize_weights(*net, 1);
  return learn::ToolLearnedPolicy(*net, {}, std::move(options));
}

constexpr std::size_t kSamples = 256;  // distinct inputs cycled through, so no branch is learned

// Mlp::predict on raw inputs (normalisation, two hidden layers, both argmax heads).
void bench_predict(benchmark::State& state) {
  const Net net = shipped_policy().net();
  std::mt19937 rng(1);
  std::vector<Net::Input> inputs(kSamples);
  for (Net::Input& x : inputs) {
    const std::vector<float> raw = random_vector(rng, Net::kInputs);
    for (std::size_t f = 0; f < Net::kInputs; ++f) x[static_cast<Eigen::Index>(f)] = raw[f];
  }
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(net.predict(inputs[i++ % kSamples]));
  }
  state.counters["decisions/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

// LearnedPolicy::decide from a DecisionContext: the 9 inputs gathered (age, attention
// statistics, layer, position from the context; 4 write-time features from the token), then
// the Mlp, the width rule and the clamp to the current widths.
void bench_decide(benchmark::State& state, std::optional<double> quantile) {
  kvbits::LearnedPolicyOptions options;
  options.quantile = quantile;
  const learn::ToolLearnedPolicy policy = shipped_policy(options);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  std::vector<std::array<float, learn::ControllerSupplied::size>> supplied(kSamples);
  std::vector<kvbits::DecisionContext> contexts(kSamples);
  for (std::size_t s = 0; s < kSamples; ++s) {
    supplied[s] = {3.0f * unit(rng), unit(rng), unit(rng), 10.0f * unit(rng)};
    kvbits::DecisionContext& c = contexts[s];
    c.token = kvbits::TokenInfo{s % 5, 16 + s, static_cast<std::int32_t>(s), supplied[s]};
    c.age = learn::kDecisionAges[s % learn::kDecisionAges.size()];
    c.attention.queries = static_cast<std::uint32_t>(c.age);
    c.attention.samples = 8 * c.attention.queries;
    c.attention.sum = unit(rng) * static_cast<float>(c.attention.queries);
    c.attention.sum_squares = 0.5f * c.attention.sum * unit(rng);
    c.current = c.age == 1 ? kvbits::BitDecision{32, 32} : kvbits::BitDecision{8, 6};
  }
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(policy.decide(contexts[i++ % kSamples]));
  }
  state.counters["decisions/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

// A model's cache shape and vocabulary.
struct Shape {
  const char* name;
  std::size_t layers, kv_heads, heads, head_dim, vocab;
};
constexpr Shape kStories{"stories260K", 5, 4, 8, 8, 512};
constexpr Shape kLarge{"d128_32layers", 32, 8, 32, 128, 32000};

// Contexts of 128 to 384 tokens, as bench_attention's decode_step rows and bench_model's
// 512-token generations (256 tokens of context on average).
constexpr std::size_t kStart = 128;
constexpr std::size_t kCapacity = 384;

// ns per step of each shape's static cache, for the learned rows' difference.
std::map<std::string, std::array<double, 2>>& static_step_ns() {
  static std::map<std::string, std::array<double, 2>> table;
  return table;
}

enum class StepPart { append, attention };

// Which write-time features a learned row computes: none (static rows), the tools' (a softmax,
// then entropy and confidence over the probabilities) or LogitFeatures' (from the logits).
enum class WriteFeatures { none, softmax, logits };

// Static 6/3 that also asks the cache for attention statistics (as the learned policy does): its
// attention row less the static one is what the statistics cost at this shape.
struct StatisticsStatic {
  [[nodiscard]] bool wants_attention_stats() const noexcept { return true; }
  [[nodiscard]] kvbits::BitDecision decide(const kvbits::TokenInfo&) const noexcept { return {6, 3}; }
};

/**
 * One decode step of a `shape` cache: the appends of one token in every layer, plus, for the
 * learned policy, the token's write-time features computed from random logits and handed to the
 * cache (model::TokenFeatureFeeder as the tools do, or model::LogitTokenFeatureFeeder); or the
 * attention of every layer. In ns
 * per step (thread CPU time), and for the other rows the difference to the StaticPolicy rows. The
 * append rows read the clock only around the refills (every 256 steps), whose time is taken out.
 */
template <class Policy>
void bench_step(benchmark::State& state, const Shape& shape, StepPart part, Policy policy,
                WriteFeatures write_features) {
  const bool learned = write_features != WriteFeatures::none;
  kvbits::CacheOptions options;
  options.layers = shape.layers;
  options.kv_heads = shape.kv_heads;
  options.head_dim = shape.head_dim;
  options.capacity = kCapacity;
  // The learned policy reads write-time features known after the token's forward pass: it
  // keeps a one-token float window, as `learned:` does in the tools.
  options.residual_window = learned ? 1 : 0;
  kvbits::QuantizedKVCache<Policy, kvbits::DefaultBackend> cache(options, std::move(policy));
  kvbits::model::TokenFeatureFeeder softmax_feeder(shape.vocab);
  kvbits::model::LogitTokenFeatureFeeder logit_feeder(shape.vocab);
  const std::size_t row_size = shape.kv_heads * shape.head_dim;
  std::mt19937 rng(1);
  const std::vector<float> rows = random_vector(rng, 512 * row_size);
  const std::vector<float> logits = random_vector(rng, 4 * shape.vocab, 3.0f);
  const std::vector<float> q = random_vector(rng, shape.heads * shape.head_dim);
  std::vector<float> out(shape.heads * shape.head_dim);
  std::uniform_int_distribution<std::int32_t> ids(0, static_cast<std::int32_t>(shape.vocab) - 1);
  const auto append_step = [&] {
    const std::size_t position = cache.size(0);
    const std::span<const float> row(rows.data() + (position % 512) * row_size, row_size);
    const std::int32_t id = ids(rng);
    for (std::size_t l = 0; l < shape.layers; ++l) {
      cache.append(l, row, row, kvbits::TokenInfo{l, position, id, {}});
    }
    if (learned) {
      const std::span<const float> token_logits(logits.data() + (position % 4) * shape.vocab, shape.vocab);
      if (write_features == WriteFeatures::softmax) {
        softmax_feeder.feed(cache, token_logits, id, position, ids(rng));
      } else {
        logit_feeder.feed(cache, token_logits, id, position, ids(rng));
      }
    }
  };
  const auto refill = [&] {
    cache.clear();
    for (std::size_t t = 0; t < kStart; ++t) append_step();
  };
  refill();
  double bits = 0.0;  // the cache's bits/element, averaged over the steps
  double excluded = 0.0;
  const double start = thread_seconds();
  for (auto _ : state) {
    if (cache.size(0) == kCapacity) {
      const double begin = thread_seconds();
      refill();
      excluded += thread_seconds() - begin;
    }
    if (part == StepPart::attention) {
      for (std::size_t l = 0; l < shape.layers; ++l) cache.attend(l, q, out);
      benchmark::DoNotOptimize(out.data());
      // The context grows as in decoding; the append is not part of this row.
      const double begin = thread_seconds();
      append_step();
      bits += cache.bits_per_element();
      excluded += thread_seconds() - begin;
    } else {
      append_step();
    }
  }
  const double seconds = thread_seconds() - start - excluded;
  const double steps = static_cast<double>(state.iterations());
  const double step_ns = seconds * 1e9 / steps;
  state.counters["ns_per_step"] = step_ns;
  if (part == StepPart::attention) state.counters["bits/elem"] = bits / steps;
  auto& baseline = static_step_ns()[shape.name];
  const std::size_t slot = part == StepPart::attention ? 1 : 0;
  if constexpr (std::is_same_v<Policy, kvbits::StaticPolicy>) {
    baseline[slot] = step_ns;
  } else if (baseline[slot] > 0.0) {
    state.counters["ns_vs_static"] = step_ns - baseline[slot];
  }
  state.SetLabel(std::string(kvbits::DefaultBackend::name()));
}

// The write-time features alone: a Feeder's feed over `shape.vocab` logits (entropy,
// confidence, rarity) and set_features in every layer, per token.
template <class Feeder>
void bench_features(benchmark::State& state, const Shape& shape) {
  kvbits::CacheOptions options;
  options.layers = shape.layers;
  options.kv_heads = shape.kv_heads;
  options.head_dim = shape.head_dim;
  options.capacity = 8;
  options.residual_window = 1;
  kvbits::QuantizedKVCache<learn::ToolLearnedPolicy, kvbits::DefaultBackend> cache(options, shipped_policy());
  std::mt19937 rng(1);
  const std::vector<float> row = random_vector(rng, shape.kv_heads * shape.head_dim);
  for (std::size_t l = 0; l < shape.layers; ++l) cache.append(l, row, row);
  const std::vector<float> logits = random_vector(rng, shape.vocab, 3.0f);
  Feeder feeder(shape.vocab);
  for (auto _ : state) feeder.feed(cache, logits, 1, 0, 2);
  state.counters["ns_per_step"] = benchmark::Counter(
      static_cast<double>(state.iterations()), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void register_steps(const Shape& shape) {
  for (const StepPart part : {StepPart::append, StepPart::attention}) {
    std::string what = part == StepPart::append ? "decode_step_append/" : "decode_step_attention/";
    what += shape.name;
    std::string static_name = what;
    static_name += "/static:6,3";
    std::string learned_name = what;
    learned_name += "/learned:stories260K-8.5";
    // Static 6/3: 8.5 bits/element at head_dim 8 (groups of 8, with metadata), the budget of
    // the learned point it is compared with (8.28 bits on the validation stories).
    benchmark::RegisterBenchmark(static_name.c_str(), [shape, part](benchmark::State& s) {
      bench_step(s, shape, part, kvbits::StaticPolicy{{6, 3}}, WriteFeatures::none);
    });
    if (part == StepPart::attention) {
      std::string statistics_name = what;
      statistics_name += "/static:6,3+statistics";
      benchmark::RegisterBenchmark(statistics_name.c_str(), [shape](benchmark::State& s) {
        bench_step(s, shape, StepPart::attention, StatisticsStatic{}, WriteFeatures::none);
      });
    }
    benchmark::RegisterBenchmark(learned_name.c_str(), [shape, part](benchmark::State& s) {
      bench_step(s, shape, part, shipped_policy(), WriteFeatures::softmax);
    });
    if (part == StepPart::append) {
      learned_name += "+logit_features";
      benchmark::RegisterBenchmark(learned_name.c_str(), [shape](benchmark::State& s) {
        bench_step(s, shape, StepPart::append, shipped_policy(), WriteFeatures::logits);
      });
    }
  }
  std::string features_name = "write_time_features/";
  features_name += shape.name;
  benchmark::RegisterBenchmark(features_name.c_str(), [shape](benchmark::State& s) {
    bench_features<kvbits::model::TokenFeatureFeeder>(s, shape);
  });
  features_name += "/logit_features";
  benchmark::RegisterBenchmark(features_name.c_str(), [shape](benchmark::State& s) {
    bench_features<kvbits::model::LogitTokenFeatureFeeder>(s, shape);
  });
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::RegisterBenchmark("controller_predict", bench_predict);
  benchmark::RegisterBenchmark("learned_decide", [](benchmark::State& s) { bench_decide(s, std::nullopt); });
  benchmark::RegisterBenchmark("learned_decide_q0.5", [](benchmark::State& s) { bench_decide(s, 0.5); });
  register_steps(kStories);
  register_steps(kLarge);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
