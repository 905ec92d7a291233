// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "gguf/gguf.hpp"
#include "kvbits/cache/quantized_kv_cache.hpp"
#include "kvbits/policy/static_policy.hpp"
#include "model/calibration.hpp"
#include "model/eval_metrics.hpp"
#include "model/gguf_model.hpp"
#include "model/llama.hpp"
#include "model/policy_spec.hpp"
#include "model/sampling.hpp"
#include "model/tool_cache.hpp"
#include "model/toy.hpp"
#include "support/golden.hpp"
#include "support/reference_cache.hpp"
#include "support/shared_data.hpp"

namespace {

using kvbits::model::LlamaConfig;
using kvbits::model::LlamaModel;
using kvbits::model::LlamaWeights;
using Ids = std::vector<std::int32_t>;

// Largest |logit difference| allowed between the cached, Eigen-based forward pass and the
// double-precision full recomputation; logits are O(1..10), float rounding stays far below.
constexpr double kMaxLogitError = 2e-4;

// Textbook LLaMA over a whole sequence in double precision, recomputing every key and value
// from scratch at every step: no cache, no Eigen. Returns the logits after each token.
std::vector<std::vector<double>> naive_logits(const LlamaConfig& c, const LlamaWeights& w,
                                              const Ids& tokens) {
  const std::size_t dim = c.dim, hd = c.head_dim(), group = c.heads / c.kv_heads;
  auto matvec = [](const std::vector<float>& m, const std::vector<double>& x, std::size_t rows) {
    std::vector<double> y(rows, 0.0);
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t i = 0; i < x.size(); ++i) y[r] += m[r * x.size() + i] * x[i];
    }
    return y;
  };
  auto rmsnorm = [&](const std::vector<double>& x, const std::vector<float>& g) {
    double ss = 0.0;
    for (const double v : x) ss += v * v;
    const double inv = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + c.rms_eps);
    std::vector<double> y(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * g[i];
    return y;
  };
  auto rope = [&](std::vector<double>& v, std::size_t pos) {
    for (std::size_t h = 0; h < v.size() / hd; ++h) {
      for (std::size_t i = 0; i < hd; i += 2) {
        const double angle =
            static_cast<double>(pos) *
            std::pow(static_cast<double>(c.rope_theta), -static_cast<double>(i) / static_cast<double>(hd));
        const double a = v[h * hd + i], b = v[h * hd + i + 1];
        v[h * hd + i] = a * std::cos(angle) - b * std::sin(angle);
        v[h * hd + i + 1] = a * std::sin(angle) + b * std::cos(angle);
      }
    }
  };
  const std::size_t n = tokens.size();
  // x[t] = residual stream of token t, advanced layer by layer for all tokens together.
  std::vector<std::vector<double>> x(n, std::vector<double>(dim));
  for (std::size_t t = 0; t < n; ++t) {
    for (std::size_t i = 0; i < dim; ++i) {
      x[t][i] = w.token_embedding[static_cast<std::size_t>(tokens[t]) * dim + i];
    }
  }
  for (const auto& layer : w.layers) {
    std::vector<std::vector<double>> q(n), k(n), v(n);
    for (std::size_t t = 0; t < n; ++t) {
      const auto xn = rmsnorm(x[t], layer.attn_norm);
      q[t] = matvec(layer.wq, xn, c.heads * hd);
      k[t] = matvec(layer.wk, xn, c.kv_heads * hd);
      v[t] = matvec(layer.wv, xn, c.kv_heads * hd);
      rope(q[t], t);
      rope(k[t], t);
    }
    for (std::size_t t = 0; t < n; ++t) {
      std::vector<double> att(c.heads * hd, 0.0);
      for (std::size_t h = 0; h < c.heads; ++h) {
        const std::size_t g = h / group;
        std::vector<double> s(t + 1);
        for (std::size_t u = 0; u <= t; ++u) {
          double d = 0.0;
          for (std::size_t i = 0; i < hd; ++i) d += q[t][h * hd + i] * k[u][g * hd + i];
          s[u] = d / std::sqrt(static_cast<double>(hd));
        }
        const double mx = *std::max_element(s.begin(), s.end());
        double z = 0.0;
        for (double& e : s) z += (e = std::exp(e - mx));
        for (std::size_t u = 0; u <= t; ++u) {
          for (std::size_t i = 0; i < hd; ++i) att[h * hd + i] += s[u] / z * v[u][g * hd + i];
        }
      }
      const auto o = matvec(layer.wo, att, dim);
      for (std::size_t i = 0; i < dim; ++i) x[t][i] += o[i];
      const auto xn = rmsnorm(x[t], layer.ffn_norm);
      auto gate = matvec(layer.w_gate, xn, c.ffn_dim);
      const auto up = matvec(layer.w_up, xn, c.ffn_dim);
      for (std::size_t i = 0; i < c.ffn_dim; ++i) gate[i] = gate[i] / (1.0 + std::exp(-gate[i])) * up[i];
      const auto down = matvec(layer.w_down, gate, dim);
      for (std::size_t i = 0; i < dim; ++i) x[t][i] += down[i];
    }
  }
  std::vector<std::vector<double>> logits(n);
  const auto& out = w.output.empty() ? w.token_embedding : w.output;
  for (std::size_t t = 0; t < n; ++t) logits[t] = matvec(out, rmsnorm(x[t], w.output_norm), c.vocab);
  return logits;
}

