// SPDX-License-Identifier: MIT
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "support/require_error.hpp"

#include "kvbits/features/age_feature.hpp"
#include "kvbits/features/attention_variance_feature.hpp"
#include "kvbits/features/confidence_feature.hpp"
#include "kvbits/features/decision_feature_context.hpp"
#include "kvbits/features/entropy_feature.hpp"
#include "kvbits/features/feature.hpp"
#include "kvbits/features/feature_set.hpp"
#include "kvbits/features/layer_feature.hpp"
#include "kvbits/features/logit_features.hpp"
#include "kvbits/features/position_feature.hpp"
#include "kvbits/features/rarity_feature.hpp"
#include "kvbits/features/received_mass_feature.hpp"
#include "kvbits/features/unigram_file.hpp"
#include "kvbits/features/unigram_table.hpp"

namespace {

using kvbits::AttentionStats;
using kvbits::FeatureContext;
using kvbits::test::require_error;

constexpr float kTolerance = 1e-5f;  // float features computed in double, rounded once

// One-value feature of `context`, through the FeatureExtractor interface.
template <class F>
float extract_one(const F& feature, const FeatureContext& context) {
  std::array<float, 1> out{-99.0f};
  feature.extract(context, out);
  return out[0];
}

// Statistics of per-head probabilities `samples` seen over `queries` queries, as a cache accumulates them.
AttentionStats stats_of(const std::vector<float>& samples, std::uint32_t queries, float last) {
  AttentionStats stats;
  stats.queries = queries;
  stats.samples = static_cast<std::uint32_t>(samples.size());
  for (const float p : samples) {
    stats.sum += p;
    stats.sum_squares += p * p;
    stats.max = std::max(stats.max, p);
  }
  stats.last = last;
  return stats;
}

std::shared_ptr<const kvbits::UnigramTable> tiny_table() {
  // vocab 4, k = 1: counts {3, 1, 0, 0} from the sequence below, total 4.
  auto table = std::make_shared<kvbits::UnigramTable>(4, 1.0);
  const std::vector<std::int32_t> ids{0, 1, 0, 0};
  table->add(ids);
  return table;
}

}  // namespace

TEST_CASE("Every feature satisfies FeatureExtractor", "[features]") {
  STATIC_REQUIRE(kvbits::FeatureExtractor<kvbits::EntropyFeature>);
  STATIC_REQUIRE(kvbits::FeatureExtractor<kvbits::ConfidenceFeature>);
  STATIC_REQUIRE(kvbits::FeatureExtractor<kvbits::RarityFeature>);
  STATIC_REQUIRE(kvbits::FeatureExtractor<kvbits::AttentionVarianceFeature>);
  STATIC_REQUIRE(kvbits::FeatureExtractor<kvbits::ReceivedMassFeature>);
  STATIC_REQUIRE(kvbits::FeatureExtractor<kvbits::AgeFeature>);
  STATIC_REQUIRE(kvbits::FeatureExtractor<kvbits::PositionFeature>);
  STATIC_REQUIRE(kvbits::FeatureExtractor<kvbits::LayerFeature>);
  STATIC_REQUIRE(kvbits::FeatureExtractor<kvbits::FeatureSet<kvbits::AgeFeature, kvbits::ConfidenceFeature>>);
  STATIC_REQUIRE_FALSE(kvbits::FeatureExtractor<int>);
  STATIC_REQUIRE_FALSE(kvbits::FeatureExtractor<kvbits::FeatureContext>);
}

TEST_CASE("EntropyFeature is the entropy of the next-token distribution in nats", "[features]") {
  const kvbits::EntropyFeature entropy;
  FeatureContext context;
  SECTION("uniform over 8 ids: log 8") {
    const std::vector<float> uniform(8, 0.125f);
    context.next_token_probabilities = uniform;
    CHECK(extract_one(entropy, context) == Approx(std::log(8.0)).epsilon(kTolerance));
  }
  SECTION("one-hot: 0, zeros contribute nothing") {
    const std::vector<float> one_hot{0.0f, 1.0f, 0.0f};
    context.next_token_probabilities = one_hot;
    CHECK(extract_one(entropy, context) == 0.0f);
  }
  SECTION("{1/2, 1/4, 1/4}: 1.5 log 2") {
    const std::vector<float> known{0.5f, 0.25f, 0.25f};
    context.next_token_probabilities = known;
    CHECK(extract_one(entropy, context) == Approx(1.5 * std::log(2.0)).epsilon(kTolerance));
  }
  SECTION("empty distribution: neutral 0") { CHECK(extract_one(entropy, context) == 0.0f); }
}

