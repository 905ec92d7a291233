// SPDX-License-Identifier: MIT
// A backend must provide the attention kernels dot_rows and axpy_rows as well as the vector codec.
// expect: 'B::dot_rows(format, q, n, rows, n, n, scores)'
// expect-GNU: requires (Policy<P>) && (Backend<B>) class kvbits::QuantizedKVCache
// expect-Clang: 'VectorsOnly' does not satisfy 'Backend'
// expect-Clang: no member named 'dot_rows' in 'VectorsOnly'
#include "user_types.hpp"

struct VectorsOnly {
  static constexpr std::string_view name() noexcept { return "vectors-only"; }
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

kvbits::QuantizedKVCache<user::SinksWide, VectorsOnly> cache(user::small_options());
