// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <string_view>
#include <utility>

#include "kvbits/core/error.hpp"
#include "kvbits/features/feature.hpp"
#include "kvbits/features/scalar_feature.hpp"
#include "kvbits/features/unigram_table.hpp"

namespace kvbits {

/**
 * How rare the token is: -log of its smoothed unigram probability
 * (UnigramTable::surprisal), so ids never seen in the table score highest.
 * Unknown ids (-1, or outside the table's vocabulary) count as unseen.
 *
 * Holds the table through a shared_ptr to const, so copies are cheap and share
 * one read-only table.
 */
class RarityFeature : public detail::ScalarFeature<RarityFeature> {
 public:
  /// The feature's name.
  static constexpr std::array<std::string_view, 1> kNames = {"rarity"};

  /**
   * @param table the unigram counts; not null.
   * @throws Error(invalid_argument) when table is null.
   */
  explicit RarityFeature(std::shared_ptr<const UnigramTable> table) : table_(std::move(table)) {
    detail::require(table_ != nullptr, Errc::invalid_argument, "RarityFeature needs a unigram table");
  }

  /// @return -log P(context.token_id) under the table.
  [[nodiscard]] float value(const FeatureContext& context) const noexcept {
    return static_cast<float>(table_->surprisal(context.token_id));
  }

  /// @return the table the feature reads.
  [[nodiscard]] const UnigramTable& table() const noexcept { return *table_; }

 private:
  std::shared_ptr<const UnigramTable> table_;  // never null
};

static_assert(FeatureExtractor<RarityFeature>, "RarityFeature must satisfy FeatureExtractor");

}  // namespace kvbits
