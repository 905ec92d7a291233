// SPDX-License-Identifier: MIT
// A feature's size must be a compile-time constant: a controller's input count is.
// expect: F::size>'
// expect-GNU: requires (FeatureExtractor<Features>) && (NamedFeatures<Supplied>) class kvbits::LearnedPolicy
// expect-Clang: 'RuntimeSize' does not satisfy 'FeatureExtractor'
// expect-Clang: non-type template argument is not a constant expression
#include "user_types.hpp"

struct RuntimeSize {
  static inline std::size_t size = 1;
  static constexpr std::array<std::string_view, 1> kNames = {"runtime_size"};
  static constexpr std::span<const std::string_view, 1> names() noexcept { return kNames; }
  void extract(const kvbits::FeatureContext&, std::span<float> out) const { out[0] = 0.0f; }
};

using Net = kvbits::Mlp<1, kvbits::Hidden<8>, kvbits::WidthList<2, 4, 8>>;
kvbits::LearnedPolicy<RuntimeSize, Net> policy{Net{}};
