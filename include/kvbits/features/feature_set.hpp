// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <string_view>
#include <tuple>
#include <utility>

#include "kvbits/features/feature.hpp"

namespace kvbits {

/**
 * Stacks feature extractors into one feature vector: the features of
 * `Parts...` in order, e.g. FeatureSet<EntropyFeature, ConfidenceFeature>
 * writes {entropy, next_token_probability, max_probability}. A FeatureSet is
 * itself a FeatureExtractor, so sets nest.
 *
 * It holds one instance of every part (a RarityFeature carries its table), so
 * copying a set copies its parts. Every part's names() must be usable in a
 * constant expression, as every kvbits feature's is.
 * @tparam Parts FeatureExtractor types, at least one.
 */
template <class... Parts>
class FeatureSet {
  static_assert(sizeof...(Parts) > 0, "FeatureSet needs at least one feature");
  static_assert((FeatureExtractor<Parts> && ...),
                "every FeatureSet part must be a FeatureExtractor: give it `static constexpr std::size_t "
                "size`, `static names()` returning a span of size string_views, and `void extract(const "
                "FeatureContext&, std::span<float>) const`");

 public:
  /// Features written: the parts' sizes added up.
  static constexpr std::size_t size = (std::size_t{0} + ... + Parts::size);

  /// The parts' names, concatenated in order.
  static constexpr std::array<std::string_view, size> kNames = [] {
    std::array<std::string_view, size> all{};
    std::size_t next = 0;
    const auto append = [&all, &next](std::span<const std::string_view> part) {
      for (const std::string_view name : part) all[next++] = name;
    };
    (append(Parts::names()), ...);
    return all;
  }();

  /// Default-constructs every part (not available when a part, e.g. RarityFeature, needs arguments).
  FeatureSet() = default;

  /// @param parts the part instances, in order.
  explicit FeatureSet(Parts... parts) : parts_(std::move(parts)...) {}

  /// @return the names of all `size` features, in output order.
  static constexpr std::span<const std::string_view, size> names() noexcept { return kNames; }

  /**
   * Writes every part's features, in order.
   * @param context the token's context.
   * @param out receives the `size` features at out[0, size).
   */
  void extract(const FeatureContext& context, std::span<float> out) const {
    detail::check_feature_output(out, size);
    extract_parts(context, out, std::index_sequence_for<Parts...>{});
  }

  /// @return the part at index I, e.g. to read a RarityFeature's table.
  template <std::size_t I>
  [[nodiscard]] const auto& part() const noexcept {
    return std::get<I>(parts_);
  }

 private:
  template <std::size_t... I>
  void extract_parts(const FeatureContext& context, std::span<float> out, std::index_sequence<I...>) const {
    std::size_t offset = 0;
    ((std::get<I>(parts_).extract(context, out.subspan(offset, Parts::size)), offset += Parts::size), ...);
  }

  std::tuple<Parts...> parts_;  // one instance per part, in output order
};

}  // namespace kvbits
