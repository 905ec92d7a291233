// SPDX-License-Identifier: MIT
#pragma once

#include "kvbits/core/simd_headers.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <span>
#include <string_view>

#include "kvbits/cache/softmax.hpp"
#include "kvbits/core/isa_namespace.hpp"
#include "kvbits/features/feature.hpp"

namespace kvbits {
namespace detail {
inline namespace KVBITS_ISA_NAMESPACE {

/// The sums a softmax over logits x needs, with z_i = x_i - top and top = max x.
struct LogitMoments {
  float top = 0.0f;         ///< max x
  float normaliser = 0.0f;  ///< Z = sum exp(z_i), >= 1 for finite x
  float weighted = 0.0f;    ///< S = sum exp(z_i) z_i, <= 0
};

/**
 * One vectorised pass of exp over x[0..n), n >= 1. A logit of -infinity (a masked token)
 * contributes nothing, as its probability is 0.
 */
inline LogitMoments logit_moments(const float* KVBITS_RESTRICT x, std::size_t n) noexcept {
  using batch = xsimd::batch<float>;
  constexpr std::size_t kLanes = batch::size;
  LogitMoments moments;
  moments.top = max_of(x, n);
  const batch top(moments.top);
  const batch zero(0.0f);
  batch normaliser(0.0f);
  batch weighted(0.0f);
  const std::size_t body = n - n % kLanes;
  for (std::size_t i = 0; i < body; i += kLanes) {
    const batch z = batch::load_unaligned(x + i) - top;
    const batch e = xsimd::exp(z);
    normaliser += e;
    // e * z is 0 * -inf = NaN for a masked logit; its term is 0.
    weighted += xsimd::select(e > zero, e * z, zero);
  }
  moments.normaliser = xsimd::hadd(normaliser);
  moments.weighted = xsimd::hadd(weighted);
  for (std::size_t i = body; i < n; ++i) {
    const float z = x[i] - moments.top;
    const float e = std::exp(z);
    moments.normaliser += e;
    if (e > 0.0f) moments.weighted += e * z;
  }
  return moments;
}

}  // namespace KVBITS_ISA_NAMESPACE
}  // namespace detail

inline namespace KVBITS_ISA_NAMESPACE {

/**
 * The write-time features of EntropyFeature and ConfidenceFeature, under the same names
 * (`entropy`, `next_token_probability`, `max_probability`), computed from
 * FeatureContext::next_token_logits instead of the probabilities: one vectorised pass with
 * one exp per vocabulary entry and no log per entry, since with z = logits - max and
 * Z = sum e^z, the entropy is log Z - sum e^z z / Z and the largest probability is 1 / Z.
 * An engine hands over the logits it already has and needs no softmax of its own; a weight
 * file trained on the probability-based features loads unchanged. The two agree to float
 * rounding (about 1e-6 relative; tests/test_features.cpp).
 *
 * Neutral values (all 0) when the logits are empty, all -infinity, or hold NaN or +infinity.
 */
struct LogitFeatures {
  static constexpr std::size_t size = 3;  ///< features written
  /// Their names, those of FeatureSet<EntropyFeature, ConfidenceFeature>.
  static constexpr std::array<std::string_view, size> kNames = {"entropy", "next_token_probability",
                                                                "max_probability"};

  /// @return the features' names.
  static constexpr std::span<const std::string_view, size> names() noexcept { return kNames; }

  /**
   * @param context reads next_token and next_token_logits.
   * @param out receives entropy (nats), next_token_probability and max_probability at out[0..3).
   */
  void extract(const FeatureContext& context, std::span<float> out) const {
    detail::check_feature_output(out, size);
    out[0] = out[1] = out[2] = 0.0f;
    const std::span<const float> logits = context.next_token_logits;
    if (logits.empty()) return;
    const detail::LogitMoments m = detail::logit_moments(logits.data(), logits.size());
    // A NaN or +infinity logit makes Z or S non-finite; all -infinity leaves Z = 0 (NaN top).
    if (!(std::isfinite(m.normaliser) && std::isfinite(m.weighted) && m.normaliser > 0.0f)) return;
    // Z >= 1 up to the rounding of exp(0); a probability never exceeds 1.
    const float inverse = std::min(1.0f, 1.0f / m.normaliser);
    // Rounding can leave a near one-hot distribution a hair below 0.
    out[0] = std::max(0.0f, std::log(m.normaliser) - m.weighted * inverse);
    const bool next_known =
        context.next_token >= 0 && static_cast<std::size_t>(context.next_token) < logits.size();
    if (next_known) {
      out[1] =
          std::min(1.0f, std::exp(logits[static_cast<std::size_t>(context.next_token)] - m.top) * inverse);
    }
    out[2] = inverse;
  }
};

static_assert(FeatureExtractor<LogitFeatures>, "LogitFeatures must satisfy FeatureExtractor");

}  // namespace KVBITS_ISA_NAMESPACE
}  // namespace kvbits
