// SPDX-License-Identifier: MIT
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "kvbits/core/error.hpp"
#include "report/json_value.hpp"
#include "report/pareto.hpp"

namespace kvbits::report {

/**
 * The operating points of a kvbits-eval --json run: one per entry of its "policies" array, from
 * its policy, average_bits, mean_kl and perplexity_change_percent (null reads as NaN, and the
 * chart leaves such a value out).
 * @param run    the parsed document
 * @param prefix put before each label (e.g. "bible919K: " when runs are combined); may be empty
 * @throw Error(corrupt_data) when the document has no policies array or an entry lacks a field.
 */
inline std::vector<ParetoPoint> eval_points(const JsonValue& run, std::string_view prefix = {}) {
  const JsonValue* policies = run.find("policies");
  kvbits::detail::require(policies != nullptr && policies->type == JsonValue::Type::array, Errc::corrupt_data,
                          "not a kvbits-eval JSON report: no \"policies\" array");
  std::vector<ParetoPoint> points;
  for (const JsonValue& entry : policies->array) {
    const JsonValue* policy = entry.find("policy");
    const JsonValue* bits = entry.find("average_bits");
    const JsonValue* kl = entry.find("mean_kl");
    const JsonValue* ppl = entry.find("perplexity_change_percent");
    kvbits::detail::require(
        policy != nullptr && policy->type == JsonValue::Type::string && bits != nullptr && kl != nullptr &&
            ppl != nullptr,
        Errc::corrupt_data,
        "a policy entry lacks policy, average_bits, mean_kl or perplexity_change_percent");
    ParetoPoint point =
        policy_point(policy->string, bits->number_or_nan(), kl->number_or_nan(), ppl->number_or_nan());
    point.label.insert(0, prefix);
    points.push_back(std::move(point));
  }
  return points;
}

}  // namespace kvbits::report
