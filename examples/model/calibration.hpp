// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "kvbits/cache/quantized_kv_cache.hpp"
#include "kvbits/policy/static_policy.hpp"
#include "model/kv_cache.hpp"
#include "model/llama.hpp"

namespace kvbits::model {

/// Post-RoPE keys of a calibration text: [layers][tokens][kv_heads][head_dim].
using KeySamples = std::vector<std::vector<float>>;

/**
 * A cache adapter that copies every appended key before handing it on: the way to observe
 * the keys the model produces without the model keeping any of them.
 * @tparam Inner the cache that stores the tokens and answers attention
 */
template <AttentionCache Inner>
class KeyRecordingCache {
 public:
  /// @param inner the cache to delegate to; @param layers the model's layer count
  KeyRecordingCache(Inner& inner, std::size_t layers) : inner_(inner), keys_(layers) {}

  /// @return tokens stored for `layer` by the inner cache.
  [[nodiscard]] std::size_t size(std::size_t layer) const { return inner_.size(layer); }

  /// Stores the token in the inner cache, then records its key ([kv_heads][head_dim]).
  void append(std::size_t layer, std::span<const float> k, std::span<const float> v,
              const TokenInfo& info = {}) {
    inner_.append(layer, k, v, info);
    auto& keys = keys_.at(layer);
    keys.insert(keys.end(), k.begin(), k.end());
  }

  /// Attention over the inner cache.
  void attend(std::size_t layer, std::span<const float> q, std::span<float> out) const {
    inner_.attend(layer, q, out);
  }

  /// @return the recorded keys, [layers][tokens][kv_heads][head_dim].
  [[nodiscard]] const KeySamples& keys() const noexcept { return keys_; }

 private:
  Inner& inner_;
  KeySamples keys_;  // [layers][tokens][kv_heads][head_dim]
};

/**
 * Runs `tokens` (positions 0, 1, ...) through `model` with an FP32 cache and returns every
 * layer's post-RoPE keys, the statistics KeyTransform::channel_scale is calibrated on.
 * @throw Error(invalid_argument) for an empty token list, or what the model throws.
 */
inline KeySamples collect_key_samples(LlamaModel& model, std::span<const std::int32_t> tokens) {
  kvbits::detail::require(!tokens.empty(), Errc::invalid_argument, "calibration needs at least one token");
  const LlamaConfig& config = model.config();
  CacheOptions options;
  options.layers = config.layers;
  options.kv_heads = config.kv_heads;
  options.head_dim = config.head_dim();
  options.capacity = tokens.size();
  QuantizedKVCache<StaticPolicy> fp32(options, StaticPolicy{{32, 32}});
  KeyRecordingCache recorder(fp32, config.layers);
  std::vector<float> logits(config.vocab);
  for (std::size_t position = 0; position < tokens.size(); ++position) {
    model.forward(tokens[position], position, recorder, logits);
  }
  return recorder.keys();
}

}  // namespace kvbits::model
