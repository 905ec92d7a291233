// SPDX-License-Identifier: MIT
#pragma once

#include "kvbits/core/simd_headers.hpp"

#include "kvbits/cache/softmax.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "kvbits/cache/memory_report.hpp"
#include "kvbits/cache/options.hpp"
#include "kvbits/cache/paged_stream.hpp"
#include "kvbits/cache/transform.hpp"
#include "kvbits/codec/backend.hpp"
#include "kvbits/codec/default_backend.hpp"
#include "kvbits/codec/format.hpp"
#include "kvbits/core/bit_width.hpp"
#include "kvbits/core/concepts.hpp"
#include "kvbits/core/decision.hpp"
#include "kvbits/core/error.hpp"
#include "kvbits/core/finite.hpp"

namespace kvbits {
namespace detail {

/// Streams per layer: one per (key bits, value bits) pair, then the float sink/window area.
inline constexpr std::size_t kPairStreams = kSupportedBits.size() * kSupportedBits.size();
inline constexpr std::size_t kResidualStream = kPairStreams;
inline constexpr std::size_t kStreamCount = kPairStreams + 1;

/// Bytes of one kv head's key (or value) rows in a page; sized so that a page's
/// rows stay in L1/L2 while every query head of a GQA group reads them.
inline constexpr std::size_t kPagePlaneBytes = 16384;

/// Position of a supported width in kSupportedBits.
constexpr std::size_t bits_index(int bits) noexcept {
  for (std::size_t i = 0; i < kSupportedBits.size(); ++i) {
    if (kSupportedBits[i] == bits) return i;
  }
  return 0;
}

/// Stream holding tokens decided as `bits`.
constexpr std::size_t pair_stream(const BitDecision& bits) noexcept {
  return bits_index(bits.key_bits) * kSupportedBits.size() + bits_index(bits.value_bits);
}

/// Storage widths of a stream (the residual area stores floats).
constexpr BitDecision stream_bits(std::size_t stream) noexcept {
  if (stream == kResidualStream) return {32, 32};
  return {kSupportedBits[stream / kSupportedBits.size()], kSupportedBits[stream % kSupportedBits.size()]};
}

/// Slots per page for rows of `widest_row` bytes: about kPagePlaneBytes per head plane.
inline std::size_t page_tokens_for(std::size_t widest_row, std::size_t capacity) noexcept {
  std::size_t tokens = std::clamp<std::size_t>(kPagePlaneBytes / widest_row, 16, 1024);
  tokens -= tokens % 16;
  const std::size_t capacity_rounded = (capacity + 15) / 16 * 16;
  return std::min(tokens, capacity_rounded);
}

}  // namespace detail

/**
 * A per-token mixed-precision KV cache with fused decode attention.
 *
 * Every layer stores its tokens in streams: one append-only paged stream per
 * (key bits, value bits) pair plus a float area for the first `sink_tokens`
 * tokens and the `residual_window` most recent ones. A token index maps each
 * token to its (stream, slot). The policy decides a token's precision when it
 * leaves the residual window (on insert when the window is 0). attend()
 * streams every non-empty stream page by page through Backend::dot_rows and
 * Backend::axpy_rows and merges the pieces with an online softmax.
 * See docs/design.md for the layout and the guarantees.
 *
 * Thread safety: const member functions share mutable scratch, so one cache
 * object must not run attend() (or any other member) from two threads at
 * once; distinct caches are independent.
 *
 * @tparam P the precision policy (see the Policy concept).
 * @tparam B the codec backend (see the Backend concept).
 */
template <Policy P, Backend B = DefaultBackend>
class QuantizedKVCache {
 public:
  using policy_type = P;
  using backend_type = B;

  /**
   * Validates `options` and allocates the token index, the float sink/window
   * area and all scratch; quantized pages are allocated as streams grow.
   * @param options shape and codec configuration; @param policy decides token precisions.
   * @throws Error(invalid_argument) or Error(unsupported) naming the offending option.
   */
  explicit QuantizedKVCache(const CacheOptions& options, P policy = P{})
      : options_(options), policy_(std::move(policy)) {
    detail::validate_cache_options(options_);
    const std::size_t d = options_.head_dim;
    const std::size_t width = options_.kv_heads * d;
    const std::size_t alignment = std::max<std::size_t>(64, B::alignment());
    const std::size_t residual = options_.residual_window + options_.sink_tokens;
    layers_.resize(options_.layers);
    for (Layer& layer : layers_) {
      for (std::size_t s = 0; s < detail::kPairStreams; ++s) {
        const BitDecision bits = detail::stream_bits(s);
        const QuantFormat key = key_format(bits.key_bits);
        const QuantFormat value = value_format(bits.value_bits);
        const std::size_t widest = std::max(packed_size(key, d), packed_size(value, d));
        layer.streams[s].configure(key, value, d, options_.kv_heads,
                                   detail::page_tokens_for(widest, options_.capacity), alignment);
      }
      detail::PagedStream& area = layer.streams[detail::kResidualStream];
      area.configure(key_format(32), value_format(32), d, options_.kv_heads,
                     std::max<std::size_t>(residual, 1), alignment);
      if (residual > 0) area.reserve_one();  // the whole float area, once
      layer.index.reserve(options_.capacity);
      layer.window.resize(options_.residual_window);
      layer.key_scales.assign(width, 1.0f);
    }
    std::size_t widest_page = 0;
    for (std::size_t s = 0; s < detail::kStreamCount; ++s) {
      widest_page = std::max(widest_page, layers_[0].streams[s].page_tokens());
    }
    key_work_.resize(width);
    value_work_.resize(width);
    decoded_key_.resize(width);
    decoded_value_.resize(width);
    packed_key_.resize(width * sizeof(float));
    packed_value_.resize(width * sizeof(float));
    scratch_.scores.resize(widest_page);
  }

