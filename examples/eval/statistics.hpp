// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <string>

#include "kvbits/core/error.hpp"

namespace kvbits::eval {

/// z of a two-sided 95% interval of the standard normal distribution.
inline constexpr double kZ95 = 1.959963984540054;

/// A closed interval [low, high].
struct Interval {
  double low = 0.0;   ///< lower end
  double high = 0.0;  ///< upper end
};

/**
 * The q-quantile of sorted values by linear interpolation between the two nearest ranks
 * (Hyndman & Fan's definition 7, the default of numpy and R): with h = (n - 1) q,
 * x[floor h] + (h - floor h) (x[floor h + 1] - x[floor h]), ranks counted from 0. q = 0 gives the
 * minimum, q = 1 the maximum, q = 0.5 the median (the mean of the middle two for even n).
 * @param sorted values in ascending order
 * @param q      the quantile, in [0, 1]
 * @throw Error(invalid_argument) for no values, q outside [0, 1] or values out of order.
 */
inline double percentile_sorted(std::span<const double> sorted, double q) {
  kvbits::detail::require(!sorted.empty(), Errc::invalid_argument, "percentile of no values");
  kvbits::detail::require(q >= 0.0 && q <= 1.0, Errc::invalid_argument,
                          "percentile: q must lie in [0, 1], got " + std::to_string(q));
  kvbits::detail::require(std::is_sorted(sorted.begin(), sorted.end()), Errc::invalid_argument,
                          "percentile: values must be sorted");
  const double h = static_cast<double>(sorted.size() - 1) * q;
  const double below = std::floor(h);
  const auto i = static_cast<std::size_t>(below);
  if (i + 1 >= sorted.size()) return sorted.back();
  return sorted[i] + (h - below) * (sorted[i + 1] - sorted[i]);
}

/**
 * @param values    any values
 * @param threshold the bound
 * @return the fraction of values strictly above `threshold`; 0 for no values.
 */
inline double share_above(std::span<const double> values, double threshold) noexcept {
  if (values.empty()) return 0.0;
  const auto above = std::count_if(values.begin(), values.end(), [=](double x) { return x > threshold; });
  return static_cast<double>(above) / static_cast<double>(values.size());
}

/**
 * The Wilson score interval of a binomial proportion: with p = successes / trials,
 * (p + z^2/2n ± z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n). Unlike p ± z se it stays inside
 * [0, 1] and is not empty at p = 0 or 1.
 * @param successes the count of successes, at most `trials`
 * @param trials    the count of trials; 0 gives [0, 1]
 * @param z         the normal quantile of the confidence level (kZ95: 95%)
 * @throw Error(invalid_argument) when successes > trials.
 */
inline Interval wilson_interval(std::size_t successes, std::size_t trials, double z = kZ95) {
  kvbits::detail::require(successes <= trials, Errc::invalid_argument,
                          "wilson_interval: more successes than trials");
  if (trials == 0) return {0.0, 1.0};
  const double n = static_cast<double>(trials);
  const double p = static_cast<double>(successes) / n;
  const double z2 = z * z;
  const double denominator = 1.0 + z2 / n;
  const double center = (p + z2 / (2.0 * n)) / denominator;
  const double half = z * std::sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denominator;
  return {std::max(0.0, center - half), std::min(1.0, center + half)};
}

/// Running count, mean and variance of a sample (Welford's update, stable for long runs).
class RunningMoments {
 public:
  /// Adds one observation.
  void add(double x) noexcept {
    ++count_;
    const double delta = x - mean_;
    mean_ += delta / static_cast<double>(count_);
    squares_ += delta * (x - mean_);
  }
  /// @return the number of observations.
  [[nodiscard]] std::size_t count() const noexcept { return count_; }
  /// @return their mean; 0 for none.
  [[nodiscard]] double mean() const noexcept { return mean_; }
  /// @return the sample variance (divisor n - 1); 0 for fewer than two observations.
  [[nodiscard]] double variance() const noexcept {
    return count_ < 2 ? 0.0 : squares_ / static_cast<double>(count_ - 1);
  }
  /// @return the standard error of the mean, sqrt(variance / n); 0 for fewer than two.
  [[nodiscard]] double standard_error() const noexcept {
    return count_ < 2 ? 0.0 : std::sqrt(variance() / static_cast<double>(count_));
  }

 private:
  std::size_t count_ = 0;
  double mean_ = 0.0;
  double squares_ = 0.0;  // sum of squared deviations from the running mean
};

/**
 * The interval exp(mean ± z se) of exp(mean): for the mean negative log-likelihood per position,
 * a perplexity interval. It treats positions as independent, which tokens of one story are not,
 * so it is somewhat narrower than an interval over stories would be.
 * @param sample the observations (e.g. per-position negative log-likelihoods)
 * @param z      the normal quantile of the confidence level
 */
inline Interval exp_mean_interval(const RunningMoments& sample, double z = kZ95) noexcept {
  const double half = z * sample.standard_error();
  return {std::exp(sample.mean() - half), std::exp(sample.mean() + half)};
}

}  // namespace kvbits::eval