TEST_CASE("ConfidenceFeature gives the followed token's and the largest probability", "[features]") {
  const kvbits::ConfidenceFeature confidence;
  const std::vector<float> distribution{0.1f, 0.6f, 0.3f};
  FeatureContext context;
  context.next_token_probabilities = distribution;
  std::array<float, 2> out{};
  context.next_token = 2;
  confidence.extract(context, out);
  CHECK(out == std::array<float, 2>{0.3f, 0.6f});
  context.next_token = -1;  // unknown
  confidence.extract(context, out);
  CHECK(out == std::array<float, 2>{0.0f, 0.6f});
  context.next_token = 3;  // outside the distribution
  confidence.extract(context, out);
  CHECK(out == std::array<float, 2>{0.0f, 0.6f});
  context.next_token_probabilities = {};
  context.next_token = 0;
  confidence.extract(context, out);
  CHECK(out == std::array<float, 2>{0.0f, 0.0f});
  CHECK(kvbits::ConfidenceFeature::names()[0] == "next_token_probability");
  CHECK(kvbits::ConfidenceFeature::names()[1] == "max_probability");
}

// The reference write-time features of `logits`: a softmax computed in double, then
// EntropyFeature and ConfidenceFeature over its probabilities.
std::array<float, 3> reference_logit_features(const std::vector<float>& logits, std::int32_t next) {
  double top = -std::numeric_limits<double>::infinity();
  for (const float x : logits) top = std::max(top, static_cast<double>(x));
  std::vector<double> exps(logits.size());
  double total = 0.0;
  for (std::size_t i = 0; i < logits.size(); ++i)
    total += exps[i] = std::exp(static_cast<double>(logits[i]) - top);
  std::vector<float> probabilities(logits.size());
  for (std::size_t i = 0; i < logits.size(); ++i) probabilities[i] = static_cast<float>(exps[i] / total);
  FeatureContext context;
  context.next_token = next;
  context.next_token_probabilities = probabilities;
  kvbits::FeatureSet<kvbits::EntropyFeature, kvbits::ConfidenceFeature> reference;
  std::array<float, 3> out{};
  reference.extract(context, out);
  return out;
}

std::array<float, 3> logit_features(const std::vector<float>& logits, std::int32_t next) {
  FeatureContext context;
  context.next_token = next;
  context.next_token_logits = logits;
  std::array<float, 3> out{-1.0f, -1.0f, -1.0f};
  kvbits::LogitFeatures{}.extract(context, out);
  return out;
}

TEST_CASE("LogitFeatures equal EntropyFeature and ConfidenceFeature over the softmax of the logits",
          "[features]") {
  STATIC_REQUIRE(kvbits::FeatureExtractor<kvbits::LogitFeatures>);
  constexpr auto kReferenceNames =
      kvbits::FeatureSet<kvbits::EntropyFeature, kvbits::ConfidenceFeature>::kNames;
  for (std::size_t i = 0; i < kReferenceNames.size(); ++i)
    CHECK(kvbits::LogitFeatures::names()[i] == kReferenceNames[i]);

  std::mt19937 rng(5);
  // Sizes off and on the SIMD width; spreads from nearly uniform to nearly one-hot.
  for (const std::size_t vocab : {1u, 3u, 17u, 512u, 1000u, 32000u}) {
    for (const float spread : {0.01f, 1.0f, 4.0f, 30.0f}) {
      std::normal_distribution<float> logit(2.0f, spread);
      std::vector<float> logits(vocab);
      for (float& x : logits) x = logit(rng);
      const auto next = static_cast<std::int32_t>(rng() % vocab);
      const std::array<float, 3> expected = reference_logit_features(logits, next);
      const std::array<float, 3> got = logit_features(logits, next);
      INFO("vocab " << vocab << ", spread " << spread);
      // Entropy up to float sums over the vocabulary; probabilities to a few ulps.
      CHECK(got[0] == Approx(expected[0]).epsilon(1e-5).margin(2e-6));
      CHECK(got[1] == Approx(expected[1]).epsilon(1e-5).margin(1e-9));
      CHECK(got[2] == Approx(expected[2]).epsilon(1e-5));
    }
  }
}