  /// @return the options the cache was built with.
  [[nodiscard]] const CacheOptions& options() const noexcept { return options_; }

  /// @return the policy (e.g. to read its statistics).
  [[nodiscard]] const P& policy() const noexcept { return policy_; }
  /// @return the policy, to adjust it between steps.
  [[nodiscard]] P& policy() noexcept { return policy_; }

  /// @return tokens stored in `layer`. @throws Error(invalid_argument) for a bad layer.
  [[nodiscard]] std::size_t size(std::size_t layer) const {
    check_layer(layer);
    return layers_[layer].index.size();
  }

  /**
   * Stores one token's key and value for `layer`.
   *
   * The first `sink_tokens` tokens and the newest `residual_window` tokens are
   * kept as float; when a token leaves the window the policy receives its
   * TokenInfo (as appended, with features possibly updated by set_features)
   * and the token is quantized to the decided widths. With residual_window 0
   * the policy decides this token now.
   *
   * @param layer layer index; @param k, v [kv_heads][head_dim], post-RoPE;
   * @param info position, token id and features of the token (`info.layer` is
   *        replaced by `layer`).
   * @throws Error(shape_mismatch | non_finite_input | capacity_exhausted |
   *         invalid_argument) leaving the cache unchanged; an exception from
   *         the policy propagates with the same guarantee.
   */
  void append(std::size_t layer, std::span<const float> k, std::span<const float> v,
              const TokenInfo& info = {}) {
    check_layer(layer);
    check_token_vectors(k, v);
    Layer& state = layers_[layer];
    const std::size_t token = state.index.size();
    detail::require_lazy(token < options_.capacity, Errc::capacity_exhausted, [&] {
      return std::string("layer " + std::to_string(layer) + " already holds its capacity of " +
                         std::to_string(options_.capacity) + " tokens");
    });
    prepare_key(state, k.data(), key_work_.data());
    prepare_value(v.data(), value_work_.data());
    detail::require_finite(key_work_, "key after its transform");
    detail::require_finite(value_work_, "value after its transform");
    TokenInfo current = info;
    current.layer = layer;

    const std::size_t sinks = options_.sink_tokens;
    const std::size_t window = options_.residual_window;
    if (token < sinks) {
      push(state, detail::kResidualStream, token, as_bytes(key_work_), as_bytes(value_work_));
      return;
    }
    if (window == 0) {
      const BitDecision bits = checked_decide(current);
      const std::size_t stream = detail::pair_stream(bits);
      encode_rows(key_work_.data(), state.streams[stream].key_format(), packed_key_.data());
      encode_rows(value_work_.data(), state.streams[stream].value_format(), packed_value_.data());
      state.streams[stream].reserve_one();
      push(state, stream, token, packed_key_.data(), packed_value_.data());
      return;
    }

    WindowInfo& ring = state.window[(token - sinks) % window];
    const bool evicting = token - sinks >= window;
    std::size_t target = detail::kResidualStream;
    if (evicting) {
      const std::size_t leaving = token - window;
      const TokenInfo leaving_info{layer, ring.position, ring.token_id, ring.features};
      const BitDecision bits = checked_decide(leaving_info);
      target = detail::pair_stream(bits);
      repack(state, leaving, bits);
      state.streams[target].reserve_one();
    }
    // The float area holds sinks + window exactly, so an evicting append reuses
    // the leaving token's slot and a non-evicting one finds a free slot.
    ring.features.reserve(current.features.size());
    // Nothing below allocates or throws.
    if (evicting) relocate(state, token - window, target);
    push(state, detail::kResidualStream, token, as_bytes(key_work_), as_bytes(value_work_));
    ring.position = current.position;
    ring.token_id = current.token_id;
    ring.features.assign(current.features.begin(), current.features.end());
  }

