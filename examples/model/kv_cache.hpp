// SPDX-License-Identifier: MIT
#pragma once

#include <concepts>
#include <cstddef>
#include <span>

#include "kvbits/core/decision.hpp"

namespace kvbits::model {

/**
 * What the transformer needs from a KV cache: it hands every layer's post-RoPE key and value
 * of each new token to `append` and reads attention back through `attend`; the model itself
 * never keeps K or V. Both kvbits::QuantizedKVCache and the FP32 test oracle satisfy this.
 *
 * - `append(layer, k, v, info)`: k, v are [kv_heads][head_dim].
 * - `attend(layer, q, out)`: q, out are [heads][head_dim]; softmax(q·K / sqrt(head_dim)) · V
 *   over every token appended to `layer`, query head h reading kv head h / (heads / kv_heads).
 * - `size(layer)`: tokens stored for `layer`.
 */
template <class C>
concept AttentionCache = requires(C& cache, const C& view, std::size_t layer, std::span<const float> in,
                                  std::span<float> out, const TokenInfo& info) {
  cache.append(layer, in, in, info);
  view.attend(layer, in, out);
  { view.size(layer) } -> std::convertible_to<std::size_t>;
};

}  // namespace kvbits::model