TEST_CASE("LogitFeatures: masked logits count as probability 0, bad logits give the neutral values",
          "[features]") {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  SECTION("-infinity entries are tokens of probability 0") {
    std::vector<float> masked(40, -kInf);
    masked[3] = 1.0f;
    masked[21] = 1.0f;
    const std::array<float, 3> got = logit_features(masked, 21);
    CHECK(got[0] == Approx(std::log(2.0)).epsilon(1e-6));
    CHECK(got[1] == Approx(0.5).epsilon(1e-6));
    CHECK(got[2] == Approx(0.5).epsilon(1e-6));
    CHECK(logit_features(masked, 4)[1] == 0.0f);
  }
  SECTION("one-hot up to float: entropy 0, probability 1") {
    std::vector<float> peaked(100, -200.0f);
    peaked[7] = 0.0f;
    CHECK(logit_features(peaked, 7) == std::array<float, 3>{0.0f, 1.0f, 1.0f});
  }
  SECTION("unknown or out-of-range next token: probability 0") {
    const std::vector<float> logits{0.0f, 0.0f};
    CHECK(logit_features(logits, -1)[1] == 0.0f);
    CHECK(logit_features(logits, 2)[1] == 0.0f);
  }
  const std::array<float, 3> neutral{0.0f, 0.0f, 0.0f};
  SECTION("empty") { CHECK(logit_features({}, 0) == neutral); }
  SECTION("all masked") { CHECK(logit_features(std::vector<float>(33, -kInf), 0) == neutral); }
  for (const float bad : {std::numeric_limits<float>::quiet_NaN(), kInf}) {
    for (const std::size_t at : {0u, 31u, 32u}) {  // in the SIMD body and in the tail
      std::vector<float> logits(33, 0.5f);
      logits[at] = bad;
      INFO("bad logit " << bad << " at " << at);
      CHECK(logit_features(logits, 1) == neutral);
    }
  }
}

TEST_CASE("UnigramTable smooths counts add-k and treats unknown ids as unseen", "[features]") {
  const auto table = tiny_table();
  CHECK(table->total() == 4);
  CHECK(table->count(0) == 3);
  CHECK(table->count(2) == 0);
  // (count + 1) / (4 + 1 * 4)
  CHECK(table->probability(0) == Approx(4.0 / 8.0));
  CHECK(table->probability(1) == Approx(2.0 / 8.0));
  CHECK(table->probability(3) == Approx(1.0 / 8.0));
  CHECK(table->probability(-1) == Approx(1.0 / 8.0));
  CHECK(table->probability(4) == Approx(1.0 / 8.0));

  kvbits::UnigramTable half(2, 0.5);  // (count + 0.5) / (total + 1)
  const std::vector<std::int32_t> ones{1, 1, 1};
  half.add(ones);
  CHECK(half.probability(0) == Approx(0.5 / 4.0));
  CHECK(half.probability(1) == Approx(3.5 / 4.0));

  SECTION("add() rejects ids outside the vocabulary and leaves the table unchanged") {
    kvbits::UnigramTable small(4);
    const std::vector<std::int32_t> bad{1, 4};
    require_error([&] { small.add(bad); }, kvbits::Errc::invalid_argument,
                  "token id 4 at index 1 is outside the vocabulary of 4");
    CHECK(small.total() == 0);
    CHECK(small.count(1) == 0);
  }
  SECTION("construction checks its arguments") {
    require_error([] { kvbits::UnigramTable(0); }, kvbits::Errc::invalid_argument, "vocabulary size");
    require_error([] { kvbits::UnigramTable(4, 0.0); }, kvbits::Errc::invalid_argument, "smoothing");
    require_error([] { kvbits::UnigramTable(4, std::nan("")); }, kvbits::Errc::invalid_argument, "smoothing");
  }
}

