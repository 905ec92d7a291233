// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>
#include <string>

#include "kvbits/cache/options.hpp"
#include "kvbits/cache/token_notes.hpp"
#include "kvbits/codec/backend.hpp"
#include "kvbits/core/bit_width.hpp"
#include "kvbits/core/decision.hpp"
#include "kvbits/core/error.hpp"
#include "kvbits/core/finite.hpp"

// The checks of QuantizedKVCache's public entry points; each names the bad value.
namespace kvbits::detail {

/// @throws Error(invalid_argument) unless layer < layers.
inline void require_layer(std::size_t layer, std::size_t layers) {
  require_lazy(layer < layers, Errc::invalid_argument, [&] {
    return std::string("layer " + std::to_string(layer) + " is out of range; the cache has " +
                       std::to_string(layers) + " layers");
  });
}

/// @throws Error(invalid_argument) unless token < size (the tokens of `layer`).
inline void require_token(std::size_t layer, std::size_t token, std::size_t size) {
  require_lazy(token < size, Errc::invalid_argument, [&] {
    return std::string("token " + std::to_string(token) + " is out of range; layer " + std::to_string(layer) +
                       " holds " + std::to_string(size) + " tokens");
  });
}

/// @throws Error(shape_mismatch | non_finite_input) unless k and v are finite [kv_heads][head_dim].
inline void require_token_vectors(const CacheOptions& options, std::span<const float> k,
                                  std::span<const float> v) {
  const std::size_t width = options.kv_heads * options.head_dim;
  require_length(k.size(), width, "key [kv_heads][head_dim]");
  require_length(v.size(), width, "value [kv_heads][head_dim]");
  require_finite(k, "key");
  require_finite(v, "value");
}

/**
 * @return n_heads after checking q and out are [n_heads][head_dim] with kv_heads | n_heads.
 * @throws Error(shape_mismatch).
 */
inline std::size_t require_query(const CacheOptions& options, std::span<const float> q,
                                 std::span<float> out) {
  const std::size_t d = options.head_dim;
  const std::size_t heads = q.size() / d;
  require_lazy(q.size() % d == 0 && heads > 0 && heads % options.kv_heads == 0, Errc::shape_mismatch, [&] {
    return std::string(
        "query holds " + std::to_string(q.size()) +
        " elements, expected n_heads * head_dim with n_heads a positive multiple of kv_heads = " +
        std::to_string(options.kv_heads) + " (head_dim " + std::to_string(d) + ")");
  });
  require_length(out.size(), q.size(), "attention output [n_heads][head_dim]");
  return heads;
}

/// @throws Error(capacity_exhausted) unless a layer holding `size` tokens has room for one more.
inline void require_room(const CacheOptions& options, std::size_t layer, std::size_t size) {
  require_lazy(size < options.capacity, Errc::capacity_exhausted, [&] {
    return std::string("layer " + std::to_string(layer) + " already holds its capacity of " +
                       std::to_string(options.capacity) + " tokens");
  });
}

/**
 * Checks an attend on a layer holding `tokens` tokens.
 * @return n_heads. @throws Error(invalid_argument | shape_mismatch | non_finite_input).
 */
inline std::size_t require_attend(const CacheOptions& options, std::size_t layer, std::size_t tokens,
                                  std::span<const float> q, std::span<float> out, std::span<float> received) {
  require_lazy(tokens > 0, Errc::invalid_argument, [&] {
    return std::string("attend on layer " + std::to_string(layer) + ", which holds no tokens");
  });
  const std::size_t heads = require_query(options, q, out);
  require_lazy(received.empty() || received.size() == tokens, Errc::shape_mismatch, [&] {
    return std::string("received holds " + std::to_string(received.size()) +
                       " elements, expected 0 or size(layer) = " + std::to_string(tokens));
  });
  require_finite(q, "query");
  return heads;
}

/// @throws Error(invalid_argument) unless the policy may still be asked about the token.
inline void require_consultable(std::size_t layer, std::size_t token, bool consultable) {
  require_lazy(consultable, Errc::invalid_argument, [&] {
    return std::string("token " + std::to_string(token) + " of layer " + std::to_string(layer) +
                       " is not in the residual window and not younger than the last decision age;"
                       " only tokens that await a decision take features");
  });
}

/// Shape of a checked prefill.
struct PrefillShape {
  std::size_t steps;        // T
  std::size_t heads;        // n_heads
  std::size_t query_width;  // n_heads * head_dim
};

/**
 * Checks every argument of a prefill into a layer holding `start` tokens.
 * @throws Error(shape_mismatch | non_finite_input | capacity_exhausted) naming the value.
 */
inline PrefillShape require_prefill(const CacheOptions& options, std::size_t layer, std::size_t start,
                                    std::span<const float> k, std::span<const float> v,
                                    std::span<const float> q, std::span<float> out,
                                    std::span<const TokenInfo> infos) {
  const std::size_t width = options.kv_heads * options.head_dim;
  require_lazy(!k.empty() && k.size() % width == 0, Errc::shape_mismatch, [&] {
    return std::string(
        "prefill keys hold " + std::to_string(k.size()) +
        " elements, expected a positive multiple of kv_heads * head_dim = " + std::to_string(width));
  });
  const std::size_t steps = k.size() / width;
  require_length(v.size(), k.size(), "prefill values [T][kv_heads][head_dim]");
  require_lazy(q.size() % steps == 0, Errc::shape_mismatch, [&] {
    return std::string("prefill queries hold " + std::to_string(q.size()) +
                       " elements, not a multiple of T = " + std::to_string(steps));
  });
  const std::size_t query_width = q.size() / steps;
  const std::size_t heads =
      require_query(options, q.first(query_width), out.first(std::min(out.size(), query_width)));
  require_length(out.size(), q.size(), "prefill output [T][n_heads][head_dim]");
  require_lazy(infos.empty() || infos.size() == steps, Errc::shape_mismatch, [&] {
    return std::string("prefill infos hold " + std::to_string(infos.size()) +
                       " entries, expected 0 or T = " + std::to_string(steps));
  });
  for (const TokenInfo& info : infos) TokenNotes::require_fits(info.features, "prefill info features");
  require_finite(k, "prefill keys");
  require_finite(v, "prefill values");
  require_finite(q, "prefill queries");
  require_lazy(steps <= options.capacity - start, Errc::capacity_exhausted, [&] {
    return std::string("prefill of " + std::to_string(steps) + " tokens into layer " + std::to_string(layer) +
                       " holding " + std::to_string(start) + " exceeds the capacity of " +
                       std::to_string(options.capacity));
  });
  return {steps, heads, query_width};
}

/**
 * Checks a demotion of `token` (stored at `now`, in the float area when `in_residual`).
 * @throws Error(invalid_argument) for an unsupported width, a float-area token or more bits.
 */
inline void require_demotion(std::size_t layer, std::size_t token, bool in_residual, const BitDecision& now,
                             const BitDecision& wanted) {
  require_lazy(is_supported_bits(wanted.key_bits) && is_supported_bits(wanted.value_bits),
               Errc::invalid_argument, [&] {
                 return std::string("demote to key/value bits " + std::to_string(wanted.key_bits) + "/" +
                                    std::to_string(wanted.value_bits) + ": use " + supported_bits_text());
               });
  require_lazy(!in_residual, Errc::invalid_argument, [&] {
    return std::string("token " + std::to_string(token) + " of layer " + std::to_string(layer) +
                       " is in the full-precision sink/window area; its width is decided when it leaves the "
                       "window");
  });
  require_lazy(
      wanted.key_bits <= now.key_bits && wanted.value_bits <= now.value_bits, Errc::invalid_argument, [&] {
        return std::string("demote never adds bits: token " + std::to_string(token) + " has key/value bits " +
                           std::to_string(now.key_bits) + "/" + std::to_string(now.value_bits) +
                           ", asked for " + std::to_string(wanted.key_bits) + "/" +
                           std::to_string(wanted.value_bits));
      });
}

/// @throws Error(invalid_argument) unless the policy returned supported widths.
inline void require_policy_bits(const BitDecision& bits) {
  require_lazy(is_supported_bits(bits.key_bits) && is_supported_bits(bits.value_bits), Errc::invalid_argument,
               [&] {
                 return std::string("the policy returned key/value bits " + std::to_string(bits.key_bits) +
                                    "/" + std::to_string(bits.value_bits) + "; a policy must return " +
                                    supported_bits_text());
               });
}

}  // namespace kvbits::detail
