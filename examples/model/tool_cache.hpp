// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>

#include "kvbits/cache/quantized_kv_cache.hpp"
#include "model/calibration.hpp"
#include "model/llama.hpp"
#include "model/policy_spec.hpp"

namespace kvbits::model {

/// The cache the tools run: any policy a specification can name, behind one type.
using ToolCache = QuantizedKVCache<ToolPolicy>;

/**
 * Builds the cache a policy specification describes, shaped for `config`.
 * @param spec     parsed --policy value
 * @param config   the model the cache serves
 * @param capacity most tokens per layer
 * @param samples  post-RoPE keys to calibrate channel scales on (t=scale); ignored otherwise
 * @throw Error from the cache for options it rejects (e.g. a group size not dividing head_dim),
 *        Error(invalid_argument) when t=scale is asked for without samples.
 */
inline ToolCache make_cache(const PolicySpec& spec, const LlamaConfig& config, std::size_t capacity,
                            const KeySamples* samples = nullptr) {
  ToolCache cache(spec.cache_options(config.layers, config.kv_heads, config.head_dim(), capacity),
                  spec.make_policy());
  if (spec.needs_calibration()) {
    kvbits::detail::require(samples != nullptr && samples->size() == config.layers, Errc::invalid_argument,
                            "policy '" + spec.text + "': t=scale needs calibration keys");
    for (std::size_t layer = 0; layer < config.layers; ++layer) {
      cache.calibrate_key_scales(layer, (*samples)[layer]);
    }
  }
  return cache;
}

}  // namespace kvbits::model