  /**
   * One decode step of attention over every token of `layer`:
   * out_h = softmax(q_h . K_g^T / sqrt(head_dim)) . V_g with g = h / (n_heads / kv_heads).
   * Allocation-free once scratch has grown to the largest n_heads (and, with
   * `received`, to the capacity). Not safe to call concurrently on one object.
   *
   * @param q [n_heads][head_dim], n_heads a positive multiple of kv_heads;
   * @param out [n_heads][head_dim], overwritten;
   * @param received empty, or [size(layer)]: overwritten with each token's
   *        attention probability summed over the n_heads query heads (sums to n_heads).
   * @throws Error(invalid_argument) for a bad or empty layer,
   *         Error(shape_mismatch) for wrong span sizes, Error(non_finite_input)
   *         for a NaN/Inf query; nothing is written then.
   */
  void attend(std::size_t layer, std::span<const float> q, std::span<float> out,
              std::span<float> received = {}) const {
    check_layer(layer);
    const Layer& state = layers_[layer];
    const std::size_t tokens = state.index.size();
    detail::require_lazy(tokens > 0, Errc::invalid_argument, [&] {
      return std::string("attend on layer " + std::to_string(layer) + ", which holds no tokens");
    });
    const std::size_t heads = check_query(q, out);
    detail::require_lazy(received.empty() || received.size() == tokens, Errc::shape_mismatch, [&] {
      return std::string("received holds " + std::to_string(received.size()) +
                         " elements, expected 0 or size(layer) = " + std::to_string(tokens));
    });
    detail::require_finite(q, "query");
    attend_unchecked(state, q.data(), heads, out.data(), received);
  }

  /**
   * Causal prefill: appends T tokens and computes, for each token t, attention
   * of q[t] over every token before it and itself. Equal to T calls of
   * append(layer, k[t], v[t], infos[t]) followed by attend(layer, q[t], out[t]).
   *
   * @param k, v [T][kv_heads][head_dim]; @param q, out [T][n_heads][head_dim];
   * @param infos empty (positions then count from size(layer), token ids -1) or [T].
   * @throws Error(shape_mismatch | non_finite_input | capacity_exhausted |
   *         invalid_argument) before anything is stored. A policy exception
   *         midway leaves the tokens before it appended (basic guarantee).
   */
  void prefill(std::size_t layer, std::span<const float> k, std::span<const float> v,
               std::span<const float> q, std::span<float> out, std::span<const TokenInfo> infos = {}) {
    check_layer(layer);
    const std::size_t width = options_.kv_heads * options_.head_dim;
    detail::require_lazy(!k.empty() && k.size() % width == 0, Errc::shape_mismatch, [&] {
      return std::string(
          "prefill keys hold " + std::to_string(k.size()) +
          " elements, expected a positive multiple of kv_heads * head_dim = " + std::to_string(width));
    });
    const std::size_t steps = k.size() / width;
    detail::require_length(v.size(), k.size(), "prefill values [T][kv_heads][head_dim]");
    detail::require_lazy(q.size() % steps == 0, Errc::shape_mismatch, [&] {
      return std::string("prefill queries hold " + std::to_string(q.size()) +
                         " elements, not a multiple of T = " + std::to_string(steps));
    });
    const std::size_t query_width = q.size() / steps;
    const std::size_t heads = check_query(q.first(query_width), out.first(std::min(out.size(), query_width)));
    detail::require_length(out.size(), q.size(), "prefill output [T][n_heads][head_dim]");
    detail::require_lazy(infos.empty() || infos.size() == steps, Errc::shape_mismatch, [&] {
      return std::string("prefill infos hold " + std::to_string(infos.size()) +
                         " entries, expected 0 or T = " + std::to_string(steps));
    });
    detail::require_finite(k, "prefill keys");
    detail::require_finite(v, "prefill values");
    detail::require_finite(q, "prefill queries");
    const std::size_t start = layers_[layer].index.size();
    detail::require_lazy(steps <= options_.capacity - start, Errc::capacity_exhausted, [&] {
      return std::string("prefill of " + std::to_string(steps) + " tokens into layer " +
                         std::to_string(layer) + " holding " + std::to_string(start) +
                         " exceeds the capacity of " + std::to_string(options_.capacity));
    });
    for (std::size_t t = 0; t < steps; ++t) {
      TokenInfo info = infos.empty() ? TokenInfo{layer, start + t, -1, {}} : infos[t];
      append(layer, k.subspan(t * width, width), v.subspan(t * width, width), info);
      attend_unchecked(layers_[layer], q.data() + t * query_width, heads, out.data() + t * query_width, {});
    }
  }

