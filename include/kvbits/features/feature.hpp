// SPDX-License-Identifier: MIT
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>

#include "kvbits/core/error.hpp"
#include "kvbits/policy/decision_context.hpp"

namespace kvbits {

/**
 * What a saliency feature extractor sees for one token: its id, position and
 * layer, the model's next-token distribution at that position (write-time
 * features; as probabilities, or as the logits that LogitFeatures reads), and
 * the cache's view of it (decision-time features: attention statistics, age).
 * A part that is unknown is left empty or zero.
 */
struct FeatureContext {
  std::int32_t token_id = -1;                         ///< the token's vocabulary id
  std::size_t position = 0;                           ///< its absolute position
  std::size_t layer = 0;                              ///< the layer deciding
  std::size_t age = 0;                                ///< appends to the layer since its own
  std::int32_t next_token = -1;                       ///< the token that followed it, -1 unknown
  std::span<const float> next_token_probabilities{};  ///< [vocab] at its position, or empty
  AttentionStats attention{};                         ///< statistics the cache kept for it
  std::span<const float> next_token_logits{};  ///< [vocab] the logits behind the distribution, or empty
};

/**
 * A FeatureExtractor turns a token's context into `size` features with names.
 * It provides
 *  - `static constexpr std::size_t size`: how many features it writes, known at compile time;
 *  - `static names()`: their names, convertible to `std::span<const std::string_view>` and
 *    `size` long; the span must outlive the call (return a view of a static array);
 *  - `void extract(const FeatureContext&, std::span<float> out) const`: writes exactly
 *    out[0, size). A feature whose input is missing writes its documented neutral value,
 *    never NaN.
 */
template <class F>
concept FeatureExtractor = requires(const F& extractor, const FeatureContext& context, std::span<float> out) {
  { F::size } -> std::convertible_to<std::size_t>;
  typename std::integral_constant<std::size_t, F::size>;  // size is a constant expression
  { F::names() } -> std::convertible_to<std::span<const std::string_view>>;
  extractor.extract(context, out);
};

namespace detail {

/// Debug-build check that an extractor's output span has room for its `size` features.
inline void check_feature_output(std::span<const float> out, std::size_t size) {
  KVBITS_DEBUG_REQUIRE(out.size() >= size, Errc::shape_mismatch,
                       "feature output span is shorter than the extractor's size");
  static_cast<void>(out);
  static_cast<void>(size);
}

}  // namespace detail
}  // namespace kvbits
