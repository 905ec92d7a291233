// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <vector>

#include "kvbits/cache/memory_report.hpp"
#include "kvbits/core/bit_width.hpp"

namespace kvbits::eval {

/// Token counts per storage width, in kSupportedBits order (a side of a PrecisionHistogram).
using WidthCounts = std::array<std::size_t, kSupportedBits.size()>;

/// Memory of one policy's final caches, summed over the sequences it ran.
struct CacheUsage {
  double bit_tokens = 0.0;                 ///< sum of average bits x tokens
  std::size_t tokens = 0;                  ///< sum of tokens cached
  std::size_t bytes = 0;                   ///< sum of MemoryReport::total.bytes
  std::vector<PrecisionHistogram> layers;  ///< [layers] tokens by K and V width, summed
  PrecisionHistogram total{};              ///< the sum of `layers`

  /**
   * Adds a sequence's final cache.
   * @param memory the cache's memory() report
   * @param tokens_held the tokens it holds (per layer)
   */
  void add(const MemoryReport& memory, std::size_t tokens_held) {
    bit_tokens += memory.total.average_bits * static_cast<double>(tokens_held);
    tokens += tokens_held;
    bytes += memory.total.bytes;
    if (layers.size() < memory.layers.size()) layers.resize(memory.layers.size());
    for (std::size_t l = 0; l < memory.layers.size(); ++l) layers[l] += memory.layers[l].histogram;
    total += memory.total.histogram;
  }
  /// @return storage bits per K/V element, averaged over sequences weighted by their length.
  [[nodiscard]] double average_bits() const noexcept {
    return tokens == 0 ? 0.0 : bit_tokens / static_cast<double>(tokens);
  }
  /// @return cache bytes (codes, metadata, float tokens and index, all layers) per cached token.
  [[nodiscard]] double bytes_per_token() const noexcept {
    return tokens == 0 ? 0.0 : static_cast<double>(bytes) / static_cast<double>(tokens);
  }
};

/// Wall time spent in the model's forward pass and the tokens it ran.
class DecodeClock {
 public:
  /// Runs `step` (one forward pass) and adds its duration.
  template <class Step>
  void time(Step&& step) {
    const auto start = std::chrono::steady_clock::now();
    step();
    seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ++tokens_;
  }
  /// @return seconds per forward pass; 0 before the first.
  [[nodiscard]] double seconds_per_token() const noexcept {
    return tokens_ == 0 ? 0.0 : seconds_ / static_cast<double>(tokens_);
  }
  /// @return forward passes timed.
  [[nodiscard]] std::size_t tokens() const noexcept { return tokens_; }

 private:
  double seconds_ = 0.0;
  std::size_t tokens_ = 0;
};

/**
 * @param policy    the policy's clock
 * @param reference the FP32 cache's clock over the same sequences, interleaved with it
 * @return policy time per token / reference time per token; 0 when either ran nothing.
 */
inline double decode_time_ratio(const DecodeClock& policy, const DecodeClock& reference) noexcept {
  const double base = reference.seconds_per_token();
  return base == 0.0 || policy.tokens() == 0 ? 0.0 : policy.seconds_per_token() / base;
}

}  // namespace kvbits::eval
