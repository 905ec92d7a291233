// SPDX-License-Identifier: MIT
#include <array>
#include <cmath>
#include <cstddef>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "eval/csv_report.hpp"
#include "eval/frontier.hpp"
#include "eval/json_report.hpp"
#include "eval/mc_items.hpp"
#include "eval/mc_scorer.hpp"
#include "eval/mc_scoring.hpp"
#include "eval/quality.hpp"
#include "eval/sentences.hpp"
#include "eval/statistics.hpp"
#include "model/eval_metrics.hpp"
#include "model/policy_spec.hpp"
#include "model/stories.hpp"
#include "model/toy.hpp"
#include "support/require_error.hpp"
#include "support/shared_data.hpp"

namespace {

using kvbits::eval::ChoiceScore;
using kvbits::eval::McItem;

// Interval ends are compared to 4 decimals, the precision they are quoted with.
constexpr double kIntervalTolerance = 5e-5;

// Six small documents of five sentences each: enough other documents for every distractor draw.
std::vector<std::string> toy_stories() {
  std::vector<std::string> stories;
  const std::array<std::string, 6> names{"Ann", "Ben", "Cat", "Dan", "Eve", "Fox"};
  for (const std::string& name : names) {
    std::string story;
    for (int s = 0; s < 5; ++s) {
      if (s > 0) story += s == 2 ? "\n" : " ";
      story += name + " did thing number " + std::to_string(s) + " today.";
    }
    stories.push_back(story);
  }
  return stories;
}

}  // namespace

TEST_CASE("eval: KL of identical distributions is 0 and the summary says so", "[eval][quality]") {
  const std::vector<float> logits{0.5f, -1.0f, 2.0f, 0.0f};
  std::vector<double> log_p(logits.size());
  kvbits::model::log_softmax(logits, log_p);
  CHECK(kvbits::model::kl_divergence(log_p, log_p) == 0.0);

  kvbits::eval::QualityAccumulator quality;
  for (int p = 0; p < 10; ++p) quality.add(0.0, std::log(3.0), std::log(3.0), true);
  const auto s = quality.summary();
  CHECK(s.positions == 10);
  CHECK(s.mean_kl == 0.0);
  CHECK(s.p99_kl == 0.0);
  CHECK(s.max_kl == 0.0);
  CHECK(s.share_kl_above[0] == 0.0);
  CHECK(s.top1_agreement == 1.0);
  CHECK(s.perplexity == Approx(3.0));
  CHECK(s.perplexity_change == Approx(0.0).margin(1e-15));
  // Every position has the same NLL: no spread, no interval width.
  CHECK(s.perplexity_95.low == Approx(3.0));
  CHECK(s.perplexity_95.high == Approx(3.0));
}