const kvbits::model::LoadedModel& stories_model() {
  static const kvbits::model::LoadedModel loaded =
      kvbits::model::load_model(kvbits::test::shared_file("models/stories260K.gguf").string());
  return loaded;
}

const kvbits::model::LoadedModel& bible_model() {
  static const kvbits::model::LoadedModel loaded =
      kvbits::model::load_model(kvbits::test::shared_file("models/bible919K.gguf").string());
  return loaded;
}

kvbits::CacheOptions cache_options(const LlamaConfig& config, std::size_t capacity) {
  kvbits::CacheOptions options;
  options.layers = config.layers;
  options.kv_heads = config.kv_heads;
  options.head_dim = config.head_dim();
  options.capacity = capacity;
  return options;
}

// Greedy decoding from BOS: BOS followed by `steps` generated ids.
template <class Cache>
Ids greedy(LlamaModel& model, Cache& cache, std::int32_t bos, std::size_t steps) {
  Ids ids{bos};
  std::vector<float> logits(model.config().vocab);
  for (std::size_t pos = 0; pos < steps; ++pos) {
    model.forward(ids.back(), pos, cache, logits);
    ids.push_back(kvbits::model::argmax(logits));
  }
  return ids;
}

std::size_t matching_prefix(const Ids& a, const Ids& b) {
  std::size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

}  // namespace

TEST_CASE("model: cached forward equals a full recomputation (toy model)", "[model]") {
  const LlamaConfig config = kvbits::model::toy_config(kvbits::model::make_toy_tokenizer().size());
  const LlamaWeights weights = kvbits::model::make_toy_weights(config);
  LlamaModel model(config, weights);
  const Ids tokens{1, 260, 300, 5, 290, 291, 292, 260, 260, 17, 280, 2, 299, 300, 301, 302};
  const auto expected = naive_logits(config, weights, tokens);

  kvbits::test::ReferenceCache cache(config.layers, config.kv_heads, config.head_dim());
  std::vector<float> logits(config.vocab);
  for (std::size_t pos = 0; pos < tokens.size(); ++pos) {
    model.forward(tokens[pos], pos, cache, logits);
    // One token per layer per step: all history is in the cache, none in the model.
    for (std::size_t l = 0; l < config.layers; ++l) REQUIRE(cache.size(l) == pos + 1);
    double worst = 0.0;
    std::size_t worst_index = 0;
    for (std::size_t i = 0; i < config.vocab; ++i) {
      const double error = std::abs(logits[i] - expected[pos][i]);
      if (error > worst) {
        worst = error;
        worst_index = i;
      }
    }
    INFO("position " << pos << ", logit " << worst_index << ": expected " << expected[pos][worst_index]
                     << ", got " << logits[worst_index]);
    CHECK(worst < kMaxLogitError);
  }
  // The toy is not degenerate: its logits spread and its argmax moves.
  const auto [lo, hi] = std::minmax_element(logits.begin(), logits.end());
  CHECK(*hi - *lo > 1.0f);
}

