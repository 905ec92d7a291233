// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cmath>
#include <cstddef>

#include <Eigen/Core>

#include "kvbits/controller/training_set.hpp"

namespace kvbits {

/**
 * The controller's training loss, per sample and head h (key, value), with
 * p = softmax(logits of h) over the width classes b:
 *
 *   L_h = w_ce * CE(p, target_h) + lambda * sum_b p(b) * cost_h(b) + mu * sum_b p(b) * damage_h(b)
 *
 * summed over both heads and averaged over the samples. cost_h(b) is a fixed
 * per-width price (memory or attention time); damage_h(b) the sample's
 * measured damage at width b. Larger lambda buys cheaper widths, larger mu
 * safer ones; w_ce = 0 trains on the two expectations alone.
 * @tparam Widths classes per head.
 */
template <std::size_t Widths>
struct LossOptions {
  double cross_entropy_weight = 1.0;  ///< w_ce, >= 0
  double lambda = 0.0;                ///< weight of the expected cost, >= 0
  double mu = 0.0;                    ///< weight of the expected damage, >= 0
  /// [kHeads][Widths] cost_h(b), finite; e.g. bits per element relative to 16.
  std::array<std::array<double, Widths>, kHeads> cost{};
};

/// The loss terms, each averaged over samples and summed over heads.
struct LossTerms {
  double cross_entropy = 0.0;    ///< mean CE(p, target), unweighted
  double expected_cost = 0.0;    ///< mean sum_b p(b) cost(b), unweighted
  double expected_damage = 0.0;  ///< mean sum_b p(b) damage(b), unweighted
  double total = 0.0;            ///< w_ce * cross_entropy + lambda * expected_cost + mu * expected_damage

  /// Adds `other` term by term.
  LossTerms& operator+=(const LossTerms& other) noexcept {
    cross_entropy += other.cross_entropy;
    expected_cost += other.expected_cost;
    expected_damage += other.expected_damage;
    total += other.total;
    return *this;
  }
  /// Multiplies every term by `scale`.
  LossTerms& operator*=(double scale) noexcept {
    cross_entropy *= scale;
    expected_cost *= scale;
    expected_damage *= scale;
    total *= scale;
    return *this;
  }
};

/**
 * @tparam Widths a WidthList.
 * @return cost(b) = b / 16 for both heads: storage bits relative to fp16.
 */
template <class Widths>
constexpr std::array<std::array<double, Widths::size>, kHeads> bits_cost() noexcept {
  std::array<double, Widths::size> cost{};
  for (std::size_t i = 0; i < Widths::size; ++i) cost[i] = static_cast<double>(Widths::kValues[i]) / 16.0;
  return {cost, cost};
}

namespace detail {

/**
 * The loss of one head for one sample and, when `gradient` is not null, its
 * derivative with respect to the logits:
 *   dL/dz = w_ce * (p - onehot(target)) + p .* (a - sum_b p(b) a(b)),  a = lambda * cost + mu * damage.
 * @param logits [Widths] the head's logits.
 * @param target its class.
 * @param cost [Widths] the head's cost; @param damage [Widths] or null (all 0).
 * @param gradient null, or receives dL/dz multiplied by `scale`.
 * @return the head's terms (unscaled).
 */
template <class Vector, std::size_t Widths>
LossTerms head_loss(const Vector& logits, std::size_t target, const std::array<double, Widths>& cost,
                    const float* damage, const LossOptions<Widths>& options, Vector* gradient,
                    double scale) noexcept {
  using Scalar = typename Vector::Scalar;
  const Scalar top = logits.maxCoeff();
  const Vector shifted = (logits.array() - top).exp().matrix();
  const double total = static_cast<double>(shifted.sum());
  LossTerms terms;
  // CE = log sum exp(z) - z_target, from the shifted sum: no overflow, no log(0).
  terms.cross_entropy =
      std::log(total) - static_cast<double>(logits[static_cast<Eigen::Index>(target)] - top);
  std::array<double, Widths> p{};
  std::array<double, Widths> a{};
  double expected_a = 0.0;
  for (std::size_t b = 0; b < Widths; ++b) {
    p[b] = static_cast<double>(shifted[static_cast<Eigen::Index>(b)]) / total;
    const double d = damage == nullptr ? 0.0 : static_cast<double>(damage[b]);
    terms.expected_cost += p[b] * cost[b];
    terms.expected_damage += p[b] * d;
    a[b] = options.lambda * cost[b] + options.mu * d;
    expected_a += p[b] * a[b];
  }
  terms.total = options.cross_entropy_weight * terms.cross_entropy + options.lambda * terms.expected_cost +
                options.mu * terms.expected_damage;
  if (gradient != nullptr) {
    for (std::size_t b = 0; b < Widths; ++b) {
      const double ce = options.cross_entropy_weight * (p[b] - (b == target ? 1.0 : 0.0));
      (*gradient)[static_cast<Eigen::Index>(b)] =
          static_cast<Scalar>(scale * (ce + p[b] * (a[b] - expected_a)));
    }
  }
  return terms;
}

}  // namespace detail
}  // namespace kvbits