  /**
   * Re-encodes a stored token to fewer bits: its packed data is decoded and
   * re-encoded into the narrower stream (a side whose width is unchanged is
   * copied verbatim), and its old slot is filled by the stream's last token.
   * Equal widths are a no-op.
   * @throws Error(invalid_argument) for a bad layer/token/width, for more bits
   *         than the token has, and for a sink/window token (those get their
   *         width from the policy when they leave the window); cache unchanged.
   */
  void demote(std::size_t layer, std::size_t token, int key_bits, int value_bits) {
    check_token(layer, token);
    detail::require_lazy(
        is_supported_bits(key_bits) && is_supported_bits(value_bits), Errc::invalid_argument, [&] {
          return std::string("demote to key/value bits " + std::to_string(key_bits) + "/" +
                             std::to_string(value_bits) + ": use 2, 3, 4, 5, 6, 8, 16 or 32");
        });
    Layer& state = layers_[layer];
    const std::size_t stream = state.index[token].stream;
    detail::require_lazy(stream != detail::kResidualStream, Errc::invalid_argument, [&] {
      return std::string(
          "token " + std::to_string(token) + " of layer " + std::to_string(layer) +
          " is in the full-precision sink/window area; its width is decided when it leaves the window");
    });
    const BitDecision now = detail::stream_bits(stream);
    detail::require_lazy(key_bits <= now.key_bits && value_bits <= now.value_bits, Errc::invalid_argument,
                         [&] {
                           return std::string("demote never adds bits: token " + std::to_string(token) +
                                              " has key/value bits " + std::to_string(now.key_bits) + "/" +
                                              std::to_string(now.value_bits) + ", asked for " +
                                              std::to_string(key_bits) + "/" + std::to_string(value_bits));
                         });
    const BitDecision wanted{key_bits, value_bits};
    if (wanted == now) return;
    const std::size_t target = detail::pair_stream(wanted);
    repack(state, token, wanted);
    state.streams[target].reserve_one();
    relocate(state, token, target);
  }

  /// @return the storage widths of a token (32/32 for sink and window tokens).
  [[nodiscard]] BitDecision token_bits(std::size_t layer, std::size_t token) const {
    check_token(layer, token);
    return detail::stream_bits(layers_[layer].index[token].stream);
  }

  /// @return true while the token sits in the float sink/window area (not yet decided).
  [[nodiscard]] bool in_residual(std::size_t layer, std::size_t token) const {
    check_token(layer, token);
    return layers_[layer].index[token].stream == detail::kResidualStream;
  }

  /**
   * Replaces the features a window token will hand to the policy when it
   * leaves the window (features such as attention received become known only
   * after the token has been stored).
   * @throws Error(invalid_argument) unless the token is in the residual window
   *         (sinks are never decided, decided tokens are past it).
   */
  void set_features(std::size_t layer, std::size_t token, std::span<const float> features) {
    check_token(layer, token);
    detail::require_lazy(
        options_.residual_window > 0 && token >= options_.sink_tokens &&
            layers_[layer].index.size() - token <= options_.residual_window,
        Errc::invalid_argument, [&] {
          return std::string("token " + std::to_string(token) + " of layer " + std::to_string(layer) +
                             " is not in the residual window; only window tokens await a decision");
        });
    WindowInfo& ring = layers_[layer].window[(token - options_.sink_tokens) % options_.residual_window];
    std::vector<float> copy(features.begin(), features.end());
    ring.features.swap(copy);
  }

  /**
   * Decodes a stored token back to the caller's basis (transforms undone).
   * @param k_out, v_out [kv_heads][head_dim].
   */
  void read_token(std::size_t layer, std::size_t token, std::span<float> k_out,
                  std::span<float> v_out) const {
    check_token(layer, token);
    const std::size_t width = options_.kv_heads * options_.head_dim;
    detail::require_length(k_out.size(), width, "key output [kv_heads][head_dim]");
    detail::require_length(v_out.size(), width, "value output [kv_heads][head_dim]");
    const Layer& state = layers_[layer];
    decode_rows(state, token, k_out.data(), v_out.data());
    const std::size_t d = options_.head_dim;
    for (std::size_t g = 0; g < options_.kv_heads; ++g) {
      float* key = k_out.data() + g * d;
      if (options_.key.transform == KeyTransform::hadamard) detail::hadamard_in_place(key, d);
      if (options_.key.transform == KeyTransform::channel_scale) {
        detail::scale_channels(key, state.key_scales.data() + g * d, d);
      }
      if (options_.value.transform == KeyTransform::hadamard)
        detail::hadamard_in_place(v_out.data() + g * d, d);
    }
  }

  /**
   * Sets the channel_scale divisors of a layer's keys: channel c of kv head g
   * is stored as k_c / s_gc and the query multiplied by s_gc.
   * @param scales [kv_heads][head_dim], finite and > 0 (powers of two keep
   *        the transform exact in float).
   * @throws Error(unsupported) unless key.transform is channel_scale,
   *         Error(invalid_argument) when the layer already holds tokens (they
   *         were stored with the old scales) or a scale is not positive.
   */
  void set_key_scales(std::size_t layer, std::span<const float> scales) {
    check_layer(layer);
    detail::require_lazy(options_.key.transform == KeyTransform::channel_scale, Errc::unsupported,
                         [&] { return std::string("key scales need key.transform = channel_scale"); });
    detail::require_lazy(layers_[layer].index.empty(), Errc::invalid_argument, [&] {
      return std::string("set key scales of layer " + std::to_string(layer) +
                         " before appending tokens to it");
    });
    detail::require_length(scales.size(), options_.kv_heads * options_.head_dim,
                           "key scales [kv_heads][head_dim]");
    detail::require_finite(scales, "key scales");
    for (std::size_t i = 0; i < scales.size(); ++i) {
      detail::require_lazy(scales[i] > 0.0f, Errc::invalid_argument, [&] {
        return std::string("key scale " + std::to_string(i) + " is " + std::to_string(scales[i]) +
                           ", must be > 0");
      });
    }
    layers_[layer].key_scales.assign(scales.begin(), scales.end());
  }

