// SPDX-License-Identifier: MIT
// kvbits-plot: draws the Pareto chart of kvbits-eval --json reports, so a long run can be
// plotted again on the other quality measure, or several runs on one chart.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/args.hpp"
#include "cli/tool_main.hpp"
#include "eval/output_file.hpp"
#include "kvbits/core/error.hpp"
#include "report/eval_points.hpp"
#include "report/json_value.hpp"
#include "report/pareto_svg.hpp"

namespace {

constexpr const char* kUsage =
    R"(usage: kvbits-plot --json RUN.json [--json RUN2.json ...] --out CHART.svg [options]

Draws the policies of kvbits-eval --json reports as a self-contained SVG: bits/element on x,
mean KL (log scale) or the change of perplexity (symmetric log scale) on y, the static
configurations' frontier and each adaptive family joined. With several reports, each label is
prefixed by its file's name.

options:
  --json PATH         a kvbits-eval --json report (repeatable; at least one)
  --out PATH          the SVG to write ("-" for standard output)
  --y kl|ppl          the y measure: mean KL (default) or perplexity change in %
  --title TEXT        the chart's title (default: a generic one)
  --help              this text
)";

struct Options {
  std::vector<std::string> json;
  std::optional<std::string> out;
  kvbits::report::ParetoChart chart;
  bool help = false;
};

Options parse_options(int argc, char** argv) {
  using kvbits::cli::ArgCursor;
  static constexpr kvbits::cli::OptionRule<Options> kRules[] = {
      {"--json", [](Options& o, ArgCursor& a) { o.json.push_back(a.value()); }},
      {"--out", [](Options& o, ArgCursor& a) { o.out = a.value(); }},
      {"--y",
       [](Options& o, ArgCursor& a) { o.chart.y = kvbits::report::parse_pareto_axis(a.value(), "--y"); }},
      {"--title", [](Options& o, ArgCursor& a) { o.chart.title = a.value(); }},
  };
  return kvbits::cli::parse_with<Options>(argc, argv, kRules);
}

int run(const Options& options) {
  kvbits::detail::require(!options.json.empty() && options.out.has_value(), kvbits::Errc::invalid_argument,
                          "--json and --out are required (see --help)");
  std::vector<kvbits::report::ParetoPoint> points;
  for (const std::string& path : options.json) {
    std::ifstream in(path, std::ios::binary);
    kvbits::detail::require(static_cast<bool>(in), kvbits::Errc::io_error, "cannot open " + path);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::string prefix;
    if (options.json.size() > 1) {
      prefix = std::filesystem::path(path).stem().string();
      prefix += ": ";
    }
    try {
      const auto run_points = kvbits::report::eval_points(kvbits::report::parse_json(text), prefix);
      points.insert(points.end(), run_points.begin(), run_points.end());
    } catch (const kvbits::Error& error) {
      std::string message = path;
      message += ": ";
      message += error.what();
      throw std::runtime_error(message);
    }
  }
  kvbits::eval::write_output(*options.out, kvbits::report::pareto_svg(points, options.chart));
  if (*options.out != kvbits::eval::kStdoutPath) {
    std::fprintf(stderr, "kvbits-plot: %zu policies -> %s\n", points.size(), options.out->c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return kvbits::cli::tool_main("kvbits-plot", kUsage, argc, argv, parse_options, run);
}
