// SPDX-License-Identifier: MIT
// Transformer throughput on stories260K: FP32 cache versus a static 4-bit cache.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "model/gguf_model.hpp"
#include "model/policy_spec.hpp"
#include "model/sampling.hpp"
#include "model/static_cache.hpp"

namespace {

constexpr std::size_t kPromptTokens = 16;
constexpr std::size_t kSequenceTokens = 512;

std::filesystem::path shared_dir() {
  if (const char* dir = std::getenv("KVBITS_SHARED_DIR"); dir != nullptr && *dir != '\0') return dir;
  return KVBITS_SHARED_DIR_DEFAULT;
}

// Loaded once; null when the shared model is missing (each benchmark then reports the error).
const kvbits::model::LoadedModel* stories_model() {
  static const std::unique_ptr<kvbits::model::LoadedModel> loaded =
      []() -> std::unique_ptr<kvbits::model::LoadedModel> {
    const auto path = shared_dir() / "models" / "stories260K.gguf";
    if (!std::filesystem::is_regular_file(path)) return nullptr;
    return std::make_unique<kvbits::model::LoadedModel>(kvbits::model::load_model(path.string()));
  }();
  return loaded.get();
}

// Tokens per second of the FP32 run, for the ratio reported by the quantized run.
double& fp32_tokens_per_second() {
  static double rate = 0.0;
  return rate;
}

// One iteration = a fresh cache, a 16-token prompt, then greedy decoding until the sequence
// holds 512 tokens: 512 forward passes.
void generate(benchmark::State& state, const char* policy) {
  const kvbits::model::LoadedModel* loaded = stories_model();
  if (loaded == nullptr) {
    state.SkipWithError("models/stories260K.gguf not found: set KVBITS_SHARED_DIR");
    return;
  }
  kvbits::model::LlamaModel model = loaded->model;
  const auto& tokenizer = loaded->tokenizer;
  const auto spec = kvbits::model::parse_policy(policy);
  std::vector<std::int32_t> prompt{tokenizer.bos()};
  const auto text =
      tokenizer.encode("Once upon a time, there was a little girl named Lily. She loved to play outside.");
  prompt.insert(prompt.end(), text.begin(), text.end());
  prompt.resize(kPromptTokens);
  std::vector<float> logits(model.config().vocab);

  double seconds = 0.0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    auto cache = kvbits::model::make_static_cache(spec, model.config(), kSequenceTokens);
    std::int32_t token = prompt[0];
    for (std::size_t position = 0; position < kSequenceTokens; ++position) {
      model.forward(token, position, cache, logits);
      token = position + 1 < prompt.size() ? prompt[position + 1] : kvbits::model::argmax(logits);
    }
    benchmark::DoNotOptimize(logits.data());
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  const double tokens = static_cast<double>(kSequenceTokens) * static_cast<double>(state.iterations());
  state.counters["tokens/s"] = benchmark::Counter(tokens, benchmark::Counter::kIsRate);
  const double rate = seconds > 0.0 ? tokens / seconds : 0.0;
  if (spec.bits == kvbits::BitDecision{32, 32}) {
    fp32_tokens_per_second() = rate;
  } else if (fp32_tokens_per_second() > 0.0) {
    state.counters["speed_vs_fp32"] = rate / fp32_tokens_per_second();
  }
}

void BM_generate_fp32(benchmark::State& state) { generate(state, "fp32"); }
void BM_generate_static4(benchmark::State& state) { generate(state, "static:4,4"); }

// FP32 first: the 4-bit run reports its speed relative to it. Wall-clock time throughout, so
// tokens/s and speed_vs_fp32 (timed with steady_clock) measure the same thing.
BENCHMARK(BM_generate_fp32)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_generate_static4)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