  /**
   * Calibration pass for KeyTransform::channel_scale: sets s_gc to the power
   * of two at or above the largest |k_gc| over the sample keys (1 for an
   * all-zero channel), so every stored channel lies in [-1, 1] and an outlier
   * channel no longer sets the quantization step of the others.
   * @param sample_keys [tokens][kv_heads][head_dim], post-RoPE keys of the layer.
   * @throws as set_key_scales, plus Error(shape_mismatch | non_finite_input) for the samples.
   */
  void calibrate_key_scales(std::size_t layer, std::span<const float> sample_keys) {
    check_layer(layer);
    const std::size_t width = options_.kv_heads * options_.head_dim;
    detail::require_lazy(!sample_keys.empty() && sample_keys.size() % width == 0, Errc::shape_mismatch, [&] {
      return std::string(
          "sample keys hold " + std::to_string(sample_keys.size()) +
          " elements, expected a positive multiple of kv_heads * head_dim = " + std::to_string(width));
    });
    detail::require_finite(sample_keys, "sample keys");
    std::vector<float> absmax(width, 0.0f);
    for (std::size_t i = 0; i < sample_keys.size(); ++i) {
      absmax[i % width] = std::max(absmax[i % width], std::fabs(sample_keys[i]));
    }
    for (float& value : absmax) value = detail::power_of_two_scale(value);
    set_key_scales(layer, absmax);
  }

  /// @return the channel_scale divisors of `layer`: [kv_heads][head_dim] (all 1 unless set).
  [[nodiscard]] std::span<const float> key_scales(std::size_t layer) const {
    check_layer(layer);
    return layers_[layer].key_scales;
  }

  /// Drops every token of every layer; keeps key scales and a spare page per stream.
  void clear() noexcept {
    for (Layer& state : layers_) {
      for (detail::PagedStream& stream : state.streams) stream.clear();
      state.index.clear();
      for (WindowInfo& entry : state.window) entry.features.clear();
    }
  }

  /// @return bytes, average bits per element and width histograms, per layer and in total.
  [[nodiscard]] MemoryReport memory() const {
    MemoryReport report;
    report.layers.reserve(layers_.size());
    const std::size_t d = options_.head_dim;
    const std::size_t kv_heads = options_.kv_heads;
    for (const Layer& state : layers_) {
      LayerMemory m;
      m.tokens = state.index.size();
      for (std::size_t s = 0; s < detail::kStreamCount; ++s) {
        const detail::PagedStream& stream = state.streams[s];
        m.reserved_bytes += stream.allocated_bytes();
        const std::size_t count = stream.size();
        m.index_bytes += count * sizeof(std::uint32_t);
        if (count == 0) continue;
        const BitDecision bits = detail::stream_bits(s);
        m.histogram.key[detail::bits_index(bits.key_bits)] += count;
        m.histogram.value[detail::bits_index(bits.value_bits)] += count;
        if (s == detail::kResidualStream) {
          m.residual_tokens += count;
          m.residual_bytes += count * kv_heads * (stream.key_row() + stream.value_row());
          continue;
        }
        const std::size_t key_meta = row_metadata_bytes(stream.key_format());
        const std::size_t value_meta = row_metadata_bytes(stream.value_format());
        m.metadata_bytes += count * kv_heads * (key_meta + value_meta);
        m.code_bytes += count * kv_heads * (stream.key_row() - key_meta + stream.value_row() - value_meta);
      }
      m.index_bytes += m.tokens * sizeof(TokenSlot);
      m.reserved_bytes += state.index.capacity() * sizeof(TokenSlot);
      for (std::size_t t = options_.sink_tokens; t < m.tokens; ++t) {
        if (state.index[t].stream != detail::kResidualStream) continue;
        m.index_bytes += sizeof(WindowInfo) +
                         state.window[(t - options_.sink_tokens) % options_.residual_window].features.size() *
                             sizeof(float);
      }
      for (const WindowInfo& entry : state.window) {
        m.reserved_bytes += sizeof(WindowInfo) + entry.features.capacity() * sizeof(float);
      }
      m.bytes = m.code_bytes + m.metadata_bytes + m.residual_bytes + m.index_bytes;
      m.average_bits = average_bits(m, d * kv_heads);
      accumulate(report.total, m);
      report.layers.push_back(m);
    }
    report.total.average_bits = average_bits(report.total, d * kv_heads);
    return report;
  }

 private:
  struct TokenSlot {
    std::uint32_t stream;  // index into Layer::streams
    std::uint32_t slot;    // slot within that stream
  };

  // What the policy will see for a window token when it leaves the window.
  struct WindowInfo {
    std::size_t position = 0;
    std::int32_t token_id = -1;
    std::vector<float> features;  // [feature_count], a copy of the caller's span
  };

  struct Layer {
    std::array<detail::PagedStream, detail::kStreamCount> streams;  // pair streams, then the float area
    std::vector<TokenSlot> index;    // [size]: token -> (stream, slot); capacity reserved
    std::vector<WindowInfo> window;  // [residual_window] ring: token t at (t - sink_tokens) % R
    std::vector<float> key_scales;   // [kv_heads][head_dim] channel_scale divisors
  };