TEST_CASE("RarityFeature is -log of the smoothed unigram probability", "[features]") {
  const kvbits::RarityFeature rarity(tiny_table());
  FeatureContext context;
  context.token_id = 0;
  CHECK(extract_one(rarity, context) == Approx(std::log(2.0)).epsilon(kTolerance));
  context.token_id = 2;  // never seen
  CHECK(extract_one(rarity, context) == Approx(std::log(8.0)).epsilon(kTolerance));
  context.token_id = -1;  // unknown
  CHECK(extract_one(rarity, context) == Approx(std::log(8.0)).epsilon(kTolerance));
  const kvbits::RarityFeature copy = rarity;  // shares the table
  CHECK(&copy.table() == &rarity.table());
  require_error([] { kvbits::RarityFeature(nullptr); }, kvbits::Errc::invalid_argument,
                "needs a unigram table");
}

TEST_CASE("Attention features read the cache's statistics", "[features]") {
  // Two queries, two heads: per-head probabilities 0.1, 0.3 | 0.2, 0.4.
  FeatureContext context;
  context.attention = stats_of({0.1f, 0.3f, 0.2f, 0.4f}, 2, 0.6f);
  // mean 0.25; variance = (0.0225 + 0.0025 + 0.0025 + 0.0225) / 4 = 0.0125
  CHECK(extract_one(kvbits::AttentionVarianceFeature{}, context) == Approx(0.0125).margin(1e-6));
  // (0.1 + 0.3 + 0.2 + 0.4) / 2 queries: mass summed over heads, averaged over queries
  CHECK(extract_one(kvbits::ReceivedMassFeature{}, context) == Approx(0.5).epsilon(kTolerance));

  const FeatureContext unseen;  // no query yet: neutral 0, never NaN
  CHECK(extract_one(kvbits::AttentionVarianceFeature{}, unseen) == 0.0f);
  CHECK(extract_one(kvbits::ReceivedMassFeature{}, unseen) == 0.0f);
}

TEST_CASE("Age, position and layer features", "[features]") {
  FeatureContext context;
  context.age = 7;
  context.position = 99;
  context.layer = 5;
  CHECK(extract_one(kvbits::AgeFeature{}, context) == Approx(std::log(8.0)).epsilon(kTolerance));
  CHECK(extract_one(kvbits::PositionFeature{}, context) == Approx(std::log(100.0)).epsilon(kTolerance));
  CHECK(extract_one(kvbits::LayerFeature{}, context) == 5.0f);
  const FeatureContext first;
  CHECK(extract_one(kvbits::AgeFeature{}, first) == 0.0f);
  CHECK(extract_one(kvbits::PositionFeature{}, first) == 0.0f);
}

TEST_CASE("FeatureSet stacks its parts' sizes, names and values in order", "[features]") {
  using Set = kvbits::FeatureSet<kvbits::LayerFeature, kvbits::ConfidenceFeature, kvbits::RarityFeature,
                                 kvbits::FeatureSet<kvbits::AgeFeature, kvbits::PositionFeature>>;
  STATIC_REQUIRE(Set::size == 6);
  STATIC_REQUIRE(Set::names()[2] == "max_probability");
  const std::array<std::string_view, 6> expected_names{
      "layer", "next_token_probability", "max_probability", "rarity", "log_age", "log_position"};
  CHECK(Set::kNames == expected_names);

  const Set set(kvbits::LayerFeature{}, kvbits::ConfidenceFeature{}, kvbits::RarityFeature(tiny_table()), {});
  const std::vector<float> distribution{0.25f, 0.75f};
  FeatureContext context;
  context.layer = 3;
  context.next_token = 0;
  context.next_token_probabilities = distribution;
  context.token_id = 1;
  context.age = 1;
  context.position = 3;
  std::array<float, 7> out{};
  out[6] = -7.0f;  // past the set's size: must stay untouched
  set.extract(context, std::span<float>(out).first(6));
  CHECK(out[0] == 3.0f);
  CHECK(out[1] == 0.25f);
  CHECK(out[2] == 0.75f);
  CHECK(out[3] == Approx(std::log(4.0)).epsilon(kTolerance));
  CHECK(out[4] == Approx(std::log(2.0)).epsilon(kTolerance));
  CHECK(out[5] == Approx(std::log(4.0)).epsilon(kTolerance));
  CHECK(out[6] == -7.0f);
  CHECK(&set.part<2>().table() != nullptr);
}

