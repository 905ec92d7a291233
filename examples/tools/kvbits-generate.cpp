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
#include "kvbits/core/bit_width.hpp"
#include "kvbits/core/error.hpp"
#include "model/gguf_model.hpp"
#include "model/model_path.hpp"
#include "model/policy_spec.hpp"
#include "model/sampling.hpp"
#include "model/token_features.hpp"
#include "model/tool_cache.hpp"
#include "model/toy.hpp"

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
  bool help = false;
};

Options parse_options(int argc, char** argv) {
  Options options;
  kvbits::cli::ArgCursor args(argc, argv);
  while (!args.done()) {
    const std::string name = args.next_option();
    if (name == "--model") {
      options.model = args.value();
    } else if (name == "--prompt") {
      options.prompt = args.value();
    } else if (name == "--tokens") {
      options.tokens = static_cast<std::size_t>(args.count());
    } else if (name == "--policy") {
      options.policy = args.value();
    } else if (name == "--temperature") {
      options.temperature = static_cast<float>(args.number());
    } else if (name == "--seed") {
      options.seed = args.count();
    } else if (name == "--help") {
      args.no_value();
      options.help = true;
    } else {
      throw kvbits::Error(kvbits::Errc::invalid_argument, "unknown option " + name + " (see --help)");
    }
  }
  return options;
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
  for (; position < prompt.size(); ++position) {
    model.forward(prompt[position], position, cache, logits);
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
    std::cout << tokenizer.token_text(next, previous) << std::flush;
    ++generated;
    previous = next;
    if (generated == to_generate) break;
    model.forward(next, position++, cache, logits);
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
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return kvbits::cli::tool_main("kvbits-generate", usage(), argc, argv, parse_options, run);
}