  // Attention working memory; grows to its steady-state size, then never allocates.
  struct Scratch {
    std::vector<float> query;        // [n_heads][head_dim] transformed, pre-scaled queries
    std::vector<float> accumulator;  // [n_heads][head_dim] un-normalised outputs
    std::vector<float> running_max;  // [n_heads]
    std::vector<float> running_sum;  // [n_heads]
    std::vector<float> scores;       // [widest page] scores, then weights, of one page
    std::vector<float> saved;        // [n_heads][size] raw scores in stream order (received only)
    std::vector<float> probability;  // [size] probabilities in stream order (received only)
  };

  static const std::uint8_t* as_bytes(const std::vector<float>& x) noexcept {
    return reinterpret_cast<const std::uint8_t*>(x.data());
  }

  // Bytes of group metadata in one packed head vector.
  std::size_t row_metadata_bytes(const QuantFormat& format) const noexcept {
    if (!is_grouped_bits(format.bits)) return 0;
    const std::size_t d = options_.head_dim;
    return d / effective_group_size(format, d) * metadata_bytes(format.scheme);
  }

  QuantFormat key_format(int bits) const noexcept {
    return {bits, options_.key.group_size, options_.key.scheme};
  }
  QuantFormat value_format(int bits) const noexcept {
    return {bits, options_.value.group_size, options_.value.scheme};
  }

  void check_layer(std::size_t layer) const {
    detail::require_lazy(layer < layers_.size(), Errc::invalid_argument, [&] {
      return std::string("layer " + std::to_string(layer) + " is out of range; the cache has " +
                         std::to_string(layers_.size()) + " layers");
    });
  }

  void check_token(std::size_t layer, std::size_t token) const {
    check_layer(layer);
    detail::require_lazy(token < layers_[layer].index.size(), Errc::invalid_argument, [&] {
      return std::string("token " + std::to_string(token) + " is out of range; layer " +
                         std::to_string(layer) + " holds " + std::to_string(layers_[layer].index.size()) +
                         " tokens");
    });
  }

  void check_token_vectors(std::span<const float> k, std::span<const float> v) const {
    const std::size_t width = options_.kv_heads * options_.head_dim;
    detail::require_length(k.size(), width, "key [kv_heads][head_dim]");
    detail::require_length(v.size(), width, "value [kv_heads][head_dim]");
    detail::require_finite(k, "key");
    detail::require_finite(v, "value");
  }

  // @return n_heads after checking q and out are [n_heads][head_dim] with kv_heads | n_heads.
  std::size_t check_query(std::span<const float> q, std::span<float> out) const {
    const std::size_t d = options_.head_dim;
    const std::size_t heads = q.size() / d;
    detail::require_lazy(
        q.size() % d == 0 && heads > 0 && heads % options_.kv_heads == 0, Errc::shape_mismatch, [&] {
          return std::string(
              "query holds " + std::to_string(q.size()) +
              " elements, expected n_heads * head_dim with n_heads a positive multiple of kv_heads = " +
              std::to_string(options_.kv_heads) + " (head_dim " + std::to_string(d) + ")");
        });
    detail::require_length(out.size(), q.size(), "attention output [n_heads][head_dim]");
    return heads;
  }

  BitDecision checked_decide(const TokenInfo& info) {
    const BitDecision bits = policy_.decide(info);
    detail::require_lazy(
        is_supported_bits(bits.key_bits) && is_supported_bits(bits.value_bits), Errc::invalid_argument, [&] {
          return std::string("the policy returned key/value bits " + std::to_string(bits.key_bits) + "/" +
                             std::to_string(bits.value_bits) +
                             "; a policy must return 2, 3, 4, 5, 6, 8, 16 or 32");
        });
    return bits;
  }

  // Stored basis of a key: out = transform(k), all kv heads.
  void prepare_key(const Layer& state, const float* k, float* out) const noexcept {
    const std::size_t d = options_.head_dim;
    std::memcpy(out, k, options_.kv_heads * d * sizeof(float));
    for (std::size_t g = 0; g < options_.kv_heads; ++g) {
      if (options_.key.transform == KeyTransform::hadamard) detail::hadamard_in_place(out + g * d, d);
      if (options_.key.transform == KeyTransform::channel_scale) {
        detail::unscale_channels(out + g * d, state.key_scales.data() + g * d, d);
      }
    }
  }

  void prepare_value(const float* v, float* out) const noexcept {
    const std::size_t d = options_.head_dim;
    std::memcpy(out, v, options_.kv_heads * d * sizeof(float));
    if (options_.value.transform != KeyTransform::hadamard) return;
    for (std::size_t g = 0; g < options_.kv_heads; ++g) detail::hadamard_in_place(out + g * d, d);
  }