TEST_CASE("eval: percentiles interpolate linearly between ranks", "[eval][statistics]") {
  const std::vector<double> values{1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  using kvbits::eval::percentile_sorted;
  CHECK(percentile_sorted(values, 0.0) == 1.0);
  CHECK(percentile_sorted(values, 1.0) == 10.0);
  CHECK(percentile_sorted(values, 0.5) == Approx(5.5));    // mean of the middle two
  CHECK(percentile_sorted(values, 0.99) == Approx(9.91));  // h = 8.91
  CHECK(percentile_sorted(values, 0.999) == Approx(9.991));
  CHECK(percentile_sorted(values, 0.25) == Approx(3.25));
  const std::vector<double> odd{1, 3, 100};
  CHECK(percentile_sorted(odd, 0.5) == 3.0);
  const std::vector<double> one{7};
  CHECK(percentile_sorted(one, 0.99) == 7.0);

  kvbits::test::require_error([] { static_cast<void>(percentile_sorted({}, 0.5)); },
                              kvbits::Errc::invalid_argument, "no values");
  const std::vector<double> unsorted{2, 1};
  kvbits::test::require_error([&] { static_cast<void>(percentile_sorted(unsorted, 0.5)); },
                              kvbits::Errc::invalid_argument, "sorted");
  kvbits::test::require_error([&] { static_cast<void>(percentile_sorted(values, 1.5)); },
                              kvbits::Errc::invalid_argument, "[0, 1]");

  CHECK(kvbits::eval::share_above(values, 8.0) == Approx(0.2));  // 9 and 10; 8 is not above 8
  CHECK(kvbits::eval::share_above({}, 8.0) == 0.0);

  // The accumulator's tail on 1000 positions with KL 0, 0.001, ..., 0.999 (added shuffled).
  kvbits::eval::QualityAccumulator quality;
  for (int i = 0; i < 1000; ++i)
    quality.add(static_cast<double>((i * 7) % 1000) / 1000.0, 1.0, 1.0, i % 4 != 0);
  const auto s = quality.summary();
  CHECK(s.median_kl == Approx(0.4995));
  CHECK(s.p99_kl == Approx(0.98901));    // h = 999 * 0.99 = 989.01
  CHECK(s.p999_kl == Approx(0.998001));  // h = 998.001
  CHECK(s.max_kl == Approx(0.999));
  CHECK(s.mean_kl == Approx(0.4995));
  CHECK(s.share_kl_above[0] == Approx(0.989));  // 0.011 .. 0.999
  CHECK(s.share_kl_above[1] == Approx(0.899));  // 0.101 .. 0.999
  CHECK(s.top1_agreement == Approx(0.75));
}

TEST_CASE("eval: Wilson intervals of known cases", "[eval][statistics]") {
  using kvbits::eval::wilson_interval;
  // 5 of 10: p = 0.5, center 0.5, half width 1.96 sqrt(0.025 + 3.8415/400) / 1.38415 = 0.2634.
  const auto half = wilson_interval(5, 10);
  CHECK(half.low == Approx(0.2366).margin(kIntervalTolerance));
  CHECK(half.high == Approx(0.7634).margin(kIntervalTolerance));
  // 0 of 10: [0, z^2 / (n + z^2)] = [0, 0.2775].
  const auto none = wilson_interval(0, 10);
  CHECK(none.low == 0.0);
  CHECK(none.high == Approx(0.2775).margin(kIntervalTolerance));
  // 81 of 263 (p = 0.308): [0.2553, 0.3662].
  const auto some = wilson_interval(81, 263);
  CHECK(some.low == Approx(0.2553).margin(kIntervalTolerance));
  CHECK(some.high == Approx(0.3662).margin(kIntervalTolerance));
  const auto empty = wilson_interval(0, 0);
  CHECK(empty.low == 0.0);
  CHECK(empty.high == 1.0);
  kvbits::test::require_error([] { static_cast<void>(wilson_interval(3, 2)); },
                              kvbits::Errc::invalid_argument, "more successes");
}

TEST_CASE("eval: perplexity interval is exp(mean ± 1.96 se) of the NLL", "[eval][statistics]") {
  kvbits::eval::RunningMoments nll;
  for (const double x : {1.0, 2.0, 3.0, 4.0}) nll.add(x);
  CHECK(nll.mean() == Approx(2.5));
  CHECK(nll.variance() == Approx(5.0 / 3.0));
  const double se = std::sqrt(5.0 / 3.0 / 4.0);
  const auto interval = kvbits::eval::exp_mean_interval(nll);
  CHECK(interval.low == Approx(std::exp(2.5 - kvbits::eval::kZ95 * se)));
  CHECK(interval.high == Approx(std::exp(2.5 + kvbits::eval::kZ95 * se)));
}

TEST_CASE("eval: acc picks the highest log-likelihood, acc_norm the highest per byte, ties the first",
          "[eval][mc]") {
  using kvbits::eval::pick_choices;
  SECTION("length normalisation: a lower total can win per byte") {
    // Totals -10, -12, -12, -20 over 10, 20, 20, 10 bytes: per byte -1.0, -0.6, -0.6, -2.0.
    const std::array<ChoiceScore, 4> scores{{{-10.0, 10}, {-12.0, 20}, {-12.0, 20}, {-20.0, 10}}};
    const auto picks = pick_choices(scores);
    CHECK(picks.acc == 0);
    CHECK(picks.acc_norm == 1);  // ties with choice 2: the lower index wins
  }
  SECTION("ties go to the lowest index") {
    const std::array<ChoiceScore, 4> equal{{{-5.0, 5}, {-5.0, 5}, {-5.0, 5}, {-5.0, 5}}};
    CHECK(pick_choices(equal) == kvbits::eval::McPicks{0, 0});
    const std::array<ChoiceScore, 4> later{{{-9.0, 3}, {-4.0, 8}, {-4.0, 4}, {-4.0, 8}}};
    const auto picks = pick_choices(later);
    CHECK(picks.acc == 1);       // -4 three times: the first of them
    CHECK(picks.acc_norm == 1);  // -0.5 twice: the first of them
  }
  SECTION("the continuation counts the joining space") {
    CHECK(kvbits::eval::continuation_bytes("He ran.") == 8);
    CHECK(kvbits::eval::continuation_bytes("\u00e9t\u00e9.") == 7);  // UTF-8 bytes, not characters
  }
  SECTION("a tally counts right picks and agreement with the reference") {
    kvbits::eval::McTally tally;
    tally.add({0, 1}, 1, {0, 1});  // acc wrong, acc_norm right, both agree
    tally.add({2, 2}, 2, {2, 3});  // both right; acc_norm disagrees (the reference was wrong)
    tally.add({3, 3}, 0, {0, 0});  // both wrong; both disagree (the reference was right)
    tally.add({1, 1}, 1, {1, 1});  // both right, agree
    const auto s = tally.summary();
    CHECK(s.items == 4);
    CHECK(s.acc == Approx(0.5));
    CHECK(s.acc_norm == Approx(0.75));
    CHECK(s.agreement == Approx(0.5));
    CHECK(s.agreement_acc == Approx(0.75));
    CHECK(s.acc_norm_change == Approx(0.0));  // +1 on item 2, -1 on item 3
    CHECK(s.acc_norm_95.low == Approx(kvbits::eval::wilson_interval(3, 4).low));
  }
  kvbits::test::require_error([] { static_cast<void>(pick_choices({})); }, kvbits::Errc::invalid_argument,
                              "no choices");
}

TEST_CASE("eval: sentences end at . ! ? with closing quotes before whitespace", "[eval][mc]") {
  const std::string text =
      "Once upon a time, Mr. Brown had a dog. The dog said, \"Woof!\" Then it ran.\n\n"
      "It was 3.5 miles away?! \u201cYes.\u201d She smiled\nand left";
  const std::vector<std::string> expected{"Once upon a time, Mr. Brown had a dog.",
                                          "The dog said, \"Woof!\"",
                                          "Then it ran.",
                                          "It was 3.5 miles away?!",
                                          "\u201cYes.\u201d",
                                          "She smiled and left"};
  CHECK(kvbits::eval::split_sentences(text) == expected);
  CHECK(kvbits::eval::split_sentences("  \n ").empty());
  CHECK(kvbits::eval::count_words("  a bb\nccc  ") == 3);
}

TEST_CASE("eval: item construction follows its rule and is deterministic", "[eval][mc]") {
  const std::vector<std::string> stories = toy_stories();
  kvbits::eval::McBuildOptions options;
  options.seed = 7;
  const auto items = kvbits::eval::build_mc_items(stories, options);
  // Five sentences each, endings at sentences 2, 3 and 4: three items per document.
  REQUIRE(items.size() == 18);
  std::set<std::size_t> slots;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const McItem& item = items[i];
    INFO("item " << i);
    CHECK(item.story == i / 3);
    const std::vector<std::string> sentences = kvbits::eval::split_sentences(stories[item.story]);
    const std::size_t k = 2 + i % 3;
    std::string context = sentences[0];
    for (std::size_t s = 1; s < k; ++s) context += " " + sentences[s];
    CHECK(item.context == context);
    CHECK(item.endings[item.answer] == sentences[k]);
    std::set<std::string> distinct(item.endings.begin(), item.endings.end());
    CHECK(distinct.size() == 4);
    const std::string own_name = stories[item.story].substr(0, 3);
    for (std::size_t c = 0; c < 4; ++c) {
      if (c != item.answer) CHECK(item.endings[c].substr(0, 3) != own_name);
    }
    slots.insert(item.answer);
  }
  CHECK(slots.size() > 1);

  const std::string file = kvbits::eval::format_mc_items(items);
  CHECK(kvbits::eval::format_mc_items(kvbits::eval::build_mc_items(stories, options)) == file);
  options.seed = 8;
  CHECK(kvbits::eval::format_mc_items(kvbits::eval::build_mc_items(stories, options)) != file);

  const auto few = kvbits::eval::select_evenly(items, 4);
  REQUIRE(few.size() == 4);
  CHECK(few[0] == items[0]);
  CHECK(few[1] == items[4]);
  CHECK(few[3] == items[13]);
  CHECK(kvbits::eval::select_evenly(items, 100).size() == items.size());

  // One document cannot supply distractors from other documents.
  const std::vector<std::string> alone{stories[0]};
  kvbits::test::require_error([&] { static_cast<void>(kvbits::eval::build_mc_items(alone, {})); },
                              kvbits::Errc::invalid_argument, "cannot draw 3 distinct endings");
}

