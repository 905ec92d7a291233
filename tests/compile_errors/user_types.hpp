// SPDX-License-Identifier: MIT
// A policy, a backend and a feature extractor written the way the concepts ask
// (kvbits/policy/policy.hpp, kvbits/codec/backend.hpp, kvbits/features/feature.hpp).
// accepted_user_types.cpp compiles them; every other file here breaks one rule.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include <kvbits/kvbits.hpp>

namespace user {

/// Sink tokens at 8 bits, the rest at 4-bit keys and 2-bit values.
struct SinksWide {
  [[nodiscard]] kvbits::BitDecision decide(const kvbits::TokenInfo& token) const {
    return token.position < 4 ? kvbits::BitDecision{8, 8} : kvbits::BitDecision{4, 2};
  }
};

/// The vector codec half of a backend: the scalar reference under another name.
struct RenamedScalarCodec {
  static constexpr std::string_view name() noexcept { return "renamed-scalar"; }
  static constexpr std::size_t alignment() noexcept { return alignof(float); }
  static constexpr bool available() noexcept { return true; }

  static void encode(const kvbits::QuantFormat& format, std::span<const float> x,
                     std::span<std::uint8_t> out) {
    kvbits::ScalarBackend::encode(format, x, out);
  }
  static void decode(const kvbits::QuantFormat& format, std::span<const std::uint8_t> in,
                     std::span<float> y) {
    kvbits::ScalarBackend::decode(format, in, y);
  }
  static float dot(const kvbits::QuantFormat& format, std::span<const float> q,
                   std::span<const std::uint8_t> in) {
    return kvbits::ScalarBackend::dot(format, q, in);
  }
  static void axpy(const kvbits::QuantFormat& format, float w, std::span<const std::uint8_t> in,
                   std::span<float> y) {
    kvbits::ScalarBackend::axpy(format, w, in, y);
  }
};

/// A backend of one's own: the codec above plus the attention row kernels.
struct RenamedScalarBackend : RenamedScalarCodec {
  static void dot_rows(const kvbits::QuantFormat& format, const float* q, std::size_t n,
                       const std::uint8_t* rows, std::size_t stride, std::size_t count, float* scores) {
    kvbits::ScalarBackend::dot_rows(format, q, n, rows, stride, count, scores);
  }
  static void axpy_rows(const kvbits::QuantFormat& format, const float* weights, std::size_t n,
                        const std::uint8_t* rows, std::size_t stride, std::size_t count, float* y) {
    kvbits::ScalarBackend::axpy_rows(format, weights, n, rows, stride, count, y);
  }
};

/// One feature: whether the token is the first of its sequence.
struct FirstTokenFeature {
  static constexpr std::size_t size = 1;
  static constexpr std::array<std::string_view, size> kNames = {"first_token"};

  static constexpr std::span<const std::string_view, size> names() noexcept { return kNames; }
  void extract(const kvbits::FeatureContext& context, std::span<float> out) const {
    out[0] = context.position == 0 ? 1.0f : 0.0f;
  }
};

/// A small cache shape for the files here.
inline kvbits::CacheOptions small_options() {
  kvbits::CacheOptions options;
  options.kv_heads = 2;
  options.head_dim = 64;
  options.capacity = 16;
  return options;
}

}  // namespace user
