// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kvbits/cache/options.hpp"
#include "kvbits/cache/quantized_kv_cache.hpp"
#include "kvbits/core/error.hpp"
#include "kvbits/core/random.hpp"
#include "kvbits/features/unigram_table.hpp"
#include "learn/damage_dataset.hpp"
#include "learn/decision_recorder.hpp"
#include "learn/replay_cache.hpp"
#include "learn/tool_controller.hpp"
#include "learn/width_quantizer.hpp"
#include "model/calibration.hpp"
#include "model/eval_metrics.hpp"
#include "model/llama.hpp"
#include "model/token_features.hpp"

namespace kvbits::learn {

/// How a labelling run samples and measures.
struct LabelOptions {
  std::size_t horizon = 32;         ///< H: next-token distributions averaged per damage
  std::size_t samples_per_age = 6;  ///< K: tokens drawn per document and decision age
  std::uint64_t seed = 1;           ///< the draws
};

namespace detail {

/// Feeds the model's appends to the recording kvbits cache and the replay cache; attention is
/// read from the replay cache (the recording cache attends too, so its statistics advance).
template <class Recording>
class TeeCache {
 public:
  TeeCache(Recording& recording, ReplayCache& replay, std::size_t out_size)
      : recording_(recording), replay_(replay), scratch_(out_size) {}

  [[nodiscard]] std::size_t size(std::size_t layer) const { return replay_.size(layer); }

  void append(std::size_t layer, std::span<const float> k, std::span<const float> v,
              const TokenInfo& info = {}) {
    recording_.append(layer, k, v, info);
    replay_.append(layer, k, v, info);
  }

  void attend(std::size_t layer, std::span<const float> q, std::span<float> out) const {
    recording_.attend(layer, q, scratch_);
    replay_.attend(layer, q, out);
  }

 private:
  Recording& recording_;
  ReplayCache& replay_;
  mutable std::vector<float> scratch_;  // [heads][head_dim] the recording cache's attention, unused
};

}  // namespace detail

/**
 * Labels decisions of the tools' learned controller with their measured damage.
 *
 * For one document (teacher forcing, [BOS] + tokens):
 *  1. Reference pass: the model runs over an FP32 ReplayCache and, alongside, a QuantizedKVCache
 *     whose DecisionRecorder policy is asked exactly when ToolLearnedPolicy would be (window,
 *     sinks and decision ages of the learned policy's cache options, attention statistics on,
 *     the write-time features fed by model::TokenFeatureFeeder as the tools feed them). Every
 *     decision's controller inputs and the reference log-probabilities are kept.
 *  2. For each decision age a, K tokens t are drawn (seeded) among those whose horizon fits in
 *     the document: t not a sink and t + a + H <= positions.
 *  3. For each drawn (t, a), each layer l, each side (keys, values) and each width b: the
 *     cache is rolled back to t + a tokens, token t's key (value) row of layer l alone is
 *     replaced by its width-b version (WidthQuantizer: the bytes the kvbits cache would store),
 *     the model continues over positions t + a .. t + a + H - 1 and the damage is the mean over
 *     those H positions of KL(reference || continuation) of the next-token distribution, in nats.
 * One sample per (t, a, l). A width that reproduces the row exactly has damage 0.
 */
class DamageLabeller {
 public:
  /**
   * @param model    the model (its scratch is used)
   * @param cache    the learned policy's cache options, shaped for the model (capacity ignored)
   * @param samples  calibration keys when cache.key.transform is channel_scale (else null)
   * @param unigrams token counts for the rarity input, or null (every token equally rare)
   * @param options  horizon, samples, seed
   */
  DamageLabeller(model::LlamaModel& model, const CacheOptions& cache, const model::KeySamples* samples,
                 std::shared_ptr<const UnigramTable> unigrams, LabelOptions options)
      : model_(model),
        cache_(cache),
        quantizer_(cache, ControllerWidths::kValues, samples),
        features_(model.config().vocab, std::move(unigrams)),
        options_(options),
        logits_(model.config().vocab),
        log_probs_(model.config().vocab) {
    kvbits::detail::require(options_.horizon >= 1 && options_.samples_per_age >= 1, Errc::invalid_argument,
                            "labelling needs a horizon and samples per age of at least 1");
  }