TEST_CASE("eval: items of the shared dev texts are byte-identical run to run", "[eval][mc][shared]") {
  const auto path = kvbits::test::shared_file("data/tinystories_valid_dev.txt");
  const auto stories = kvbits::model::read_stories(path.string());
  const auto items = kvbits::eval::build_mc_items(stories, {});
  // The rule's yield on this text (one item per sentence of >= 4 words after the first two).
  CHECK(items.size() == 1861);
  CHECK(kvbits::eval::format_mc_items(kvbits::eval::build_mc_items(stories, {})) ==
        kvbits::eval::format_mc_items(items));
  std::array<std::size_t, 4> slots{};
  for (const McItem& item : items) ++slots[item.answer];
  for (const std::size_t n : slots) CHECK(n > items.size() / 5);  // about a quarter each
}

TEST_CASE("eval: item files round-trip and reject malformed input", "[eval][mc]") {
  std::vector<McItem> items(2);
  items[0] = {
      3, "A \"quoted\"\tcontext\nwith a line break and a \\ backslash.", {"a", "b\\t", "c\r", "d"}, 2};
  items[1] = {10, "Plain.", {"One two three four.", "Five six seven eight.", "x", "y"}, 0};
  const std::string text = kvbits::eval::format_mc_items(items);
  CHECK(text.rfind("kvbits-mc-items 1\n", 0) == 0);
  CHECK(kvbits::eval::parse_mc_items(text, "memory") == items);

  using kvbits::Errc;
  using kvbits::test::require_error;
  const auto parse = [](const std::string& file) { return kvbits::eval::parse_mc_items(file, "items.tsv"); };
  require_error([&] { parse(""); }, Errc::corrupt_data, "empty file");
  require_error([&] { parse("kvbits-mc-items 2\n"); }, Errc::corrupt_data,
                "items.tsv:1: not a multiple-choice");
  require_error([&] { parse("kvbits-mc-items 1\n"); }, Errc::corrupt_data, "no items");
  require_error([&] { parse("kvbits-mc-items 1\n0\t1\tctx\ta\tb\tc\n"); }, Errc::corrupt_data,
                "items.tsv:2: expected 7 tab-separated fields");
  require_error([&] { parse("kvbits-mc-items 1\n0\t4\tctx\ta\tb\tc\td\n"); }, Errc::corrupt_data,
                "answer 4 is not in 0-3");
  require_error([&] { parse("kvbits-mc-items 1\nx\t1\tctx\ta\tb\tc\td\n"); }, Errc::corrupt_data,
                "document index is not a non-negative integer");
  require_error([&] { parse("kvbits-mc-items 1\n0\t1\tc\\qx\ta\tb\tc\td\n"); }, Errc::corrupt_data,
                "unknown escape \\q");
  require_error([&] { parse("kvbits-mc-items 1\n0\t1\tctx\\\ta\tb\tc\td\n"); }, Errc::corrupt_data,
                "lone backslash");
  require_error([&] { parse("kvbits-mc-items 1\n0\t1\tctx\ta\tb\tc\td\\\n"); }, Errc::corrupt_data,
                "lone backslash");
  require_error([&] { parse("kvbits-mc-items 1\n0\t1\t\ta\tb\tc\td\n"); }, Errc::corrupt_data,
                "empty context");
  require_error([&] { parse("kvbits-mc-items 1\n0\t1\tctx\ta\t\tc\td\n"); }, Errc::corrupt_data,
                "empty ending");
  require_error([] { kvbits::eval::read_mc_items("/nonexistent/items.tsv"); }, Errc::io_error, "cannot open");
}

