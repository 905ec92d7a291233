// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>

#include "kvbits/cache/memory_report.hpp"
#include "kvbits/core/error.hpp"

namespace kvbits::model {

/**
 * out = log softmax(logits), computed in double.
 * @param logits [vocab]
 * @param out    [vocab]
 */
inline void log_softmax(std::span<const float> logits, std::span<double> out) {
  kvbits::detail::require(!logits.empty() && out.size() == logits.size(), Errc::shape_mismatch,
                          "log_softmax: logits and out must have the same, non-zero length");
  const double top = *std::max_element(logits.begin(), logits.end());
  double total = 0.0;
  for (const float x : logits) total += std::exp(static_cast<double>(x) - top);
  const double log_total = top + std::log(total);
  for (std::size_t i = 0; i < logits.size(); ++i) out[i] = static_cast<double>(logits[i]) - log_total;
}

/**
 * KL(p || q) = sum_i p_i (log p_i - log q_i) from log-probabilities.
 * @param log_p [vocab] the reference distribution
 * @param log_q [vocab] the approximating distribution
 */
inline double kl_divergence(std::span<const double> log_p, std::span<const double> log_q) {
  kvbits::detail::require(log_p.size() == log_q.size(), Errc::shape_mismatch,
                          "kl_divergence: distributions differ in length");
  double kl = 0.0;
  for (std::size_t i = 0; i < log_p.size(); ++i) {
    const double p = std::exp(log_p[i]);
    if (p > 0.0) kl += p * (log_p[i] - log_q[i]);
  }
  // Rounding can make a near-zero divergence slightly negative.
  return std::max(kl, 0.0);
}

/// Running totals of one policy over every scored position of every story.
struct EvalTotals {
  double negative_log_likelihood = 0.0;  ///< sum of -log q(next token)
  double kl = 0.0;                       ///< sum of KL(reference || policy)
  std::size_t top1_agreements = 0;       ///< positions where both argmaxes agree
  std::size_t positions = 0;             ///< scored positions
  double bit_tokens = 0.0;               ///< sum over stories of average bits x cached tokens
  double cached_tokens = 0.0;            ///< sum over stories of cached tokens
  PrecisionHistogram histogram{};        ///< final caches' tokens x layers by K and V width, summed

  /// @return exp(mean negative log-likelihood).
  [[nodiscard]] double perplexity() const noexcept {
    return positions == 0 ? 0.0 : std::exp(negative_log_likelihood / static_cast<double>(positions));
  }
  /// @return mean KL(reference || policy) per position, in nats.
  [[nodiscard]] double mean_kl() const noexcept {
    return positions == 0 ? 0.0 : kl / static_cast<double>(positions);
  }
  /// @return the fraction of positions whose argmax matches the reference's.
  [[nodiscard]] double top1_agreement() const noexcept {
    return positions == 0 ? 0.0 : static_cast<double>(top1_agreements) / static_cast<double>(positions);
  }
  /// @return storage bits per K/V element, averaged over stories weighted by their length.
  [[nodiscard]] double average_bits() const noexcept {
    return cached_tokens == 0.0 ? 0.0 : bit_tokens / cached_tokens;
  }
};

}  // namespace kvbits::model
