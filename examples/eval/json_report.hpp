// SPDX-License-Identifier: MIT
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "eval/eval_report.hpp"
#include "eval/frontier.hpp"
#include "eval/text_format.hpp"
#include "kvbits/core/bit_width.hpp"

namespace kvbits::eval {

namespace detail {

inline std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += format_text("\\u%04x", static_cast<unsigned>(c));
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

// A number as JSON: shortest round-trip form, null for NaN and infinities.
inline std::string json_number(double x) { return std::isfinite(x) ? format_text("%.17g", x) : "null"; }

inline std::string json_interval(const Interval& interval) {
  std::string out = "[";
  out += json_number(interval.low);
  out += ", ";
  out += json_number(interval.high);
  out += ']';
  return out;
}

// {"2": n, "4": n, ...}: tokens x layers per storage width, widths present only.
inline std::string json_width_counts(const WidthCounts& counts) {
  std::string out = "{";
  for (std::size_t w = 0; w < counts.size(); ++w) {
    if (counts[w] == 0) continue;
    if (out.size() > 1) out += ", ";
    out += format_text("\"%d\": %zu", kSupportedBits[w], counts[w]);
  }
  out += '}';
  return out;
}

// Appends `"name": value` to a JSON object under construction.
inline void json_field(std::string& out, std::string_view name, const std::string& value,
                       bool first = false) {
  if (!first) out += ", ";
  out += json_string(name);
  out += ": ";
  out += value;
}

// The fields of a McSummary and its scoring time, as a JSON object.
inline std::string json_mc(const McSummary& mc, double seconds) {
  std::string out = "{";
  json_field(out, "items", std::to_string(mc.items), true);
  json_field(out, "acc", json_number(mc.acc));
  json_field(out, "acc_95", json_interval(mc.acc_95));
  json_field(out, "acc_norm", json_number(mc.acc_norm));
  json_field(out, "acc_norm_95", json_interval(mc.acc_norm_95));
  json_field(out, "agreement", json_number(mc.agreement));
  json_field(out, "agreement_acc", json_number(mc.agreement_acc));
  json_field(out, "acc_norm_change", json_number(mc.acc_norm_change));
  json_field(out, "acc_norm_change_95", json_interval(mc.acc_norm_change_95));
  json_field(out, "seconds", json_number(seconds));
  out += '}';
  return out;
}

}  // namespace detail

/**
 * The run as one JSON object. Top level: model, text, stories, truncated_stories, max_tokens,
 * positions, reference_perplexity, reference_perplexity_95 ([low, high]), calibration_tokens,
 * multiple_choice (null, or source, available, items, too_long, reference {items, acc, acc_95,
 * acc_norm, acc_norm_95, agreement, agreement_acc, acc_norm_change, acc_norm_change_95,
 * seconds}), policies, budget_winners
 * ([{budget, policy or null}], with --budgets) and pareto_frontier (policy texts, cheapest first).
 * Each policy: policy, average_bits, perplexity, perplexity_95, perplexity_change_percent,
 * perplexity_change_percent_95, mean_kl, median_kl, p99_kl, p999_kl, max_kl, share_kl_above
 * ({"0.01": f, "0.1": f}), top1_agreement, cache_bytes_per_token, decode_time_ratio, key_widths
 * and value_widths ({"bits": tokens x layers}), layers ([{key_widths, value_widths}] per layer)
 * and multiple_choice (null or as the reference's). Non-finite numbers are null.
 * @param report a finished run
 */
inline std::string json_report(const EvalReport& report) {
  using detail::json_field;
  using detail::json_interval;
  using detail::json_number;
  using detail::json_string;
  std::string out = "{\n  ";
  json_field(out, "model", json_string(report.model), true);
  json_field(out, "text", json_string(report.text));
  json_field(out, "stories", std::to_string(report.stories));
  json_field(out, "truncated_stories", std::to_string(report.truncated));
  json_field(out, "max_tokens", std::to_string(report.max_tokens));
  json_field(out, "positions", std::to_string(report.positions));
  out += ",\n  ";
  json_field(out, "reference_perplexity", json_number(report.reference_perplexity), true);
  json_field(out, "reference_perplexity_95", json_interval(report.reference_perplexity_95));
  json_field(out, "calibration_tokens", std::to_string(report.calibration_tokens));
  out += ",\n  ";
  if (report.mc) {
    const McRunInfo& mc = *report.mc;
    std::string object = "{";
    json_field(object, "source", json_string(mc.source), true);
    json_field(object, "available", std::to_string(mc.available));
    json_field(object, "items", std::to_string(mc.items));
    json_field(object, "too_long", std::to_string(mc.too_long));
    json_field(object, "reference", detail::json_mc(mc.reference, mc.reference_seconds));
    object += '}';
    json_field(out, "multiple_choice", object, true);
  } else {
    json_field(out, "multiple_choice", "null", true);
  }
  out += ",\n  \"policies\": [";
  for (std::size_t i = 0; i < report.policies.size(); ++i) {
    const PolicyResult& r = report.policies[i];
    const QualitySummary& q = r.quality;
    out += i == 0 ? "\n    {" : ",\n    {";
    json_field(out, "policy", json_string(r.policy), true);
    json_field(out, "average_bits", json_number(r.usage.average_bits()));
    json_field(out, "perplexity", json_number(q.perplexity));
    json_field(out, "perplexity_95", json_interval(q.perplexity_95));
    json_field(out, "perplexity_change_percent", json_number(100.0 * q.perplexity_change));
    json_field(out, "perplexity_change_percent_95",
               json_interval({100.0 * q.perplexity_change_95.low, 100.0 * q.perplexity_change_95.high}));
    json_field(out, "mean_kl", json_number(q.mean_kl));
    json_field(out, "median_kl", json_number(q.median_kl));
    json_field(out, "p99_kl", json_number(q.p99_kl));
    json_field(out, "p999_kl", json_number(q.p999_kl));
    json_field(out, "max_kl", json_number(q.max_kl));
    std::string shares = "{";
    for (std::size_t t = 0; t < kKlThresholds.size(); ++t) {
      json_field(shares, format_text("%g", kKlThresholds[t]), json_number(q.share_kl_above[t]), t == 0);
    }
    shares += '}';
    json_field(out, "share_kl_above", shares);
    json_field(out, "top1_agreement", json_number(q.top1_agreement));
    json_field(out, "cache_bytes_per_token", json_number(r.usage.bytes_per_token()));
    json_field(out, "decode_time_ratio", json_number(r.decode_time_ratio));
    json_field(out, "key_widths", detail::json_width_counts(r.usage.total.key));
    json_field(out, "value_widths", detail::json_width_counts(r.usage.total.value));
    std::string layers = "[";
    for (std::size_t l = 0; l < r.usage.layers.size(); ++l) {
      layers += l == 0 ? "{" : ", {";
      json_field(layers, "key_widths", detail::json_width_counts(r.usage.layers[l].key), true);
      json_field(layers, "value_widths", detail::json_width_counts(r.usage.layers[l].value));
      layers += '}';
    }
    layers += ']';
    json_field(out, "layers", layers);
    if (r.mc) {
      json_field(out, "multiple_choice", detail::json_mc(*r.mc, r.mc_seconds));
    } else {
      json_field(out, "multiple_choice", "null");
    }
    out += '}';
  }
  out += "\n  ],\n  ";
  const std::vector<OperatingPoint> points = operating_points(report);
  std::string winners = "[";
  for (std::size_t b = 0; b < report.budgets.size(); ++b) {
    winners += b == 0 ? "{" : ", {";
    json_field(winners, "budget", json_number(report.budgets[b]), true);
    const auto winner = budget_winner(points, report.budgets[b]);
    json_field(winners, "policy", winner ? json_string(report.policies[*winner].policy) : "null");
    winners += '}';
  }
  winners += ']';
  json_field(out, "budget_winners", winners, true);
  std::string frontier = "[";
  for (const std::size_t p : pareto_frontier(points)) {
    if (frontier.size() > 1) frontier += ", ";
    frontier += json_string(report.policies[p].policy);
  }
  frontier += ']';
  out += ",\n  ";
  json_field(out, "pareto_frontier", frontier, true);
  out += "\n}\n";
  return out;
}

}  // namespace kvbits::eval
