// SPDX-License-Identifier: MIT
// kvbits-eval: how much a KV cache policy changes a model's predictions, choices and speed.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/args.hpp"
#include "cli/tool_main.hpp"
#include "eval/csv_report.hpp"
#include "eval/eval_passes.hpp"
#include "eval/eval_report.hpp"
#include "eval/json_report.hpp"
#include "eval/markdown_report.hpp"
#include "eval/mc_items.hpp"
#include "eval/mc_scorer.hpp"
#include "eval/output_file.hpp"
#include "eval/progress.hpp"
#include "kvbits/core/error.hpp"
#include "kvbits/features/unigram_file.hpp"
#include "model/gguf_model.hpp"
#include "model/model_path.hpp"
#include "model/policy_spec.hpp"
#include "model/stories.hpp"
#include "model/tool_cache.hpp"
#include "report/pareto.hpp"
#include "report/pareto_svg.hpp"

namespace {

namespace eval = kvbits::eval;
namespace model = kvbits::model;

// --help: the options around the policy forms every tool shares.
constexpr std::string_view kUsageHead = R"(usage: kvbits-eval --text STORIES.txt [options]

Scores KV cache policies against the FP32 cache by teacher forcing a LLaMA GGUF model over every
story of a text file (stories separated by lines "<|endoftext|>"). Each story is evaluated as
[BOS] + tokens, truncated to the model's context and --max-tokens; every position is scored.
Optionally also scores multiple-choice items (which sentence continues a story?).

options:
  --model M           a GGUF file, or a model name looked up in $KVBITS_MODEL_DIR, then
                      ../shared/models, then the build's shared folder (e.g. stories260K,
                      bible919K; default stories260K)
  --text PATH         the stories (required)
  --policy P          a cache policy; repeatable (default: fp32, fp16, static:8,8, static:4,4):
)";
constexpr std::string_view kUsageTail =
    R"(  --unigram PATH      token counts for the rarity feature of rule: policies (kvbits-unigram);
                      without it every token is equally rare
  --max-tokens N      most tokens per story including BOS (default 512)
  --stories N         teacher-force only the first N stories (default: all)
  --mc N|all          also score N multiple-choice items built from every story of --text
                      (spread evenly over all the rule yields; default 0 = none)
  --mc-seed S         seed of the item draws (default 1)
  --mc-items PATH     score the items of an item file instead of building them (all of them,
                      or N spread evenly with --mc N)
  --write-mc-items PATH  write the items about to be scored to an item file
  --json PATH         write the results as JSON (- = stdout)
  --csv PATH          write one CSV row per policy (- = stdout)
  --budgets B,B,...   name the lowest-KL policy within each bits/element budget (default: print
                      the Pareto frontier instead)
  --plot PATH         write an SVG chart of the policies: bits/element against quality
  --plot-y kl|ppl     the chart's quality axis: mean KL (log scale, default) or perplexity change
  --help              this text

Output: Markdown tables on stdout (unless --json -, --csv - or --plot - takes it), a progress line
with an ETA on stderr when stderr is a terminal.
Quality table: perplexity of the story tokens with a 95% interval (exp(mean NLL ± 1.96 se),
positions taken as independent); its change against the FP32 cache (interval from the paired
per-position differences); KL(FP32 || policy) of the next-token distributions: mean, median,
99th and 99.9th percentile (linear interpolation between ranks), maximum, and the share of
positions above 0.01 and 0.1 nats; the share of positions whose most likely token matches FP32's.
Cost table: storage bits per K/V element of the final caches (group metadata, residual-window and
sink tokens included), averaged over stories weighted by length; cache bytes per token (codes,
metadata, float tokens, index); time per token in the model's forward pass over the FP32 cache's,
measured interleaved story by story; tokens x layers per key and value width.
Multiple choice: an item is a story's first k >= 2 sentences and four candidate next sentences,
the true one and three from other stories (rule and file format: examples/eval/mc_items.hpp).
The model scores each by the sum of its tokens' log-probabilities; acc picks the highest sum,
acc_norm the highest sum per byte of " " + sentence (as lm-evaluation-harness); ties go to the
first choice. Accuracy intervals are Wilson 95%; agreement counts items whose acc_norm pick
equals the FP32 cache's.
t=scale calibrates the per-channel key scales once, on the keys of the first story.
)";

const char* usage() {
  static const std::string text =
      std::string(kUsageHead) + std::string(model::kPolicyHelp) + std::string(kUsageTail);
  return text.c_str();
}

struct Options {
  std::optional<std::string> model;
  std::optional<std::string> text;
  std::optional<std::string> unigram;
  std::vector<std::string> policies;
  std::size_t max_tokens = 512;
  std::optional<std::size_t> stories;
  std::optional<std::size_t> mc;  // items to score; SIZE_MAX = all
  std::uint64_t mc_seed = 1;
  std::optional<std::string> mc_items;
  std::optional<std::string> write_mc_items;
  std::optional<std::string> json;
  std::optional<std::string> csv;
  std::optional<std::string> plot;
  kvbits::report::ParetoAxis plot_y = kvbits::report::ParetoAxis::mean_kl;
  std::vector<double> budgets;
  bool help = false;
};

