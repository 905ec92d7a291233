// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

#include <Eigen/Core>

#include "kvbits/controller/dense_layer.hpp"
#include "kvbits/controller/head.hpp"
#include "kvbits/controller/width_list.hpp"
#include "kvbits/core/decision.hpp"

namespace kvbits {

/**
 * The hidden layer sizes of an Mlp, input side first, e.g. `Hidden<32, 16>`;
 * `Hidden<>` makes the heads linear in the (normalised) features.
 * @tparam Sizes each >= 1.
 */
template <std::size_t... Sizes>
struct Hidden {
  static_assert(((Sizes >= 1) && ...), "every Hidden<...> layer size must be >= 1");
  static constexpr std::size_t size = sizeof...(Sizes);                 ///< hidden layers
  static constexpr std::array<std::size_t, size> kValues = {Sizes...};  ///< their sizes
};

namespace detail {
template <class T>
inline constexpr bool kAlwaysFalse = false;
}  // namespace detail

/**
 * A small multilayer perceptron that maps a token's features to two width
 * classes, one for its key and one for its value:
 *
 *   x  = (features - input_mean) / input_std          normalisation, stored with the weights
 *   h1 = relu(W1 x + b1), ..., hk = relu(Wk h(k-1) + bk)   the Hidden<...> layers
 *   z  = Wo hk + bo                                    2 * Widths::size logits
 *   key logits = z[0, W), value logits = z[W, 2W)      W = Widths::size, class i = Widths::kValues[i] bits
 *
 * Spelled `Mlp<Inputs, Hidden<sizes...>, WidthList<bits...>>`, e.g.
 * `Mlp<7, Hidden<32, 16>, WidthList<2, 4, 8, 16>>` (the two lists are types
 * because a parameter pack must come last). Every size is a compile-time
 * constant, every tensor a fixed-size Eigen object stored inline, and
 * forward() allocates nothing. A default-constructed Mlp has zero weights,
 * mean 0 and std 1.
 *
 * @tparam In features per token, >= 1.
 * @tparam HiddenLayers a Hidden<...>.
 * @tparam Widths a WidthList<...>.
 * @tparam Scalar float (inference and weight files) or double.
 */
template <std::size_t In, class HiddenLayers, class Widths, class Scalar = float>
class Mlp {
  static_assert(detail::kAlwaysFalse<HiddenLayers>,
                "spell an Mlp as Mlp<Inputs, Hidden<sizes...>, WidthList<bits...>>, e.g. "
                "Mlp<7, Hidden<32, 16>, WidthList<2, 4, 8, 16>>");
};

/// The Mlp (see the primary template) for its one valid spelling, `Mlp<In, Hidden<...>, WidthList<...>>`.
template <std::size_t In, std::size_t... HiddenSizes, int... Bits, class Scalar>
class Mlp<In, Hidden<HiddenSizes...>, WidthList<Bits...>, Scalar> {
  static_assert(In >= 1, "an Mlp needs at least one input feature");
  static_assert(std::is_floating_point_v<Scalar>, "an Mlp holds float or double parameters");

 public:
  using scalar_type = Scalar;                  ///< float or double
  using hidden_type = Hidden<HiddenSizes...>;  ///< the hidden layer sizes
  using widths_type = WidthList<Bits...>;      ///< the widths each head chooses from

  static constexpr std::size_t kInputs = In;                          ///< features per token
  static constexpr std::size_t kWidths = widths_type::size;           ///< classes per head
  static constexpr std::size_t kOutputs = 2 * kWidths;                ///< key logits, then value logits
  static constexpr std::size_t kLayers = sizeof...(HiddenSizes) + 1;  ///< weight layers (hidden + output)
  /// Sizes of the activations, input first: {In, HiddenSizes..., kOutputs}.
  static constexpr std::array<std::size_t, kLayers + 1> kSizes = {In, HiddenSizes..., kOutputs};

 private:
  template <std::size_t... I>
  static auto layer_tuple(std::index_sequence<I...>)
      -> std::tuple<DenseLayer<Scalar, kSizes[I + 1], kSizes[I]>...>;
  template <std::size_t... I>
  static auto activation_tuple(std::index_sequence<I...>)
      -> std::tuple<Eigen::Matrix<Scalar, static_cast<int>(kSizes[I]), 1>...>;

