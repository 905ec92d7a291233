// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "eval/frontier.hpp"
#include "eval/mc_scoring.hpp"
#include "eval/policy_cost.hpp"
#include "eval/quality.hpp"
#include "eval/statistics.hpp"

namespace kvbits::eval {

/// Everything kvbits-eval measured for one policy.
struct PolicyResult {
  std::string policy;              ///< the --policy text
  QualitySummary quality;          ///< next-token quality against the FP32 cache
  CacheUsage usage;                ///< final caches' memory and widths
  double decode_time_ratio = 0.0;  ///< forward time per token / the FP32 cache's, interleaved
  std::optional<McSummary> mc;     ///< multiple-choice results, when items were scored
  double mc_seconds = 0.0;         ///< time scoring the items with this policy
};

/// How the multiple-choice items were made and how the FP32 cache did on them.
struct McRunInfo {
  std::string source;              ///< "built from TEXT, seed S" or the item file read
  std::size_t available = 0;       ///< items built or read before selection
  std::size_t items = 0;           ///< items scored
  std::size_t too_long = 0;        ///< selected items skipped for exceeding the model's context
  McSummary reference;             ///< the FP32 cache's results (agreement 1 by definition)
  double reference_seconds = 0.0;  ///< time scoring the items with the FP32 cache
};

/// A whole kvbits-eval run, as the report writers print it.
struct EvalReport {
  std::string model;                   ///< model file
  std::string text;                    ///< stories file
  std::size_t stories = 0;             ///< stories evaluated
  std::size_t truncated = 0;           ///< of which cut to max_tokens
  std::size_t max_tokens = 0;          ///< most tokens per story, BOS included
  std::size_t positions = 0;           ///< scored positions over all stories
  std::size_t calibration_tokens = 0;  ///< tokens of the first story when t=scale calibrated, else 0
  double reference_perplexity = 0.0;   ///< the FP32 cache's perplexity
  Interval reference_perplexity_95{};  ///< its 95% interval (positions taken as independent)
  std::optional<McRunInfo> mc;         ///< when --mc or --mc-items asked for multiple choice
  std::vector<PolicyResult> policies;  ///< in --policy order
  std::vector<double> budgets;         ///< --budgets, for the summary line
};

/// @return each policy's bits/element and mean KL, in report order.
inline std::vector<OperatingPoint> operating_points(const EvalReport& report) {
  std::vector<OperatingPoint> points;
  for (const PolicyResult& r : report.policies) points.push_back({r.usage.average_bits(), r.quality.mean_kl});
  return points;
}

}  // namespace kvbits::eval
