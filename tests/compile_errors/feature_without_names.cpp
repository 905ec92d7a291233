// SPDX-License-Identifier: MIT
// A feature without names() cannot join a FeatureSet.
// expect: every FeatureSet part must be a FeatureExtractor: give it `static constexpr std::size_t size`
// expect: 'F::names()'
#include "user_types.hpp"

struct Unnamed {
  static constexpr std::size_t size = 1;
  void extract(const kvbits::FeatureContext&, std::span<float> out) const { out[0] = 0.0f; }
};

kvbits::FeatureSet<kvbits::AgeFeature, Unnamed> features;
