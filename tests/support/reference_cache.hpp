// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

#include "kvbits/core/decision.hpp"
#include "kvbits/core/error.hpp"

namespace kvbits::test {

/**
 * The obviously-correct KV cache: keeps every key and value as FP32 and computes attention
 * with a plain two-pass softmax accumulated in double. It is the oracle the quantized cache and
 * the transformer are checked against, so it favours clarity over speed.
 */
class ReferenceCache {
 public:
  /**
   * @param layers   number of layers
   * @param kv_heads key/value heads per token
   * @param head_dim width of one head
   */
  ReferenceCache(std::size_t layers, std::size_t kv_heads, std::size_t head_dim)
      : kv_heads_(kv_heads), head_dim_(head_dim), keys_(layers), values_(layers) {}

  /// @return tokens stored for `layer`.
  [[nodiscard]] std::size_t size(std::size_t layer) const {
    return keys_.at(layer).size() / (kv_heads_ * head_dim_);
  }

  /// Stores one token; k and v are [kv_heads][head_dim].
  void append(std::size_t layer, std::span<const float> k, std::span<const float> v,
              const TokenInfo& /*info*/ = {}) {
    detail::require(k.size() == kv_heads_ * head_dim_ && v.size() == k.size(), Errc::shape_mismatch,
                    "reference cache: k/v must be [kv_heads][head_dim]");
    auto& keys = keys_.at(layer);
    auto& values = values_.at(layer);
    keys.insert(keys.end(), k.begin(), k.end());
    values.insert(values.end(), v.begin(), v.end());
  }

  /// out[h] = softmax(q[h] · K[g] / sqrt(head_dim)) · V[g] with g = h / (heads / kv_heads).
  void attend(std::size_t layer, std::span<const float> q, std::span<float> out) const {
    detail::require(q.size() == out.size() && q.size() % (kv_heads_ * head_dim_) == 0, Errc::shape_mismatch,
                    "reference cache: q/out must be [heads][head_dim]");
    const std::size_t heads = q.size() / head_dim_;
    const std::size_t group = heads / kv_heads_;
    const std::size_t tokens = size(layer);
    const auto& keys = keys_.at(layer);      // [tokens][kv_heads][head_dim]
    const auto& values = values_.at(layer);  // [tokens][kv_heads][head_dim]
    const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim_));
    std::vector<double> scores(tokens);
    for (std::size_t h = 0; h < heads; ++h) {
      const std::size_t kv = h / group;
      double max_score = -INFINITY;
      for (std::size_t t = 0; t < tokens; ++t) {
        double dot = 0.0;
        for (std::size_t i = 0; i < head_dim_; ++i) {
          dot += static_cast<double>(q[h * head_dim_ + i]) * keys[(t * kv_heads_ + kv) * head_dim_ + i];
        }
        scores[t] = dot * scale;
        max_score = std::max(max_score, scores[t]);
      }
      double total = 0.0;
      for (double& s : scores) {
        s = std::exp(s - max_score);
        total += s;
      }
      for (std::size_t i = 0; i < head_dim_; ++i) {
        double sum = 0.0;
        for (std::size_t t = 0; t < tokens; ++t) {
          sum += scores[t] * values[(t * kv_heads_ + kv) * head_dim_ + i];
        }
        out[h * head_dim_ + i] = static_cast<float>(sum / total);
      }
    }
  }

  /// Forgets every token.
  void clear() {
    for (auto& k : keys_) k.clear();
    for (auto& v : values_) v.clear();
  }

 private:
  std::size_t kv_heads_;
  std::size_t head_dim_;
  std::vector<std::vector<float>> keys_;    // [layers][tokens][kv_heads][head_dim]
  std::vector<std::vector<float>> values_;  // [layers][tokens][kv_heads][head_dim]
};

}  // namespace kvbits::test
