// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "kvbits/cache/options.hpp"
#include "kvbits/cache/quantized_kv_cache.hpp"
#include "kvbits/codec/format.hpp"
#include "kvbits/core/error.hpp"
#include "kvbits/policy/static_policy.hpp"
#include "model/calibration.hpp"

namespace kvbits::learn {

/**
 * Fake quantisation through the cache itself: a token's key and value rows come back as the
 * kvbits cache stores them at a width, with the cache's group size, scheme and key transform
 * (channel scales calibrated as the tools calibrate them). One single-token QuantizedKVCache per
 * width stores the rows (decided on insert) and read_token decodes them, so the damage a
 * labelling run measures is the damage of exactly the bytes the cache would keep.
 */
class WidthQuantizer {
 public:
  /**
   * @param options the cache options of the policy being labelled (group size, scheme,
   *                transform; its window, sinks and capacity are replaced)
   * @param widths  the widths to quantise to
   * @param samples calibration keys when the key transform is channel_scale, else ignored
   * @throw Error from the cache for options it rejects; Error(invalid_argument) for a
   *        channel_scale transform without samples.
   */
  WidthQuantizer(CacheOptions options, std::span<const int> widths, const model::KeySamples* samples) {
    options.capacity = 1;
    options.residual_window = 0;
    options.sink_tokens = 0;
    const bool scaled = options.key.transform == KeyTransform::channel_scale;
    kvbits::detail::require(!scaled || (samples != nullptr && samples->size() == options.layers),
                            Errc::invalid_argument, "t=scale needs calibration keys for every layer");
    for (const int bits : widths) {
      caches_.emplace_back(options, StaticPolicy{{bits, bits}});
      if (!scaled) continue;
      for (std::size_t layer = 0; layer < options.layers; ++layer) {
        caches_.back().calibrate_key_scales(layer, (*samples)[layer]);
      }
    }
  }

  /**
   * k_out, v_out <- k, v ([kv_heads][head_dim]) as the cache stores them at widths[width].
   * @param layer the layer the rows belong to (its key scales apply)
   */
  void quantize(std::size_t width, std::size_t layer, std::span<const float> k, std::span<const float> v,
                std::span<float> k_out, std::span<float> v_out) {
    QuantizedKVCache<StaticPolicy>& cache = caches_.at(width);
    cache.append(layer, k, v);
    cache.read_token(layer, 0, k_out, v_out);
    cache.clear();
  }

 private:
  std::vector<QuantizedKVCache<StaticPolicy>> caches_;  // [widths] one token of capacity
};

}  // namespace kvbits::learn
