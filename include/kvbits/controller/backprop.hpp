// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>
#include <tuple>

#include <Eigen/Core>

#include "kvbits/controller/loss.hpp"

namespace kvbits::detail {

/// Fills activations 1..kLayers of `a` from activation 0 (the normalised input), as Mlp::forward_normalized.
template <std::size_t I = 0, class Net>
void forward_recording(const Net& net, typename Net::Activations& a) noexcept {
  const auto& layer = std::get<I>(net.layers());
  auto& out = std::get<I + 1>(a);
  out = layer.bias;
  out.noalias() += layer.weight * std::get<I>(a);
  if constexpr (I + 1 < Net::kLayers) {
    out = out.cwiseMax(typename Net::scalar_type{0});
    forward_recording<I + 1>(net, a);
  }
}

/**
 * Adds to `gradient` the parameter gradient of a loss whose derivative with
 * respect to the output of layer I is `delta`, walking back to layer 0.
 * A hidden unit passes gradient only where its ReLU output was positive.
 */
template <std::size_t I, class Net, class Delta>
void backward(const Net& net, const typename Net::Activations& a, const Delta& delta,
              typename Net::Layers& gradient) noexcept {
  auto& g = std::get<I>(gradient);
  const auto& input = std::get<I>(a);
  g.weight.noalias() += delta * input.transpose();
  g.bias += delta;
  if constexpr (I > 0) {
    std::tuple_element_t<I, typename Net::Activations> back;
    back.noalias() = std::get<I>(net.layers()).weight.transpose() * delta;
    back = (input.array() > typename Net::scalar_type{0}).select(back, typename Net::scalar_type{0});
    backward<I - 1>(net, a, back, gradient);
  }
}

/// What one sample of a TrainingSet contributes: its targets and damage rows (null when absent).
struct SampleLabels {
  std::array<std::size_t, kHeads> target{};
  std::array<const float*, kHeads> damage{};
};

/// @return the labels of sample `i` of `set`.
template <class Net>
SampleLabels labels_of(const TrainingSet<Net>& set, std::size_t i) noexcept {
  SampleLabels labels;
  for (std::size_t h = 0; h < kHeads; ++h) {
    labels.target[h] = set.heads[h].target[i];
    labels.damage[h] = set.heads[h].damage.empty() ? nullptr : set.heads[h].damage.data() + i * Net::kWidths;
  }
  return labels;
}

/**
 * The loss of one sample with normalised input `a<0>` and, when `gradient` is
 * not null, its parameter gradient times `scale` added to `gradient`.
 * @param a activations; activation 0 must hold the normalised input, the rest is overwritten.
 * @return the sample's terms (unscaled), summed over both heads.
 */
template <class Net>
LossTerms sample_loss(const Net& net, typename Net::Activations& a, const SampleLabels& labels,
                      const LossOptions<Net::kWidths>& options, typename Net::Layers* gradient,
                      double scale) noexcept {
  forward_recording(net, a);
  const typename Net::Output out = Net::split(std::get<Net::kLayers>(a));
  typename Net::HeadVector key_delta, value_delta;
  const bool want = gradient != nullptr;
  LossTerms terms = head_loss(out.key, labels.target[kKeyHead], options.cost[kKeyHead],
                              labels.damage[kKeyHead], options, want ? &key_delta : nullptr, scale);
  terms += head_loss(out.value, labels.target[kValueHead], options.cost[kValueHead],
                     labels.damage[kValueHead], options, want ? &value_delta : nullptr, scale);
  if (want) {
    typename Net::Logits delta;
    // Element by element: GCC 12 misreads Eigen's vectorised block copy of a half-size vector
    // as out of bounds (-Warray-bounds) under AVX-512.
    for (std::size_t b = 0; b < Net::kWidths; ++b) {
      const auto i = static_cast<Eigen::Index>(b);
      delta[i] = key_delta[i];
      delta[i + static_cast<Eigen::Index>(Net::kWidths)] = value_delta[i];
    }
    backward<Net::kLayers - 1>(net, a, delta, *gradient);
  }
  return terms;
}

}  // namespace kvbits::detail
