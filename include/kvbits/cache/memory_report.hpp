// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstddef>
#include <vector>

#include "kvbits/core/bit_width.hpp"

namespace kvbits {

/// Token counts per storage precision, in kSupportedBits order.
struct PrecisionHistogram {
  std::array<std::size_t, kSupportedBits.size()> key{};    ///< tokens whose key has each width
  std::array<std::size_t, kSupportedBits.size()> value{};  ///< tokens whose value has each width

  /// @return tokens whose key is stored at `bits` (0 for an unsupported width).
  [[nodiscard]] std::size_t key_tokens(int bits) const noexcept { return lookup(key, bits); }
  /// @return tokens whose value is stored at `bits` (0 for an unsupported width).
  [[nodiscard]] std::size_t value_tokens(int bits) const noexcept { return lookup(value, bits); }

  /// Adds another histogram's counts (layers into a total, caches into a run's total).
  PrecisionHistogram& operator+=(const PrecisionHistogram& other) noexcept {
    for (std::size_t i = 0; i < kSupportedBits.size(); ++i) {
      key[i] += other.key[i];
      value[i] += other.value[i];
    }
    return *this;
  }

 private:
  static std::size_t lookup(const std::array<std::size_t, kSupportedBits.size()>& counts, int bits) noexcept {
    const std::size_t i = bits_index(bits);
    return i < counts.size() ? counts[i] : 0;
  }
};

/**
 * Memory of one layer (or the sum over layers). "Used" bytes count live
 * tokens only; `reserved_bytes` is what is allocated, including spare page
 * room and the preallocated full-precision area.
 */
struct LayerMemory {
  std::size_t tokens = 0;           ///< tokens stored
  std::size_t residual_tokens = 0;  ///< of which in the float sink/window area
  std::size_t code_bytes = 0;       ///< packed K/V of decided tokens, without group metadata
  std::size_t metadata_bytes = 0;   ///< fp16 group scales/mins of decided tokens
  std::size_t residual_bytes = 0;   ///< float K/V of sink and window tokens
  std::size_t index_bytes = 0;      ///< token index, slot maps, kept TokenInfo notes, attention statistics
  std::size_t bytes = 0;            ///< code + metadata + residual + index
  std::size_t reserved_bytes = 0;   ///< allocated: pages, float area, index, notes ring, statistics
  double average_bits = 0.0;        ///< 8 * (code + metadata + residual) / stored K and V elements
  PrecisionHistogram histogram{};   ///< every token by its storage width (sink/window tokens as 32)
};

/// Per-layer and total memory of a cache; see QuantizedKVCache::memory().
struct MemoryReport {
  std::vector<LayerMemory> layers;  ///< [layers]
  LayerMemory total;                ///< sums; average_bits over all layers' elements
};

}  // namespace kvbits
