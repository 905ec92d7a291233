// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kvbits/core/bit_width.hpp"
#include "kvbits/core/byte_io.hpp"
#include "kvbits/core/decision.hpp"
#include "kvbits/core/error.hpp"
#include "kvbits/core/random.hpp"
#include "kvbits/policy/policy.hpp"
#include "kvbits/policy/policy_text.hpp"

namespace kvbits {

/// One entry of a width mix: `bits` is chosen with probability weight / (sum of weights).
struct WeightedBits {
  BitDecision bits{};   ///< the widths
  double weight = 1.0;  ///< relative frequency, finite and >= 0

  /// Member-wise equality.
  friend constexpr bool operator==(const WeightedBits&, const WeightedBits&) = default;
};

/**
 * Chooses every token's widths at random from a mix, e.g. half 4/2 and half
 * 8/4: a control for adaptive policies at the same average cost. The choice
 * depends only on the seed and on how many decisions came before (SplitMix64,
 * the same on every platform); the policy holds its own generator, so copies
 * continue the same sequence independently.
 */
class RandomPolicy {
 public:
  /**
   * @param mix the widths and their weights; not empty, weights finite, >= 0, summing to > 0.
   * @param seed the generator's seed.
   * @throws Error(invalid_argument) naming the offending entry.
   */
  explicit RandomPolicy(std::vector<WeightedBits> mix, std::uint64_t seed = 0)
      : mix_(std::move(mix)), random_(seed) {
    detail::require(!mix_.empty(), Errc::invalid_argument, "a random width mix needs at least one entry");
    double total = 0.0;
    for (std::size_t i = 0; i < mix_.size(); ++i) {
      const WeightedBits& entry = mix_[i];
      const std::string where = "width mix entry " + std::to_string(i) + " (" + to_string(entry.bits) + ")";
      require_supported_bits(entry.bits, where);
      detail::require(std::isfinite(entry.weight) && entry.weight >= 0.0, Errc::invalid_argument,
                      where + ": weight must be finite and >= 0");
      total += entry.weight;
      cumulative_.push_back(total);
    }
    detail::require(total > 0.0 && std::isfinite(total), Errc::invalid_argument,
                    "the weights of a random width mix must sum to a finite value > 0");
  }

  /**
   * @param token ignored: the choice is random.
   * @return widths drawn from the mix.
   */
  BitDecision decide(const TokenInfo& token) noexcept {
    static_cast<void>(token);
    // 53 random bits give a uniform double in [0, 1), scaled to the total weight.
    const double draw = random_.unit() * cumulative_.back();
    // A zero-weight entry has the same running sum as the one before it, so upper_bound skips it.
    auto chosen = std::upper_bound(cumulative_.begin(), cumulative_.end(), draw);
    // Rounding can scale the draw up to the total: take the last entry with weight then.
    if (chosen == cumulative_.end()) chosen = std::lower_bound(cumulative_.begin(), cumulative_.end(), draw);
    return mix_[static_cast<std::size_t>(chosen - cumulative_.begin())].bits;
  }

  /// @return the mix.
  [[nodiscard]] std::span<const WeightedBits> mix() const noexcept { return mix_; }

  /// @return "random:" and the mix as width_mix_to_string writes it (the seed is state, not configuration).
  [[nodiscard]] std::string describe() const;

  /// Appends the generator's state, so a cache restored from a file continues the same draws.
  void save_state(ByteWriter& out) const { out.u64(random_.state()); }

  /// Reads what save_state wrote. @throws Error(corrupt_data) when it is missing.
  void load_state(ByteReader& in) { random_ = detail::SplitMix64(in.u64("random policy generator state")); }

 private:
  std::vector<WeightedBits> mix_;   // the entries, in the order given
  std::vector<double> cumulative_;  // [mix_.size()] running sums of the weights
  detail::SplitMix64 random_;       // the draws
};

static_assert(Policy<RandomPolicy>, "RandomPolicy must satisfy the Policy concept");

/**
 * Reads a width mix: comma-separated `K/V:WEIGHT` items, spaces around items
 * ignored, e.g. "4/2:0.5,8/4:0.5" or "4/2:3,8/4:1" (weights are relative and
 * need not sum to 1). A `K/V` item without `:WEIGHT` has weight 1.
 * @param text the items.
 * @return the mix, in the order given; width_mix_to_string() round-trips it.
 * @throws Error(invalid_argument) naming the offending item.
 */
inline std::vector<WeightedBits> parse_width_mix(std::string_view text) {
  std::vector<WeightedBits> mix;
  for (const std::string_view raw : detail::split(text, ',')) {
    const std::string_view item = detail::trim(raw);
    const std::string where = "width mix item '" + std::string(item) + "'";
    const std::size_t colon = item.find(':');
    WeightedBits entry{parse_bit_decision(item.substr(0, colon), where), 1.0};
    if (colon != std::string_view::npos) {
      const std::optional<double> weight = detail::parse_number<double>(item.substr(colon + 1));
      detail::require(weight && std::isfinite(*weight) && *weight >= 0.0, Errc::invalid_argument,
                      where + ": the weight after ':' must be a finite number >= 0");
      entry.weight = *weight;
    }
    mix.push_back(entry);
  }
  return mix;
}

/// @return `mix` as text that parse_width_mix reads back exactly, e.g. "4/2:0.5,8/4:0.5".
inline std::string width_mix_to_string(std::span<const WeightedBits> mix) {
  std::string text;
  for (const WeightedBits& entry : mix) {
    if (!text.empty()) text += ",";
    text += to_string(entry.bits) + ":" + detail::format_number(entry.weight);
  }
  return text;
}

inline std::string RandomPolicy::describe() const { return "random:" + width_mix_to_string(mix_); }

}  // namespace kvbits
