// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "kvbits/cache/options.hpp"
#include "kvbits/codec/format.hpp"
#include "kvbits/codec/requantize.hpp"

namespace kvbits::test {

/// n samples of N(0, sigma^2).
inline std::vector<float> random_vector(std::mt19937& rng, std::size_t n, float sigma = 1.0f) {
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<float> x(n);
  for (float& value : x) value = normal(rng);
  return x;
}

/// x [heads][d] after encode + decode at `bits` with backend B, head by head.
template <class B>
std::vector<float> round_trip(std::span<const float> x, int bits, const KVCodecOptions& codec,
                              std::size_t d) {
  const QuantFormat format{bits, codec.group_size, codec.scheme};
  std::vector<float> y(x.size());
  std::vector<std::uint8_t> packed(packed_size(format, d));
  for (std::size_t g = 0; g < x.size() / d; ++g) {
    B::encode(format, x.subspan(g * d, d), packed);
    B::decode(format, packed, std::span<float>(y).subspan(g * d, d));
  }
  return y;
}

/**
 * x [heads][d] stored at `from` bits, then demoted to `to` bits the way the
 * cache does it (copy when equal, integer re-quantization where it exists,
 * else decode + encode), decoded.
 */
template <class B>
std::vector<float> demoted_round_trip(std::span<const float> x, int from, int to, const KVCodecOptions& codec,
                                      std::size_t d) {
  const QuantFormat wide{from, codec.group_size, codec.scheme};
  const QuantFormat narrow{to, codec.group_size, codec.scheme};
  std::vector<float> y(x.size());
  std::vector<float> decoded(d);
  std::vector<std::uint8_t> packed_wide(packed_size(wide, d)), packed_narrow(packed_size(narrow, d));
  for (std::size_t g = 0; g < x.size() / d; ++g) {
    const std::span<float> out = std::span<float>(y).subspan(g * d, d);
    B::encode(wide, x.subspan(g * d, d), packed_wide);
    if (from == to) {
      B::decode(wide, packed_wide, out);
      continue;
    }
    if (has_integer_requantize(wide, narrow)) {
      requantize(wide, narrow, d, packed_wide, packed_narrow);
    } else {
      B::decode(wide, packed_wide, decoded);
      B::encode(narrow, decoded, packed_narrow);
    }
    B::decode(narrow, packed_narrow, out);
  }
  return y;
}

}  // namespace kvbits::test