TEST_CASE("model: tied output matrix uses the embedding", "[model]") {
  const LlamaConfig config = kvbits::model::toy_config(kvbits::model::make_toy_tokenizer().size());
  LlamaWeights weights = kvbits::model::make_toy_weights(config, 7);
  weights.output.clear();
  LlamaModel model(config, weights);
  const Ids tokens{1, 270, 271};
  const auto expected = naive_logits(config, weights, tokens);
  kvbits::test::ReferenceCache cache(config.layers, config.kv_heads, config.head_dim());
  std::vector<float> logits(config.vocab);
  for (std::size_t pos = 0; pos < tokens.size(); ++pos) model.forward(tokens[pos], pos, cache, logits);
  for (std::size_t i = 0; i < config.vocab; ++i) {
    INFO("logit " << i);
    CHECK(std::abs(logits[i] - expected.back()[i]) < kMaxLogitError);
  }
}

TEST_CASE("model: rejects bad input and bad weights", "[model]") {
  LlamaModel model = kvbits::model::make_toy_model();
  const auto& config = model.config();
  kvbits::test::ReferenceCache cache(config.layers, config.kv_heads, config.head_dim());
  std::vector<float> logits(config.vocab);
  CHECK_THROWS_AS(model.forward(static_cast<std::int32_t>(config.vocab), 0, cache, logits), kvbits::Error);
  CHECK_THROWS_AS(model.forward(-1, 0, cache, logits), kvbits::Error);
  std::vector<float> short_logits(config.vocab - 1);
  CHECK_THROWS_AS(model.forward(1, 0, cache, short_logits), kvbits::Error);
  CHECK(cache.size(0) == 0);

  LlamaWeights weights = kvbits::model::make_toy_weights(config);
  weights.layers[1].wk.pop_back();
  CHECK_THROWS_AS(LlamaModel(config, weights), kvbits::Error);
  LlamaConfig odd = config;
  odd.kv_heads = 3;
  CHECK_THROWS_AS(LlamaModel(odd, kvbits::model::make_toy_weights(config)), kvbits::Error);
}

TEST_CASE("model: sampling", "[model]") {
  using kvbits::model::Sampler;
  const std::vector<float> logits{0.5f, 2.0f, 2.0f, -1.0f};
  CHECK(kvbits::model::argmax(logits) == 1);
  Sampler greedy_sampler(0.0f, 1);
  CHECK(greedy_sampler.sample(logits) == 1);
  Sampler a(1.0f, 42), b(1.0f, 42);
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < 2000; ++i) {
    const std::int32_t x = a.sample(logits);
    REQUIRE(x == b.sample(logits));
    ++counts[static_cast<std::size_t>(x)];
  }
  // p = softmax(logits) = {0.090, 0.405, 0.405, 0.020}; 2000 draws land within a few sigma.
  CAPTURE(counts[0], counts[1], counts[2], counts[3]);
  CHECK(counts[0] > 120);
  CHECK(counts[0] < 240);
  CHECK(counts[1] > 700);
  CHECK(counts[2] > 700);
  CHECK(counts[3] < 80);
  CHECK_THROWS_AS(Sampler(-1.0f), kvbits::Error);
}

