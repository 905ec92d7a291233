// SPDX-License-Identifier: MIT
#pragma once

#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "eval/frontier.hpp"
#include "kvbits/core/error.hpp"

namespace kvbits::report {

/// What a point of a quality/memory chart stands for.
enum class PointKind {
  reference,      ///< the FP32 cache everything is measured against (KL 0)
  static_config,  ///< one width for every token (fp16, static:K,V)
  adaptive,       ///< widths chosen per token (tiers, budget, rule, random, learned, ...)
};

/// One policy's operating point.
struct ParetoPoint {
  std::string label;                       ///< the policy specification, as the table shows it
  std::string family;                      ///< family_of_policy(label) unless the caller groups otherwise
  double bits = 0.0;                       ///< stored bits per K/V element
  double mean_kl = 0.0;                    ///< mean KL(FP32 || policy) over positions
  double perplexity_change_percent = 0.0;  ///< 100 (ppl / ppl_fp32 - 1)
  PointKind kind = PointKind::adaptive;
};

/// The quality measure on the y axis.
enum class ParetoAxis {
  mean_kl,            ///< log scale
  perplexity_change,  ///< symmetric log scale (linear near 0), in percent
};

/**
 * Reads a y measure as the tools' options spell it.
 * @param text   "kl" (mean KL) or "ppl" (perplexity change)
 * @param option the option's name, for the error message
 * @throw Error(invalid_argument) for any other text.
 */
inline ParetoAxis parse_pareto_axis(std::string_view text, std::string_view option) {
  if (text == "kl") return ParetoAxis::mean_kl;
  std::string message(option);
  message += " expects kl or ppl, got '";
  message += text;
  message += "'";
  kvbits::detail::require(text == "ppl", Errc::invalid_argument, message);
  return ParetoAxis::perplexity_change;
}

/// What a chart shows besides its points.
struct ParetoChart {
  std::string title;  ///< empty: a default title
  ParetoAxis y = ParetoAxis::mean_kl;
};

/**
 * @return the family of a policy specification: the text before its first ':' or ','
 *         ("static", "tiers", "budget", "random", "rule", "fp16", "fp32").
 */
inline std::string family_of_policy(std::string_view spec) {
  const std::size_t first = spec.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  spec.remove_prefix(first);
  const std::size_t end = spec.find_first_of(":, \t");
  return std::string(spec.substr(0, end));
}

/**
 * @return true for a hard fp16 window, `tiers:R=16/16,*=K/V[,options]`: the newest R tokens at
 * 16 (or 32) bits and every older one at K/V. Its widths never change with what a token is
 * worth, so it is a static configuration spelled as tiers.
 */
inline bool is_hard_window(std::string_view spec) {
  constexpr std::string_view kPrefix = "tiers:";
  if (!spec.starts_with(kPrefix)) return false;
  spec.remove_prefix(kPrefix.size());
  std::size_t tiers = 0;
  bool window = false;
  while (!spec.empty()) {
    const std::size_t comma = spec.find(',');
    const std::string_view entry = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view{} : spec.substr(comma + 1);
    const std::size_t equals = entry.find('=');
    if (equals == std::string_view::npos) return false;
    const std::string_view age = entry.substr(0, equals);
    const std::string_view widths = entry.substr(equals + 1);
    if (age == "*") {
      ++tiers;
    } else if (!age.empty() && age.find_first_not_of("0123456789") == std::string_view::npos) {
      ++tiers;
      window = widths == "16/16" || widths == "32/32";
    }  // anything else is an option (g=, t=, k+=, ...)
  }
  return tiers == 2 && window;
}

/// @return reference for fp32; static_config for fp16, static:... and hard fp16 windows; adaptive otherwise.
inline PointKind kind_of_policy(std::string_view spec) {
  const std::string family = family_of_policy(spec);
  if (family == "fp32") return PointKind::reference;
  if (family == "fp16" || family == "static" || is_hard_window(spec)) return PointKind::static_config;
  return PointKind::adaptive;
}

/// @return the point of a policy specification, its family and kind read from the specification.
inline ParetoPoint policy_point(std::string spec, double bits, double mean_kl,
                                double perplexity_change_percent) {
  ParetoPoint point;
  point.family = family_of_policy(spec);
  point.kind = kind_of_policy(spec);
  point.label = std::move(spec);
  point.bits = bits;
  point.mean_kl = mean_kl;
  point.perplexity_change_percent = perplexity_change_percent;
  return point;
}

/// @return the point's value on the `axis` measure.
inline double quality(const ParetoPoint& point, ParetoAxis axis) noexcept {
  return axis == ParetoAxis::mean_kl ? point.mean_kl : point.perplexity_change_percent;
}

/**
 * The lower-left frontier of the static configurations: the static_config points no other
 * static_config point beats on both bits and `axis` (eval::pareto_frontier's rule). Points with a
 * non-finite coordinate are left out.
 * @return indices into `points`, in increasing bits (and so decreasing quality value).
 */
inline std::vector<std::size_t> static_frontier(std::span<const ParetoPoint> points, ParetoAxis axis) {
  std::vector<std::size_t> candidates;
  std::vector<eval::OperatingPoint> plane;  // the candidates' (bits, quality), quality in the KL slot
  for (std::size_t i = 0; i < points.size(); ++i) {
    const ParetoPoint& point = points[i];
    if (point.kind == PointKind::static_config && std::isfinite(point.bits) &&
        std::isfinite(quality(point, axis))) {
      candidates.push_back(i);
      plane.push_back({point.bits, quality(point, axis)});
    }
  }
  std::vector<std::size_t> frontier = eval::pareto_frontier(plane);
  for (std::size_t& index : frontier) index = candidates[index];
  return frontier;
}

}  // namespace kvbits::report
