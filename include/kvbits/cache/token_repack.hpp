// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "kvbits/cache/layer_store.hpp"
#include "kvbits/cache/options.hpp"
#include "kvbits/cache/row_copy.hpp"
#include "kvbits/cache/stream_table.hpp"
#include "kvbits/codec/backend.hpp"
#include "kvbits/codec/requantize.hpp"

namespace kvbits::detail {

/**
 * The format of whole head rows laid end to end as one vector: a row's groups
 * stay its own (group 0 = the whole row becomes an explicit group of
 * head_dim), so one codec call over several rows writes the bytes that one
 * call per row would, with a fraction of the per-call checks and dispatch.
 */
inline QuantFormat rows_format(const QuantFormat& row, std::size_t head_dim) noexcept {
  return {row.bits, effective_group_size(row, head_dim), row.scheme};
}

/// Calls run(first_head, heads) over runs of head rows that fit one codec call (kMaxVectorLength).
template <class Run>
void for_each_head_run(std::size_t head_dim, std::size_t kv_heads, Run&& run) {
  if (kv_heads * head_dim <= kMaxVectorLength) return run(std::size_t{0}, kv_heads);  // the usual token
  const std::size_t step = std::max<std::size_t>(kMaxVectorLength / head_dim, 1);
  for (std::size_t first = 0; first < kv_heads; first += step) run(first, std::min(step, kv_heads - first));
}

/// Scratch of one token's re-pack, sized once by the cache.
class RepackScratch {
 public:
  void configure(const CacheOptions& options) {
    gathered_.resize(options.kv_heads * options.head_dim * sizeof(float));
  }
  [[nodiscard]] std::uint8_t* gathered() noexcept { return gathered_.data(); }

 private:
  std::vector<std::uint8_t> gathered_;  // [kv_heads][packed row] a side's rows, contiguous (<= 4 B/element)
};

/**
 * out [kv_heads][packed row of `to`] <- one side (K or V) of a stored token,
 * re-packed: copied when the format is unchanged (no second rounding),
 * re-quantized in integers when has_integer_requantize(from, to), else
 * decoded and re-encoded. The rows were stored by the cache in valid formats
 * and decode to finite values, so the codec's unchecked entry points apply.
 * @param from_row, to_row bytes of one packed head row in `from`, `to` (the streams know them).
 * @param rows kv head g's packed row is rows(g), in format `from`.
 */
template <Backend B, class RowOf>
void repack_side(const QuantFormat& from, std::size_t from_row, const QuantFormat& to, std::size_t to_row,
                 std::size_t head_dim, std::size_t kv_heads, RowOf&& rows, RepackScratch& scratch,
                 std::uint8_t* out) {
  if (from == to) {
    for (std::size_t g = 0; g < kv_heads; ++g) copy_row(out + g * to_row, rows(g), from_row);
    return;
  }
  // A page keeps each kv head's rows apart; gathered, the token's rows are one vector.
  std::uint8_t* gathered = scratch.gathered();
  for (std::size_t g = 0; g < kv_heads; ++g) copy_row(gathered + g * from_row, rows(g), from_row);
  const QuantFormat wide = rows_format(from, head_dim);
  const QuantFormat narrow = rows_format(to, head_dim);
  const bool integer = has_integer_requantize(from, to);
  for_each_head_run(head_dim, kv_heads, [&](std::size_t first, std::size_t heads) {
    const std::uint8_t* in = gathered + first * from_row;
    std::uint8_t* target = out + first * to_row;
    if (integer) {
      requantize_unchecked(wide, narrow, heads * head_dim, in, target);
    } else {
      transcode_trusted<B>(wide, narrow, heads * head_dim, in, target);
    }
  });
}

/**
 * keys, values <- a stored token's rows in the widths `bits`, side by side as repack_side.
 * @param keys, values [kv_heads][packed row] staging.
 */
template <Backend B>
void repack_token(const LayerStore& store, const CacheOptions& options, std::size_t token,
                  const BitDecision& bits, RepackScratch& scratch, std::uint8_t* keys, std::uint8_t* values) {
  const TokenSlot at = store.slot(token);
  const PagedStream& source = store.stream(at.stream);
  const PagedStream& target = store.stream(pair_stream(bits));
  const auto rows = source.slot_rows(at.slot);
  repack_side<B>(
      source.key_format(), source.key_row(), target.key_format(), target.key_row(), options.head_dim,
      options.kv_heads, [&](std::size_t g) { return rows.key + g * rows.key_step; }, scratch, keys);
  repack_side<B>(
      source.value_format(), source.value_row(), target.value_format(), target.value_row(), options.head_dim,
      options.kv_heads, [&](std::size_t g) { return rows.value + g * rows.value_step; }, scratch, values);
}

/**
 * out [kv_heads][packed row] <- x [kv_heads][head_dim] encoded in the row format `row`.
 * @param x finite (append checks its inputs before it plans).
 */
template <Backend B>
void encode_rows(const QuantFormat& row, std::size_t head_dim, std::size_t kv_heads, const float* x,
                 std::uint8_t* out) {
  const QuantFormat format = rows_format(row, head_dim);
  const std::size_t row_bytes = packed_size(row, head_dim);
  for_each_head_run(head_dim, kv_heads, [&](std::size_t first, std::size_t heads) {
    encode_trusted<B>(format, x + first * head_dim, heads * head_dim, out + first * row_bytes);
  });
}

/**
 * keys, values [kv_heads][packed row] <- k, v [kv_heads][head_dim] (stored basis) encoded at `bits`.
 */
template <Backend B>
void encode_token(const CacheOptions& options, const float* k, const float* v, const BitDecision& bits,
                  std::uint8_t* keys, std::uint8_t* values) {
  encode_rows<B>(side_format(options.key, bits.key_bits), options.head_dim, options.kv_heads, k, keys);
  encode_rows<B>(side_format(options.value, bits.value_bits), options.head_dim, options.kv_heads, v, values);
}

/// k_out, v_out [kv_heads][head_dim] <- a stored token decoded, in the stored basis.
template <Backend B>
void decode_token(const LayerStore& store, std::size_t token, std::size_t head_dim, float* k_out,
                  float* v_out) {
  const TokenSlot at = store.slot(token);
  const PagedStream& stream = store.stream(at.stream);
  const auto rows = stream.slot_rows(at.slot);
  for (std::size_t g = 0; g < stream.kv_heads(); ++g) {
    B::decode(stream.key_format(),
              std::span<const std::uint8_t>(rows.key + g * rows.key_step, stream.key_row()),
              std::span<float>(k_out + g * head_dim, head_dim));
    B::decode(stream.value_format(),
              std::span<const std::uint8_t>(rows.value + g * rows.value_step, stream.value_row()),
              std::span<float>(v_out + g * head_dim, head_dim));
  }
}

}  // namespace kvbits::detail
