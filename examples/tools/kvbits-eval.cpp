// SPDX-License-Identifier: MIT
// kvbits-eval: how much a KV cache policy changes a model's predictions on a text corpus.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/args.hpp"
#include "cli/tool_main.hpp"
#include "kvbits/core/error.hpp"
#include "kvbits/features/unigram_file.hpp"
#include "model/eval_metrics.hpp"
#include "model/gguf_model.hpp"
#include "model/model_path.hpp"
#include "model/policy_spec.hpp"
#include "model/sampling.hpp"
#include "model/stories.hpp"
#include "model/token_features.hpp"
#include "model/tool_cache.hpp"

namespace {

// --help: the options around the policy forms every tool shares.
constexpr std::string_view kUsageHead = R"(usage: kvbits-eval --text STORIES.txt [options]

Scores KV cache policies against the FP32 cache by teacher forcing a LLaMA GGUF model over every
story of a text file (stories separated by lines "<|endoftext|>"). Each story is evaluated as
[BOS] + tokens, truncated to the model's context and --max-tokens; every position is scored.

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
  --stories N         evaluate only the first N stories (default: all)
  --json              print JSON instead of a Markdown table
  --help              this text

Columns: perplexity of the story tokens, its change against the FP32 cache, mean
KL(FP32 || policy) of the next-token distributions, the fraction of positions whose most likely
token matches FP32's, and the storage bits per K/V element of the final caches (group metadata,
residual-window and sink tokens included), averaged over stories weighted by length.
t=scale calibrates the per-channel key scales once, on the keys of the first story.
)";

const char* usage() {
  static const std::string text =
      std::string(kUsageHead) + std::string(kvbits::model::kPolicyHelp) + std::string(kUsageTail);
  return text.c_str();
}

struct Options {
  std::optional<std::string> model;
  std::optional<std::string> text;
  std::optional<std::string> unigram;
  std::vector<std::string> policies;
  std::size_t max_tokens = 512;
  std::optional<std::size_t> stories;
  bool json = false;
  bool help = false;
};

Options parse_options(int argc, char** argv) {
  Options options;
  kvbits::cli::ArgCursor args(argc, argv);
  while (!args.done()) {
    const std::string name = args.next_option();
    if (name == "--model") {
      options.model = args.value();
    } else if (name == "--text") {
      options.text = args.value();
    } else if (name == "--policy") {
      options.policies.push_back(args.value());
    } else if (name == "--unigram") {
      options.unigram = args.value();
    } else if (name == "--max-tokens") {
      options.max_tokens = static_cast<std::size_t>(args.count());
    } else if (name == "--stories") {
      options.stories = static_cast<std::size_t>(args.count());
    } else if (name == "--json") {
      args.no_value();
      options.json = true;
    } else if (name == "--help") {
      args.no_value();
      options.help = true;
    } else {
      throw kvbits::Error(kvbits::Errc::invalid_argument, "unknown option " + name + " (see --help)");
    }
  }
  if (options.policies.empty()) options.policies = {"fp32", "fp16", "static:8,8", "static:4,4"};
  return options;
}

std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// {"2": n, "4": n, ...}: tokens x layers of the final caches per storage width, widths present only.
std::string json_width_counts(const std::array<std::size_t, kvbits::kSupportedBits.size()>& counts) {
  std::string out = "{";
  for (std::size_t w = 0; w < counts.size(); ++w) {
    if (counts[w] == 0) continue;
    if (out.size() > 1) out += ", ";
    out += '"';
    out += std::to_string(kvbits::kSupportedBits[w]);
    out += "\": ";
    out += std::to_string(counts[w]);
  }
  return out + "}";
}

// Log-probabilities of the FP32-cache run of one story: the reference every policy is scored
// against.
struct Reference {
  std::vector<double> log_probs;     // [positions][vocab]
  std::vector<std::int32_t> argmax;  // [positions]
};