TEST_CASE("make_feature_context copies what the cache decided with", "[features]") {
  kvbits::DecisionContext decision;
  decision.token = kvbits::TokenInfo{4, 120, 77, {}};
  decision.age = 16;
  decision.attention = stats_of({0.5f, 0.25f}, 1, 0.75f);
  decision.current = {8, 8};
  const FeatureContext context = kvbits::make_feature_context(decision);
  CHECK(context.layer == 4);
  CHECK(context.position == 120);
  CHECK(context.token_id == 77);
  CHECK(context.age == 16);
  CHECK(context.attention.samples == 2);
  CHECK(context.attention.sum == 0.75f);
  CHECK(context.attention.last == 0.75f);
  CHECK(context.next_token == -1);
  CHECK(context.next_token_probabilities.empty());
}

TEST_CASE("A unigram table survives a text round trip", "[features]") {
  kvbits::UnigramTable table(5, 0.3);
  const std::vector<std::int32_t> ids{4, 4, 0, 2, 4};
  table.add(ids);
  std::stringstream text;
  kvbits::write_unigram_table(table, text);
  CHECK(text.str() == "kvbits-unigram 1\n5 5 0.3\n1\n0\n1\n0\n3\n");
  const kvbits::UnigramTable read = kvbits::read_unigram_table(text);
  CHECK(read.vocab_size() == 5);
  CHECK(read.total() == 5);
  CHECK(read.smoothing() == 0.3);
  CHECK(std::vector<std::uint64_t>(read.counts().begin(), read.counts().end()) ==
        std::vector<std::uint64_t>{1, 0, 1, 0, 3});

  const std::filesystem::path path =
      std::filesystem::temp_directory_path() /
      ("kvbits_test_unigram_" + std::to_string(std::random_device{}()) + ".txt");
  kvbits::save_unigram_table(table, path);
  const kvbits::UnigramTable loaded = kvbits::load_unigram_table(path);
  std::filesystem::remove(path);
  CHECK(loaded.probability(4) == table.probability(4));
  CHECK(loaded.total() == table.total());
  require_error([&] { kvbits::load_unigram_table(path); }, kvbits::Errc::io_error, "cannot open");
}

TEST_CASE("A malformed unigram file is rejected with the line at fault", "[features]") {
  const auto read = [](const std::string& text) {
    std::istringstream in(text);
    return kvbits::read_unigram_table(in);
  };
  using kvbits::Errc;
  struct Malformed {
    std::string text;
    Errc code;
    std::string message;
  };
  const std::vector<Malformed> cases{
      {"", Errc::corrupt_data, "line 1: empty input"},
      {"kvbits-bigram 1\n", Errc::corrupt_data, "line 1: not a unigram table"},
      {"kvbits-unigram one\n", Errc::corrupt_data, "line 1: unreadable version"},
      {"kvbits-unigram 2\n1 0 1\n0\n", Errc::unsupported, "version 2, this build reads 1"},
      {"kvbits-unigram 1\n", Errc::corrupt_data, "line 2: missing '<vocab_size> <total> <smoothing>'"},
      {"kvbits-unigram 1\n2 1\n0\n1\n", Errc::corrupt_data, "line 2: expected '<vocab_size>"},
      {"kvbits-unigram 1\n2 x 1\n0\n1\n", Errc::corrupt_data, "line 2: expected"},
      {"kvbits-unigram 1\n0 0 1\n", Errc::corrupt_data, "vocabulary size must be > 0"},
      {"kvbits-unigram 1\n3 1 1\n0\n1\n", Errc::corrupt_data, "line 5: file ends after 2 of 3 counts"},
      {"kvbits-unigram 1\n2 1 1\n0\n-1\n", Errc::corrupt_data, "line 4: expected a count"},
      {"kvbits-unigram 1\n2 1 1\n0\n5\n", Errc::corrupt_data, "exceed the declared total 1"},
      {"kvbits-unigram 1\n2 3 1\n0\n1\n", Errc::corrupt_data, "counts sum to 1 but the header declares 3"},
      {"kvbits-unigram 1\n2 1 1\n0\n1\n7\n", Errc::corrupt_data,
       "line 5: unexpected data after the last count"},
      {"kvbits-unigram 1\n2 1 0\n0\n1\n", Errc::corrupt_data, "smoothing"},
  };
  for (const Malformed& bad : cases) {
    INFO("file '" << bad.text << "'");
    require_error([&] { read(bad.text); }, bad.code, bad.message);
  }
  // Windows line ends are tolerated.
  CHECK(read("kvbits-unigram 1\r\n2 1 1\r\n0\r\n1\r\n").count(1) == 1);
}
