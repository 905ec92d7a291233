// SPDX-License-Identifier: MIT
// kvbits-label: measures, on a model's training documents, the damage each width would do to
// each decision of the tools' learned controller: the training data of kvbits-train.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/args.hpp"
#include "cli/tool_main.hpp"
#include "kvbits/codec/format.hpp"
#include "kvbits/core/error.hpp"
#include "kvbits/features/unigram_file.hpp"
#include "learn/damage_dataset.hpp"
#include "learn/damage_labeller.hpp"
#include "learn/document_split.hpp"
#include "learn/tool_controller.hpp"
#include "model/calibration.hpp"
#include "model/gguf_model.hpp"
#include "model/model_path.hpp"
#include "model/policy_spec.hpp"
#include "model/stories.hpp"

namespace {

namespace learn = kvbits::learn;
namespace model = kvbits::model;

constexpr const char* kUsage = R"(usage: kvbits-label --text DEV.txt --out DATA.kvbd [options]

Labels decisions of the tools' learned controller (examples/learn/tool_controller.hpp) with their
measured damage, on the TRAINING documents of a dev text. The split rule: document i (0-based, in
file order) is a validation document when i % 4 == 3, a training document otherwise
(docs/learned.md). Each document is teacher-forced as kvbits-eval does ([BOS] + tokens, cut to
--max-tokens and the model's context).

Per training document and decision age a in {1, 4, 16, 64}, K tokens t are drawn (seeded) among
the non-sink tokens with t + a + H <= positions. For each drawn (t, a), each layer, keys and values
apart, and each width of {2, 3, 4, 5, 6, 8, 16}: token t's key (value) row of that layer alone is
stored at that width from age a on (the exact bytes of the kvbits cache, with the options of
--cache), the rest FP32; the damage is the mean over the next H positions of KL(FP32 || that
run) of the next-token distribution, in nats. A sample also holds the controller's inputs at
that decision, recorded by a kvbits cache the learned policy's way (same window, sinks and
decision ages, attention statistics on, write-time features fed after each forward pass).

options:
  --model M               a GGUF file or a shared model name (default stories260K)
  --text PATH             the dev text (required)
  --out PATH              the dataset to write (kvbits-train reads it)
  --cache OPTIONS         the cache options the learned policy will run with, e.g. g=32 or
                          t=scale (g=, s=, t=; the window must be 1, the default); t=scale
                          calibrates on the first training document
  --samples K             tokens drawn per document and age (default 6)
  --horizon H             positions averaged per damage (default 32)
  --seed S                seed of the draws (default 1)
  --max-tokens N          most tokens per document including BOS (default 512)
  --documents N           label only the first N training documents (default: all)
  --unigram PATH          token counts for the rarity input (kvbits-unigram); without it every
                          token is equally rare (use the same choice when evaluating)
  --write-training PATH   also write the training documents as a text file
  --write-validation PATH also write the validation documents as a text file (kvbits-eval --text)
  --help                  this text

Prints one line per document on stderr and a summary (median damage per width) on stdout.
)";

struct Options {
  std::optional<std::string> model;
  std::optional<std::string> text;
  std::optional<std::string> out;
  std::string cache;
  learn::LabelOptions label;
  std::size_t max_tokens = 512;
  std::optional<std::size_t> documents;
  std::optional<std::string> unigram;
  std::optional<std::string> write_training;
  std::optional<std::string> write_validation;
  bool help = false;
};

Options parse_options(int argc, char** argv) {
  using kvbits::cli::ArgCursor;
  static constexpr kvbits::cli::OptionRule<Options> kRules[] = {
      {"--model", [](Options& o, ArgCursor& a) { o.model = a.value(); }},
      {"--text", [](Options& o, ArgCursor& a) { o.text = a.value(); }},
      {"--out", [](Options& o, ArgCursor& a) { o.out = a.value(); }},
      {"--cache", [](Options& o, ArgCursor& a) { o.cache = a.value(); }},
      {"--samples",
       [](Options& o, ArgCursor& a) { o.label.samples_per_age = static_cast<std::size_t>(a.count()); }},
      {"--horizon", [](Options& o, ArgCursor& a) { o.label.horizon = static_cast<std::size_t>(a.count()); }},
      {"--seed", [](Options& o, ArgCursor& a) { o.label.seed = a.count(); }},
      {"--max-tokens", [](Options& o, ArgCursor& a) { o.max_tokens = static_cast<std::size_t>(a.count()); }},
      {"--documents", [](Options& o, ArgCursor& a) { o.documents = static_cast<std::size_t>(a.count()); }},
      {"--unigram", [](Options& o, ArgCursor& a) { o.unigram = a.value(); }},
      {"--write-training", [](Options& o, ArgCursor& a) { o.write_training = a.value(); }},
      {"--write-validation", [](Options& o, ArgCursor& a) { o.write_validation = a.value(); }},
  };
  return kvbits::cli::parse_with<Options>(argc, argv, kRules);
}

void write_side(const std::vector<std::string>& documents, learn::Split side, const std::string& path) {
  std::vector<std::string> chosen;
  for (const std::size_t i : learn::split_indices(documents.size(), side)) chosen.push_back(documents[i]);
  std::FILE* file = std::fopen(path.c_str(), "wb");
  kvbits::detail::require(file != nullptr, kvbits::Errc::io_error, "cannot open '" + path + "' for writing");
  const std::string text = learn::format_documents(chosen);
  const bool written = std::fwrite(text.data(), 1, text.size(), file) == text.size();
  const bool closed = std::fclose(file) == 0;
  kvbits::detail::require(written && closed, kvbits::Errc::io_error, "could not write '" + path + "'");
  std::printf("kvbits-label: %zu %s documents -> %s\n", chosen.size(),
              std::string(learn::split_name(side)).c_str(), path.c_str());
}

