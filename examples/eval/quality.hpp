// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <vector>

#include "eval/statistics.hpp"

namespace kvbits::eval {

/// KL levels whose exceedance share is reported: 0.01 nats is a visible change of a
/// distribution, 0.1 nats often a changed top token.
inline constexpr std::array<double, 2> kKlThresholds{0.01, 0.1};

/// How one policy's next-token predictions compare with the reference's over all positions.
struct QualitySummary {
  std::size_t positions = 0;       ///< scored positions
  double perplexity = 0.0;         ///< exp(mean negative log-likelihood of the data's next token)
  Interval perplexity_95{};        ///< exp(mean NLL ± 1.96 se), positions taken as independent
  double perplexity_change = 0.0;  ///< perplexity / reference perplexity - 1
  /// exp(mean ± 1.96 se) - 1 of the per-position NLL difference to the reference (paired).
  Interval perplexity_change_95{};
  double mean_kl = 0.0;                                       ///< mean KL(reference || policy), nats
  double median_kl = 0.0;                                     ///< 50th percentile of KL (percentile_sorted)
  double p99_kl = 0.0;                                        ///< 99th percentile
  double p999_kl = 0.0;                                       ///< 99.9th percentile
  double max_kl = 0.0;                                        ///< largest KL of any position
  std::array<double, kKlThresholds.size()> share_kl_above{};  ///< fraction with KL > kKlThresholds[i]
  double top1_agreement = 0.0;  ///< fraction of positions whose argmax equals the reference's
};

/**
 * Collects, position by position, a policy's KL to the reference, its negative log-likelihood of
 * the data's next token and whether its argmax agrees, and summarizes them. Every KL value is
 * kept (8 bytes a position) so that the tail can be read exactly.
 */
class QualityAccumulator {
 public:
  /**
   * @param kl                KL(reference || policy) at the position, nats
   * @param nll               -log q(next token) under the policy
   * @param reference_nll     -log p(next token) under the reference
   * @param top1_agrees       whether the two argmaxes agree
   */
  void add(double kl, double nll, double reference_nll, bool top1_agrees) {
    kl_.push_back(kl);
    kl_sum_ += kl;
    nll_.add(nll);
    nll_change_.add(nll - reference_nll);
    top1_ += top1_agrees ? 1U : 0U;
  }

  /// @return positions added so far.
  [[nodiscard]] std::size_t positions() const noexcept { return kl_.size(); }

  /// @return the summary of every position added (zeros when none).
  [[nodiscard]] QualitySummary summary() const {
    QualitySummary s;
    s.positions = kl_.size();
    if (kl_.empty()) return s;
    const double n = static_cast<double>(kl_.size());
    s.perplexity = std::exp(nll_.mean());
    s.perplexity_95 = exp_mean_interval(nll_);
    s.perplexity_change = std::exp(nll_change_.mean()) - 1.0;
    const Interval ratio = exp_mean_interval(nll_change_);
    s.perplexity_change_95 = {ratio.low - 1.0, ratio.high - 1.0};
    s.mean_kl = kl_sum_ / n;
    std::vector<double> sorted = kl_;
    std::sort(sorted.begin(), sorted.end());
    s.median_kl = percentile_sorted(sorted, 0.5);
    s.p99_kl = percentile_sorted(sorted, 0.99);
    s.p999_kl = percentile_sorted(sorted, 0.999);
    s.max_kl = sorted.back();
    for (std::size_t i = 0; i < kKlThresholds.size(); ++i)
      s.share_kl_above[i] = share_above(sorted, kKlThresholds[i]);
    s.top1_agreement = static_cast<double>(top1_) / n;
    return s;
  }

 private:
  std::vector<double> kl_;     // [positions] KL per scored position, in scoring order
  double kl_sum_ = 0.0;        // sum of kl_
  RunningMoments nll_;         // -log q(next token)
  RunningMoments nll_change_;  // -log q(next token) + log p(next token)
  std::size_t top1_ = 0;       // positions whose argmaxes agree
};

}  // namespace kvbits::eval
