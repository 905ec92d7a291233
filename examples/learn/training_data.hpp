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
#include <string>
#include <string_view>
#include <tuple>

#include "kvbits/controller/loss.hpp"
#include "kvbits/controller/training_set.hpp"
#include "kvbits/core/error.hpp"
#include "learn/damage_dataset.hpp"
#include "learn/tool_controller.hpp"

namespace kvbits::learn {

/// Per input of the controller, in input order: true for an input an ablation drops.
using InputMask = std::array<bool, kControllerInputs>;
/// Per width class of a head, cheapest first: true for a width the controller may choose.
using WidthMask = std::array<bool, kControllerWidths>;

/// Every width allowed (the default of LabelRule::allowed).
inline constexpr WidthMask kAllWidths = [] {
  WidthMask all{};
  all.fill(true);
  return all;
}();

/**
 * The output bias of a width class the controller may not choose. Its weights are 0, so its
 * logit is this constant, 10^4 below any other: softmax gives it a probability below 1e-37
 * (Eigen's exp saturates near e^-88 instead of reaching 0), so it is never the argmax nor reached
 * by a quantile, and its gradient is as small, so training moves its weights by less than 1e-30.
 * Finite, so the weight file stores it like any other bias.
 */
inline constexpr float kMaskedLogit = -1.0e4f;

/// How measured damage becomes training labels.
struct LabelRule {
  double tau = 1e-6;  ///< tolerance: a width is acceptable when its damage is <= tau (nats per position)
  /// Damage enters the loss in units of tau, capped at this many: beyond it every width is
  /// equally unacceptable and the heavy tail (up to 1e5 tau) would swamp the gradient.
  double damage_cap = 100.0;
  /// The widths a target may be; the others are never targets (an ablation's restricted widths).
  WidthMask allowed = kAllWidths;

  /// @throw Error(invalid_argument) unless tau and the cap are finite and positive and at least
  ///        two widths are allowed, the widest among them.
  void validate() const {
    kvbits::detail::require(std::isfinite(tau) && tau > 0.0 && std::isfinite(damage_cap) && damage_cap > 0.0,
                            Errc::invalid_argument, "tau and the damage cap must be finite and > 0");
    kvbits::detail::require(std::count(allowed.begin(), allowed.end(), true) >= 2 && allowed.back(),
                            Errc::invalid_argument,
                            "the allowed widths must be at least two and include the widest (16)");
  }
};

/**
 * @param damage  [widths] a head's measured damage, cheapest width first.
 * @param tau     the tolerance.
 * @param allowed the widths a target may be (all by default).
 * @return the class of the cheapest allowed width whose damage is <= tau, or the widest allowed
 *         width when none is.
 */
inline std::uint32_t target_class(std::span<const float, kControllerWidths> damage, double tau,
                                  const WidthMask& allowed = kAllWidths) noexcept {
  std::size_t widest = 0;
  for (std::size_t b = 0; b < damage.size(); ++b) {
    if (!allowed[b]) continue;
    if (static_cast<double>(damage[b]) <= tau) return static_cast<std::uint32_t>(b);
    widest = b;
  }
  return static_cast<std::uint32_t>(widest);
}

/**
 * @param list comma-separated input names, e.g. "log_age,received_mass"; may be empty.
 * @return the mask of those inputs.
 * @throw Error(invalid_argument) naming an input the controller does not have.
 */
inline InputMask parse_input_mask(std::string_view list) {
  InputMask mask{};
  const auto names = controller_input_names();
  while (!list.empty()) {
    const std::size_t comma = std::min(list.find(','), list.size());
    const std::string_view name = list.substr(0, comma);
    list.remove_prefix(std::min(comma + 1, list.size()));
    const auto at = std::find(names.begin(), names.end(), name);
    if (at == names.end()) {
      std::string message = "the controller has no input '";
      message += name;
      message += "'; its inputs are:";
      for (const std::string_view known : names) {
        message += ' ';
        message += known;
      }
      throw Error(Errc::invalid_argument, message);
    }
    mask[static_cast<std::size_t>(at - names.begin())] = true;
  }
  return mask;
}

/**
 * @param list comma-separated widths, e.g. "2,4,8,16": a subset of ControllerWidths.
 * @return the mask of those widths.
 * @throw Error(invalid_argument) for a width the controller does not have.
 */
inline WidthMask parse_width_mask(std::string_view list) {
  WidthMask mask{};
  while (!list.empty()) {
    const std::size_t comma = std::min(list.find(','), list.size());
    const std::string item(list.substr(0, comma));
    list.remove_prefix(std::min(comma + 1, list.size()));
    std::size_t index = kControllerWidths;
    for (std::size_t b = 0; b < kControllerWidths; ++b) {
      if (item == std::to_string(ControllerWidths::kValues[b])) index = b;
    }
    kvbits::detail::require(index < kControllerWidths, Errc::invalid_argument,
                            "the controller has no width '" + item + "' (its widths: 2,3,4,5,6,8,16)");
    mask[index] = true;
  }
  return mask;
}

/// Sets the `dropped` inputs of every sample of `set` to 0: training then sees a constant.
template <class Set>
void drop_inputs(Set& set, const InputMask& dropped) noexcept {
  for (std::size_t i = 0; i < set.size(); ++i) {
    for (std::size_t f = 0; f < kControllerInputs; ++f) {
      if (dropped[f]) set.features[i * kControllerInputs + f] = 0.0f;
    }
  }
}

/**
 * Makes `net` ignore the `dropped` inputs and never choose a width outside `allowed`: the first
 * layer's weights of each dropped input are set to 0, and each head's output row of a disallowed
 * width gets weights 0 and bias kMaskedLogit. Applied to the initial weights of a training run on
 * a set whose dropped inputs are 0 (drop_inputs), it holds through training (the dropped columns
 * get gradient 0 exactly, the masked rows less than 1e-30); applied again to the result, the
 * saved file holds exact zeros.
 */
inline void apply_masks(ControllerNet& net, const InputMask& dropped, const WidthMask& allowed) noexcept {
  auto& first = std::get<0>(net.layers());
  for (std::size_t f = 0; f < kControllerInputs; ++f) {
    if (dropped[f]) first.weight.col(static_cast<Eigen::Index>(f)).setZero();
  }
  auto& last = std::get<ControllerNet::kLayers - 1>(net.layers());
  for (std::size_t head = 0; head < kHeads; ++head) {
    for (std::size_t b = 0; b < kControllerWidths; ++b) {
      if (allowed[b]) continue;
      const auto row = static_cast<Eigen::Index>(head * kControllerWidths + b);
      last.weight.row(row).setZero();
      last.bias[row] = kMaskedLogit;
    }
  }
}

/**
 * The training set of a dataset: each sample's inputs, per head the target class
 * (target_class among rule.allowed) and the damage in units of tau capped at rule.damage_cap, and its
 * document as the group (so held-back splits keep documents whole).
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
    set.add(s.inputs, target_class(s.key_damage, rule.tau, rule.allowed),
            target_class(s.value_damage, rule.tau, rule.allowed), key, value, s.document);
  }
  return set;
}

}  // namespace kvbits::learn