// The value of an option that names an output file; "--json --policy x" is a mistake, not a path.
std::string output_path(kvbits::cli::ArgCursor& args) {
  std::string path = args.value();
  kvbits::detail::require(!path.empty() && path.rfind("--", 0) != 0, kvbits::Errc::invalid_argument,
                          args.option() + " needs a file name (- for stdout), got '" + path + "'");
  return path;
}

// "--mc N|all": a number of items, or every item (SIZE_MAX).
std::size_t parse_item_count(const std::string& value) {
  if (value == "all") return SIZE_MAX;
  const bool digits = !value.empty() && value.size() < 19 &&
                      std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; });
  kvbits::detail::require(digits, kvbits::Errc::invalid_argument,
                          "--mc expects a number of items or 'all', got '" + value + "'");
  return static_cast<std::size_t>(std::stoull(value));
}

// "7.5,8.5,10": positive bits/element budgets.
std::vector<double> parse_budgets(const std::string& text) {
  std::vector<double> budgets;
  for (std::size_t start = 0;;) {
    const std::size_t comma = text.find(',', start);
    const std::optional<double> b = kvbits::cli::parse_number(text.substr(start, comma - start));
    kvbits::detail::require(b.has_value() && *b > 0.0, kvbits::Errc::invalid_argument,
                            "--budgets expects positive numbers separated by commas, got '" + text + "'");
    budgets.push_back(*b);
    if (comma == std::string::npos) return budgets;
    start = comma + 1;
  }
}

Options parse_options(int argc, char** argv) {
  using kvbits::cli::ArgCursor;
  static constexpr kvbits::cli::OptionRule<Options> kRules[] = {
      {"--model", [](Options& o, ArgCursor& a) { o.model = a.value(); }},
      {"--text", [](Options& o, ArgCursor& a) { o.text = a.value(); }},
      {"--policy", [](Options& o, ArgCursor& a) { o.policies.push_back(a.value()); }},
      {"--unigram", [](Options& o, ArgCursor& a) { o.unigram = a.value(); }},
      {"--max-tokens", [](Options& o, ArgCursor& a) { o.max_tokens = static_cast<std::size_t>(a.count()); }},
      {"--stories", [](Options& o, ArgCursor& a) { o.stories = static_cast<std::size_t>(a.count()); }},
      {"--mc", [](Options& o, ArgCursor& a) { o.mc = parse_item_count(a.value()); }},
      {"--mc-seed", [](Options& o, ArgCursor& a) { o.mc_seed = a.count(); }},
      {"--mc-items", [](Options& o, ArgCursor& a) { o.mc_items = a.value(); }},
      {"--write-mc-items", [](Options& o, ArgCursor& a) { o.write_mc_items = output_path(a); }},
      {"--json", [](Options& o, ArgCursor& a) { o.json = output_path(a); }},
      {"--csv", [](Options& o, ArgCursor& a) { o.csv = output_path(a); }},
      {"--plot", [](Options& o, ArgCursor& a) { o.plot = output_path(a); }},
      {"--plot-y",
       [](Options& o, ArgCursor& a) { o.plot_y = kvbits::report::parse_pareto_axis(a.value(), "--plot-y"); }},
      {"--budgets", [](Options& o, ArgCursor& a) { o.budgets = parse_budgets(a.value()); }},
  };
  Options options = kvbits::cli::parse_with<Options>(argc, argv, kRules);
  if (options.policies.empty()) options.policies = {"fp32", "fp16", "static:8,8", "static:4,4"};
  const int on_stdout = (options.json == eval::kStdoutPath ? 1 : 0) +
                        (options.csv == eval::kStdoutPath ? 1 : 0) +
                        (options.plot == eval::kStdoutPath ? 1 : 0);
  kvbits::detail::require(on_stdout <= 1, kvbits::Errc::invalid_argument,
                          "only one of --json, --csv and --plot can write to stdout (-)");
  kvbits::detail::require(!options.write_mc_items || options.mc_items || (options.mc && *options.mc > 0),
                          kvbits::Errc::invalid_argument, "--write-mc-items needs --mc N or --mc-items");
  return options;
}

// The items to score: read or built, selected, written when asked; tokenized, too long ones out.
struct McPlan {
  eval::McRunInfo info;
  std::vector<eval::TokenizedItem> items;
};

McPlan plan_multiple_choice(const Options& options, const model::Tokenizer& tokenizer, std::size_t limit) {
  McPlan plan;
  std::vector<eval::McItem> items;
  if (options.mc_items) {
    items = eval::read_mc_items(*options.mc_items);
    plan.info.source = "read from " + *options.mc_items;
  } else {
    eval::McBuildOptions build;
    build.seed = options.mc_seed;
    items = eval::build_mc_items(model::read_stories(*options.text), build);
    plan.info.source = "built from " + *options.text + ", seed " + std::to_string(options.mc_seed);
  }
  plan.info.available = items.size();
  if (options.mc) items = eval::select_evenly(std::move(items), *options.mc);
  if (options.write_mc_items) eval::write_output(*options.write_mc_items, eval::format_mc_items(items));
  for (const eval::McItem& item : items) {
    eval::TokenizedItem tokens = eval::tokenize_item(item, tokenizer);
    if (tokens.positions() > limit) {
      ++plan.info.too_long;
    } else {
      plan.items.push_back(std::move(tokens));
    }
  }
  plan.info.items = plan.items.size();
  return plan;
}