TEST_CASE("model: stories260K metadata", "[model][stories260K]") {
  const auto& config = stories_model().model.config();
  CHECK(config.dim == 64);
  CHECK(config.layers == 5);
  CHECK(config.heads == 8);
  CHECK(config.kv_heads == 4);
  CHECK(config.head_dim() == 8);
  CHECK(config.ffn_dim == 172);
  CHECK(config.vocab == 512);
  CHECK(config.rms_eps == Approx(1e-5f));
  CHECK(config.rope_theta == 10000.0f);
}

namespace {

// Greedy decoding from BOS must reproduce a shared golden file: an FP32 cache every id and the
// text of the first 80, an FP16 cache at least the first 80 generated ids.
void check_golden_decode(const kvbits::model::LoadedModel& loaded, const std::string& golden_file) {
  const auto golden = kvbits::test::read_golden(kvbits::test::shared_file(golden_file));
  REQUIRE(golden.ids.size() == 121);
  LlamaModel model = loaded.model;
  const auto& tokenizer = loaded.tokenizer;
  const auto& config = model.config();
  const std::size_t steps = golden.ids.size() - 1;

  SECTION("FP32 reference cache reproduces all ids") {
    kvbits::test::ReferenceCache cache(config.layers, config.kv_heads, config.head_dim());
    const Ids ids = greedy(model, cache, tokenizer.bos(), steps);
    const std::size_t same = matching_prefix(ids, golden.ids);
    INFO("first mismatch at " << same);
    CHECK(same == golden.ids.size());
  }
  // Greedy decoding with a kvbits cache storing every token at `bits`.
  auto decode_with = [&](kvbits::BitDecision bits) {
    kvbits::QuantizedKVCache<kvbits::StaticPolicy> cache(cache_options(config, steps),
                                                         kvbits::StaticPolicy{bits});
    return greedy(model, cache, tokenizer.bos(), steps);
  };
  SECTION("FP32 kvbits cache reproduces all ids and the text") {
    const Ids ids = decode_with({32, 32});
    const std::size_t same = matching_prefix(ids, golden.ids);
    INFO("first mismatch at " << same << " of " << golden.ids.size());
    CHECK(same == golden.ids.size());
    const Ids first80(ids.begin() + 1, ids.begin() + 81);
    CHECK(std::string(" ").append(tokenizer.decode(first80)) == golden.text);
  }
  SECTION("FP16 kvbits cache reproduces at least the first 80 generated ids") {
    const Ids ids = decode_with({16, 16});
    const std::size_t same = matching_prefix(ids, golden.ids);
    INFO("first mismatch at " << same << " of " << golden.ids.size());
    CHECK(same >= 81);  // BOS + 80 generated
  }
}

}  // namespace

TEST_CASE("model: stories260K greedy decode matches the golden file", "[model][stories260K]") {
  check_golden_decode(stories_model(), "golden/stories260K_greedy.txt");
}

TEST_CASE("model: bible919K metadata", "[model][bible919K]") {
  const auto& config = bible_model().model.config();
  CHECK(config.dim == 128);
  CHECK(config.layers == 4);
  CHECK(config.heads == 2);
  CHECK(config.kv_heads == 1);
  CHECK(config.head_dim() == 64);
  CHECK(config.ffn_dim == 384);
  CHECK(config.vocab == 1024);
  CHECK(config.context == 512);
}

TEST_CASE("model: bible919K greedy decode matches the golden file", "[model][bible919K]") {
  check_golden_decode(bible_model(), "golden/bible919K_greedy.txt");
}

