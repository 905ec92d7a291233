// SPDX-License-Identifier: MIT
#pragma once

#include <vector>

#include "report/pareto.hpp"

namespace kvbits::test {

/**
 * Plausible operating points of every kind, for the chart the browser renders and for
 * test_report, which relies on: static:8,4 is dominated by static:6,6 (same bits, less KL);
 * the static frontier by KL is static:2,2, 4,2, 4,4, 6,6, 8,8, fp16; two tiers and two budget
 * points; one rule and one random point; one negative perplexity change (budget:6).
 */
inline std::vector<report::ParetoPoint> sample_points() {
  using report::policy_point;
  return {
      policy_point("fp32", 32.0, 0.0, 0.0),
      policy_point("static:4,2", 3.5, 9.5e-2, 9.8),
      policy_point("fp16", 16.0, 2.1e-7, 0.0003),
      policy_point("static:8,8", 8.5, 3.4e-5, 0.004),
      policy_point("static:8,4", 6.5, 2.2e-3, 0.21),
      policy_point("static:4,4", 4.5, 1.1e-2, 1.3),
      policy_point("static:6,6", 6.5, 4.0e-4, 0.03),
      policy_point("static:2,2", 2.5, 0.61, 84.0),
      policy_point("tiers:4=16/16,16=8/8,*=4/2", 4.1, 3.1e-2, 3.4),
      policy_point("tiers:4=16/16,16=8/8,*=4/4", 4.9, 6.0e-3, 0.6),
      policy_point("budget:4.5:tiers:4=16/16,16=8/8,*=4/2", 4.5, 1.8e-2, 1.9),
      policy_point("budget:6:tiers:4=16/16,16=8/8,*=4/2", 6.0, 2.4e-3, -0.25),
      policy_point("rule:4/2,entropy>2=8/4,w=1", 3.9, 5.0e-2, 5.1),
      policy_point("random:4/2:1,8/8:1", 5.2, 3.3e-2, 3.7),
  };
}

}  // namespace kvbits::test
