// SPDX-License-Identifier: MIT
#pragma once

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "eval/eval_report.hpp"
#include "eval/mc_scorer.hpp"
#include "eval/mc_scoring.hpp"
#include "eval/policy_cost.hpp"
#include "eval/progress.hpp"
#include "eval/quality.hpp"
#include "eval/statistics.hpp"
#include "eval/teacher_forcing.hpp"
#include "kvbits/features/unigram_table.hpp"
#include "model/calibration.hpp"
#include "model/llama.hpp"
#include "model/policy_spec.hpp"

namespace kvbits::eval {

/// The model and policies both passes of a run share.
struct PassInputs {
  model::LlamaModel* model = nullptr;            ///< the model (its scratch is used)
  std::shared_ptr<const UnigramTable> unigrams;  ///< rarity counts for rule: policies, or null
  std::span<const model::PolicySpec> specs;      ///< the policies, in report order
  const model::KeySamples* samples = nullptr;    ///< calibration keys for t=scale policies
};

/**
 * The story pass: teacher forcing of every sequence, the FP32 cache first, then each policy,
 * sequence by sequence (so that the decode-time ratio compares passes run side by side). Fills
 * the reference perplexity of `report` and, per policy (report.policies[i] for specs[i]), its
 * text, quality, cache usage and decode-time ratio.
 * @param sequences [BOS] + tokens of each story, at least 2 tokens each
 * @param progress  advanced by each sequence's positions x (policies + 1)
 */
inline void run_story_pass(const PassInputs& in, std::span<const std::vector<std::int32_t>> sequences,
                           Progress& progress, EvalReport& report) {
  TeacherForcing forcing(*in.model, in.unigrams);
  RunningMoments reference_nll;
  DecodeClock reference_clock;
  std::vector<QualityAccumulator> quality(in.specs.size());
  std::vector<DecodeClock> clocks(in.specs.size());
  report.policies.resize(in.specs.size());
  for (std::size_t s = 0; s < sequences.size(); ++s) {
    forcing.run_reference(sequences[s], reference_nll, reference_clock);
    for (std::size_t i = 0; i < in.specs.size(); ++i) {
      forcing.run_policy(sequences[s], in.specs[i], *in.samples, quality[i], report.policies[i].usage,
                         clocks[i]);
    }
    std::string stage = "story ";
    stage += std::to_string(s + 1);
    stage += '/';
    stage += std::to_string(sequences.size());
    progress.advance((sequences[s].size() - 1) * (in.specs.size() + 1), stage);
  }
  report.reference_perplexity = std::exp(reference_nll.mean());
  report.reference_perplexity_95 = exp_mean_interval(reference_nll);
  for (std::size_t i = 0; i < in.specs.size(); ++i) {
    report.policies[i].policy = in.specs[i].text;
    report.policies[i].quality = quality[i].summary();
    report.policies[i].decode_time_ratio = decode_time_ratio(clocks[i], reference_clock);
  }
}

/**
 * The multiple-choice pass: each item scored with the FP32 cache, then each policy. Sets
 * report.mc to `info` completed with the FP32 cache's results, and each policy's mc results and
 * scoring time (report.policies must already hold one entry per spec).
 * @param items    the items to score (each within the model's context)
 * @param progress advanced by each item's forward_passes() x (policies + 1)
 */
inline void run_choice_pass(const PassInputs& in, std::span<const TokenizedItem> items, Progress& progress,
                            McRunInfo info, EvalReport& report) {
  McScorer scorer(*in.model, in.unigrams);
  const model::PolicySpec fp32 = model::parse_policy("fp32");
  McTally reference_tally;
  std::vector<McTally> tallies(in.specs.size());
  std::vector<double> seconds(in.specs.size(), 0.0);
  const auto timed_picks = [&](const TokenizedItem& item, const model::PolicySpec& spec, double& clock) {
    const auto start = std::chrono::steady_clock::now();
    const auto scores = scorer.score(item, spec, *in.samples);
    clock += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return pick_choices(scores);
  };
  for (std::size_t n = 0; n < items.size(); ++n) {
    const TokenizedItem& item = items[n];
    const McPicks reference = timed_picks(item, fp32, info.reference_seconds);
    reference_tally.add(reference, item.answer, reference);
    for (std::size_t i = 0; i < in.specs.size(); ++i) {
      tallies[i].add(timed_picks(item, in.specs[i], seconds[i]), item.answer, reference);
    }
    std::string stage = "item ";
    stage += std::to_string(n + 1);
    stage += '/';
    stage += std::to_string(items.size());
    progress.advance(item.forward_passes() * (in.specs.size() + 1), stage);
  }
  info.reference = reference_tally.summary();
  report.mc = info;
  for (std::size_t i = 0; i < in.specs.size(); ++i) {
    report.policies[i].mc = tallies[i].summary();
    report.policies[i].mc_seconds = seconds[i];
  }
}

}  // namespace kvbits::eval