// The SVG chart of every policy's bits/element against its quality.
std::string pareto_chart(const eval::EvalReport& report, kvbits::report::ParetoAxis axis) {
  std::vector<kvbits::report::ParetoPoint> points;
  for (const eval::PolicyResult& r : report.policies) {
    points.push_back(kvbits::report::policy_point(r.policy, r.usage.average_bits(), r.quality.mean_kl,
                                                  100.0 * r.quality.perplexity_change));
  }
  kvbits::report::ParetoChart chart;
  chart.title = std::filesystem::path(report.model).stem().string();
  chart.title += " on ";
  chart.title += std::filesystem::path(report.text).filename().string();
  chart.y = axis;
  return kvbits::report::pareto_svg(points, chart);
}

int run(const Options& options) {
  kvbits::detail::require(options.text.has_value(), kvbits::Errc::invalid_argument,
                          "--text is required (see --help)");
  kvbits::detail::require(options.max_tokens >= 2, kvbits::Errc::invalid_argument,
                          "--max-tokens must be at least 2 (BOS and one token to predict)");
  std::vector<model::PolicySpec> specs;
  for (const auto& text : options.policies) specs.push_back(model::parse_policy(text));

  eval::EvalReport report;
  report.model = model::resolve_model(options.model.value_or(std::string(model::kDefaultModelFile)),
                                      KVBITS_SHARED_DIR_DEFAULT)
                     .string();
  report.text = *options.text;
  report.budgets = options.budgets;
  model::LoadedModel loaded = model::load_model(report.model);
  const auto& tokenizer = loaded.tokenizer;
  auto& llama = loaded.model;
  const auto& config = llama.config();

  auto stories = model::read_stories(*options.text);
  if (options.stories && *options.stories < stories.size()) stories.resize(*options.stories);
  kvbits::detail::require(!stories.empty(), kvbits::Errc::invalid_argument, "no stories in " + *options.text);
  const std::size_t limit = std::min(options.max_tokens, config.context);
  report.max_tokens = limit;
  std::vector<std::vector<std::int32_t>> sequences;
  for (const auto& story : stories) {
    std::vector<std::int32_t> ids{tokenizer.bos()};
    const auto encoded = tokenizer.encode(story);
    ids.insert(ids.end(), encoded.begin(), encoded.end());
    if (ids.size() > limit) {
      ids.resize(limit);
      ++report.truncated;
    }
    kvbits::detail::require(ids.size() >= 2, kvbits::Errc::invalid_argument, "a story encodes to no tokens");
    report.positions += ids.size() - 1;
    sequences.push_back(std::move(ids));
  }
  report.stories = sequences.size();
  McPlan mc;
  const bool run_mc = options.mc_items || (options.mc && *options.mc > 0);
  if (run_mc) mc = plan_multiple_choice(options, tokenizer, limit);

  model::KeySamples samples;
  if (std::any_of(specs.begin(), specs.end(), [](const auto& spec) { return spec.needs_calibration(); })) {
    samples = model::collect_key_samples(llama, sequences.front());
    report.calibration_tokens = sequences.front().size();
  }
  // Every cache is built before the first story, so an unusable policy fails at once.
  for (const auto& spec : specs) static_cast<void>(model::make_cache(spec, config, limit, &samples));
  std::shared_ptr<const kvbits::UnigramTable> unigrams;
  if (options.unigram) {
    unigrams = std::make_shared<const kvbits::UnigramTable>(kvbits::load_unigram_table(*options.unigram));
    kvbits::detail::require(unigrams->counts().size() == config.vocab, kvbits::Errc::invalid_argument,
                            "--unigram " + *options.unigram + " counts " +
                                std::to_string(unigrams->counts().size()) + " token ids, the model has " +
                                std::to_string(config.vocab));
  }

  std::size_t mc_work = 0;
  for (const auto& item : mc.items) mc_work += item.forward_passes();
  eval::Progress progress((report.positions + mc_work) * (specs.size() + 1));
  const eval::PassInputs inputs{&llama, unigrams, specs, &samples};
  eval::run_story_pass(inputs, sequences, progress, report);
  if (run_mc) eval::run_choice_pass(inputs, mc.items, progress, mc.info, report);
  progress.finish();

  if (options.plot) eval::write_output(*options.plot, pareto_chart(report, options.plot_y));
  if (options.json) eval::write_output(*options.json, eval::json_report(report));
  if (options.csv) eval::write_output(*options.csv, eval::csv_report(report));
  if (options.json != eval::kStdoutPath && options.csv != eval::kStdoutPath &&
      options.plot != eval::kStdoutPath) {
    eval::write_output(std::string(eval::kStdoutPath), eval::markdown_report(report));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return kvbits::cli::tool_main("kvbits-eval", usage(), argc, argv, parse_options, run);
}