TEST_CASE("eval: a context cache copied per choice scores every choice exactly as separate runs do",
          "[eval][mc]") {
  kvbits::model::LlamaModel model = kvbits::model::make_toy_model();
  const auto tokenizer = kvbits::model::make_toy_tokenizer();
  const McItem item{0,
                    "the one was in the sand. the ant was there.",
                    {"and then the one went.", "a west wind.", "the ant sang and sang and sang.", "one!"},
                    2};
  const auto tokens = kvbits::eval::tokenize_item(item, tokenizer);
  CHECK(tokens.context.front() == tokenizer.bos());
  CHECK(tokens.bytes[1] == 13);
  kvbits::model::KeySamples samples = kvbits::model::collect_key_samples(model, tokens.context);
  kvbits::eval::McScorer scorer(model, nullptr);
  for (const char* policy :
       {"fp32", "static:4,2", "static:4,4,w=4,s=1,t=scale", "tiers:2=16/16,4=8/8,*=4/2,k+=0.05",
        "random:4/2:1,8/8:1", "rule:4/2,entropy>2=8/4,w=2", "budget:7:tiers:2=16/16,*=8/8"}) {
    INFO("policy " << policy);
    const auto spec = kvbits::model::parse_policy(policy);
    const auto together = scorer.score(tokens, spec, samples);
    const auto apart = scorer.score_separately(tokens, spec, samples);
    for (std::size_t c = 0; c < 4; ++c) {
      INFO("choice " << c);
      CHECK(together[c].log_likelihood == apart[c].log_likelihood);
      CHECK(together[c].bytes == apart[c].bytes);
      CHECK(together[c].log_likelihood < 0.0);
    }
  }
}