 public:
  /// The parameters: layer i maps activation i to activation i + 1.
  using Layers = decltype(layer_tuple(std::make_index_sequence<kLayers>{}));
  /// Every activation of one forward pass, input first (hidden ones after the ReLU, then the logits).
  using Activations = decltype(activation_tuple(std::make_index_sequence<kLayers + 1>{}));
  using Input = Eigen::Matrix<Scalar, static_cast<int>(In), 1>;            ///< [In]
  using Logits = Eigen::Matrix<Scalar, static_cast<int>(kOutputs), 1>;     ///< [2 * kWidths]
  using HeadVector = Eigen::Matrix<Scalar, static_cast<int>(kWidths), 1>;  ///< [kWidths]

  /// Parameters in total: every weight and bias.
  static constexpr std::size_t kParameterCount = [] {
    std::size_t count = 0;
    for (std::size_t i = 0; i < kLayers; ++i) count += kSizes[i + 1] * (kSizes[i] + 1);
    return count;
  }();

  /// Logits of both heads for one token.
  struct Output {
    HeadVector key;    ///< [kWidths] key width logits, cheapest width first
    HeadVector value;  ///< [kWidths] value width logits, cheapest width first
  };

  /**
   * @param features the raw (not normalised) features.
   * @return the logits of both heads. Allocation-free.
   */
  [[nodiscard]] Output forward(const Input& features) const noexcept {
    return split(forward_normalized(normalize(features)));
  }

  /// @return (features - input_mean) / input_std.
  [[nodiscard]] Input normalize(const Input& features) const noexcept {
    return (features - input_mean_).cwiseQuotient(input_std_);
  }

  /**
   * @param x normalised features.
   * @return the 2 * kWidths logits, key head first.
   */
  [[nodiscard]] Logits forward_normalized(const Input& x) const noexcept { return run_from<0>(x); }

  /// @return the most probable (argmax) width of each head for raw `features`.
  [[nodiscard]] BitDecision predict(const Input& features) const noexcept {
    const Output out = forward(features);
    return {widths_type::kValues[detail::argmax(out.key)], widths_type::kValues[detail::argmax(out.value)]};
  }

  /// @return the logits split into the key head (first kWidths) and the value head.
  [[nodiscard]] static Output split(const Logits& logits) noexcept {
    return {logits.template head<static_cast<int>(kWidths)>(),
            logits.template tail<static_cast<int>(kWidths)>()};
  }

  [[nodiscard]] Layers& layers() noexcept { return layers_; }                     ///< the parameters
  [[nodiscard]] const Layers& layers() const noexcept { return layers_; }         ///< the parameters
  [[nodiscard]] Input& input_mean() noexcept { return input_mean_; }              ///< per-feature mean
  [[nodiscard]] const Input& input_mean() const noexcept { return input_mean_; }  ///< per-feature mean
  [[nodiscard]] Input& input_std() noexcept { return input_std_; }                ///< per-feature std, > 0
  [[nodiscard]] const Input& input_std() const noexcept { return input_std_; }    ///< per-feature std, > 0

  /// @return true when every parameter and normalisation value is bit-for-bit equal (NaN never is).
  friend bool operator==(const Mlp& a, const Mlp& b) noexcept {
    bool equal = a.input_mean_ == b.input_mean_ && a.input_std_ == b.input_std_;
    detail::for_each_tensor([&equal](const auto& x, const auto& y) { equal = equal && x == y; }, a.layers_,
                            b.layers_);
    return equal;
  }

 private:
  template <std::size_t I, class Vector>
  Logits run_from(const Vector& x) const noexcept {
    const auto& layer = std::get<I>(layers_);
    auto z = layer.bias;
    z.noalias() += layer.weight * x;
    if constexpr (I + 1 == kLayers) {
      return z;
    } else {
      z = z.cwiseMax(Scalar{0});
      return run_from<I + 1>(z);
    }
  }

  Layers layers_{};                   // kLayers dense layers
  Input input_mean_ = Input::Zero();  // [In] subtracted from the raw features
  Input input_std_ = Input::Ones();   // [In] then divided into them
};

}  // namespace kvbits