TEST_CASE("model: policy specifications", "[model][policy]") {
  using kvbits::KeyTransform;
  using kvbits::model::parse_policy;
  const auto fp32 = parse_policy("fp32");
  CHECK(fp32.bits == kvbits::BitDecision{32, 32});
  CHECK(parse_policy("fp16").bits == kvbits::BitDecision{16, 16});
  const auto full = parse_policy("static:8,4,g=32,w=16,s=4,t=hadamard");
  CHECK(full.bits == kvbits::BitDecision{8, 4});
  CHECK(full.group_size == 32);
  CHECK(full.residual_window == 16);
  CHECK(full.sink_tokens == 4);
  CHECK(full.key_transform == KeyTransform::hadamard);
  CHECK_FALSE(full.needs_calibration());
  const auto options = full.cache_options(5, 4, 64, 100);
  CHECK(options.layers == 5);
  CHECK(options.kv_heads == 4);
  CHECK(options.capacity == 100);
  CHECK(options.key.group_size == 32);
  CHECK(options.value.group_size == 32);
  CHECK(options.key.transform == KeyTransform::hadamard);
  CHECK(options.value.transform == KeyTransform::none);
  CHECK(options.residual_window == 16);
  CHECK(options.sink_tokens == 4);
  CHECK(parse_policy("static:2,3,t=scale").needs_calibration());
  for (const char* bad :
       {"", "fp8", "static:", "static:4", "static:4,7", "static:4,4,x=1", "static:4,4,g=", "static:4,4,g=-1",
        "static:4,4,t=rotate", "static:4,4,w", "static:4,4,", "STATIC:4,4", "static:99999999999,4"}) {
    INFO("policy '" << bad << "'");
    CHECK_THROWS_AS(parse_policy(bad), kvbits::Error);
  }
}

TEST_CASE("model: adaptive policy specifications", "[model][policy]") {
  using kvbits::model::parse_policy;
  using kvbits::model::PolicyKind;
  const auto tiers = parse_policy("tiers:1=16/16,4=8/8,*=4/2,g=32,s=4,v+=0.02");
  CHECK(tiers.kind == PolicyKind::tiers);
  CHECK(tiers.items == "1=16/16,4=8/8,*=4/2,v+=0.02");
  CHECK(tiers.group_size == 32);
  CHECK(tiers.sink_tokens == 4);
  const auto tiered = tiers.make_policy();
  REQUIRE(tiered.get_if<kvbits::TieredPolicy>() != nullptr);
  CHECK(std::vector<std::size_t>(tiered.decision_ages().begin(), tiered.decision_ages().end()) ==
        std::vector<std::size_t>{1, 4});
  CHECK(tiered.wants_attention_stats());

  const auto random = parse_policy("random:4/2:0.5,8/4:0.5,seed=7,g=32");
  CHECK(random.kind == PolicyKind::random);
  CHECK(random.seed == 7);
  CHECK(random.make_policy().get_if<kvbits::RandomPolicy>() != nullptr);

  const auto rule = parse_policy("rule:4/2,entropy>2.5=8/4,w=4");
  CHECK(rule.kind == PolicyKind::rule);
  CHECK(rule.needs_token_features());
  const auto rule_policy = rule.make_policy();
  const auto* inner = rule_policy.get_if<kvbits::RulePolicy>();
  REQUIRE(inner != nullptr);
  CHECK(inner->default_bits == kvbits::BitDecision{4, 2});
  REQUIRE(inner->feature_rules.size() == 1);
  CHECK(inner->feature_rules[0].feature == 0);
  CHECK(inner->feature_rules[0].bits == kvbits::BitDecision{8, 4});

  const auto fp16 = parse_policy("fp16,g=32,w=4");
  CHECK(fp16.bits == kvbits::BitDecision{16, 16});
  CHECK(fp16.group_size == 32);
  CHECK(fp16.residual_window == 4);
  const auto budget = parse_policy("budget:4.5:tiers:1=16/16,*=4/4,g=32");
  REQUIRE(budget.budget.has_value());
  CHECK(*budget.budget == 4.5);
  CHECK(budget.kind == PolicyKind::tiers);
  CHECK(budget.make_policy().get_if<kvbits::BudgetPolicy<kvbits::model::BasePolicy>>() != nullptr);

  for (const char* bad : {"tiers:", "tiers:4=8/8", "tiers:4=4/4,1=8/8,*=2/2", "tiers:1=16/16,*=4/2,q=1",
                          "random:", "random:4/7:1", "rule:4/2,entropy>2=8/4", "rule:4/2,size>2=8/4,w=1",
                          "budget:0:fp16", "budget:x:fp16", "budget:4:budget:4:fp16", "budget:4.5",
                          "fp16:", "fp16,", "fp16,4", "fp32,g=8,x=1"}) {
    INFO("policy '" << bad << "'");
    CHECK_THROWS_AS(parse_policy(bad), kvbits::Error);
  }
}