  /// Which row of a token a continuation replaces.
  enum class Side { key, value };

  /**
   * Step 1 for one document: the reference pass, recording every decision's inputs and the
   * reference log-probabilities; damage() and label() then work on this document.
   * @param ids [BOS] + tokens, at least 2
   */
  void prepare(std::span<const std::int32_t> ids) {
    kvbits::detail::require(ids.size() >= 2, Errc::invalid_argument, "a document needs at least 2 tokens");
    const model::LlamaConfig& config = model_.config();
    const std::size_t positions = ids.size() - 1;
    const std::size_t vocab = config.vocab;
    ids_.assign(ids.begin(), ids.end());
    log_ = std::make_unique<DecisionLog>(config.layers, positions);
    CacheOptions options = cache_;
    options.capacity = positions;
    options.key.transform = KeyTransform::none;  // float storage: the basis does not change attention
    options.value.transform = KeyTransform::none;
    QuantizedKVCache<DecisionRecorder> recording(options, DecisionRecorder(*log_));
    reference_ = std::make_unique<ReplayCache>(config, positions);
    detail::TeeCache tee(recording, *reference_, config.heads * config.head_dim());
    reference_log_probs_.resize(positions * vocab);
    for (std::size_t p = 0; p < positions; ++p) {
      model_.forward(ids[p], p, tee, logits_);
      model::log_softmax(logits_, std::span<double>(reference_log_probs_.data() + p * vocab, vocab));
      features_.feed(recording, logits_, ids[p], p, ids[p + 1]);
    }
    work_ = std::make_unique<ReplayCache>(*reference_);
  }

  /**
   * Step 3 for one row: the mean over positions token + age .. token + age + H - 1 of
   * KL(reference || continuation), where the continuation stores `row` instead of the token's
   * key (value) row of `layer` from age `age` on. The document of the last prepare().
   * @param row [kv_heads][head_dim]
   * @throw Error(invalid_argument) when the horizon does not fit in the document.
   */
  float damage(std::size_t layer, std::size_t token, std::size_t age, Side side, std::span<const float> row) {
    kvbits::detail::require(work_ != nullptr, Errc::invalid_argument, "damage() needs prepare() first");
    const std::size_t vocab = model_.config().vocab;
    const std::size_t start = token + age;
    kvbits::detail::require(age >= 1 && start + options_.horizon < ids_.size(), Errc::invalid_argument,
                            "the damage horizon does not fit in the document");
    work_->truncate(start);
    const std::span<float> target =
        side == Side::key ? work_->key_row(layer, token) : work_->value_row(layer, token);
    kvbits::detail::require(row.size() == target.size(), Errc::shape_mismatch,
                            "a row is [kv_heads][head_dim]");
    std::copy(row.begin(), row.end(), target.begin());
    double total = 0.0;
    for (std::size_t p = start; p < start + options_.horizon; ++p) {
      model_.forward(ids_[p], p, *work_, logits_);
      model::log_softmax(logits_, log_probs_);
      total += model::kl_divergence(std::span<const double>(reference_log_probs_.data() + p * vocab, vocab),
                                    log_probs_);
    }
    work_->restore_from(*reference_, start, options_.horizon);
    work_->restore_from(*reference_, token, 1);
    return static_cast<float>(total / static_cast<double>(options_.horizon));
  }

  /// @return the reference (FP32) key or value row of a token of the prepared document.
  [[nodiscard]] std::span<const float> reference_row(std::size_t layer, std::size_t token, Side side) const {
    kvbits::detail::require(reference_ != nullptr, Errc::invalid_argument,
                            "reference_row() needs prepare() first");
    const ReplayCache& reference = *reference_;
    return side == Side::key ? reference.key_row(layer, token) : reference.value_row(layer, token);
  }

