// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "report/markup.hpp"

namespace kvbits::report {

/// How a chart axis maps data to length.
enum class ScaleKind {
  linear,
  log,     ///< log10; the domain must be positive
  symlog,  ///< sign(v) log10(1 + |v| / c): linear near 0, logarithmic beyond c, both signs
};

/// One tick of an axis: where it sits in data units and its label.
struct Tick {
  double value;
  std::string label;
};

/**
 * Maps a data interval onto a pixel interval (either may be reversed, as a y axis is) through
 * a linear, log or symlog transform.
 */
class Scale {
 public:
  Scale() = default;
  /**
   * @param kind       the transform
   * @param lo, hi     the data interval, lo < hi (both > 0 for log)
   * @param pixel_lo   where lo lands
   * @param pixel_hi   where hi lands
   * @param constant   c of the symlog transform (> 0); ignored otherwise
   */
  Scale(ScaleKind kind, double lo, double hi, double pixel_lo, double pixel_hi, double constant = 1.0)
      : kind_(kind), lo_(lo), hi_(hi), pixel_lo_(pixel_lo), pixel_hi_(pixel_hi), constant_(constant) {}

  /// @return the pixel position of `value` (values outside the domain map outside the range).
  [[nodiscard]] double operator()(double value) const {
    const double t_lo = transform(lo_);
    const double t_hi = transform(hi_);
    const double span = t_hi - t_lo;
    const double t = span > 0.0 ? (transform(value) - t_lo) / span : 0.5;
    return pixel_lo_ + t * (pixel_hi_ - pixel_lo_);
  }

  [[nodiscard]] ScaleKind kind() const noexcept { return kind_; }
  [[nodiscard]] double lo() const noexcept { return lo_; }
  [[nodiscard]] double hi() const noexcept { return hi_; }
  [[nodiscard]] double constant() const noexcept { return constant_; }

 private:
  [[nodiscard]] double transform(double value) const {
    switch (kind_) {
      case ScaleKind::log:
        return std::log10(value);
      case ScaleKind::symlog:
        return std::copysign(std::log10(1.0 + std::fabs(value) / constant_), value);
      case ScaleKind::linear:
        break;
    }
    return value;
  }

  ScaleKind kind_ = ScaleKind::linear;
  double lo_ = 0.0;
  double hi_ = 1.0;
  double pixel_lo_ = 0.0;
  double pixel_hi_ = 1.0;
  double constant_ = 1.0;
};

/// A linear axis interval widened to round tick values, and those ticks.
struct LinearTicks {
  double lo;
  double hi;
  std::vector<Tick> ticks;
};

/**
 * @return ticks at a 1, 2 or 5 x 10^k step giving at most about `most` ticks over [lo, hi], the
 *         interval widened to the outer ticks. An empty interval is widened by one around lo.
 */
inline LinearTicks linear_ticks(double lo, double hi, int most) {
  if (!(hi > lo)) {
    lo -= 1.0;
    hi = lo + 2.0;
  }
  const double rough = (hi - lo) / std::max(1, most);
  const double magnitude = std::pow(10.0, std::floor(std::log10(rough)));
  double step = magnitude;
  for (const double factor : {1.0, 2.0, 5.0, 10.0}) {
    step = factor * magnitude;
    if (step >= rough) break;
  }
  const long first = std::lround(std::floor(lo / step));
  const long last = std::lround(std::ceil(hi / step));
  const int decimals = step >= 1.0 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  LinearTicks result{static_cast<double>(first) * step, static_cast<double>(last) * step, {}};
  for (long i = first; i <= last; ++i) {
    const double value = static_cast<double>(i) * step;
    result.ticks.push_back({value, fixed(value, decimals)});
  }
  return result;
}

/**
 * @return the decades 10^k covering [lo, hi] (lo > 0), at least two; labels are the exponents k,
 *         to be drawn as 10 with a superscript.
 */
inline std::vector<Tick> log_ticks(double lo, double hi) {
  int first = static_cast<int>(std::floor(std::log10(lo)));
  int last = static_cast<int>(std::ceil(std::log10(hi)));
  if (last <= first) last = first + 1;
  std::vector<Tick> ticks;
  for (int k = first; k <= last; ++k) ticks.push_back({std::pow(10.0, k), std::to_string(k)});
  return ticks;
}

/**
 * @return symlog ticks over [lo, hi] (lo <= 0 <= hi): 0 and +-c 10^k, the outermost at or beyond
 *         the interval's ends so they can serve as the axis limits.
 */
inline std::vector<Tick> symlog_ticks(double lo, double hi, double constant) {
  std::vector<Tick> negative;
  for (double v = constant; lo < 0.0; v *= 10.0) {
    negative.push_back({-v, shortest(-v)});
    if (-v <= lo) break;
  }
  std::vector<Tick> ticks(negative.rbegin(), negative.rend());
  ticks.push_back({0.0, "0"});
  for (double v = constant; hi > 0.0; v *= 10.0) {
    ticks.push_back({v, shortest(v)});
    if (v >= hi) break;
  }
  return ticks;
}

}  // namespace kvbits::report
