// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

#include <Eigen/Core>

namespace kvbits {

/**
 * One fully connected layer of an Mlp: y = weight * x + bias, every size a
 * compile-time constant, so both tensors are fixed-size Eigen objects stored
 * inline (no allocation).
 * @tparam Scalar float (inference, weight files) or double (e.g. gradient checks).
 * @tparam Out, In output and input sizes, >= 1.
 */
template <class Scalar, std::size_t Out, std::size_t In>
struct DenseLayer {
  static_assert(std::is_floating_point_v<Scalar>, "a DenseLayer holds float or double parameters");
  static_assert(Out >= 1 && In >= 1, "every Mlp layer size must be >= 1");
  static_assert(Out * In * sizeof(Scalar) <= EIGEN_STACK_ALLOCATION_LIMIT,
                "an Mlp layer this large does not fit a fixed-size Eigen matrix "
                "(EIGEN_STACK_ALLOCATION_LIMIT): use smaller Hidden<...> sizes");

  static constexpr std::size_t kOut = Out;  ///< outputs
  static constexpr std::size_t kIn = In;    ///< inputs

  /// A fixed-size [Out][In] matrix.
  using Weight = Eigen::Matrix<Scalar, static_cast<int>(Out), static_cast<int>(In)>;
  /// A fixed-size [Out] vector.
  using Bias = Eigen::Matrix<Scalar, static_cast<int>(Out), 1>;

  Weight weight = Weight::Zero();  ///< [Out][In]: weight(o, i) multiplies input i for output o
  Bias bias = Bias::Zero();        ///< [Out]
};

namespace detail {

template <std::size_t I, class Fn, class First, class... Rest>
void visit_layer(Fn& fn, First& first, Rest&... rest) {
  fn(std::get<I>(first).weight, std::get<I>(rest).weight...);
  fn(std::get<I>(first).bias, std::get<I>(rest).bias...);
}

template <std::size_t... I, class Fn, class First, class... Rest>
void for_each_tensor_impl(std::index_sequence<I...>, Fn& fn, First& first, Rest&... rest) {
  (visit_layer<I>(fn, first, rest...), ...);
}

/**
 * Calls `fn(tensor, same_tensor_of_others...)` for every weight and then bias
 * of every layer, first layer first, walking one or more tuples of DenseLayers
 * of the same shapes in step (parameters, gradients, optimiser moments).
 */
template <class Fn, class First, class... Rest>
void for_each_tensor(Fn&& fn, First& first, Rest&... rest) {
  constexpr std::size_t kLayers = std::tuple_size_v<std::remove_const_t<First>>;
  for_each_tensor_impl(std::make_index_sequence<kLayers>{}, fn, first, rest...);
}

}  // namespace detail
}  // namespace kvbits
