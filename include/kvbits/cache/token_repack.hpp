// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "kvbits/cache/layer_store.hpp"
#include "kvbits/codec/backend.hpp"
#include "kvbits/codec/requantize.hpp"

namespace kvbits::detail {

/**
 * out [kv_heads][packed row of `to`] <- one side (K or V) of a stored token,
 * re-packed: copied when the format is unchanged (no second rounding),
 * re-quantized in integers when has_integer_requantize(from, to), else
 * decoded and re-encoded through the backend.
 * @param rows kv head g's packed row is rows(g), in format `from`;
 * @param decoded [head_dim] scratch.
 */
template <Backend B, class RowOf>
void repack_side(const QuantFormat& from, const QuantFormat& to, std::size_t head_dim, std::size_t kv_heads,
                 RowOf&& rows, float* decoded, std::uint8_t* out) {
  const std::size_t from_row = packed_size(from, head_dim);
  const std::size_t to_row = packed_size(to, head_dim);
  for (std::size_t g = 0; g < kv_heads; ++g) {
    const std::span<const std::uint8_t> in(rows(g), from_row);
    const std::span<std::uint8_t> target(out + g * to_row, to_row);
    if (from == to) {
      std::memcpy(target.data(), in.data(), from_row);
    } else if (has_integer_requantize(from, to)) {
      requantize(from, to, head_dim, in, target);
    } else {
      const std::span<float> values(decoded, head_dim);
      B::decode(from, in, values);
      B::encode(to, values, target);
    }
  }
}

/**
 * keys, values <- a stored token's rows in the widths `bits`, side by side as repack_side.
 * @param keys, values [kv_heads][packed row] staging; @param decoded [head_dim] scratch.
 */
template <Backend B>
void repack_token(const LayerStore& store, const CacheOptions& options, std::size_t token,
                  const BitDecision& bits, float* decoded, std::uint8_t* keys, std::uint8_t* values) {
  const TokenSlot at = store.slot(token);
  const PagedStream& source = store.stream(at.stream);
  repack_side<B>(
      source.key_format(), side_format(options.key, bits.key_bits), options.head_dim, options.kv_heads,
      [&](std::size_t g) { return source.key_at(at.slot, g); }, decoded, keys);
  repack_side<B>(
      source.value_format(), side_format(options.value, bits.value_bits), options.head_dim, options.kv_heads,
      [&](std::size_t g) { return source.value_at(at.slot, g); }, decoded, values);
}

/**
 * keys, values [kv_heads][packed row] <- k, v [kv_heads][head_dim] (stored basis) encoded at `bits`.
 */
template <Backend B>
void encode_token(const CacheOptions& options, const float* k, const float* v, const BitDecision& bits,
                  std::uint8_t* keys, std::uint8_t* values) {
  const std::size_t d = options.head_dim;
  const QuantFormat key = side_format(options.key, bits.key_bits);
  const QuantFormat value = side_format(options.value, bits.value_bits);
  const std::size_t key_row = packed_size(key, d);
  const std::size_t value_row = packed_size(value, d);
  for (std::size_t g = 0; g < options.kv_heads; ++g) {
    B::encode(key, std::span<const float>(k + g * d, d),
              std::span<std::uint8_t>(keys + g * key_row, key_row));
    B::encode(value, std::span<const float>(v + g * d, d),
              std::span<std::uint8_t>(values + g * value_row, value_row));
  }
}

/// k_out, v_out [kv_heads][head_dim] <- a stored token decoded, in the stored basis.
template <Backend B>
void decode_token(const LayerStore& store, std::size_t token, std::size_t head_dim, float* k_out,
                  float* v_out) {
  const TokenSlot at = store.slot(token);
  const PagedStream& stream = store.stream(at.stream);
  for (std::size_t g = 0; g < stream.kv_heads(); ++g) {
    B::decode(stream.key_format(), std::span<const std::uint8_t>(stream.key_at(at.slot, g), stream.key_row()),
              std::span<float>(k_out + g * head_dim, head_dim));
    B::decode(stream.value_format(),
              std::span<const std::uint8_t>(stream.value_at(at.slot, g), stream.value_row()),
              std::span<float>(v_out + g * head_dim, head_dim));
  }
}

}  // namespace kvbits::detail
