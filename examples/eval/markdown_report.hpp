// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "eval/eval_report.hpp"
#include "eval/frontier.hpp"
#include "eval/text_format.hpp"
#include "kvbits/core/bit_width.hpp"

namespace kvbits::eval {

namespace detail {

// "8: 97.1%, 32: 2.9%": the share of tokens x layers at each width present, widest first.
inline std::string width_shares(const WidthCounts& counts) {
  std::size_t total = 0;
  for (const std::size_t n : counts) total += n;
  std::string out;
  for (std::size_t w = counts.size(); w-- > 0;) {
    if (counts[w] == 0) continue;
    if (!out.empty()) out += ", ";
    out += format_text("%d: %.1f%%", kSupportedBits[w],
                       100.0 * static_cast<double>(counts[w]) / static_cast<double>(total));
  }
  return out.empty() ? "-" : out;
}

inline std::string percent_with_interval(double value, const Interval& interval) {
  return format_text("%.1f%% [%.1f, %.1f]", 100.0 * value, 100.0 * interval.low, 100.0 * interval.high);
}

}  // namespace detail

/**
 * The line naming the policy to choose: with budgets, for each budget B the policy of lowest
 * mean KL among those of at most B bits/element (budget_winner); without, the Pareto frontier of
 * bits/element against mean KL (pareto_frontier), cheapest first.
 * @param report a finished run
 */
inline std::string summary_line(const EvalReport& report) {
  const std::vector<OperatingPoint> points = operating_points(report);
  std::string out;
  if (!report.budgets.empty()) {
    out = "Lowest mean KL within each budget:";
    for (std::size_t b = 0; b < report.budgets.size(); ++b) {
      out += b == 0 ? " " : "; ";
      out += format_text("<= %g bits: ", report.budgets[b]);
      if (const auto winner = budget_winner(points, report.budgets[b])) {
        const PolicyResult& r = report.policies[*winner];
        out += '`';
        out += r.policy;
        out += format_text("` (%.3f bits, mean KL %.2e)", r.usage.average_bits(), r.quality.mean_kl);
      } else {
        out += "none";
      }
    }
    return out;
  }
  out = "Pareto frontier (no policy has fewer or equal bits/element and lower mean KL):";
  const std::vector<std::size_t> frontier = pareto_frontier(points);
  for (std::size_t i = 0; i < frontier.size(); ++i) {
    const PolicyResult& r = report.policies[frontier[i]];
    out += i == 0 ? " `" : "; `";
    out += r.policy;
    out += format_text("` (%.3f bits, mean KL %.2e)", r.usage.average_bits(), r.quality.mean_kl);
  }
  return out;
}

/**
 * The run as Markdown: a header line, a quality table, a cost table, a multiple-choice table
 * when items were scored, and summary_line.
 * @param report a finished run
 */
inline std::string markdown_report(const EvalReport& report) {
  std::string out = format_text(
      "model: %s; text: %s; %zu stories (%zu truncated to %zu tokens), %zu positions scored; "
      "FP32-cache perplexity %.4f [95%% CI %.4f, %.4f]\n",
      report.model.c_str(), report.text.c_str(), report.stories, report.truncated, report.max_tokens,
      report.positions, report.reference_perplexity, report.reference_perplexity_95.low,
      report.reference_perplexity_95.high);
  if (report.calibration_tokens > 0) {
    out += format_text("t=scale: key scales calibrated on the first story (%zu tokens)\n",
                       report.calibration_tokens);
  }
  out +=
      "\n| policy | bits/element | perplexity [95% CI] | Δ perplexity [95% CI] | mean KL | median KL | p99 "
      "KL "
      "| p99.9 KL | max KL | KL > 0.01 | KL > 0.1 | top-1 agreement |\n"
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";
  for (const PolicyResult& r : report.policies) {
    const QualitySummary& q = r.quality;
    out += format_text(
        "| `%s` | %.3f | %.4f [%.3f, %.3f] | %+.3f%% [%+.3f, %+.3f] | %.2e | %.2e | %.2e | %.2e | %.2e | "
        "%.2f%% "
        "| %.2f%% | %.2f%% |\n",
        r.policy.c_str(), r.usage.average_bits(), q.perplexity, q.perplexity_95.low, q.perplexity_95.high,
        100.0 * q.perplexity_change, 100.0 * q.perplexity_change_95.low, 100.0 * q.perplexity_change_95.high,
        q.mean_kl, q.median_kl, q.p99_kl, q.p999_kl, q.max_kl, 100.0 * q.share_kl_above[0],
        100.0 * q.share_kl_above[1], 100.0 * q.top1_agreement);
  }
  out +=
      "\n| policy | bits/element | cache bytes/token | decode time vs FP32 | key widths | value widths |\n"
      "| --- | ---: | ---: | ---: | --- | --- |\n";
  for (const PolicyResult& r : report.policies) {
    out += format_text("| `%s` | %.3f | %.1f | %.2fx | %s | %s |\n", r.policy.c_str(), r.usage.average_bits(),
                       r.usage.bytes_per_token(), r.decode_time_ratio,
                       detail::width_shares(r.usage.total.key).c_str(),
                       detail::width_shares(r.usage.total.value).c_str());
  }
  if (report.mc) {
    const McRunInfo& mc = *report.mc;
    out += format_text("\nmultiple choice: %zu items (%s; %zu of %zu selected items skipped as too long)\n\n",
                       mc.items, mc.source.c_str(), mc.too_long, mc.items + mc.too_long);
    out +=
        "| policy | acc_norm [95% CI] | Δ acc_norm vs FP32 [95% CI] | acc [95% CI] | acc_norm pick = FP32's "
        "| s / 1000 items |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: |\n";
    const double per_thousand = mc.items == 0 ? 0.0 : 1000.0 / static_cast<double>(mc.items);
    out += format_text("| FP32 cache | %s | - | %s | 100.00%% | %.1f |\n",
                       detail::percent_with_interval(mc.reference.acc_norm, mc.reference.acc_norm_95).c_str(),
                       detail::percent_with_interval(mc.reference.acc, mc.reference.acc_95).c_str(),
                       mc.reference_seconds * per_thousand);
    for (const PolicyResult& r : report.policies) {
      if (!r.mc) continue;
      out += format_text("| `%s` | %s | %+.1f [%+.1f, %+.1f] | %s | %.2f%% | %.1f |\n", r.policy.c_str(),
                         detail::percent_with_interval(r.mc->acc_norm, r.mc->acc_norm_95).c_str(),
                         100.0 * r.mc->acc_norm_change, 100.0 * r.mc->acc_norm_change_95.low,
                         100.0 * r.mc->acc_norm_change_95.high,
                         detail::percent_with_interval(r.mc->acc, r.mc->acc_95).c_str(),
                         100.0 * r.mc->agreement, r.mc_seconds * per_thousand);
    }
  }
  out += '\n';
  out += summary_line(report);
  out += '\n';
  return out;
}

}  // namespace kvbits::eval
