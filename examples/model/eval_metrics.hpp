// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>

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

}  // namespace kvbits::model
