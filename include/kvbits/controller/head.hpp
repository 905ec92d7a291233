// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>

#include <Eigen/Core>

namespace kvbits::detail {

/// @return softmax(logits), computed after subtracting the largest logit so no exp overflows.
template <class Vector>
Vector softmax(const Vector& logits) noexcept {
  Vector p = (logits.array() - logits.maxCoeff()).exp().matrix();
  p /= p.sum();
  return p;
}

/// @return the index of the largest entry of `values` (the first on ties).
template <class Vector>
std::size_t argmax(const Vector& values) noexcept {
  Eigen::Index best = 0;
  values.maxCoeff(&best);
  return static_cast<std::size_t>(best);
}

/**
 * @param probabilities a distribution over classes, cheapest class first.
 * @param quantile in (0, 1].
 * @return the first class whose cumulative probability reaches `quantile` (the
 *         last class when rounding keeps the total just below it).
 */
template <class Vector>
std::size_t quantile_class(const Vector& probabilities, double quantile) noexcept {
  double cumulative = 0.0;
  const auto classes = static_cast<std::size_t>(probabilities.size());
  for (std::size_t i = 0; i + 1 < classes; ++i) {
    cumulative += static_cast<double>(probabilities[static_cast<Eigen::Index>(i)]);
    if (cumulative >= quantile) return i;
  }
  return classes - 1;
}

}  // namespace kvbits::detail
