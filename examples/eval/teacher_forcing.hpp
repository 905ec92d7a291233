// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "eval/policy_cost.hpp"
#include "eval/quality.hpp"
#include "eval/statistics.hpp"
#include "kvbits/features/unigram_table.hpp"
#include "model/calibration.hpp"
#include "model/eval_metrics.hpp"
#include "model/llama.hpp"
#include "model/policy_spec.hpp"
#include "model/sampling.hpp"
#include "model/token_features.hpp"
#include "model/tool_cache.hpp"

namespace kvbits::eval {

/**
 * Teacher forcing of one sequence at a time: the FP32 cache's pass computes the reference
 * log-probabilities once, then each policy's pass is scored against them position by position.
 * Position p feeds token p at position p and scores the distribution of token p + 1, so a
 * sequence of n tokens (BOS first) has n - 1 scored positions. Only model.forward is timed.
 */
class TeacherForcing {
 public:
  /**
   * @param model    the model; its scratch is used by every pass
   * @param unigrams token counts for the rarity feature of rule: policies (null: all equally rare)
   */
  TeacherForcing(model::LlamaModel& model, std::shared_ptr<const UnigramTable> unigrams)
      : model_(model),
        features_(model.config().vocab, std::move(unigrams)),
        logits_(model.config().vocab),
        log_probs_(model.config().vocab) {}

  /**
   * Runs the FP32 cache over `ids` and keeps its log-probabilities for run_policy.
   * @param ids   [BOS] + tokens, at least 2
   * @param nll   receives -log p(next token) of every position
   * @param clock receives the forward passes' time
   * @throw Error(invalid_argument) for fewer than 2 ids, or what the model throws.
   */
  void run_reference(std::span<const std::int32_t> ids, RunningMoments& nll, DecodeClock& clock) {
    kvbits::detail::require(ids.size() >= 2, Errc::invalid_argument,
                            "teacher forcing needs BOS and at least one token to predict");
    const std::size_t vocab = logits_.size();
    const std::size_t positions = ids.size() - 1;
    log_probs_ref_.resize(positions * vocab);
    argmax_ref_.resize(positions);
    nll_ref_.resize(positions);
    auto cache = model::make_cache(fp32_, model_.config(), positions);
    for (std::size_t p = 0; p < positions; ++p) {
      clock.time([&] { model_.forward(ids[p], p, cache, logits_); });
      const std::span<double> row(log_probs_ref_.data() + p * vocab, vocab);
      model::log_softmax(logits_, row);
      argmax_ref_[p] = model::argmax(logits_);
      nll_ref_[p] = -row[static_cast<std::size_t>(ids[p + 1])];
      nll.add(nll_ref_[p]);
    }
  }

  /**
   * Runs `spec` over the same `ids` as the last run_reference and scores every position.
   * @param ids     the sequence of the last run_reference
   * @param spec    the cache policy
   * @param samples calibration keys for t=scale policies (may be empty otherwise)
   * @param quality receives KL, NLL and top-1 agreement of every position
   * @param usage   receives the final cache's memory
   * @param clock   receives the forward passes' time
   */
  void run_policy(std::span<const std::int32_t> ids, const model::PolicySpec& spec,
                  const model::KeySamples& samples, QualityAccumulator& quality, CacheUsage& usage,
                  DecodeClock& clock) {
    const std::size_t vocab = logits_.size();
    const std::size_t positions = ids.size() - 1;
    auto cache = model::make_cache(spec, model_.config(), positions, &samples);
    for (std::size_t p = 0; p < positions; ++p) {
      clock.time([&] { model_.forward(ids[p], p, cache, logits_); });
      if (spec.needs_token_features()) features_.feed(cache, logits_, ids[p], p, ids[p + 1]);
      model::log_softmax(logits_, log_probs_);
      const std::span<const double> row(log_probs_ref_.data() + p * vocab, vocab);
      quality.add(model::kl_divergence(row, log_probs_), -log_probs_[static_cast<std::size_t>(ids[p + 1])],
                  nll_ref_[p], model::argmax(logits_) == argmax_ref_[p]);
    }
    usage.add(cache.memory(), positions);
  }

 private:
  model::LlamaModel& model_;
  model::TokenFeatureFeeder features_;
  model::PolicySpec fp32_ = model::parse_policy("fp32");
  std::vector<float> logits_;             // [vocab]
  std::vector<double> log_probs_;         // [vocab] of the running policy
  std::vector<double> log_probs_ref_;     // [positions][vocab] of the FP32 cache
  std::vector<std::int32_t> argmax_ref_;  // [positions]
  std::vector<double> nll_ref_;           // [positions] -log p(next token)
};

}  // namespace kvbits::eval
