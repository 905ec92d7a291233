// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "kvbits/controller/head.hpp"
#include "kvbits/controller/inputs.hpp"
#include "kvbits/controller/mlp.hpp"
#include "kvbits/controller/weight_file.hpp"
#include "kvbits/core/decision.hpp"
#include "kvbits/core/error.hpp"
#include "kvbits/features/feature.hpp"
#include "kvbits/policy/decision_context.hpp"
#include "kvbits/policy/policy.hpp"

namespace kvbits {

/// Settings of a LearnedPolicy.
struct LearnedPolicyOptions {
  /// Ages (appends since the token's own) at which the cache asks again; strictly increasing, >= 1.
  std::vector<std::size_t> decision_ages{1, 4, 16, 64};
  /**
   * Empty: each head takes its most probable width (argmax of the logits).
   * A value q in (0, 1]: each head takes the cheapest width whose cumulative
   * probability, counted from the cheapest width up, reaches q; a larger q is
   * more careful (0.5 is the median width).
   */
  std::optional<double> quantile{};
};

/**
 * A policy whose widths come from a trained controller: at each decision it
 * builds the controller's inputs (ControllerInputs: `Features` extracted
 * from the DecisionContext through make_feature_context, then `Supplied`
 * read from TokenInfo::features), normalises them and runs the Mlp; each
 * head's width follows LearnedPolicyOptions::quantile (argmax by default).
 * The answer is never wider than context.current, in keys or values, so at a
 * re-decision the token is kept or lowered, never raised (the cache clamps
 * too). The cache asks when a token leaves the window and again at each of
 * decision_ages(); it keeps attention statistics when `Features` reads them
 * (reads_attention_stats). It composes with BudgetPolicy<LearnedPolicy<...>>.
 *
 * decide() allocates nothing (it throws, and then allocates its message,
 * only when the token lacks the supplied features).
 * @tparam Features a FeatureExtractor (e.g. FeatureSet<AgeFeature, ReceivedMassFeature>).
 * @tparam Net an Mlp whose kInputs is Features::size + Supplied::size.
 * @tparam Supplied names of the features read from TokenInfo::features, or NoSuppliedFeatures.
 */
template <FeatureExtractor Features, class Net, NamedFeatures Supplied = NoSuppliedFeatures>
class LearnedPolicy {
 public:
  using inputs_type = ControllerInputs<Features, Supplied>;  ///< what the controller reads
  using net_type = Net;                                      ///< the controller

  // The controller reads exactly the features the policy gathers.
  static_assert(inputs_type::size == Net::kInputs,
                "LearnedPolicy: Features::size + Supplied::size must equal the Mlp's input count: change "
                "Mlp<In, ...>'s In to the number of features, or add or remove features");
  static_assert(
      std::is_same_v<typename Net::scalar_type, float>,
      "LearnedPolicy runs a float controller: use Mlp<In, Hidden<...>, WidthList<...>> (Scalar float)");

  /**
   * @param net the trained controller.
   * @param features the extractor instance (needed when it holds state, e.g. a RarityFeature table).
   * @param options decision ages and the width rule.
   * @throws Error(invalid_argument) for decision ages that are not strictly increasing from >= 1,
   *         or a quantile outside (0, 1].
   */
  explicit LearnedPolicy(Net net, Features features = Features{}, LearnedPolicyOptions options = {})
      : net_(std::move(net)), inputs_(std::move(features)), options_(std::move(options)) {
    const std::vector<std::size_t>& ages = options_.decision_ages;
    for (std::size_t i = 0; i < ages.size(); ++i) {
      detail::require(ages[i] >= 1 && (i == 0 || ages[i] > ages[i - 1]), Errc::invalid_argument,
                      "learned policy decision age " + std::to_string(i) + " (" + std::to_string(ages[i]) +
                          ") breaks the rule: ages must be >= 1 and strictly increasing");
    }
    if (options_.quantile) {
      const double q = *options_.quantile;
      detail::require(std::isfinite(q) && q > 0.0 && q <= 1.0, Errc::invalid_argument,
                      "learned policy quantile must be in (0, 1]");
    }
  }

  /**
   * Reads a controller saved with the names of this policy's inputs.
   * @param path the weight file.
   * @param features, options as for the constructor.
   * @return the policy.
   * @throws the errors of load_weights (a file for other features, sizes or widths is
   *         Error(invalid_argument)) and of the constructor.
   */
  static LearnedPolicy load(const std::filesystem::path& path, Features features = Features{},
                            LearnedPolicyOptions options = {}) {
    return LearnedPolicy(load_weights<Net>(path, names()).net, std::move(features), std::move(options));
  }

  /// @return the names of the controller's inputs, in input order (a weight file must list these).
  static constexpr std::span<const std::string_view, Net::kInputs> names() noexcept {
    return inputs_type::names();
  }

  /**
   * @param context what the cache knows about the token.
   * @return the controller's widths, each no wider than context.current.
   * @throws Error(shape_mismatch) when Supplied is not empty and the token has fewer features.
   */
  [[nodiscard]] BitDecision decide(const DecisionContext& context) const {
    const typename Net::Output out = logits(context);
    const BitDecision chosen{choose(out.key), choose(out.value)};
    return {std::min(chosen.key_bits, context.current.key_bits),
            std::min(chosen.value_bits, context.current.value_bits)};
  }

  /**
   * @param context what the cache knows about the token.
   * @return the controller's logits for it (before the width rule and the clamp to current).
   * @throws as decide().
   */
  [[nodiscard]] typename Net::Output logits(const DecisionContext& context) const {
    std::array<float, Net::kInputs> raw;
    inputs_.extract(context, raw);
    return net_.forward(Eigen::Map<const typename Net::Input>(raw.data()));
  }

  /// @return the ages at which the cache asks again about a stored token.
  [[nodiscard]] std::span<const std::size_t> decision_ages() const noexcept { return options_.decision_ages; }

  /// @return true when the extracted features read attention statistics.
  [[nodiscard]] static constexpr bool wants_attention_stats() noexcept {
    return inputs_type::kReadsAttentionStats;
  }

  [[nodiscard]] const Net& net() const noexcept { return net_; }                           ///< the controller
  [[nodiscard]] const inputs_type& inputs() const noexcept { return inputs_; }             ///< its inputs
  [[nodiscard]] const LearnedPolicyOptions& options() const noexcept { return options_; }  ///< the settings

 private:
  [[nodiscard]] int choose(const typename Net::HeadVector& head) const noexcept {
    const std::size_t index = options_.quantile
                                  ? detail::quantile_class(detail::softmax(head), *options_.quantile)
                                  : detail::argmax(head);
    return Net::widths_type::kValues[index];
  }

  Net net_;                       // weights and normalisation
  inputs_type inputs_;            // builds the input vector
  LearnedPolicyOptions options_;  // ages and width rule
};

}  // namespace kvbits
