// SPDX-License-Identifier: MIT
// Small caches shared by tests/test_cache_file.cpp and the cache-file fuzzer: the test writes
// their files as the fuzzer's seed corpus (KVBITS_WRITE_FUZZ_CORPUS=1), and the fuzzer loads
// every input into caches built here. No Catch2, so the fuzzer can include it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "kvbits/cache/cache_file.hpp"
#include "kvbits/cache/quantized_kv_cache.hpp"
#include "kvbits/core/checksum.hpp"
#include "kvbits/core/random.hpp"
#include "kvbits/core/section_stream.hpp"
#include "kvbits/policy/budget_policy.hpp"
#include "kvbits/policy/random_policy.hpp"
#include "kvbits/policy/tiered_policy.hpp"

namespace kvbits::test {

/// Query heads per kv head in the fill helper's attention.
inline constexpr std::size_t kFillGroup = 2;

/// Options of `layers` x `kv_heads` x `head_dim` with room for `capacity` tokens; the rest default.
inline CacheOptions shape_options(std::size_t layers, std::size_t kv_heads, std::size_t head_dim,
                                  std::size_t capacity) {
  CacheOptions o;
  o.layers = layers;
  o.kv_heads = kv_heads;
  o.head_dim = head_dim;
  o.capacity = capacity;
  return o;
}

/// Tiered widths with two demotions and attention statistics; a float window, a sink, Hadamard keys.
using TieredFileCache = QuantizedKVCache<TieredPolicy>;

inline CacheOptions tiered_file_options() {
  CacheOptions o = shape_options(2, 2, 8, 24);
  o.residual_window = 2;
  o.sink_tokens = 1;
  o.key.group_size = 8;
  o.key.transform = KeyTransform::hadamard;
  return o;
}

inline TieredPolicy tiered_file_policy() { return parse_tiers("2=16/16,4=8/8,*=4/2,k+=0.1"); }

/// A budget over random widths: policy state on both levels; no window, two sinks, channel-scaled keys.
using BudgetFileCache = QuantizedKVCache<BudgetPolicy<RandomPolicy>>;

inline CacheOptions budget_file_options() {
  CacheOptions o = shape_options(1, 1, 16, 32);
  o.sink_tokens = 2;
  o.key.transform = KeyTransform::channel_scale;
  o.value.scheme = Scheme::symmetric;
  return o;
}

inline BudgetPolicy<RandomPolicy> budget_file_policy() {
  BudgetOptions options;
  options.target_bits_per_element = 5.0;
  options.protect_age = 2;
  options.lowering_ages = 2;
  return BudgetPolicy<RandomPolicy>(RandomPolicy(parse_width_mix("8/8:1,4/4:1,16/4:1"), 7), options);
}

/// @return a reproducible value in [-scale, scale) per call.
inline float fill_value(detail::SplitMix64& random, float scale = 1.0f) {
  return static_cast<float>(random.symmetric()) * scale;
}

/**
 * Appends `tokens` tokens to every layer of `cache`, each followed by an attend with
 * kFillGroup query heads per kv head (so statistics and `received` evolve), giving every other
 * token a feature while the policy may still read it. Values come from `random`.
 * @return the attention outputs of every step, [tokens][layers][heads][head_dim].
 */
template <class Cache>
std::vector<float> fill_cache(Cache& cache, std::size_t tokens, detail::SplitMix64& random) {
  const CacheOptions& o = cache.options();
  const std::size_t width = o.kv_heads * o.head_dim;
  const std::size_t query_width = kFillGroup * width;
  std::vector<float> k(width), v(width), q(query_width), out(query_width), outputs;
  for (std::size_t step = 0; step < tokens; ++step) {
    for (std::size_t l = 0; l < o.layers; ++l) {
      for (float& x : k) x = fill_value(random, 2.0f);
      for (float& x : v) x = fill_value(random);
      for (float& x : q) x = fill_value(random, 3.0f);
      const std::size_t token = cache.size(l);
      const float feature = fill_value(random);
      cache.append(l, k, v,
                   TokenInfo{l, token, static_cast<std::int32_t>(token % 50), std::span(&feature, 1)});
      std::vector<float> received(cache.size(l));
      cache.attend(l, q, out, received);
      outputs.insert(outputs.end(), out.begin(), out.end());
      if (token % 2 == 1 && cache.awaits_decision(l, token - 1)) {
        const float later = fill_value(random);
        cache.set_features(l, token - 1, std::span(&later, 1));
      }
    }
  }
  return outputs;
}

/// Calibrates channel scales from random samples in every layer (before any token is stored).
template <class Cache>
void calibrate_cache(Cache& cache, detail::SplitMix64& random) {
  const CacheOptions& o = cache.options();
  std::vector<float> samples(4 * o.kv_heads * o.head_dim);
  for (std::size_t l = 0; l < o.layers; ++l) {
    for (float& x : samples) x = fill_value(random, 6.0f);
    cache.calibrate_key_scales(l, samples);
  }
}

/// @return the cache file of `cache`, in memory.
template <class Cache>
std::string saved_bytes(const Cache& cache) {
  std::ostringstream out(std::ios::binary);
  cache.save(out);
  return std::move(out).str();
}

/// The little-endian value of bytes [offset, offset + n) of `file`.
inline std::uint64_t load_le(const std::string& file, std::size_t offset, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i)
    v |= std::uint64_t{static_cast<unsigned char>(file[offset + i])} << (8 * i);
  return v;
}

/// Writes `v` little-endian into bytes [offset, offset + n) of `file`.
inline void store_le(std::string& file, std::size_t offset, std::uint64_t v, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) file[offset + i] = static_cast<char>((v >> (8 * i)) & 0xffU);
}

/**
 * Rewrites the checksum of every complete section of a cache file after its
 * 12-byte magic and version, so an edited payload passes the checksum and
 * reaches the checks behind it. Stops at the first incomplete section.
 */
inline void recompute_checksums(std::string& file) {
  std::size_t at = 12;
  while (at <= file.size() && file.size() - at >= detail::kSectionFrameBytes) {
    const std::uint64_t length = load_le(file, at + 4, 8);
    if (length > file.size() - at - detail::kSectionFrameBytes) return;
    const auto framed = static_cast<std::size_t>(12 + length);
    detail::WordChecksum checksum;
    checksum.update(std::as_bytes(std::span(file.data() + at, framed)));
    store_le(file, at + framed, checksum.value(), 8);
    at += framed + 8;
  }
}

/// Offset of HEAD's page_plane_bytes in a version-2 cache file: the 12-byte magic and version,
/// HEAD's tag and length, then the option fields before it.
inline constexpr std::size_t kPagePlaneFieldOffset = 12 + 12 + 8 * (kCacheFileOptionFields - 1);

/**
 * The version-1 image of `file`, a version-2 cache file of a cache with 16384-byte page planes:
 * the same bytes without HEAD's page_plane_bytes field, version 1, HEAD's length and every
 * checksum rewritten. What that cache would have saved before the field existed.
 */
inline std::string as_version1(const std::string& file) {
  std::string old = file.substr(0, kPagePlaneFieldOffset) + file.substr(kPagePlaneFieldOffset + 8);
  store_le(old, 8, 1, 4);
  store_le(old, 16, load_le(file, 16, 8) - 8, 8);
  recompute_checksums(old);
  return old;
}

}  // namespace kvbits::test
