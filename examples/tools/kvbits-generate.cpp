// SPDX-License-Identifier: MIT
// kvbits-generate: text generation with a LLaMA model whose KV cache is a kvbits cache.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/args.hpp"
#include "cli/tool_main.hpp"
#include "eval/output_file.hpp"
#include "kvbits/core/bit_width.hpp"
#include "kvbits/core/error.hpp"
#include "model/gguf_model.hpp"
#include "model/model_path.hpp"
#include "model/policy_spec.hpp"
#include "model/sampling.hpp"
#include "model/token_features.hpp"
#include "model/tool_cache.hpp"
#include "model/toy.hpp"
#include "report/token_view_html.hpp"

namespace {

// --help: the options around the policy forms every tool shares.
constexpr std::string_view kUsageHead = R"(usage: kvbits-generate [options]

Generates text with a LLaMA-architecture GGUF model, storing its KV cache with kvbits.

options:
  --model M           a GGUF file, or a model name looked up in $KVBITS_MODEL_DIR, then
                      ../shared/models, then the build's shared folder (e.g. stories260K,
                      bible919K; default stories260K, or the built-in toy model when it
                      is not found)
  --prompt TEXT       text to continue (default: empty, i.e. start from BOS)
  --tokens N          tokens to generate (default 200; limited by the model's context)
  --policy P          the cache policy (default fp16):
)";
constexpr std::string_view kUsageTail =
    R"(                      K/V: key/value bits in {2,3,4,5,6,8,16,32}; g: group size (0 = head_dim);
                      w: most recent tokens kept as float; s: first tokens kept as float;
                      t=hadamard: rotate keys before quantizing; t=scale: per-channel key
                      scales calibrated on the prompt's keys
  --temperature T     0 = greedy (default), otherwise softmax sampling at temperature T
  --seed S            random seed for sampling (default 0)
  --html FILE         also write a page showing each token coloured by the key/value widths it
                      holds at the end, per layer, and the cache's bits/element over the sequence
  --help              this text
)";

const char* usage() {
  static const std::string text =
      std::string(kUsageHead) + std::string(kvbits::model::kPolicyHelp) + std::string(kUsageTail);
  return text.c_str();
}

struct Options {
  std::optional<std::string> model;
  std::string prompt;
  std::size_t tokens = 200;
  std::string policy = "fp16";
  float temperature = 0.0f;
  std::uint64_t seed = 0;
  std::optional<std::string> html;
  bool help = false;
};

Options parse_options(int argc, char** argv) {
  using kvbits::cli::ArgCursor;
  static constexpr kvbits::cli::OptionRule<Options> kRules[] = {
      {"--model", [](Options& o, ArgCursor& a) { o.model = a.value(); }},
      {"--prompt", [](Options& o, ArgCursor& a) { o.prompt = a.value(); }},
      {"--tokens", [](Options& o, ArgCursor& a) { o.tokens = static_cast<std::size_t>(a.count()); }},
      {"--policy", [](Options& o, ArgCursor& a) { o.policy = a.value(); }},
      {"--temperature", [](Options& o, ArgCursor& a) { o.temperature = static_cast<float>(a.number()); }},
      {"--seed", [](Options& o, ArgCursor& a) { o.seed = a.count(); }},
      {"--html", [](Options& o, ArgCursor& a) { o.html = a.value(); }},
  };
  return kvbits::cli::parse_with<Options>(argc, argv, kRules);
}

kvbits::model::LoadedModel load(const Options& options, std::string& description) {
  if (options.model) {
    description = kvbits::model::resolve_model(*options.model, KVBITS_SHARED_DIR_DEFAULT).string();
    return kvbits::model::load_model(description);
  }
  if (const auto found = kvbits::model::find_default_model(KVBITS_SHARED_DIR_DEFAULT)) {
    description = found->string();
    return kvbits::model::load_model(found->string());
  }
  std::cerr << "note: " << kvbits::model::kDefaultModelFile
            << " not found (set KVBITS_MODEL_DIR or pass --model); using the built-in toy model, "
               "which produces gibberish\n";
  description = "built-in toy model";
  return {kvbits::model::make_toy_tokenizer(), kvbits::model::make_toy_model()};
}

std::string histogram_line(const std::array<std::size_t, kvbits::kSupportedBits.size()>& counts) {
  std::string line;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] == 0) continue;
    if (!line.empty()) line += ", ";
    line += std::to_string(kvbits::kSupportedBits[i]) + "-bit: " + std::to_string(counts[i]);
  }
  return line.empty() ? "(empty)" : line;
}

// The widths every stored token holds now, per layer, for the token view.
std::vector<std::vector<kvbits::report::TokenWidths>> stored_widths(const kvbits::model::ToolCache& cache,
                                                                    std::size_t layers) {
  std::vector<std::vector<kvbits::report::TokenWidths>> widths(layers);
  for (std::size_t layer = 0; layer < layers; ++layer) {
    for (std::size_t token = 0; token < cache.size(layer); ++token) {
      const kvbits::BitDecision bits = cache.token_bits(layer, token);
      widths[layer].push_back({bits.key_bits, bits.value_bits, cache.in_residual(layer, token)});
    }
  }
  return widths;
}