int run(const Options& options) {
  kvbits::detail::require(options.text.has_value(), kvbits::Errc::invalid_argument,
                          "--text is required (see --help)");
  kvbits::detail::require(options.max_tokens >= 2, kvbits::Errc::invalid_argument,
                          "--max-tokens must be at least 2 (BOS and one token to predict)");
  std::vector<kvbits::model::PolicySpec> specs;
  for (const auto& text : options.policies) specs.push_back(kvbits::model::parse_policy(text));

  const std::string model_path =
      kvbits::model::resolve_model(options.model.value_or(std::string(kvbits::model::kDefaultModelFile)),
                                   KVBITS_SHARED_DIR_DEFAULT)
          .string();
  kvbits::model::LoadedModel loaded = kvbits::model::load_model(model_path);
  const auto& tokenizer = loaded.tokenizer;
  auto& model = loaded.model;
  const auto& config = model.config();
  const std::size_t vocab = config.vocab;

  auto stories = kvbits::model::read_stories(*options.text);
  if (options.stories && *options.stories < stories.size()) stories.resize(*options.stories);
  kvbits::detail::require(!stories.empty(), kvbits::Errc::invalid_argument, "no stories in " + *options.text);
  const std::size_t limit = std::min(options.max_tokens, config.context);
  std::vector<std::vector<std::int32_t>> sequences;
  std::size_t total_positions = 0;
  std::size_t truncated = 0;
  for (const auto& story : stories) {
    std::vector<std::int32_t> ids{tokenizer.bos()};
    const auto encoded = tokenizer.encode(story);
    ids.insert(ids.end(), encoded.begin(), encoded.end());
    if (ids.size() > limit) {
      ids.resize(limit);
      ++truncated;
    }
    total_positions += ids.size() - 1;
    sequences.push_back(std::move(ids));
  }

  kvbits::model::KeySamples samples;
  if (std::any_of(specs.begin(), specs.end(),
                  [](const auto& candidate) { return candidate.needs_calibration(); })) {
    samples = kvbits::model::collect_key_samples(model, sequences.front());
  }
  // Every cache is built before the first story, so an unusable policy fails at once.
  for (const auto& spec : specs) {
    static_cast<void>(kvbits::model::make_cache(spec, config, limit, &samples));
  }

  const kvbits::model::PolicySpec reference_spec = kvbits::model::parse_policy("fp32");
  kvbits::model::EvalTotals reference_totals;
  std::vector<kvbits::model::EvalTotals> totals(specs.size());
  std::vector<float> logits(vocab);
  std::vector<double> log_probs(vocab);
  Reference reference;
  std::shared_ptr<const kvbits::UnigramTable> unigrams;
  if (options.unigram) {
    unigrams = std::make_shared<const kvbits::UnigramTable>(kvbits::load_unigram_table(*options.unigram));
    kvbits::detail::require(unigrams->counts().size() == vocab, kvbits::Errc::invalid_argument,
                            "--unigram " + *options.unigram + " counts " +
                                std::to_string(unigrams->counts().size()) + " token ids, the model has " +
                                std::to_string(vocab));
  }
  kvbits::model::TokenFeatureFeeder features(vocab, unigrams);
  const auto start = std::chrono::steady_clock::now();
  std::size_t done_positions = 0;

  for (std::size_t s = 0; s < sequences.size(); ++s) {
    const auto& ids = sequences[s];
    const std::size_t positions = ids.size() - 1;
    reference.log_probs.resize(positions * vocab);
    reference.argmax.resize(positions);
    {
      auto cache = kvbits::model::make_cache(reference_spec, config, positions);
      for (std::size_t p = 0; p < positions; ++p) {
        model.forward(ids[p], p, cache, logits);
        const std::span<double> row(reference.log_probs.data() + p * vocab, vocab);
        kvbits::model::log_softmax(logits, row);
        reference.argmax[p] = kvbits::model::argmax(logits);
        reference_totals.negative_log_likelihood -= row[static_cast<std::size_t>(ids[p + 1])];
      }
      reference_totals.positions += positions;
    }
    for (std::size_t i = 0; i < specs.size(); ++i) {
      auto cache = kvbits::model::make_cache(specs[i], config, positions, &samples);
      auto& t = totals[i];
      for (std::size_t p = 0; p < positions; ++p) {
        model.forward(ids[p], p, cache, logits);
        if (specs[i].needs_token_features()) features.feed(cache, logits, ids[p], p, ids[p + 1]);
        kvbits::model::log_softmax(logits, log_probs);
        const std::span<const double> row(reference.log_probs.data() + p * vocab, vocab);
        t.negative_log_likelihood -= log_probs[static_cast<std::size_t>(ids[p + 1])];
        t.kl += kvbits::model::kl_divergence(row, log_probs);
        t.top1_agreements += kvbits::model::argmax(logits) == reference.argmax[p] ? 1U : 0U;
      }
      t.positions += positions;
      const auto memory = cache.memory();
      t.bit_tokens += memory.total.average_bits * static_cast<double>(positions);
      t.cached_tokens += static_cast<double>(positions);
      t.histogram += memory.total.histogram;
    }
    done_positions += positions;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double eta =
        elapsed * static_cast<double>(total_positions - done_positions) / static_cast<double>(done_positions);
    std::fprintf(stderr, "\reval: story %zu/%zu, %zu/%zu positions, %.1f s elapsed, ETA %.1f s   ", s + 1,
                 sequences.size(), done_positions, total_positions, elapsed, eta);
    std::fflush(stderr);
  }
  std::fprintf(stderr, "\n");

  const double reference_ppl = reference_totals.perplexity();
  if (options.json) {
    std::printf(
        "{\n  \"model\": %s,\n  \"text\": %s,\n  \"stories\": %zu,\n  \"truncated_stories\": %zu,\n"
        "  \"max_tokens\": %zu,\n  \"positions\": %zu,\n  \"reference_perplexity\": %.6f,\n"
        "  \"calibration_tokens\": %zu,\n  \"policies\": [\n",
        json_string(model_path).c_str(), json_string(*options.text).c_str(), sequences.size(), truncated,
        limit, total_positions, reference_ppl, samples.empty() ? std::size_t{0} : sequences.front().size());
    for (std::size_t i = 0; i < specs.size(); ++i) {
      const auto& t = totals[i];
      std::printf(
          "    {\"policy\": %s, \"average_bits\": %.4f, \"perplexity\": %.6f, "
          "\"perplexity_change_percent\": %.4f, \"mean_kl\": %.6g, \"top1_agreement\": %.6f, "
          "\"key_widths\": %s, \"value_widths\": %s}%s\n",
          json_string(specs[i].text).c_str(), t.average_bits(), t.perplexity(),
          100.0 * (t.perplexity() / reference_ppl - 1.0), t.mean_kl(), t.top1_agreement(),
          json_width_counts(t.histogram.key).c_str(), json_width_counts(t.histogram.value).c_str(),
          i + 1 < specs.size() ? "," : "");
    }
    std::printf("  ]\n}\n");
    return 0;
  }
  std::printf(
      "model: %s; text: %s; %zu stories (%zu truncated to %zu tokens), %zu positions "
      "scored; FP32-cache perplexity %.4f\n",
      model_path.c_str(), options.text->c_str(), sequences.size(), truncated, limit, total_positions,
      reference_ppl);
  if (!samples.empty()) {
    std::printf("t=scale: key scales calibrated on the first story (%zu tokens)\n", sequences.front().size());
  }
  std::printf("\n");
  std::printf("| policy | bits/element | perplexity | Δ perplexity | mean KL (nats) | top-1 agreement |\n");
  std::printf("| --- | ---: | ---: | ---: | ---: | ---: |\n");
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const auto& t = totals[i];
    std::printf("| `%s` | %.3f | %.4f | %+.3f%% | %.3e | %.2f%% |\n", specs[i].text.c_str(), t.average_bits(),
                t.perplexity(), 100.0 * (t.perplexity() / reference_ppl - 1.0), t.mean_kl(),
                100.0 * t.top1_agreement());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return kvbits::cli::tool_main("kvbits-eval", usage(), argc, argv, parse_options, run);
}
