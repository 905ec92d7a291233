// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "kvbits/cache/options.hpp"
#include "kvbits/core/error.hpp"

namespace kvbits::detail {

/**
 * When the policy is asked about a token of a layer, counted in ages: a
 * token's age is the number of appends to its layer since its own (the
 * newest token has age 0).
 *
 *  - Sinks (the first min(S, capacity) tokens) are never decided.
 *  - A token is first decided at age R (when it leaves the window), or on
 *    insert at age 0 when the effective window R is 0.
 *  - Then at every declared decision age a > R it is revisited: the token at
 *    index size - 1 - a right after an append. So one append revisits at most
 *    ages().size() tokens, found by arithmetic, never by a scan.
 */
class DecisionSchedule {
 public:
  /**
   * @param ages the policy's decision ages.
   * @throws Error(invalid_argument) unless the ages are strictly increasing and >= 1.
   */
  DecisionSchedule(const CacheOptions& options, std::span<const std::size_t> ages)
      : sinks_(effective_sinks(options)),
        window_(effective_window(options)),
        ages_(ages.begin(), ages.end()) {
    for (std::size_t i = 0; i < ages_.size(); ++i) {
      require_lazy(ages_[i] >= 1 && (i == 0 || ages_[i] > ages_[i - 1]), Errc::invalid_argument, [&] {
        return std::string("policy decision ages must be strictly increasing and >= 1; age " +
                           std::to_string(i) + " is " + std::to_string(ages_[i]) +
                           (i > 0 ? " after " + std::to_string(ages_[i - 1]) : std::string()));
      });
    }
    const std::size_t oldest = std::max(window_, ages_.empty() ? std::size_t{0} : ages_.back());
    ring_size_ = std::min(oldest + 1, options.capacity);
  }

  [[nodiscard]] std::size_t sinks() const noexcept { return sinks_; }
  [[nodiscard]] std::size_t window() const noexcept { return window_; }
  [[nodiscard]] std::span<const std::size_t> ages() const noexcept { return ages_; }
  /// Ring entries of TokenNotes that cover every token the policy may still be asked about.
  [[nodiscard]] std::size_t ring_size() const noexcept { return ring_size_; }

  [[nodiscard]] bool is_sink(std::size_t token) const noexcept { return token < sinks_; }

  /// @return whether appending token `newest` decides some token for the first time.
  [[nodiscard]] bool decides_on_append(std::size_t newest) const noexcept {
    return newest >= sinks_ + window_;
  }

  /// @return the token first decided by appending `newest` (decides_on_append holds).
  [[nodiscard]] std::size_t first_decided(std::size_t newest) const noexcept { return newest - window_; }

  /**
   * @return whether the policy may still read the features of `token` in a layer of
   *         `size` tokens: a window token, or a decided one younger than the last age.
   */
  [[nodiscard]] bool may_consult(std::size_t token, std::size_t size) const noexcept {
    if (is_sink(token)) return false;
    const std::size_t age = size - 1 - token;
    return age < window_ || (!ages_.empty() && age < ages_.back());
  }

 private:
  std::size_t sinks_;
  std::size_t window_;
  std::vector<std::size_t> ages_;  // [decision ages], strictly increasing, each >= 1
  std::size_t ring_size_ = 1;
};

}  // namespace kvbits::detail
