// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "eval/mc_items.hpp"
#include "eval/mc_scoring.hpp"
#include "kvbits/features/unigram_table.hpp"
#include "model/calibration.hpp"
#include "model/eval_metrics.hpp"
#include "model/llama.hpp"
#include "model/policy_spec.hpp"
#include "model/token_features.hpp"
#include "model/tokenizer.hpp"
#include "model/tool_cache.hpp"

namespace kvbits::eval {

/// An item as token ids.
struct TokenizedItem {
  std::vector<std::int32_t> context;                        ///< [BOS] + encode(context)
  std::array<std::vector<std::int32_t>, kChoices> endings;  ///< encode(ending) each, not empty
  std::array<std::size_t, kChoices> bytes{};                ///< continuation_bytes of each ending
  std::size_t answer = 0;                                   ///< the true choice

  /// @return the cache tokens scoring needs: the context and all but the last token of an ending.
  [[nodiscard]] std::size_t positions() const noexcept {
    std::size_t longest = 0;
    for (const auto& ending : endings) longest = std::max(longest, ending.size());
    return context.size() + longest - 1;
  }
  /// @return the forward passes scoring takes: the context once, all but the last token of each ending.
  [[nodiscard]] std::size_t forward_passes() const noexcept {
    std::size_t passes = context.size();
    for (const auto& ending : endings) passes += ending.size() - 1;
    return passes;
  }
};

/**
 * Tokenizes an item: the context as a sequence of its own after BOS, each ending encoded on its
 * own, whose dummy prefix space stands for the space that joins it to the context. (Encoding the
 * joined text in one piece gives the same tokens unless a merge crosses that space.)
 */
inline TokenizedItem tokenize_item(const McItem& item, const model::Tokenizer& tokenizer) {
  TokenizedItem out;
  out.context.push_back(tokenizer.bos());
  const auto context = tokenizer.encode(item.context);
  out.context.insert(out.context.end(), context.begin(), context.end());
  for (std::size_t c = 0; c < kChoices; ++c) {
    out.endings[c] = tokenizer.encode(item.endings[c]);
    out.bytes[c] = continuation_bytes(item.endings[c]);
  }
  out.answer = item.answer;
  return out;
}

/**
 * Scores the choices of multiple-choice items with one model and any cache policy: a choice's
 * score is the sum over its tokens of log p(token | context, the choice's earlier tokens).
 *
 * The context runs once per item into one cache, which is then copied (a deep copy of a
 * QuantizedKVCache continues exactly as the original would); each choice continues on its own
 * copy. The last context position's distribution, which scores every
 * choice's first token, is computed once. Rule policies get each token's features with the
 * token that follows it in the choice being scored.
 */
class McScorer {
 public:
  /**
   * @param model    the model
   * @param unigrams token counts for the rarity feature of rule: policies (null: all equally rare)
   */
  McScorer(model::LlamaModel& model, std::shared_ptr<const UnigramTable> unigrams)
      : model_(model),
        features_(model.config().vocab, std::move(unigrams)),
        logits_(model.config().vocab),
        context_logits_(model.config().vocab),
        log_probs_(model.config().vocab) {}

  /**
   * @param item    a tokenized item; positions() must not exceed the model's context
   * @param spec    the cache policy
   * @param samples calibration keys for t=scale policies
   * @return the four choices' log-likelihoods and lengths
   * @throw Error(invalid_argument) for an item too long for the model or with an empty ending.
   */
  std::array<ChoiceScore, kChoices> score(const TokenizedItem& item, const model::PolicySpec& spec,
                                          const model::KeySamples& samples) {
    check(item);
    const std::size_t capacity = item.positions();
    auto context_cache = model::make_cache(spec, model_.config(), capacity, &samples);
    const std::size_t n = item.context.size();
    for (std::size_t p = 0; p < n; ++p) {
      model_.forward(item.context[p], p, context_cache, context_logits_);
      if (spec.needs_token_features() && p + 1 < n)
        features_.feed(context_cache, context_logits_, item.context[p], p, item.context[p + 1]);
    }
    std::vector<model::ToolCache> caches;
    caches.reserve(kChoices);
    for (std::size_t c = 0; c + 1 < kChoices; ++c) caches.push_back(context_cache);
    caches.push_back(std::move(context_cache));
    model::log_softmax(context_logits_, log_probs_);
    const std::vector<double> first = log_probs_;  // scores every ending's first token
    std::array<ChoiceScore, kChoices> scores{};
    for (std::size_t c = 0; c < kChoices; ++c) {
      const auto& ending = item.endings[c];
      if (spec.needs_token_features())
        features_.feed(caches[c], context_logits_, item.context[n - 1], n - 1, ending[0]);
      scores[c] = {continue_ending(caches[c], ending, n, first, spec), item.bytes[c]};
    }
    return scores;
  }

  /**
   * The same scores computed the plain way, each choice on a fresh cache from BOS: what score()
   * must reproduce exactly; slower by the three extra context passes.
   */
  std::array<ChoiceScore, kChoices> score_separately(const TokenizedItem& item, const model::PolicySpec& spec,
                                                     const model::KeySamples& samples) {
    check(item);
    const std::size_t n = item.context.size();
    std::array<ChoiceScore, kChoices> scores{};
    for (std::size_t c = 0; c < kChoices; ++c) {
      const auto& ending = item.endings[c];
      auto cache = model::make_cache(spec, model_.config(), n + ending.size() - 1, &samples);
      for (std::size_t p = 0; p < n; ++p) {
        model_.forward(item.context[p], p, cache, logits_);
        if (spec.needs_token_features()) {
          features_.feed(cache, logits_, item.context[p], p, p + 1 < n ? item.context[p + 1] : ending[0]);
        }
      }
      model::log_softmax(logits_, log_probs_);
      const std::vector<double> first = log_probs_;
      scores[c] = {continue_ending(cache, ending, n, first, spec), item.bytes[c]};
    }
    return scores;
  }

 private:
  void check(const TokenizedItem& item) const {
    kvbits::detail::require(item.context.size() >= 1, Errc::invalid_argument,
                            "multiple choice: empty context");
    for (const auto& ending : item.endings) {
      kvbits::detail::require(!ending.empty(), Errc::invalid_argument,
                              "multiple choice: an ending has no tokens");
    }
    kvbits::detail::require(item.positions() <= model_.config().context, Errc::invalid_argument,
                            "multiple choice: an item of " + std::to_string(item.positions()) +
                                " tokens exceeds the model's context");
  }

  // Feeds the ending after an n-token context on `cache`; returns its log-likelihood.
  double continue_ending(model::ToolCache& cache, const std::vector<std::int32_t>& ending, std::size_t n,
                         const std::vector<double>& first, const model::PolicySpec& spec) {
    double log_likelihood = first[static_cast<std::size_t>(ending[0])];
    for (std::size_t t = 0; t + 1 < ending.size(); ++t) {
      model_.forward(ending[t], n + t, cache, logits_);
      if (spec.needs_token_features()) features_.feed(cache, logits_, ending[t], n + t, ending[t + 1]);
      model::log_softmax(logits_, log_probs_);
      log_likelihood += log_probs_[static_cast<std::size_t>(ending[t + 1])];
    }
    return log_likelihood;
  }

  model::LlamaModel& model_;
  model::TokenFeatureFeeder features_;
  std::vector<float> logits_;          // [vocab]
  std::vector<float> context_logits_;  // [vocab] after the context's last token
  std::vector<double> log_probs_;      // [vocab]
};

}  // namespace kvbits::eval
