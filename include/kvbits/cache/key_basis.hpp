// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "kvbits/cache/options.hpp"
#include "kvbits/cache/transform.hpp"
#include "kvbits/codec/backend.hpp"
#include "kvbits/core/error.hpp"
#include "kvbits/core/finite.hpp"

namespace kvbits::detail {

/**
 * The basis K and V are stored in (KeyTransform) and the per-layer channel
 * scales of KeyTransform::channel_scale: moves vectors between the caller's
 * basis and the stored one, and queries into the keys' stored basis.
 */
class KeyBasis {
 public:
  void configure(const CacheOptions& options) {
    key_ = options.key.transform;
    value_ = options.value.transform;
    kv_heads_ = options.kv_heads;
    head_dim_ = options.head_dim;
    scales_.assign(options.layers, std::vector<float>(options.kv_heads * options.head_dim, 1.0f));
  }

  /// out [kv_heads][head_dim] <- k in the stored basis of `layer`.
  void key_to_stored(std::size_t layer, const float* k, float* out) const noexcept {
    const std::size_t d = head_dim_;
    std::memcpy(out, k, kv_heads_ * d * sizeof(float));
    for (std::size_t g = 0; g < kv_heads_; ++g) {
      if (key_ == KeyTransform::hadamard) hadamard_in_place(out + g * d, d);
      if (key_ == KeyTransform::channel_scale) {
        unscale_channels(out + g * d, scales_[layer].data() + g * d, d);
      }
    }
  }

  /// out [kv_heads][head_dim] <- v in the stored basis.
  void value_to_stored(const float* v, float* out) const noexcept {
    const std::size_t d = head_dim_;
    std::memcpy(out, v, kv_heads_ * d * sizeof(float));
    if (value_ != KeyTransform::hadamard) return;
    for (std::size_t g = 0; g < kv_heads_; ++g) hadamard_in_place(out + g * d, d);
  }

  /// One query head reading kv head g, in place: into the keys' stored basis.
  void query_to_stored(std::size_t layer, std::size_t g, float* query) const noexcept {
    if (key_ == KeyTransform::hadamard) hadamard_in_place(query, head_dim_);
    if (key_ == KeyTransform::channel_scale) {
      scale_channels(query, scales_[layer].data() + g * head_dim_, head_dim_);
    }
  }

  /// One attention output head, in place: from the values' stored basis to the caller's.
  void output_to_caller(float* out) const noexcept {
    if (value_ == KeyTransform::hadamard) hadamard_in_place(out, head_dim_);
  }

  /// Stored k, v [kv_heads][head_dim] of `layer`, in place: back to the caller's basis.
  void token_to_caller(std::size_t layer, float* k, float* v) const noexcept {
    const std::size_t d = head_dim_;
    for (std::size_t g = 0; g < kv_heads_; ++g) {
      if (key_ == KeyTransform::hadamard) hadamard_in_place(k + g * d, d);
      if (key_ == KeyTransform::channel_scale) scale_channels(k + g * d, scales_[layer].data() + g * d, d);
      output_to_caller(v + g * d);
    }
  }

  /// @return the channel_scale divisors of `layer`: [kv_heads][head_dim].
  [[nodiscard]] std::span<const float> scales(std::size_t layer) const noexcept { return scales_[layer]; }

  /**
   * Sets a layer's channel_scale divisors.
   * @param layer_empty whether the layer holds no tokens (scales change what stored keys mean).
   * @throws Error(unsupported | invalid_argument | shape_mismatch | non_finite_input); unchanged then.
   */
  void set_scales(std::size_t layer, std::span<const float> scales, bool layer_empty) {
    require_lazy(key_ == KeyTransform::channel_scale, Errc::unsupported,
                 [] { return std::string("key scales need key.transform = channel_scale"); });
    require_lazy(layer_empty, Errc::invalid_argument, [&] {
      return std::string("set key scales of layer " + std::to_string(layer) +
                         " before appending tokens to it");
    });
    require_length(scales.size(), kv_heads_ * head_dim_, "key scales [kv_heads][head_dim]");
    require_finite(scales, "key scales");
    for (std::size_t i = 0; i < scales.size(); ++i) {
      require_lazy(scales[i] > 0.0f, Errc::invalid_argument, [&] {
        return std::string("key scale " + std::to_string(i) + " is " + std::to_string(scales[i]) +
                           ", must be > 0");
      });
    }
    scales_[layer].assign(scales.begin(), scales.end());
  }

  /**
   * Sets s_gc to the power of two at or above max |k_gc| over the samples.
   * @param sample_keys [tokens][kv_heads][head_dim].
   * @throws as set_scales, plus Error(shape_mismatch | non_finite_input) for the samples.
   */
  void calibrate(std::size_t layer, std::span<const float> sample_keys, bool layer_empty) {
    const std::size_t width = kv_heads_ * head_dim_;
    require_lazy(!sample_keys.empty() && sample_keys.size() % width == 0, Errc::shape_mismatch, [&] {
      return std::string(
          "sample keys hold " + std::to_string(sample_keys.size()) +
          " elements, expected a positive multiple of kv_heads * head_dim = " + std::to_string(width));
    });
    require_finite(sample_keys, "sample keys");
    std::vector<float> absmax(width, 0.0f);
    for (std::size_t i = 0; i < sample_keys.size(); ++i) {
      absmax[i % width] = std::max(absmax[i % width], std::fabs(sample_keys[i]));
    }
    for (float& value : absmax) value = power_of_two_scale(value);
    set_scales(layer, absmax, layer_empty);
  }

  /**
   * Sets a layer's channel_scale divisors as a cache file recorded them, whatever the transform
   * (they are all 1 unless key.transform is channel_scale).
   * @param scales [kv_heads][head_dim], finite and > 0 (checked by the caller).
   */
  void restore_scales(std::size_t layer, std::span<const float> scales) {
    scales_[layer].assign(scales.begin(), scales.end());
  }

 private:
  KeyTransform key_ = KeyTransform::none;
  KeyTransform value_ = KeyTransform::none;
  std::size_t kv_heads_ = 1;
  std::size_t head_dim_ = 8;
  std::vector<std::vector<float>> scales_;  // [layers][kv_heads][head_dim] channel_scale divisors
};

}  // namespace kvbits::detail
