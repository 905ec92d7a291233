// SPDX-License-Identifier: MIT
#pragma once

// Intrinsics first, so that Eigen parses them under kvbits' GCC 12 warning fix.
#include "kvbits/core/simd_headers.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>

#include "kvbits/controller/loss.hpp"
#include "kvbits/controller/training_set.hpp"
#include "kvbits/core/error.hpp"
#include "learn/damage_dataset.hpp"
#include "learn/tool_controller.hpp"

namespace kvbits::learn {

/// How measured damage becomes training labels.
struct LabelRule {
  double tau = 1e-6;  ///< tolerance: a width is acceptable when its damage is <= tau (nats per position)
  /// Damage enters the loss in units of tau, capped at this many: beyond it every width is
  /// equally unacceptable and the heavy tail (up to 1e5 tau) would swamp the gradient.
  double damage_cap = 100.0;

  /// @throw Error(invalid_argument) unless tau and the cap are finite and positive.
  void validate() const {
    kvbits::detail::require(std::isfinite(tau) && tau > 0.0 && std::isfinite(damage_cap) && damage_cap > 0.0,
                            Errc::invalid_argument, "tau and the damage cap must be finite and > 0");
  }
};

/**
 * @param damage [widths] a head's measured damage, cheapest width first.
 * @param tau    the tolerance.
 * @return the class of the cheapest width whose damage is <= tau, or the widest width when none is.
 */
inline std::uint32_t target_class(std::span<const float, kControllerWidths> damage, double tau) noexcept {
  for (std::size_t b = 0; b < damage.size(); ++b) {
    if (static_cast<double>(damage[b]) <= tau) return static_cast<std::uint32_t>(b);
  }
  return static_cast<std::uint32_t>(damage.size() - 1);
}

/**
 * The training set of a dataset: each sample's inputs, per head the target class
 * (target_class) and the damage in units of tau capped at rule.damage_cap, and its document
 * as the group (so held-back splits keep documents whole).
 * @throw Error(invalid_argument) for an invalid rule.
 */
inline TrainingSet<ControllerNet> make_training_set(const DamageDataset& data, const LabelRule& rule) {
  rule.validate();
  TrainingSet<ControllerNet> set;
  for (const DamageSample& s : data.samples) {
    std::array<float, kControllerWidths> key{};
    std::array<float, kControllerWidths> value{};
    for (std::size_t b = 0; b < kControllerWidths; ++b) {
      key[b] = static_cast<float>(std::min(static_cast<double>(s.key_damage[b]) / rule.tau, rule.damage_cap));
      value[b] =
          static_cast<float>(std::min(static_cast<double>(s.value_damage[b]) / rule.tau, rule.damage_cap));
    }
    set.add(s.inputs, target_class(s.key_damage, rule.tau), target_class(s.value_damage, rule.tau), key,
            value, s.document);
  }
  return set;
}

/**
 * The loss's price of each width: cost(b) = storage bits per element of width b (group metadata
 * included, as the dataset recorded for the cache options it was labelled with) / 16, for keys
 * and values alike. A memory model: it stands in for the attention-time cost until one is
 * fitted to the attention benchmark.
 */
inline std::array<std::array<double, kControllerWidths>, kHeads> width_costs(const DamageDataset& data) {
  kvbits::detail::require(data.bits_per_element.size() == kControllerWidths, Errc::invalid_argument,
                          "dataset: one bits/element value per width expected");
  std::array<double, kControllerWidths> cost{};
  for (std::size_t b = 0; b < kControllerWidths; ++b) cost[b] = data.bits_per_element[b] / 16.0;
  return {cost, cost};
}

}  // namespace kvbits::learn
