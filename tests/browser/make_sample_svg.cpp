// SPDX-License-Identifier: MIT
// Writes the Pareto chart of the fixed sample points, for the browser test to render:
//   make_sample_svg OUT.svg [kl|ppl]
#include <cstdio>
#include <fstream>
#include <string_view>

#include "report/pareto_svg.hpp"
#include "sample_points.hpp"

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: make_sample_svg OUT.svg [kl|ppl]\n");
    return 2;
  }
  kvbits::report::ParetoChart chart;
  chart.title = "kvbits sample chart (fixed points)";
  if (argc == 3 && std::string_view(argv[2]) == "ppl")
    chart.y = kvbits::report::ParetoAxis::perplexity_change;
  std::ofstream out(argv[1], std::ios::binary);
  out << kvbits::report::pareto_svg(kvbits::test::sample_points(), chart);
  if (!out) {
    std::fprintf(stderr, "make_sample_svg: cannot write %s\n", argv[1]);
    return 1;
  }
  return 0;
}
