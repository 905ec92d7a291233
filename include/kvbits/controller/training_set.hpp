// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "kvbits/core/error.hpp"
#include "kvbits/core/random.hpp"

namespace kvbits {

/// The two output heads of a controller, as indices into per-head arrays.
inline constexpr std::size_t kKeyHead = 0;    ///< key width head
inline constexpr std::size_t kValueHead = 1;  ///< value width head
inline constexpr std::size_t kHeads = 2;      ///< heads per controller

/**
 * Labelled samples for training a controller `Net` (an Mlp): one sample per
 * (token, decision age), with its raw features and, per head, the target
 * width class and the measured damage of every width class.
 * Build it with add() or by filling the vectors directly; validate() checks the shapes.
 * @tparam Net the Mlp to train: fixes kInputs and kWidths.
 */
template <class Net>
struct TrainingSet {
  static constexpr std::size_t kInputs = Net::kInputs;  ///< features per sample
  static constexpr std::size_t kWidths = Net::kWidths;  ///< classes per head

  /// The labels of one head.
  struct HeadLabels {
    std::vector<std::uint32_t> target;  ///< [N] class in [0, kWidths): the width to learn
    std::vector<float> damage;  ///< [N][kWidths] measured damage per width, finite, >= 0; or empty (all 0)
  };

  std::vector<float> features;           ///< [N][kInputs] raw (not normalised) features, finite
  std::array<HeadLabels, kHeads> heads;  ///< [kKeyHead], [kValueHead]
  std::vector<std::uint32_t> groups;     ///< [N] document of each sample, or empty (each sample alone)

  /// @return the number of samples N.
  [[nodiscard]] std::size_t size() const noexcept { return features.size() / kInputs; }
  /// @return true when there are no samples.
  [[nodiscard]] bool empty() const noexcept { return features.empty(); }

  /**
   * Appends one sample.
   * @param x its features; @param key_target, value_target its classes;
   * @param key_damage, value_damage damage per width class (kWidths each);
   * @param group its document; give one for every sample or for none.
   */
  void add(std::span<const float, kInputs> x, std::uint32_t key_target, std::uint32_t value_target,
           std::span<const float, kWidths> key_damage, std::span<const float, kWidths> value_damage,
           std::optional<std::uint32_t> group = std::nullopt) {
    features.insert(features.end(), x.begin(), x.end());
    heads[kKeyHead].target.push_back(key_target);
    heads[kValueHead].target.push_back(value_target);
    heads[kKeyHead].damage.insert(heads[kKeyHead].damage.end(), key_damage.begin(), key_damage.end());
    heads[kValueHead].damage.insert(heads[kValueHead].damage.end(), value_damage.begin(), value_damage.end());
    if (group) groups.push_back(*group);
  }

  /// Appends sample `i` of `other` (same Net).
  void add_from(const TrainingSet& other, std::size_t i) {
    const auto at = [i](const std::vector<float>& v, std::size_t width) {
      return v.begin() + static_cast<std::ptrdiff_t>(i * width);
    };
    features.insert(features.end(), at(other.features, kInputs), at(other.features, kInputs) + kInputs);
    for (std::size_t h = 0; h < kHeads; ++h) {
      heads[h].target.push_back(other.heads[h].target[i]);
      const std::vector<float>& damage = other.heads[h].damage;
      if (!damage.empty()) {
        heads[h].damage.insert(heads[h].damage.end(), at(damage, kWidths), at(damage, kWidths) + kWidths);
      }
    }
    if (!other.groups.empty()) groups.push_back(other.groups[i]);
  }