// Median of one width's damage over the samples, keys or values.
double median_damage(const learn::DamageDataset& data, std::size_t width, bool key) {
  std::vector<float> values;
  for (const learn::DamageSample& s : data.samples)
    values.push_back(key ? s.key_damage[width] : s.value_damage[width]);
  if (values.empty()) return 0.0;
  const auto middle = values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2);
  std::nth_element(values.begin(), middle, values.end());
  return *middle;
}

int run(const Options& options) {
  kvbits::detail::require(options.text.has_value(), kvbits::Errc::invalid_argument,
                          "--text is required (see --help)");
  kvbits::detail::require(options.out || options.write_training || options.write_validation,
                          kvbits::Errc::invalid_argument,
                          "nothing to do: give --out, --write-training or --write-validation");
  const std::vector<std::string> documents = model::read_stories(*options.text);
  if (options.write_training) write_side(documents, learn::Split::training, *options.write_training);
  if (options.write_validation) write_side(documents, learn::Split::validation, *options.write_validation);
  if (!options.out) return 0;

  const model::PolicySpec spec = model::parse_learned_cache_options(options.cache);
  kvbits::detail::require(spec.residual_window == 1, kvbits::Errc::invalid_argument,
                          "--cache: labelling follows the learned policy's decisions at ages 1, 4, 16, 64, "
                          "which needs the default window w=1");
  const std::string model_path =
      model::resolve_model(options.model.value_or(std::string(model::kDefaultModelFile)),
                           KVBITS_SHARED_DIR_DEFAULT)
          .string();
  model::LoadedModel loaded = model::load_model(model_path);
  model::LlamaModel& llama = loaded.model;
  const model::LlamaConfig& config = llama.config();
  const std::size_t limit = std::min(options.max_tokens, config.context);
  kvbits::detail::require(limit >= 2, kvbits::Errc::invalid_argument, "--max-tokens must be at least 2");

  std::vector<std::size_t> training = learn::split_indices(documents.size(), learn::Split::training);
  if (options.documents && *options.documents < training.size()) training.resize(*options.documents);
  kvbits::detail::require(!training.empty(), kvbits::Errc::invalid_argument,
                          "no training documents in " + *options.text);

  const kvbits::CacheOptions cache =
      spec.cache_options(config.layers, config.kv_heads, config.head_dim(), limit);
  model::KeySamples samples;
  if (spec.needs_calibration()) {
    samples = model::collect_key_samples(
        llama, learn::document_ids(loaded.tokenizer, documents[training.front()], limit));
  }
  std::shared_ptr<const kvbits::UnigramTable> unigrams;
  if (options.unigram) {
    unigrams = std::make_shared<const kvbits::UnigramTable>(kvbits::load_unigram_table(*options.unigram));
    kvbits::detail::require(unigrams->counts().size() == config.vocab, kvbits::Errc::invalid_argument,
                            "--unigram " + *options.unigram + " does not match the model's vocabulary");
  }

  learn::DamageDataset data;
  data.model = std::filesystem::path(model_path).filename().string();
  data.cache = options.cache;
  data.head_dim = static_cast<std::uint32_t>(config.head_dim());
  data.horizon = static_cast<std::uint32_t>(options.label.horizon);
  for (const std::string_view name : learn::controller_input_names()) data.input_names.emplace_back(name);
  for (const int bits : learn::ControllerWidths::kValues) {
    data.widths.push_back(bits);
    data.bits_per_element.push_back(kvbits::bits_per_element(
        kvbits::QuantFormat{bits, cache.key.group_size, cache.key.scheme}, config.head_dim()));
  }

  learn::DamageLabeller labeller(llama, cache, spec.needs_calibration() ? &samples : nullptr, unigrams,
                                 options.label);
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t n = 0; n < training.size(); ++n) {
    const auto ids = learn::document_ids(loaded.tokenizer, documents[training[n]], limit);
    const auto begin = std::chrono::steady_clock::now();
    const std::vector<learn::DamageSample> labelled =
        labeller.label(ids, static_cast<std::uint32_t>(training[n]));
    data.samples.insert(data.samples.end(), labelled.begin(), labelled.end());
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    std::fprintf(stderr, "document %zu/%zu (index %zu): %zu tokens, %zu samples, %.1f s\n", n + 1,
                 training.size(), training[n], ids.size(), labelled.size(), seconds);
  }
  learn::save_dataset(*options.out, data);
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "kvbits-label: %s, cache '%s': %zu training documents, %zu samples, horizon %u -> %s (%.0f s)\n",
      data.model.c_str(), data.cache.c_str(), training.size(), data.samples.size(), data.horizon,
      options.out->c_str(), total);
  std::printf("median damage (mean KL per position, nats):\n| width | bits/element | keys | values |\n");
  std::printf("| ---: | ---: | ---: | ---: |\n");
  for (std::size_t b = 0; b < data.widths.size(); ++b) {
    std::printf("| %d | %.3f | %.3e | %.3e |\n", data.widths[b], data.bits_per_element[b],
                median_damage(data, b, true), median_damage(data, b, false));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return kvbits::cli::tool_main("kvbits-label", kUsage, argc, argv, parse_options, run);
}