TEST_CASE("model: evaluation metrics", "[model][eval]") {
  const std::vector<float> logits{1.0f, 2.0f, 3.0f};
  std::vector<double> log_p(3), log_q(3);
  kvbits::model::log_softmax(logits, log_p);
  double total = 0.0;
  for (const double x : log_p) total += std::exp(x);
  CHECK(total == Approx(1.0).epsilon(1e-12));
  CHECK(log_p[2] - log_p[1] == Approx(1.0));
  CHECK(kvbits::model::kl_divergence(log_p, log_p) == 0.0);
  const std::vector<float> flat{0.0f, 0.0f, 0.0f};
  kvbits::model::log_softmax(flat, log_q);
  // KL(p || uniform) = log 3 - H(p)
  double entropy = 0.0;
  for (const double x : log_p) entropy -= std::exp(x) * x;
  CHECK(kvbits::model::kl_divergence(log_p, log_q) == Approx(std::log(3.0) - entropy));
}

TEST_CASE("model: key-scale calibration sees the model's keys, not a copy inside it",
          "[model][calibration]") {
  LlamaModel model = kvbits::model::make_toy_model();
  const auto& config = model.config();
  const Ids tokens{1, 270, 280, 290, 300};
  const auto samples = kvbits::model::collect_key_samples(model, tokens);
  REQUIRE(samples.size() == config.layers);
  for (const auto& layer : samples) {
    CHECK(layer.size() == tokens.size() * config.kv_heads * config.head_dim());
  }
  // BOS at position 0 is not rotated, so its layer-0 key is exactly W_k · rmsnorm(embedding).
  const auto weights = kvbits::model::make_toy_weights(config);
  std::vector<double> x(config.dim);
  double ss = 0.0;
  for (std::size_t i = 0; i < config.dim; ++i) {
    x[i] = weights.token_embedding[1 * config.dim + i];
    ss += x[i] * x[i];
  }
  const double inv = 1.0 / std::sqrt(ss / static_cast<double>(config.dim) + config.rms_eps);
  for (std::size_t r = 0; r < config.kv_heads * config.head_dim(); ++r) {
    double k = 0.0;
    for (std::size_t i = 0; i < config.dim; ++i) {
      k += weights.layers[0].wk[r * config.dim + i] * x[i] * inv * weights.layers[0].attn_norm[i];
    }
    INFO("key element " << r);
    CHECK(samples[0][r] == Approx(k).margin(1e-5));
  }

  const auto spec = kvbits::model::parse_policy("static:4,4,t=scale");
  CHECK_THROWS_AS(kvbits::model::make_cache(spec, config, 16), kvbits::Error);
  auto cache = kvbits::model::make_cache(spec, config, 16, &samples);
  const auto scales = cache.key_scales(0);
  REQUIRE(scales.size() == config.kv_heads * config.head_dim());
  for (std::size_t c = 0; c < scales.size(); ++c) {
    float absmax = 0.0f;
    for (std::size_t t = 0; t < tokens.size(); ++t) {
      absmax = std::max(absmax, std::abs(samples[0][t * scales.size() + c]));
    }
    INFO("channel " << c << ": scale " << scales[c] << ", largest |k| " << absmax);
    CHECK(scales[c] >= absmax);
    CHECK(scales[c] < 2.0f * absmax);
  }
}