  /**
   * Checks every shape and value rule above.
   * @param what names the set in errors, e.g. "training set".
   * @throws Error(invalid_argument) naming the field and the first offending sample.
   */
  void validate(const std::string& what) const {
    const auto fail = [&what](const std::string& message) {
      throw Error(Errc::invalid_argument, what + ": " + message);
    };
    if (features.size() % kInputs != 0) {
      fail("features holds " + std::to_string(features.size()) + " values, not a multiple of the " +
           std::to_string(kInputs) + " inputs");
    }
    const std::size_t n = size();
    for (std::size_t i = 0; i < features.size(); ++i) {
      if (!std::isfinite(features[i])) {
        fail("feature " + std::to_string(i % kInputs) + " of sample " + std::to_string(i / kInputs) +
             " is not finite");
      }
    }
    for (std::size_t h = 0; h < kHeads; ++h) {
      const std::string head = h == kKeyHead ? "key" : "value";
      const HeadLabels& labels = heads[h];
      if (labels.target.size() != n) {
        fail(head + " targets hold " + std::to_string(labels.target.size()) + " entries for " +
             std::to_string(n) + " samples");
      }
      for (std::size_t i = 0; i < n; ++i) {
        if (labels.target[i] >= kWidths) {
          fail(head + " target of sample " + std::to_string(i) + " is class " +
               std::to_string(labels.target[i]) + "; classes are 0.." + std::to_string(kWidths - 1));
        }
      }
      if (!labels.damage.empty() && labels.damage.size() != n * kWidths) {
        fail(head + " damage holds " + std::to_string(labels.damage.size()) + " values, expected empty or " +
             std::to_string(n) + " samples x " + std::to_string(kWidths) + " widths");
      }
      for (std::size_t i = 0; i < labels.damage.size(); ++i) {
        if (!(std::isfinite(labels.damage[i]) && labels.damage[i] >= 0.0f)) {
          fail(head + " damage of sample " + std::to_string(i / kWidths) + ", width class " +
               std::to_string(i % kWidths) + " must be finite and >= 0");
        }
      }
    }
    if (!groups.empty() && groups.size() != n) {
      fail("groups hold " + std::to_string(groups.size()) + " entries for " + std::to_string(n) + " samples");
    }
  }
};

/**
 * Holds back whole groups (documents) for validation, so no document feeds
 * both sides: the distinct groups are put in a seeded random order (integer
 * arithmetic only, the same everywhere) and the first ceil(fraction * groups)
 * go to validation. Without groups every sample is its own group. Sample order
 * within each side follows `set`.
 * @param set the samples; validated.
 * @param fraction in (0, 1): share of groups held back; at least one group stays on each side.
 * @param seed chooses the groups.
 * @return {training, validation}.
 * @throws Error(invalid_argument) for a bad set or fraction, or fewer than two groups.
 */
template <class Net>
std::pair<TrainingSet<Net>, TrainingSet<Net>> split_training_set(const TrainingSet<Net>& set, double fraction,
                                                                 std::uint64_t seed) {
  set.validate("training set");
  detail::require(fraction > 0.0 && fraction < 1.0, Errc::invalid_argument,
                  "validation fraction must be in (0, 1)");
  const std::size_t n = set.size();
  const bool grouped = !set.groups.empty();
  std::vector<std::uint32_t> ids;
  if (grouped) {
    ids = set.groups;
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  } else {
    ids.resize(n);
    for (std::size_t i = 0; i < n; ++i) ids[i] = static_cast<std::uint32_t>(i);
  }
  detail::require(ids.size() >= 2, Errc::invalid_argument,
                  "a validation split needs at least two groups (documents) or samples");
  detail::SplitMix64 random(seed);
  for (std::size_t i = ids.size() - 1; i > 0; --i) std::swap(ids[i], ids[random.below(i + 1)]);
  auto held = static_cast<std::size_t>(std::ceil(fraction * static_cast<double>(ids.size())));
  held = std::clamp<std::size_t>(held, 1, ids.size() - 1);
  std::vector<std::uint32_t> validation_ids(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(held));
  std::sort(validation_ids.begin(), validation_ids.end());

  std::pair<TrainingSet<Net>, TrainingSet<Net>> sides;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t id = grouped ? set.groups[i] : static_cast<std::uint32_t>(i);
    const bool validation = std::binary_search(validation_ids.begin(), validation_ids.end(), id);
    (validation ? sides.second : sides.first).add_from(set, i);
  }
  return sides;
}

}  // namespace kvbits
