// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "kvbits/core/error.hpp"

namespace kvbits::model {

/**
 * Greedy choice.
 * @param logits [vocab] scores, not empty
 * @return the index of the largest logit; the lowest such index on ties.
 * @throw Error(invalid_argument) for empty logits.
 */
inline std::int32_t argmax(std::span<const float> logits) {
  kvbits::detail::require(!logits.empty(), Errc::invalid_argument, "argmax of empty logits");
  return static_cast<std::int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

/**
 * Picks next tokens: greedy at temperature 0, otherwise a draw from softmax(logits / T).
 * The draw uses std::mt19937_64 and an explicit inverse-CDF walk, so a seed gives the same
 * tokens with every standard library.
 */
class Sampler {
 public:
  /**
   * @param temperature 0 for greedy decoding, otherwise > 0
   * @param seed        seed of the random stream
   * @throw Error(invalid_argument) for a negative or non-finite temperature.
   */
  explicit Sampler(float temperature, std::uint64_t seed = 0) : temperature_(temperature), rng_(seed) {
    kvbits::detail::require(std::isfinite(temperature) && temperature >= 0.0f, Errc::invalid_argument,
                            "temperature must be finite and >= 0");
  }

  /**
   * @param logits [vocab] next-token scores
   * @return the chosen token id.
   */
  std::int32_t sample(std::span<const float> logits) {
    const std::int32_t best = argmax(logits);
    if (temperature_ == 0.0f) return best;
    const double top = logits[static_cast<std::size_t>(best)];
    weights_.resize(logits.size());
    double total = 0.0;
    for (std::size_t i = 0; i < logits.size(); ++i) {
      weights_[i] = std::exp((static_cast<double>(logits[i]) - top) / temperature_);
      total += weights_[i];
    }
    // 53 random bits -> uniform in [0, 1).
    const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53 * total;
    double cumulative = 0.0;
    for (std::size_t i = 0; i < weights_.size(); ++i) {
      cumulative += weights_[i];
      if (u < cumulative) return static_cast<std::int32_t>(i);
    }
    return best;  // only reachable through rounding at the very end of the CDF
  }

 private:
  float temperature_;
  std::mt19937_64 rng_;
  std::vector<double> weights_;  // [vocab] scratch: unnormalized probabilities
};

}  // namespace kvbits::model
