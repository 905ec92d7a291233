// SPDX-License-Identifier: MIT
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>

#include "eval/eval_report.hpp"
#include "eval/text_format.hpp"
#include "kvbits/core/bit_width.hpp"

namespace kvbits::eval {

namespace detail {

// A CSV field (RFC 4180): quoted, with inner quotes doubled, when it holds a comma, quote or
// line break.
inline std::string csv_field(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(text);
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

// A number as CSV: shortest round-trip form, empty for NaN and infinities.
inline std::string csv_number(double x) { return std::isfinite(x) ? format_text("%.17g", x) : std::string(); }

}  // namespace detail

/**
 * The run as CSV: a header row, then one row per policy (RFC 4180 quoting; the policy texts
 * contain commas). Columns: policy, average_bits, perplexity, perplexity_low, perplexity_high,
 * perplexity_change_percent (+ _low, _high), mean_kl, median_kl, p99_kl, p999_kl, max_kl,
 * share_kl_above_0.01, share_kl_above_0.1, top1_agreement, cache_bytes_per_token,
 * decode_time_ratio, key_tokens_<bits> and value_tokens_<bits> for every supported width
 * (tokens x layers of the final caches), then mc_items, mc_acc (+ _low, _high), mc_acc_norm
 * (+ _low, _high), mc_agreement, mc_acc_norm_change (+ _low, _high), mc_seconds, empty when no multiple
 * choice ran. The 95% intervals are those of json_report. Rows end with "\n".
 * @param report a finished run
 */
inline std::string csv_report(const EvalReport& report) {
  using detail::csv_number;
  std::string out =
      "policy,average_bits,perplexity,perplexity_low,perplexity_high,perplexity_change_percent,"
      "perplexity_change_percent_low,perplexity_change_percent_high,mean_kl,median_kl,p99_kl,p999_kl,max_kl";
  for (const double threshold : kKlThresholds) out += format_text(",share_kl_above_%g", threshold);
  out += ",top1_agreement,cache_bytes_per_token,decode_time_ratio";
  for (const int bits : kSupportedBits) out += format_text(",key_tokens_%d", bits);
  for (const int bits : kSupportedBits) out += format_text(",value_tokens_%d", bits);
  out +=
      ",mc_items,mc_acc,mc_acc_low,mc_acc_high,mc_acc_norm,mc_acc_norm_low,mc_acc_norm_high,mc_agreement,"
      "mc_acc_norm_change,mc_acc_norm_change_low,mc_acc_norm_change_high,mc_seconds\n";
  for (const PolicyResult& r : report.policies) {
    const QualitySummary& q = r.quality;
    out += detail::csv_field(r.policy);
    for (const double x :
         {r.usage.average_bits(), q.perplexity, q.perplexity_95.low, q.perplexity_95.high,
          100.0 * q.perplexity_change, 100.0 * q.perplexity_change_95.low,
          100.0 * q.perplexity_change_95.high, q.mean_kl, q.median_kl, q.p99_kl, q.p999_kl, q.max_kl}) {
      out += ',';
      out += csv_number(x);
    }
    for (const double share : q.share_kl_above) {
      out += ',';
      out += csv_number(share);
    }
    for (const double x : {q.top1_agreement, r.usage.bytes_per_token(), r.decode_time_ratio}) {
      out += ',';
      out += csv_number(x);
    }
    for (const std::size_t n : r.usage.total.key) out += format_text(",%zu", n);
    for (const std::size_t n : r.usage.total.value) out += format_text(",%zu", n);
    if (r.mc) {
      out += format_text(",%zu", r.mc->items);
      for (const double x :
           {r.mc->acc, r.mc->acc_95.low, r.mc->acc_95.high, r.mc->acc_norm, r.mc->acc_norm_95.low,
            r.mc->acc_norm_95.high, r.mc->agreement, r.mc->acc_norm_change, r.mc->acc_norm_change_95.low,
            r.mc->acc_norm_change_95.high, r.mc_seconds}) {
        out += ',';
        out += csv_number(x);
      }
    } else {
      out += ",,,,,,,,,,,,";
    }
    out += '\n';
  }
  return out;
}

}  // namespace kvbits::eval
