// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "kvbits/core/decision.hpp"
#include "kvbits/core/error.hpp"
#include "model/llama.hpp"

namespace kvbits::learn {

/**
 * A plain FP32 KV cache whose rows can be read, overwritten and rolled back: the instrument
 * of damage labelling. A continuation from position p0 truncates every layer to p0 tokens,
 * overwrites one stored row with its quantised value, runs the model on, and is then undone
 * by restore_from() a copy that holds the reference rows. Attention is a straightforward
 * softmax(q . k / sqrt(head_dim)) . v in float, the same arithmetic for the reference pass and
 * every continuation, so a continuation that changes nothing reproduces the reference bit for bit.
 */
class ReplayCache {
 public:
  /**
   * @param config   the model's shape
   * @param capacity most tokens per layer
   */
  ReplayCache(const model::LlamaConfig& config, std::size_t capacity)
      : heads_(config.heads),
        kv_heads_(config.kv_heads),
        head_dim_(config.head_dim()),
        width_(config.kv_heads * config.head_dim()),
        capacity_(capacity),
        sizes_(config.layers, 0),
        keys_(config.layers, std::vector<float>(capacity * width_)),
        values_(config.layers, std::vector<float>(capacity * width_)),
        scores_(capacity) {}

  /// @return tokens stored for `layer`.
  [[nodiscard]] std::size_t size(std::size_t layer) const { return sizes_.at(layer); }

  /// Stores the token's k, v ([kv_heads][head_dim]) after the layer's last one.
  void append(std::size_t layer, std::span<const float> k, std::span<const float> v, const TokenInfo& = {}) {
    std::size_t& size = sizes_.at(layer);
    if (size >= capacity_) {
      throw Error(Errc::capacity_exhausted, "replay cache: layer " + std::to_string(layer) + " is full");
    }
    kvbits::detail::require(k.size() == width_ && v.size() == width_, Errc::shape_mismatch,
                            "replay cache: k and v must be [kv_heads][head_dim]");
    std::copy(k.begin(), k.end(), keys_[layer].begin() + static_cast<std::ptrdiff_t>(size * width_));
    std::copy(v.begin(), v.end(), values_[layer].begin() + static_cast<std::ptrdiff_t>(size * width_));
    ++size;
  }

  /// out [heads][head_dim] <- attention of q [heads][head_dim] over the layer's tokens.
  void attend(std::size_t layer, std::span<const float> q, std::span<float> out) const {
    const std::size_t n = sizes_.at(layer);
    const std::size_t group = heads_ / kv_heads_;
    const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim_));
    const float* keys = keys_[layer].data();
    const float* values = values_[layer].data();
    for (std::size_t h = 0; h < heads_; ++h) {
      const float* query = q.data() + h * head_dim_;
      const std::size_t offset = (h / group) * head_dim_;
      float top = -std::numeric_limits<float>::infinity();
      for (std::size_t t = 0; t < n; ++t) {
        const float* key = keys + t * width_ + offset;
        float dot = 0.0f;
        for (std::size_t i = 0; i < head_dim_; ++i) dot += query[i] * key[i];
        scores_[t] = dot * scale;
        top = std::max(top, scores_[t]);
      }
      float total = 0.0f;
      for (std::size_t t = 0; t < n; ++t) total += scores_[t] = std::exp(scores_[t] - top);
      float* result = out.data() + h * head_dim_;
      std::fill(result, result + head_dim_, 0.0f);
      for (std::size_t t = 0; t < n; ++t) {
        const float weight = scores_[t] / total;
        const float* value = values + t * width_ + offset;
        for (std::size_t i = 0; i < head_dim_; ++i) result[i] += weight * value[i];
      }
    }
  }

  /// @return token `token`'s key row [kv_heads][head_dim] in `layer`.
  [[nodiscard]] std::span<float> key_row(std::size_t layer, std::size_t token) {
    return {keys_.at(layer).data() + token * width_, width_};
  }
  /// @return token `token`'s value row [kv_heads][head_dim] in `layer`.
  [[nodiscard]] std::span<float> value_row(std::size_t layer, std::size_t token) {
    return {values_.at(layer).data() + token * width_, width_};
  }
  /// @return token `token`'s key row, read-only.
  [[nodiscard]] std::span<const float> key_row(std::size_t layer, std::size_t token) const {
    return {keys_.at(layer).data() + token * width_, width_};
  }
  /// @return token `token`'s value row, read-only.
  [[nodiscard]] std::span<const float> value_row(std::size_t layer, std::size_t token) const {
    return {values_.at(layer).data() + token * width_, width_};
  }

  /// Forgets every token from `tokens` on, in every layer (rows stay until overwritten).
  void truncate(std::size_t tokens) {
    for (std::size_t& size : sizes_) size = std::min(size, tokens);
  }

  /**
   * Copies rows [first, first + count) of every layer, and sizes, back from `reference`
   * (a cache of the same shape).
   */
  void restore_from(const ReplayCache& reference, std::size_t first, std::size_t count) {
    const auto begin = static_cast<std::ptrdiff_t>(first * width_);
    const auto end = static_cast<std::ptrdiff_t>(std::min(first + count, capacity_) * width_);
    for (std::size_t layer = 0; layer < sizes_.size(); ++layer) {
      std::copy(reference.keys_[layer].begin() + begin, reference.keys_[layer].begin() + end,
                keys_[layer].begin() + begin);
      std::copy(reference.values_[layer].begin() + begin, reference.values_[layer].begin() + end,
                values_[layer].begin() + begin);
    }
    sizes_ = reference.sizes_;
  }

 private:
  std::size_t heads_;
  std::size_t kv_heads_;
  std::size_t head_dim_;
  std::size_t width_;                       // kv_heads * head_dim
  std::size_t capacity_;                    // tokens per layer
  std::vector<std::size_t> sizes_;          // [layers] tokens stored
  std::vector<std::vector<float>> keys_;    // [layers][capacity][kv_heads][head_dim]
  std::vector<std::vector<float>> values_;  // [layers][capacity][kv_heads][head_dim]
  mutable std::vector<float> scores_;       // [capacity] one head's attention weights
};

}  // namespace kvbits::learn