TEST_CASE("eval: Pareto frontier and budget winners", "[eval][report]") {
  using kvbits::eval::OperatingPoint;
  const std::vector<OperatingPoint> points{
      {32.0, 0.0},   // 0: reference
      {16.0, 1e-6},  // 1
      {12.0, 1e-3},  // 2
      {12.0, 2e-3},  // 3: beaten by 2 at equal bits
      {10.0, 5e-3},  // 4
      {11.0, 6e-3},  // 5: beaten by 4
      {8.0, 0.3},    // 6
      {8.0, 0.3},    // 7: equal to 6, both stay
  };
  CHECK(kvbits::eval::pareto_frontier(points) == std::vector<std::size_t>{6, 7, 4, 2, 1, 0});
  CHECK(kvbits::eval::budget_winner(points, 11.5) == std::optional<std::size_t>(4));
  CHECK(kvbits::eval::budget_winner(points, 12.0) == std::optional<std::size_t>(2));
  CHECK(kvbits::eval::budget_winner(points, 8.0) == std::optional<std::size_t>(6));
  CHECK_FALSE(kvbits::eval::budget_winner(points, 7.9).has_value());
}

TEST_CASE("eval: CSV quotes policy texts; JSON escapes them", "[eval][report]") {
  kvbits::eval::EvalReport report;
  report.model = "m\"odel";
  kvbits::eval::PolicyResult row;
  row.policy = "static:4,2,g=32";
  row.usage.tokens = 10;
  row.usage.bit_tokens = 60.0;
  row.usage.total.key[kvbits::bits_index(4)] = 20;
  report.policies.push_back(row);
  const std::string csv = kvbits::eval::csv_report(report);
  const std::string header = csv.substr(0, csv.find('\n'));
  const std::string line = csv.substr(header.size() + 1);
  CHECK(line.rfind("\"static:4,2,g=32\",6,", 0) == 0);
  // Every row has the header's field count (commas outside the quotes).
  const auto fields = [](const std::string& text) {
    std::size_t commas = 0;
    bool quoted = false;
    for (const char c : text) {
      if (c == '"') quoted = !quoted;
      if (c == ',' && !quoted) ++commas;
    }
    return commas + 1;
  };
  CHECK(fields(header) == fields(line.substr(0, line.size() - 1)));
  const std::string json = kvbits::eval::json_report(report);
  CHECK_THAT(json, Catch::Contains("\"model\": \"m\\\"odel\""));
  CHECK_THAT(json, Catch::Contains("\"key_widths\": {\"4\": 20}"));
  CHECK_THAT(json, Catch::Contains("\"multiple_choice\": null"));
}