  /// @return the controller inputs recorded for a decision of the prepared document.
  [[nodiscard]] const DecisionLog& decisions() const {
    kvbits::detail::require(log_ != nullptr, Errc::invalid_argument, "decisions() needs prepare() first");
    return *log_;
  }

  /**
   * Labels one document: prepare(), the draws, and every (layer, side, width) damage of each.
   * @param ids      [BOS] + tokens
   * @param document the document's index in its file (recorded, and part of the draws' seed)
   * @return its samples: by age, then drawn token, then layer.
   */
  std::vector<DamageSample> label(std::span<const std::int32_t> ids, std::uint32_t document) {
    prepare(ids);
    const model::LlamaConfig& config = model_.config();
    const std::size_t positions = ids.size() - 1;
    const std::size_t width = config.kv_heads * config.head_dim();
    std::vector<float> keys(ControllerWidths::size * width);
    std::vector<float> values(ControllerWidths::size * width);
    const auto row = [width](std::vector<float>& rows, std::size_t b) {
      return std::span<float>(rows.data() + b * width, width);
    };
    const std::size_t sinks = std::min(cache_.sink_tokens, positions);
    std::vector<DamageSample> samples;
    for (std::size_t a = 0; a < kDecisionAges.size(); ++a) {
      const std::size_t age = kDecisionAges[a];
      for (const std::size_t token : draw_tokens(sinks, positions, age, document, a)) {
        for (std::size_t layer = 0; layer < config.layers; ++layer) {
          DamageSample sample;
          sample.document = document;
          sample.position = static_cast<std::uint32_t>(token);
          sample.age = static_cast<std::uint32_t>(age);
          sample.layer = static_cast<std::uint32_t>(layer);
          sample.inputs = log_->at(layer, token, age);
          for (std::size_t b = 0; b < ControllerWidths::size; ++b) {
            quantizer_.quantize(b, layer, reference_row(layer, token, Side::key),
                                reference_row(layer, token, Side::value), row(keys, b), row(values, b));
          }
          for (std::size_t b = 0; b < ControllerWidths::size; ++b) {
            sample.key_damage[b] = damage(layer, token, age, Side::key, row(keys, b));
            sample.value_damage[b] = damage(layer, token, age, Side::value, row(values, b));
          }
          samples.push_back(sample);
        }
      }
    }
    return samples;
  }

 private:
  // K distinct tokens in [sinks, positions - age - H], drawn by a partial Fisher-Yates shuffle, sorted.
  std::vector<std::size_t> draw_tokens(std::size_t sinks, std::size_t positions, std::size_t age,
                                       std::uint32_t document, std::size_t age_index) const {
    std::vector<std::size_t> tokens;
    for (std::size_t t = sinks; t + age + options_.horizon <= positions; ++t) tokens.push_back(t);
    kvbits::detail::SplitMix64 random(options_.seed ^ (0x9e3779b97f4a7c15ULL * (document + 1ULL)) ^
                                      (0xbf58476d1ce4e5b9ULL * (age_index + 1ULL)));
    const std::size_t k = std::min(options_.samples_per_age, tokens.size());
    for (std::size_t i = 0; i < k; ++i) std::swap(tokens[i], tokens[i + random.below(tokens.size() - i)]);
    tokens.resize(k);
    std::sort(tokens.begin(), tokens.end());
    return tokens;
  }

  model::LlamaModel& model_;
  CacheOptions cache_;                  // the learned policy's cache options
  WidthQuantizer quantizer_;            // rows as the cache stores them, per width
  model::TokenFeatureFeeder features_;  // the write-time inputs
  LabelOptions options_;
  std::vector<float> logits_;                // [vocab]
  std::vector<double> log_probs_;            // [vocab] of a continuation
  std::vector<std::int32_t> ids_;            // the prepared document
  std::unique_ptr<DecisionLog> log_;         // its decisions' controller inputs
  std::unique_ptr<ReplayCache> reference_;   // its FP32 rows
  std::unique_ptr<ReplayCache> work_;        // the continuations' cache
  std::vector<double> reference_log_probs_;  // [positions][vocab] of the reference pass
};

}  // namespace kvbits::learn
