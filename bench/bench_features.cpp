// SPDX-License-Identifier: MIT
// Saliency features per token: what a policy pays to describe one token, next to the cost of
// writing that token's features into a float array (the baseline every feature must add to).
// Decision-time features (attention statistics, age, position, layer, rarity) are O(1) per
// token; entropy and confidence read the whole next-token distribution, so they are measured
// at the shared models' vocabulary sizes and at a large-model one.
#include <benchmark/benchmark.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "kvbits/features/age_feature.hpp"
#include "kvbits/features/attention_variance_feature.hpp"
#include "kvbits/features/confidence_feature.hpp"
#include "kvbits/features/entropy_feature.hpp"
#include "kvbits/features/feature_set.hpp"
#include "kvbits/features/layer_feature.hpp"
#include "kvbits/features/logit_features.hpp"
#include "kvbits/features/position_feature.hpp"
#include "kvbits/features/rarity_feature.hpp"
#include "kvbits/features/received_mass_feature.hpp"
#include "kvbits/features/unigram_table.hpp"

namespace {

constexpr std::size_t kTokens = 4096;  // distinct contexts cycled through, so nothing is constant-folded
constexpr std::size_t kVocab = 1024;

// Contexts of kTokens tokens with varied ids, positions, ages and attention statistics.
std::vector<kvbits::FeatureContext> make_contexts() {
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::int32_t> id(0, static_cast<std::int32_t>(kVocab) - 1);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  std::vector<kvbits::FeatureContext> contexts(kTokens);
  for (std::size_t t = 0; t < kTokens; ++t) {
    kvbits::FeatureContext& c = contexts[t];
    c.token_id = id(rng);
    c.position = t;
    c.layer = t % 32;
    c.age = t % 512;
    const float p = unit(rng) * 0.1f;
    c.attention = {static_cast<std::uint32_t>(c.age),
                   static_cast<std::uint32_t>(8 * c.age),
                   p * 8.0f,
                   p * p * 8.0f,
                   p,
                   p};
  }
  return contexts;
}

std::shared_ptr<const kvbits::UnigramTable> make_table() {
  auto table = std::make_shared<kvbits::UnigramTable>(kVocab);
  std::mt19937 rng(3);
  std::geometric_distribution<std::int32_t> zipf_like(0.01);
  std::vector<std::int32_t> ids(100000);
  for (std::int32_t& value : ids) value = std::min<std::int32_t>(zipf_like(rng), kVocab - 1);
  table->add(ids);
  return table;
}

template <class Features>
void run(benchmark::State& state, const Features& features) {
  const std::vector<kvbits::FeatureContext> contexts = make_contexts();
  std::array<float, Features::size> out{};
  std::size_t t = 0;
  for (auto _ : state) {
    features.extract(contexts[t], out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
    t = (t + 1) % kTokens;
  }
  state.SetItemsProcessed(state.iterations());
}

// Baseline: copying the same number of floats out of each context.
void BM_baseline_copy(benchmark::State& state) {
  const std::vector<kvbits::FeatureContext> contexts = make_contexts();
  std::array<float, 8> out{};
  std::size_t t = 0;
  for (auto _ : state) {
    const kvbits::FeatureContext& c = contexts[t];
    out = {c.attention.sum,
           c.attention.sum_squares,
           c.attention.max,
           c.attention.last,
           static_cast<float>(c.age),
           static_cast<float>(c.position),
           static_cast<float>(c.layer),
           static_cast<float>(c.token_id)};
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
    t = (t + 1) % kTokens;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_baseline_copy);

// Every O(1) feature at once: what a policy reads at a decision.
void BM_decision_features(benchmark::State& state) {
  using Set =
      kvbits::FeatureSet<kvbits::AttentionVarianceFeature, kvbits::ReceivedMassFeature, kvbits::AgeFeature,
                         kvbits::PositionFeature, kvbits::LayerFeature, kvbits::RarityFeature>;
  run(state, Set(kvbits::AttentionVarianceFeature{}, kvbits::ReceivedMassFeature{}, kvbits::AgeFeature{},
                 kvbits::PositionFeature{}, kvbits::LayerFeature{}, kvbits::RarityFeature(make_table())));
}
BENCHMARK(BM_decision_features);

// `features` over one next-token distribution of state.range(0) entries, which `attach` puts
// into each context (as probabilities or as logits), with a varying followed token.
template <class Features, class Attach>
void run_distribution(benchmark::State& state, const Features& features, Attach attach) {
  std::vector<kvbits::FeatureContext> contexts = make_contexts();
  const auto entries = static_cast<std::size_t>(state.range(0));
  std::array<float, Features::size> out{};
  std::size_t t = 0;
  for (auto _ : state) {
    kvbits::FeatureContext& c = contexts[t];
    attach(c);
    c.next_token = static_cast<std::int32_t>(t % entries);
    features.extract(c, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
    t = (t + 1) % kTokens;
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * state.range(0) * static_cast<std::int64_t>(sizeof(float)));
}

// Entropy and confidence over a next-token distribution of state.range(0) entries.
void BM_distribution_features(benchmark::State& state) {
  std::vector<float> probabilities(static_cast<std::size_t>(state.range(0)));
  std::mt19937 rng(11);
  std::exponential_distribution<float> weight(1.0f);
  float total = 0.0f;
  for (float& p : probabilities) total += p = weight(rng);
  for (float& p : probabilities) p /= total;
  run_distribution(state, kvbits::FeatureSet<kvbits::EntropyFeature, kvbits::ConfidenceFeature>{},
                   [&](kvbits::FeatureContext& c) { c.next_token_probabilities = probabilities; });
}
BENCHMARK(BM_distribution_features)->Arg(512)->Arg(1024)->Arg(32000);

// The same three features from the logits (LogitFeatures): no softmax, no log per entry. The
// distribution rows above exclude the softmax an engine would compute for them.
void BM_logit_features(benchmark::State& state) {
  std::vector<float> logits(static_cast<std::size_t>(state.range(0)));
  std::mt19937 rng(11);
  std::normal_distribution<float> logit(0.0f, 3.0f);
  for (float& x : logits) x = logit(rng);
  run_distribution(state, kvbits::LogitFeatures{},
                   [&](kvbits::FeatureContext& c) { c.next_token_logits = logits; });
}
BENCHMARK(BM_logit_features)->Arg(512)->Arg(1024)->Arg(32000);

}  // namespace

BENCHMARK_MAIN();
