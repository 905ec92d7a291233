// SPDX-License-Identifier: MIT
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "kvbits/codec/format.hpp"
#include "kvbits/core/decision.hpp"

namespace kvbits {

/**
 * A Backend packs vectors and computes the two products attention needs over
 * packed data. It is an empty tag type with static members only.
 */
template <class B>
concept Backend = requires {
  { B::name() } -> std::convertible_to<std::string_view>;
  { B::alignment() } -> std::convertible_to<std::size_t>;
  { B::available() } -> std::convertible_to<bool>;
}
&&requires(const QuantFormat& format, std::span<const float> x, std::span<std::uint8_t> out,
           std::span<const std::uint8_t> in, std::span<float> y, const float* q, const std::uint8_t* rows,
           float* scores, std::size_t n, float w) {
  B::encode(format, x, out);
  B::decode(format, in, y);
  { B::dot(format, x, in) } -> std::convertible_to<float>;
  B::axpy(format, w, in, y);
  B::dot_rows(format, q, n, rows, n, n, scores);
  B::axpy_rows(format, q, n, rows, n, n, scores);
};

/**
 * A Policy decides the storage precision of a token from what is known about
 * it: position, id and a saliency feature vector.
 */
template <class P>
concept Policy = requires(P& policy, const TokenInfo& token) {
  { policy.decide(token) } -> std::convertible_to<BitDecision>;
};

/**
 * What a saliency feature extractor sees for one token: its id and position,
 * the model's next-token distribution at that position, and the attention the
 * token has received so far (summed over query heads, one entry per step).
 */
struct FeatureContext {
  std::int32_t token_id = -1;
  std::size_t position = 0;
  std::span<const float> next_token_probabilities{};  // [vocab]
  std::span<const float> attention_received{};        // [steps]
};

/**
 * A FeatureExtractor turns a token's context into a fixed number of features.
 */
template <class F>
concept FeatureExtractor = requires(F& extractor, const FeatureContext& context, std::span<float> out) {
  { F::kFeatureCount } -> std::convertible_to<std::size_t>;
  { F::name() } -> std::convertible_to<std::string_view>;
  extractor.extract(context, out);
};

}  // namespace kvbits
