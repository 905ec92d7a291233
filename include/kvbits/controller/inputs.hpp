// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "kvbits/core/error.hpp"
#include "kvbits/features/attention_variance_feature.hpp"
#include "kvbits/features/decision_feature_context.hpp"
#include "kvbits/features/feature.hpp"
#include "kvbits/features/feature_set.hpp"
#include "kvbits/features/received_mass_feature.hpp"
#include "kvbits/policy/decision_context.hpp"

namespace kvbits {

/**
 * Features that an engine computes and hands the cache in TokenInfo::features
 * (append's TokenInfo, or set_features while the token awaits a decision),
 * named for a controller's input list: provides `static constexpr std::size_t
 * size` and a constexpr `static names()` (a FeatureSet or FeatureExtractor
 * qualifies; extract() is not called).
 */
template <class F>
concept NamedFeatures = requires {
  { F::size } -> std::convertible_to<std::size_t>;
  typename std::integral_constant<std::size_t, F::size>;
  { F::names() } -> std::convertible_to<std::span<const std::string_view>>;
};

/// No supplied features: the controller reads only what it extracts from the decision context.
struct NoSuppliedFeatures {
  static constexpr std::size_t size = 0;  ///< no features
  /// @return no names.
  static constexpr std::span<const std::string_view> names() noexcept { return {}; }
};

/**
 * Whether a feature extractor reads AttentionStats, so a policy built on it
 * must ask the cache to keep them. True for AttentionVarianceFeature,
 * ReceivedMassFeature, a FeatureSet holding either, and any type with
 * `static constexpr bool kReadsAttentionStats = true`; specialise it for an
 * extractor of your own that reads attention and cannot carry that member.
 */
template <class F>
    struct reads_attention_stats : std::bool_constant < requires {
  requires F::kReadsAttentionStats;
} > {};
template <>
struct reads_attention_stats<AttentionVarianceFeature> : std::true_type {};
template <>
struct reads_attention_stats<ReceivedMassFeature> : std::true_type {};
template <class... Parts>
struct reads_attention_stats<FeatureSet<Parts...>>
    : std::bool_constant<(reads_attention_stats<Parts>::value || ...)> {};

/// reads_attention_stats<F>::value.
template <class F>
inline constexpr bool reads_attention_stats_v = reads_attention_stats<F>::value;

/**
 * The input vector of a learned controller for one decision:
 * `Features::size` features extracted from the DecisionContext (through
 * make_feature_context: age, attention statistics, position, layer, id), then
 * the first `Supplied::size` entries of the token's TokenInfo::features (the
 * write-time features the engine computed: entropy, confidence, rarity, ...,
 * which the cache does not keep the model output to recompute). The names
 * follow the same order; a weight file records them.
 *
 * A distribution feature (entropy, confidence) placed in `Features` sees no
 * distribution at decision time and gives its neutral value: put it in
 * `Supplied` and hand its values to the cache instead.
 * @tparam Features a FeatureExtractor (e.g. a FeatureSet) whose names() is constexpr.
 * @tparam Supplied NamedFeatures read from TokenInfo::features, or NoSuppliedFeatures.
 */
template <FeatureExtractor Features, NamedFeatures Supplied = NoSuppliedFeatures>
class ControllerInputs {
 public:
  using features_type = Features;  ///< the features extracted from the decision context
  using supplied_type = Supplied;  ///< the features read from TokenInfo::features

  static constexpr std::size_t kExtracted = Features::size;  ///< inputs from the decision context
  static constexpr std::size_t kSupplied = Supplied::size;   ///< inputs from TokenInfo::features
  /// All inputs, extracted then supplied.
  static constexpr std::size_t size = kExtracted + kSupplied;
  static_assert(size >= 1, "a controller needs at least one input feature");

  /// Every input's name: Features' names, then Supplied's.
  static constexpr std::array<std::string_view, size> kNames = [] {
    std::array<std::string_view, size> all{};
    std::size_t next = 0;
    for (const std::string_view name : Features::names()) all[next++] = name;
    for (const std::string_view name : Supplied::names()) all[next++] = name;
    return all;
  }();

  /// True when the extracted features read attention statistics (see reads_attention_stats).
  static constexpr bool kReadsAttentionStats = reads_attention_stats_v<Features>;

  /// Default-constructs the extractor (not available when it needs arguments, e.g. RarityFeature).
  ControllerInputs() = default;

  /// @param features the extractor instance.
  explicit ControllerInputs(Features features) : features_(std::move(features)) {}

  /// @return the names of all `size` inputs, in input order.
  static constexpr std::span<const std::string_view, size> names() noexcept { return kNames; }

  /**
   * Writes the inputs for one decision. Allocation-free unless it throws.
   * @param context what the cache passed to the policy.
   * @param out receives the `size` inputs.
   * @throws Error(shape_mismatch) when context.token.features holds fewer than kSupplied values.
   */
  void extract(const DecisionContext& context, std::span<float, size> out) const {
    if constexpr (kExtracted > 0) {
      features_.extract(make_feature_context(context), out.first(kExtracted));
    }
    if constexpr (kSupplied > 0) {
      const std::span<const float> supplied = context.token.features;
      if (supplied.size() < kSupplied) throw_missing_supplied(supplied.size());
      std::copy_n(supplied.begin(), kSupplied, out.begin() + kExtracted);
    }
  }

  /// @return the extractor.
  [[nodiscard]] const Features& features() const noexcept { return features_; }

 private:
  [[noreturn, gnu::cold]] static void throw_missing_supplied(std::size_t have) {
    std::string names;
    for (const std::string_view name : Supplied::names()) {
      if (!names.empty()) names += ", ";
      names += name;
    }
    std::string message = "the learned controller reads ";
    message += std::to_string(kSupplied);
    message += " supplied features (";
    message += names;
    message += ") from TokenInfo::features but the token has ";
    message += std::to_string(have);
    message += "; hand them to the cache with append's TokenInfo or with set_features";
    throw Error(Errc::shape_mismatch, message);
  }

  Features features_;  // extracts the decision-time inputs
};

}  // namespace kvbits