int run(const Options& options) {
  const kvbits::model::PolicySpec spec = kvbits::model::parse_policy(options.policy);
  kvbits::model::Sampler sampler(options.temperature, options.seed);
  std::string description;
  kvbits::model::LoadedModel loaded = load(options, description);
  const auto& tokenizer = loaded.tokenizer;
  auto& model = loaded.model;
  const auto& config = model.config();

  std::vector<std::int32_t> prompt{tokenizer.bos()};
  const auto encoded = tokenizer.encode(options.prompt);
  prompt.insert(prompt.end(), encoded.begin(), encoded.end());
  kvbits::detail::require(prompt.size() < config.context, kvbits::Errc::invalid_argument,
                          "the prompt has " + std::to_string(prompt.size()) +
                              " tokens, the model's context is " + std::to_string(config.context));
  std::size_t to_generate = options.tokens;
  if (prompt.size() + to_generate > config.context) {
    to_generate = config.context - prompt.size();
    std::cerr << "note: generating " << to_generate << " tokens to stay within the context of "
              << config.context << "\n";
  }
  kvbits::model::KeySamples samples;
  if (spec.needs_calibration()) {
    samples = kvbits::model::collect_key_samples(model, prompt);
    std::cerr << "note: t=scale key scales calibrated on the " << prompt.size()
              << " prompt tokens (BOS included)\n";
  }
  auto cache = kvbits::model::make_cache(spec, config, prompt.size() + to_generate, &samples);

  std::cout << options.prompt << std::flush;
  std::vector<float> logits(config.vocab);
  const auto start = std::chrono::steady_clock::now();
  std::size_t position = 0;
  kvbits::model::TokenFeatureFeeder features(config.vocab);
  // For --html: each token's text and the cache's bits/element once it is stored.
  kvbits::report::TokenView view;
  const auto forward = [&](std::int32_t token, std::size_t at) {
    model.forward(token, at, cache, logits);
    if (options.html) view.bits_per_element.push_back(cache.bits_per_element());
  };
  for (; position < prompt.size(); ++position) {
    view.tokens.push_back(position == 0 ? std::string("<s>")
                                        : tokenizer.token_text(prompt[position], prompt[position - 1]));
    forward(prompt[position], position);
    if (spec.needs_token_features() && position + 1 < prompt.size()) {
      features.feed(cache, logits, prompt[position], position, prompt[position + 1]);
    }
  }
  std::int32_t previous = prompt.back();
  std::size_t generated = 0;
  while (generated < to_generate) {
    const std::int32_t next = sampler.sample(logits);
    if (spec.needs_token_features()) features.feed(cache, logits, previous, position - 1, next);
    // The model marks the end of a story with EOS or a fresh BOS.
    if (next == tokenizer.eos() || next == tokenizer.bos()) break;
    const std::string text = tokenizer.token_text(next, previous);
    std::cout << text << std::flush;
    view.tokens.push_back(text);
    ++generated;
    previous = next;
    if (generated == to_generate) break;
    forward(next, position++);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  const kvbits::MemoryReport memory = cache.memory();
  const std::size_t tokens = cache.size(0);
  const double fp32_bytes =
      static_cast<double>(memory.total.tokens * config.kv_heads * config.head_dim() * 2 * sizeof(float));
  std::printf("\n\n--- kvbits-generate report ---\n");
  std::printf("model:     %s (%zu layers, dim %zu, %zu heads / %zu KV heads, vocab %zu)\n",
              description.c_str(), config.layers, config.dim, config.heads, config.kv_heads, config.vocab);
  std::printf("policy:    %s\n", spec.text.c_str());
  std::printf("tokens:    %zu prompt + %zu generated, %zu forward passes in %.3f s = %.1f tokens/s\n",
              prompt.size(), generated, tokens, seconds,
              seconds > 0.0 ? static_cast<double>(tokens) / seconds : 0.0);
  std::printf("KV cache:  %zu bytes vs %.0f bytes as FP32 (%.1f%%), %.3f bits/element on average\n",
              memory.total.bytes, fp32_bytes,
              fp32_bytes > 0.0 ? 100.0 * static_cast<double>(memory.total.bytes) / fp32_bytes : 0.0,
              memory.total.average_bits);
  std::printf("precision: keys   %s (token x layer)\n", histogram_line(memory.total.histogram.key).c_str());
  std::printf("           values %s\n", histogram_line(memory.total.histogram.value).c_str());
  if (options.html) {
    view.model = description;
    view.policy = spec.text;
    view.prompt_tokens = prompt.size();
    view.layers = stored_widths(cache, config.layers);
    kvbits::eval::write_output(*options.html, kvbits::report::token_view_html(view));
    std::printf("view:      %s\n", options.html->c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return kvbits::cli::tool_main("kvbits-generate", usage(), argc, argv, parse_options, run);
}