  // out [kv_heads][packed row] <- encode(x [kv_heads][head_dim]).
  void encode_rows(const float* x, const QuantFormat& format, std::uint8_t* out) const {
    const std::size_t d = options_.head_dim;
    const std::size_t row = packed_size(format, d);
    for (std::size_t g = 0; g < options_.kv_heads; ++g) {
      B::encode(format, std::span<const float>(x + g * d, d), std::span<std::uint8_t>(out + g * row, row));
    }
  }

  // k_out, v_out [kv_heads][head_dim] <- the token's stored vectors, in the stored basis.
  void decode_rows(const Layer& state, std::size_t token, float* k_out, float* v_out) const {
    const TokenSlot at = state.index[token];
    const detail::PagedStream& stream = state.streams[at.stream];
    const std::size_t d = options_.head_dim;
    for (std::size_t g = 0; g < options_.kv_heads; ++g) {
      B::decode(stream.key_format(),
                std::span<const std::uint8_t>(stream.key_at(at.slot, g), stream.key_row()),
                std::span<float>(k_out + g * d, d));
      B::decode(stream.value_format(),
                std::span<const std::uint8_t>(stream.value_at(at.slot, g), stream.value_row()),
                std::span<float>(v_out + g * d, d));
    }
  }

  // packed_key_/packed_value_ <- the token's rows in `bits`; a side whose width
  // is unchanged is copied, not re-quantized, so it loses nothing.
  void repack(const Layer& state, std::size_t token, const BitDecision& bits) {
    const TokenSlot at = state.index[token];
    const detail::PagedStream& source = state.streams[at.stream];
    const BitDecision now = detail::stream_bits(at.stream);
    decode_rows(state, token, decoded_key_.data(), decoded_value_.data());
    if (bits.key_bits == now.key_bits && at.stream != detail::kResidualStream) {
      for (std::size_t g = 0; g < options_.kv_heads; ++g) {
        std::memcpy(packed_key_.data() + g * source.key_row(), source.key_at(at.slot, g), source.key_row());
      }
    } else {
      encode_rows(decoded_key_.data(), key_format(bits.key_bits), packed_key_.data());
    }
    if (bits.value_bits == now.value_bits && at.stream != detail::kResidualStream) {
      for (std::size_t g = 0; g < options_.kv_heads; ++g) {
        std::memcpy(packed_value_.data() + g * source.value_row(), source.value_at(at.slot, g),
                    source.value_row());
      }
    } else {
      encode_rows(decoded_value_.data(), value_format(bits.value_bits), packed_value_.data());
    }
  }

  // Appends a token's rows to a stream (space reserved) and indexes it.
  void push(Layer& state, std::size_t stream, std::size_t token, const std::uint8_t* keys,
            const std::uint8_t* values) noexcept {
    const std::size_t slot = state.streams[stream].push(static_cast<std::uint32_t>(token), keys, values);
    state.index.push_back({static_cast<std::uint32_t>(stream), static_cast<std::uint32_t>(slot)});
  }

  // Moves a token to `target` (packed rows in packed_key_/packed_value_, space
  // reserved) and fills its old slot with its stream's last token.
  void relocate(Layer& state, std::size_t token, std::size_t target) noexcept {
    const TokenSlot old = state.index[token];
    const std::size_t slot = state.streams[target].push(static_cast<std::uint32_t>(token), packed_key_.data(),
                                                        packed_value_.data());
    const std::uint32_t moved = state.streams[old.stream].erase(old.slot);
    if (moved != detail::kNoToken) state.index[moved].slot = old.slot;
    state.index[token] = {static_cast<std::uint32_t>(target), static_cast<std::uint32_t>(slot)};
  }

  void grow_scratch(std::size_t heads, bool want_received) const {
    const std::size_t width = heads * options_.head_dim;
    if (scratch_.query.size() < width) {
      scratch_.query.resize(width);
      scratch_.accumulator.resize(width);
      scratch_.running_max.resize(heads);
      scratch_.running_sum.resize(heads);
    }
    if (want_received && scratch_.saved.size() < heads * options_.capacity) {
      scratch_.saved.resize(heads * options_.capacity);
      scratch_.probability.resize(options_.capacity);
    }
  }

