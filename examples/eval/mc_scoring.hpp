// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

#include "eval/statistics.hpp"
#include "kvbits/core/error.hpp"

namespace kvbits::eval {

/// What the model says about one choice of an item.
struct ChoiceScore {
  double log_likelihood = 0.0;  ///< sum of log p(token | context, earlier tokens) over its tokens
  std::size_t bytes = 0;        ///< length of the continuation text (continuation_bytes)
};

/**
 * The length acc_norm divides by: the continuation is the ending after the single space that
 * joins it to the context (the tokenizer's dummy prefix stands for that space), so its length is
 * 1 + the ending's UTF-8 bytes. lm-evaluation-harness divides HellaSwag's log-likelihoods by the
 * length of the same continuation string (" " + ending); for ASCII text the two agree.
 * @param ending the ending's text
 */
constexpr std::size_t continuation_bytes(std::string_view ending) noexcept { return ending.size() + 1; }

/// The choices a model picks for one item.
struct McPicks {
  std::size_t acc = 0;       ///< highest total log-likelihood
  std::size_t acc_norm = 0;  ///< highest log-likelihood per byte of continuation

  friend bool operator==(const McPicks&, const McPicks&) = default;
};

/**
 * Picks by total log-likelihood (acc) and by log-likelihood divided by the continuation's bytes
 * (acc_norm). On a tie the lowest index wins (a later choice must be strictly better), so the
 * result is deterministic; the builder puts the true ending in a random slot, so ties favour no
 * answer.
 * @param scores one per choice
 * @throw Error(invalid_argument) for no choices or a choice of 0 bytes.
 */
inline McPicks pick_choices(std::span<const ChoiceScore> scores) {
  kvbits::detail::require(!scores.empty(), Errc::invalid_argument, "pick_choices: no choices");
  McPicks picks;
  double best = scores[0].log_likelihood;
  double best_norm = 0.0;  // set by choice 0
  for (std::size_t c = 0; c < scores.size(); ++c) {
    kvbits::detail::require(scores[c].bytes > 0, Errc::invalid_argument, "pick_choices: a choice of 0 bytes");
    const double norm = scores[c].log_likelihood / static_cast<double>(scores[c].bytes);
    if (scores[c].log_likelihood > best) {
      best = scores[c].log_likelihood;
      picks.acc = c;
    }
    if (c == 0 || norm > best_norm) {
      best_norm = norm;
      picks.acc_norm = c;
    }
  }
  return picks;
}

/// Multiple-choice results of one policy over every item.
struct McSummary {
  std::size_t items = 0;       ///< scored items
  double acc = 0.0;            ///< fraction picked right by total log-likelihood
  Interval acc_95{};           ///< its Wilson 95% interval
  double acc_norm = 0.0;       ///< fraction picked right by log-likelihood per byte
  Interval acc_norm_95{};      ///< its Wilson 95% interval
  double agreement = 0.0;      ///< fraction of items whose acc_norm pick equals the reference's
  double agreement_acc = 0.0;  ///< the same for the acc picks
  /// acc_norm minus the reference's acc_norm over the same items (paired).
  double acc_norm_change = 0.0;
  /// its 95% interval: mean ± 1.96 se of the per-item differences (each -1, 0 or 1), which is
  /// much narrower than the two accuracies' own intervals when the picks mostly agree.
  Interval acc_norm_change_95{};
};

/// Counts right picks and agreement with the reference's picks, item by item.
class McTally {
 public:
  /**
   * @param picks     the policy's picks
   * @param answer    the true choice
   * @param reference the reference's (FP32 cache's) picks for the same item
   */
  void add(const McPicks& picks, std::size_t answer, const McPicks& reference) noexcept {
    ++items_;
    acc_ += picks.acc == answer ? 1U : 0U;
    acc_norm_ += picks.acc_norm == answer ? 1U : 0U;
    agree_ += picks.acc_norm == reference.acc_norm ? 1U : 0U;
    agree_acc_ += picks.acc == reference.acc ? 1U : 0U;
    const double right = picks.acc_norm == answer ? 1.0 : 0.0;
    const double reference_right = reference.acc_norm == answer ? 1.0 : 0.0;
    change_.add(right - reference_right);
  }

  /// @return items added so far.
  [[nodiscard]] std::size_t items() const noexcept { return items_; }

  /// @return accuracies with their intervals and the agreements (zeros, intervals [0, 1], for none).
  [[nodiscard]] McSummary summary() const {
    McSummary s;
    s.items = items_;
    s.acc_95 = wilson_interval(acc_, items_);
    s.acc_norm_95 = wilson_interval(acc_norm_, items_);
    if (items_ == 0) return s;
    const double n = static_cast<double>(items_);
    s.acc = static_cast<double>(acc_) / n;
    s.acc_norm = static_cast<double>(acc_norm_) / n;
    s.agreement = static_cast<double>(agree_) / n;
    s.agreement_acc = static_cast<double>(agree_acc_) / n;
    s.acc_norm_change = change_.mean();
    const double half = kZ95 * change_.standard_error();
    s.acc_norm_change_95 = {change_.mean() - half, change_.mean() + half};
    return s;
  }

 private:
  std::size_t items_ = 0;
  std::size_t acc_ = 0;        // right by total log-likelihood
  std::size_t acc_norm_ = 0;   // right by log-likelihood per byte
  std::size_t agree_ = 0;      // acc_norm pick equals the reference's
  std::size_t agree_acc_ = 0;  // acc pick equals the reference's
  RunningMoments change_;      // per item: right by acc_norm minus the reference right by acc_norm
};

}  // namespace kvbits::eval
