// SPDX-License-Identifier: MIT
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "kvbits/core/error.hpp"

namespace kvbits {

/**
 * Token counts per vocabulary id, with add-k smoothing:
 *   P(id) = (count(id) + k) / (total + k * vocab_size).
 * Ids outside [0, vocab_size) are unknown: their count is 0, so they get the
 * smallest probability k / (total + k * vocab_size). k > 0 keeps every
 * probability positive, so -log P is always finite.
 */
class UnigramTable {
 public:
  /**
   * An empty table.
   * @param vocab_size number of ids, > 0.
   * @param smoothing add-k pseudo-count k, finite and > 0.
   * @throws Error(invalid_argument) otherwise.
   */
  explicit UnigramTable(std::size_t vocab_size, double smoothing = 1.0)
      : counts_(checked_vocab_size(vocab_size), 0), smoothing_(checked_smoothing(smoothing)) {}

  /**
   * A table with the given counts (as a loader reads them).
   * @param counts [vocab_size] occurrences per id; not empty.
   * @param smoothing add-k pseudo-count k, finite and > 0.
   * @throws Error(invalid_argument) when counts is empty, smoothing is not positive or the
   *         total overflows.
   */
  UnigramTable(std::vector<std::uint64_t> counts, double smoothing)
      : counts_(std::move(counts)), smoothing_(checked_smoothing(smoothing)) {
    static_cast<void>(checked_vocab_size(counts_.size()));
    for (const std::uint64_t count : counts_) add_to_total(count);
  }

  /**
   * Counts every id of a token sequence. Strong guarantee: unchanged when it throws.
   * @param ids token ids, each in [0, vocab_size).
   * @throws Error(invalid_argument) naming the first id outside the vocabulary.
   */
  void add(std::span<const std::int32_t> ids) {
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] < 0 || static_cast<std::size_t>(ids[i]) >= counts_.size()) {
        throw Error(Errc::invalid_argument, "token id " + std::to_string(ids[i]) + " at index " +
                                                std::to_string(i) + " is outside the vocabulary of " +
                                                std::to_string(counts_.size()));
      }
    }
    for (const std::int32_t id : ids) ++counts_[static_cast<std::size_t>(id)];
    total_ += ids.size();
  }

  /// @return occurrences of `id`; 0 for an id outside the vocabulary.
  [[nodiscard]] std::uint64_t count(std::int32_t id) const noexcept {
    return known(id) ? counts_[static_cast<std::size_t>(id)] : 0;
  }

  /// @return the smoothed probability of `id` (see the class comment).
  [[nodiscard]] double probability(std::int32_t id) const noexcept {
    const double vocab = static_cast<double>(counts_.size());
    return (static_cast<double>(count(id)) + smoothing_) / (static_cast<double>(total_) + smoothing_ * vocab);
  }

  /// @return -log of the smoothed probability of `id`: finite and >= 0.
  [[nodiscard]] double surprisal(std::int32_t id) const noexcept { return -std::log(probability(id)); }

  [[nodiscard]] std::size_t vocab_size() const noexcept { return counts_.size(); }  ///< number of ids
  [[nodiscard]] std::uint64_t total() const noexcept { return total_; }             ///< sum of counts
  [[nodiscard]] double smoothing() const noexcept { return smoothing_; }            ///< add-k k
  /// @return [vocab_size] occurrences per id.
  [[nodiscard]] std::span<const std::uint64_t> counts() const noexcept { return counts_; }

 private:
  [[nodiscard]] bool known(std::int32_t id) const noexcept {
    return id >= 0 && static_cast<std::size_t>(id) < counts_.size();
  }

  static std::size_t checked_vocab_size(std::size_t vocab_size) {
    // Ids are int32, so a larger vocabulary could never be addressed.
    detail::require(
        vocab_size > 0 && vocab_size <= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()),
        Errc::invalid_argument, "unigram vocabulary size must be in [1, 2^31 - 1]");
    return vocab_size;
  }

  static double checked_smoothing(double smoothing) {
    detail::require(std::isfinite(smoothing) && smoothing > 0.0, Errc::invalid_argument,
                    "unigram smoothing must be finite and > 0, got " + std::to_string(smoothing));
    return smoothing;
  }

  void add_to_total(std::uint64_t count) {
    detail::require(count <= std::numeric_limits<std::uint64_t>::max() - total_, Errc::invalid_argument,
                    "unigram counts overflow a 64-bit total");
    total_ += count;
  }

  std::vector<std::uint64_t> counts_;  // [vocab_size] occurrences per id
  std::uint64_t total_ = 0;            // sum of counts_
  double smoothing_ = 1.0;             // add-k pseudo-count
};

}  // namespace kvbits
