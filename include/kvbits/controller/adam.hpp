// SPDX-License-Identifier: MIT
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "kvbits/controller/dense_layer.hpp"
#include "kvbits/core/error.hpp"

namespace kvbits {

/// Settings of the Adam optimiser (Kingma and Ba).
struct AdamOptions {
  double learning_rate = 1e-3;  ///< step size, finite and > 0
  double beta1 = 0.9;           ///< decay of the gradient mean, in [0, 1)
  double beta2 = 0.999;         ///< decay of the squared-gradient mean, in [0, 1)
  double epsilon = 1e-8;        ///< added to the root mean square, finite and > 0

  /// @throws Error(invalid_argument) naming the setting outside its range.
  void validate() const {
    detail::require(std::isfinite(learning_rate) && learning_rate > 0.0, Errc::invalid_argument,
                    "Adam learning rate must be finite and > 0");
    detail::require(beta1 >= 0.0 && beta1 < 1.0 && beta2 >= 0.0 && beta2 < 1.0, Errc::invalid_argument,
                    "Adam beta1 and beta2 must be in [0, 1)");
    detail::require(std::isfinite(epsilon) && epsilon > 0.0, Errc::invalid_argument,
                    "Adam epsilon must be finite and > 0");
  }
};

/**
 * Adam over a tuple of DenseLayers (Mlp::Layers): per parameter,
 *   m <- beta1 m + (1 - beta1) g,   v <- beta2 v + (1 - beta2) g^2,
 *   p <- p - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + epsilon).
 * The bias-correction powers are running products, not std::pow, so a run is
 * reproducible wherever the elementwise arithmetic is.
 * @tparam Layers the parameter tuple type.
 */
template <class Layers>
class Adam {
 public:
  /// @param options validated settings.
  explicit Adam(const AdamOptions& options) : options_(options) { options_.validate(); }

  /**
   * One update of `parameters` with `gradient`.
   * @param parameters updated in place.
   * @param gradient the loss gradient, same shapes.
   */
  void step(Layers& parameters, const Layers& gradient) noexcept {
    ++steps_;
    beta1_power_ *= options_.beta1;
    beta2_power_ *= options_.beta2;
    const double b1 = options_.beta1;
    const double b2 = options_.beta2;
    const double step_size = options_.learning_rate / (1.0 - beta1_power_);
    const double v_scale = 1.0 / (1.0 - beta2_power_);
    const double eps = options_.epsilon;
    detail::for_each_tensor(
        [&](auto& p, const auto& g, auto& m, auto& v) {
          using Scalar = typename std::remove_reference_t<decltype(p)>::Scalar;
          m = Scalar(b1) * m + Scalar(1.0 - b1) * g;
          v = Scalar(b2) * v + Scalar(1.0 - b2) * g.cwiseProduct(g);
          p.array() -= Scalar(step_size) * m.array() / ((Scalar(v_scale) * v.array()).sqrt() + Scalar(eps));
        },
        parameters, gradient, m_, v_);
  }

  /// @return updates taken so far.
  [[nodiscard]] std::uint64_t steps() const noexcept { return steps_; }

 private:
  AdamOptions options_;
  Layers m_{};                // gradient mean, per parameter
  Layers v_{};                // squared-gradient mean, per parameter
  double beta1_power_ = 1.0;  // beta1^steps
  double beta2_power_ = 1.0;  // beta2^steps
  std::uint64_t steps_ = 0;
};

}  // namespace kvbits