  // Inputs checked by the caller. q, out: [heads][head_dim].
  void attend_unchecked(const Layer& state, const float* q, std::size_t heads, float* out,
                        std::span<float> received) const {
    const std::size_t d = options_.head_dim;
    const std::size_t group = heads / options_.kv_heads;
    const std::size_t tokens = state.index.size();
    const bool want_received = !received.empty();
    grow_scratch(heads, want_received);
    Scratch& s = scratch_;

    // Queries move into the keys' stored basis; the softmax scale folds in here.
    const float softmax_scale = 1.0f / std::sqrt(static_cast<float>(d));
    for (std::size_t h = 0; h < heads; ++h) {
      float* query = s.query.data() + h * d;
      std::memcpy(query, q + h * d, d * sizeof(float));
      const std::size_t g = h / group;
      if (options_.key.transform == KeyTransform::hadamard) detail::hadamard_in_place(query, d);
      if (options_.key.transform == KeyTransform::channel_scale) {
        detail::scale_channels(query, state.key_scales.data() + g * d, d);
      }
      detail::scale_in_place(query, d, softmax_scale);
    }
    std::fill_n(s.accumulator.data(), heads * d, 0.0f);
    std::fill_n(s.running_max.data(), heads, -std::numeric_limits<float>::infinity());
    std::fill_n(s.running_sum.data(), heads, 0.0f);

    std::size_t visited = 0;  // stream-order index of the first row of the current page
    for (const detail::PagedStream& stream : state.streams) {
      if (stream.size() == 0) continue;
      const QuantFormat& key_fmt = stream.key_format();
      const QuantFormat& value_fmt = stream.value_format();
      for (std::size_t p = 0; p < stream.page_count(); ++p) {
        const std::size_t rows = stream.rows_in_page(p);
        for (std::size_t g = 0; g < options_.kv_heads; ++g) {
          const std::uint8_t* keys = stream.key_rows(p, g);
          const std::uint8_t* values = stream.value_rows(p, g);
          for (std::size_t h = g * group; h < (g + 1) * group; ++h) {
            float* scores = s.scores.data();
            B::dot_rows(key_fmt, s.query.data() + h * d, d, keys, stream.key_row(), rows, scores);
            if (want_received)
              std::memcpy(s.saved.data() + h * tokens + visited, scores, rows * sizeof(float));
            // Online softmax: rescale the running state when this page raises the max.
            const float page_max = detail::max_of(scores, rows);
            float& running_max = s.running_max[h];
            float* accumulator = s.accumulator.data() + h * d;
            if (page_max > running_max) {
              const float correction = std::exp(running_max - page_max);
              s.running_sum[h] *= correction;
              detail::scale_in_place(accumulator, d, correction);
              running_max = page_max;
            }
            s.running_sum[h] += detail::exp_shift_sum(scores, rows, running_max);
            B::axpy_rows(value_fmt, scores, d, values, stream.value_row(), rows, accumulator);
          }
        }
        visited += rows;
      }
    }

    for (std::size_t h = 0; h < heads; ++h) {
      float* o = out + h * d;
      const float inverse_sum = 1.0f / s.running_sum[h];
      const float* accumulator = s.accumulator.data() + h * d;
      for (std::size_t i = 0; i < d; ++i) o[i] = accumulator[i] * inverse_sum;
      if (options_.value.transform == KeyTransform::hadamard) detail::hadamard_in_place(o, d);
    }
    if (want_received) scatter_received(state, heads, received);
  }

  // received[token] = sum over heads of exp(score - max_h) / sum_h, from the saved scores.
  void scatter_received(const Layer& state, std::size_t heads, std::span<float> received) const {
    Scratch& s = scratch_;
    const std::size_t tokens = state.index.size();
    float* probability = s.probability.data();
    std::fill_n(probability, tokens, 0.0f);
    for (std::size_t h = 0; h < heads; ++h) {
      float* saved = s.saved.data() + h * tokens;
      detail::exp_shift_sum(saved, tokens, s.running_max[h]);
      const float inverse_sum = 1.0f / s.running_sum[h];
      for (std::size_t i = 0; i < tokens; ++i) probability[i] += saved[i] * inverse_sum;
    }
    std::size_t visited = 0;
    for (const detail::PagedStream& stream : state.streams) {
      for (std::uint32_t token : stream.slot_tokens()) received[token] = probability[visited++];
    }
  }

  static double average_bits(const LayerMemory& m, std::size_t elements_per_vector) noexcept {
    const std::size_t elements = m.tokens * elements_per_vector * 2;
    if (elements == 0) return 0.0;
    return 8.0 * static_cast<double>(m.code_bytes + m.metadata_bytes + m.residual_bytes) /
           static_cast<double>(elements);
  }

  static void accumulate(LayerMemory& total, const LayerMemory& m) noexcept {
    total.tokens += m.tokens;
    total.residual_tokens += m.residual_tokens;
    total.code_bytes += m.code_bytes;
    total.metadata_bytes += m.metadata_bytes;
    total.residual_bytes += m.residual_bytes;
    total.index_bytes += m.index_bytes;
    total.bytes += m.bytes;
    total.reserved_bytes += m.reserved_bytes;
    for (std::size_t i = 0; i < kSupportedBits.size(); ++i) {
      total.histogram.key[i] += m.histogram.key[i];
      total.histogram.value[i] += m.histogram.value[i];
    }
  }

  CacheOptions options_;
  P policy_;
  std::vector<Layer> layers_;               // [layers]
  std::vector<float> key_work_;             // [kv_heads][head_dim] key in the stored basis
  std::vector<float> value_work_;           // [kv_heads][head_dim] value in the stored basis
  std::vector<float> decoded_key_;          // [kv_heads][head_dim] a stored key being re-encoded
  std::vector<float> decoded_value_;        // [kv_heads][head_dim] a stored value being re-encoded
  std::vector<std::uint8_t> packed_key_;    // [kv_heads][packed key row] staging for one token
  std::vector<std::uint8_t> packed_value_;  // [kv_heads][packed value row] staging for one token
  mutable Scratch scratch_;
};

}  // namespace kvbits
