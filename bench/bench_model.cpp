// SPDX-License-Identifier: MIT
// Transformer throughput: the shared models generating, and a model-sized shape with synthetic
// weights decoding at long contexts; every cache policy as a ratio to the FP32 cache.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "bench_support.hpp"

#include "model/gguf_model.hpp"
#include "model/policy_spec.hpp"
#include "model/sampling.hpp"
#include "model/tool_cache.hpp"
#include "model/toy.hpp"

namespace {

using kvbits::bench::thread_seconds;

constexpr std::size_t kPromptTokens = 16;
constexpr std::size_t kSequenceTokens = 512;

std::filesystem::path shared_dir() {
  if (const char* dir = std::getenv("KVBITS_SHARED_DIR"); dir != nullptr && *dir != '\0') return dir;
  return KVBITS_SHARED_DIR_DEFAULT;
}

// Loaded once per model; null when the shared model is missing (each benchmark then reports it).
const kvbits::model::LoadedModel* shared_model(const std::string& name) {
  static std::map<std::string, std::unique_ptr<kvbits::model::LoadedModel>> loaded;
  auto [entry, inserted] = loaded.try_emplace(name);
  if (inserted) {
    const auto path = shared_dir() / "models" / (name + ".gguf");
    if (std::filesystem::is_regular_file(path)) {
      entry->second = std::make_unique<kvbits::model::LoadedModel>(kvbits::model::load_model(path.string()));
    }
  }
  return entry->second.get();
}

// Tokens per second of each model's FP32 run, for the ratio the other policies report.
std::map<std::string, double>& fp32_tokens_per_second() {
  static std::map<std::string, double> rates;
  return rates;
}

// Reports tokens/s, and the policy's speed as a ratio to the FP32 cache's rate of the same shape:
// an "fp32" run records `fp32_rate`, which the other policies (registered after it) divide by.
void report_speed(benchmark::State& state, const std::string& policy, double tokens, double seconds,
                  double& fp32_rate) {
  state.counters["tokens/s"] = benchmark::Counter(tokens, benchmark::Counter::kIsRate);
  const double rate = seconds > 0.0 ? tokens / seconds : 0.0;
  if (policy == "fp32") {
    fp32_rate = rate;
  } else if (fp32_rate > 0.0) {
    state.counters["speed_vs_fp32"] = rate / fp32_rate;
  }
}

// One iteration = a fresh cache, a 16-token prompt, then greedy decoding until the sequence
// holds 512 tokens: 512 forward passes.
void generate(benchmark::State& state, const std::string& model_name, const std::string& policy,
              const char* prompt_text) {
  const kvbits::model::LoadedModel* loaded = shared_model(model_name);
  if (loaded == nullptr) {
    state.SkipWithError(("models/" + model_name + ".gguf not found: set KVBITS_SHARED_DIR").c_str());
    return;
  }
  kvbits::model::LlamaModel model = loaded->model;
  const auto& tokenizer = loaded->tokenizer;
  const auto spec = kvbits::model::parse_policy(policy);
  std::vector<std::int32_t> prompt{tokenizer.bos()};
  const auto text = tokenizer.encode(prompt_text);
  prompt.insert(prompt.end(), text.begin(), text.end());
  prompt.resize(kPromptTokens);
  std::vector<float> logits(model.config().vocab);

  double seconds = 0.0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    auto cache = kvbits::model::make_cache(spec, model.config(), kSequenceTokens);
    std::int32_t token = prompt[0];
    for (std::size_t position = 0; position < kSequenceTokens; ++position) {
      model.forward(token, position, cache, logits);
      token = position + 1 < prompt.size() ? prompt[position + 1] : kvbits::model::argmax(logits);
    }
    benchmark::DoNotOptimize(logits.data());
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  const double tokens = static_cast<double>(kSequenceTokens) * static_cast<double>(state.iterations());
  report_speed(state, policy, tokens, seconds, fp32_tokens_per_second()[model_name]);
}

// Each model's prompt is text of its own kind.
struct BenchModel {
  const char* name;
  const char* prompt;
};
constexpr BenchModel kModels[] = {
    {"stories260K", "Once upon a time, there was a little girl named Lily. She loved to play outside."},
    {"bible919K",
     "In the beginning God created the heavens and the earth. The earth was formless and empty."},
};

// FP32 first for each model: the other policies report their speed relative to it. Wall-clock
// time throughout, so tokens/s and speed_vs_fp32 (timed with steady_clock) measure the same thing.
const int kRegistered = [] {
  for (const BenchModel& bench_model : kModels) {
    const bool bible = std::string(bench_model.name) == "bible919K";
    const std::string group_size = bible ? ",g=32" : "";
    // A tiered cache re-decides tokens at ages 4, 16 and 64; against the static cache of its
    // oldest widths, its extra cost is the demotion work of every step.
    const std::string tiered =
        bible ? "tiers:4=16/16,16=8/8,64=4/4,*=3/3,g=32" : "tiers:4=16/16,16=8/8,64=6/4,*=5/3";
    const std::string oldest = bible ? "static:3,3,g=32" : "static:5,3";
    // At 8.5 bits/element on stories260K (4.5 on bible919K), the best static configuration (an fp16
    // window) and the tiers that beat it (docs/results.md): what the tiers' demotions cost in a
    // decode step, against the configuration they replace.
    const std::string best_static = bible ? "tiers:8=16/16,*=3/3,g=32" : "tiers:16=16/16,*=5/3";
    const std::string best_tiers =
        bible ? "tiers:4=16/16,16=8/8,64=4/4,*=3/3,g=32" : "tiers:4=16/16,16=8/6,64=6/4,*=5/3";
    std::vector<std::string> policies = {"fp32",
                                         "fp16",
                                         "static:8,8" + group_size,
                                         "static:4,4" + group_size,
                                         "static:8,4" + group_size,
                                         "static:4,2" + group_size,
                                         oldest,
                                         tiered,
                                         best_static};
    if (best_tiers != tiered) policies.push_back(best_tiers);
    for (const std::string& policy : policies) {
      benchmark::RegisterBenchmark(("generate/" + std::string(bench_model.name) + "/" + policy).c_str(),
                                   [bench_model, policy](benchmark::State& state) {
                                     generate(state, bench_model.name, policy, bench_model.prompt);
                                   })
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    }
  }
  return 0;
}();

// A small real model's shape (synthetic weights: speed only, the text is nonsense): 8 layers,
// dim 512, 8 query heads over 2 KV heads of 64, SwiGLU FFN 1536, vocabulary 4096.
kvbits::model::LlamaConfig synthetic_config(std::size_t context) {
  kvbits::model::LlamaConfig config;
  config.dim = 512;
  config.layers = 8;
  config.heads = 8;
  config.kv_heads = 2;
  config.ffn_dim = 1536;
  config.vocab = 4096;
  config.context = context;
  return config;
}

constexpr std::size_t kLongestContext = 16384;
constexpr std::size_t kDecodeSteps = 64;  // decode steps per filled cache

const kvbits::model::LlamaModel& synthetic_model() {
  static const kvbits::model::LlamaModel model = [] {
    const auto config = synthetic_config(kLongestContext + kDecodeSteps);
    return kvbits::model::LlamaModel(config, kvbits::model::make_toy_weights(config, 7));
  }();
  return model;
}

// Tokens per second of the FP32 cache at each context, for the ratios.
std::map<std::size_t, double>& synthetic_fp32_rates() {
  static std::map<std::size_t, double> rates;
  return rates;
}

// One iteration = one decode step (all layers, classifier included) at `context` cached tokens.
// The cache is filled with random post-RoPE-like rows through append (the policy decides them as
// in decoding), then decodes kDecodeSteps tokens before it is filled again (untimed).
void decode_at_context(benchmark::State& state, std::size_t context, const std::string& policy) {
  kvbits::model::LlamaModel model = synthetic_model();
  const auto& config = model.config();
  const auto spec = kvbits::model::parse_policy(policy);
  const std::size_t width = config.kv_heads * config.head_dim();
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> rows(257 * width);  // a prime number of distinct rows, cycled
  for (float& x : rows) x = normal(rng);
  std::vector<float> logits(config.vocab);
  auto cache = kvbits::model::make_cache(spec, config, context + kDecodeSteps);
  std::size_t position = context + kDecodeSteps;  // "full": fill on the first iteration
  const auto refill = [&] {
    cache.clear();
    for (std::size_t t = 0; t < context; ++t) {
      const std::span<const float> row(rows.data() + (t % 257) * width, width);
      for (std::size_t l = 0; l < config.layers; ++l) cache.append(l, row, row, {l, t, -1, {}});
    }
    position = context;
  };
  double seconds = 0.0;
  double cpu_seconds = 0.0;
  std::int32_t token = 1;
  for (auto _ : state) {
    if (position == context + kDecodeSteps) {
      state.PauseTiming();
      refill();
      state.ResumeTiming();
    }
    const auto start = std::chrono::steady_clock::now();
    const double cpu_start = thread_seconds();
    model.forward(token, position++, cache, logits);
    cpu_seconds += thread_seconds() - cpu_start;
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    token = kvbits::model::argmax(logits);
  }
  report_speed(state, policy, static_cast<double>(state.iterations()), seconds,
               synthetic_fp32_rates()[context]);
  state.counters["cpu_tokens/s"] =
      cpu_seconds > 0.0 ? static_cast<double>(state.iterations()) / cpu_seconds : 0.0;
  state.counters["bits_per_element"] = cache.bits_per_element();
}

const int kRegisteredSynthetic = [] {
  for (const std::size_t context : {std::size_t{1024}, std::size_t{4096}, kLongestContext}) {
    // The last four: caches whose widths all have integer dot kernels (2/4/8 bits, groups of 32,
    // 64 or the whole row), next to the bible919K-like tiers whose 3-bit bulk has none.
    for (const char* policy : {"fp32", "fp16", "static:8,8", "static:4,4", "static:2,2,g=32",
                               "tiers:4=16/16,16=8/8,64=4/4,*=3/3,g=32", "static:4,4,g=32", "static:8,4",
                               "static:2,2", "tiers:4=16/16,16=8/8,64=4/4,*=2/2"}) {
      benchmark::RegisterBenchmark(
          ("decode/synthetic-8x512-gqa4/ctx" + std::to_string(context) + "/" + policy).c_str(),
          [context, policy = std::string(policy)](benchmark::State& state) {
            decode_at_context(state, context, policy);
          })
          ->Unit(benchmark::kMillisecond)
          ->MinTime(1.0)
          ->UseRealTime();
    }
  }
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
