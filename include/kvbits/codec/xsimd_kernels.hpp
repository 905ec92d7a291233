// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "kvbits/codec/format.hpp"
#include "kvbits/codec/group_params.hpp"
#include "kvbits/codec/reference.hpp"
#include "kvbits/codec/xsimd_lanes.hpp"
#include "kvbits/config.hpp"

// SIMD kernels on xsimd batches, in the shape of kernel::ScalarKernels.
//
// Encode is bit-exact with the reference: the group range is reduced with
// vectors, then detail::asymmetric_params / symmetric_params compute the
// metadata exactly as the reference does, and each code is the same
// clamp(nearbyint((x - min) * inverse_scale)) evaluated lane-wise (no fused
// operation can change it). Decode produces the same codes; the decoded floats
// may differ from the reference by FMA contraction. dot and axpy sum in a
// different order and are tested against the reference with tolerances.
//
// A kernel runs on the widest architecture whose batch tiles the group's code
// bytes (planar formats) or whole code units (bit streams); e.g. 2-bit G = 32
// has 8 bytes of codes per field and runs on 256-bit batches under AVX-512,
// n = 8 at 16/32 bits on 256-bit ones. When none fits (2-bit G = 8 has 2 code
// bytes per field) and for 16 bits without F16C, the scalar reference kernel
// runs. The choice is made once per call, never inside a row loop.
namespace kvbits::kernel {

namespace simd {

template <int Bits>
inline constexpr bool kPlanar = Bits == 2 || Bits == 4 || Bits == 8;

/// Whether this build has Bits-wide kernels at all: 16 bits needs F16C
/// (x86-64-v2 has none, so it uses the scalar reference there).
template <int Bits>
inline constexpr bool kHasKernels =
#if defined(__F16C__)
    true;
#else
    Bits != 16;
#endif

/// Whether architecture A can run the Bits-wide kernels for (n, group).
template <int Bits, class A>
constexpr bool fits(std::size_t n, std::size_t group) noexcept {
  constexpr std::size_t width = Lanes<A>::kWidth;
  if constexpr (Bits == 32 || Bits == 16) {
    return n % width == 0;
  } else if constexpr (kPlanar<Bits>) {
    return group * Bits / 8 % width == 0;
  } else {
    return group % Lanes<A>::kStreamCodes == 0;
  }
}

template <int Bits, class Fn>
KVBITS_ALWAYS_INLINE decltype(auto) pick_arch(std::size_t, std::size_t, ArchChain<>, Fn&& fn) {
  return fn(NoArch{});
}

template <int Bits, class Fn, class A, class... Rest>
KVBITS_ALWAYS_INLINE decltype(auto) pick_arch(std::size_t n, std::size_t group, ArchChain<A, Rest...>, Fn&& fn) {
  if constexpr (kHasKernels<Bits>) {
    if (fits<Bits, A>(n, group)) return fn(A{});
  }
  return pick_arch<Bits>(n, group, ArchChain<Rest...>{}, std::forward<Fn>(fn));
}

/**
 * The one place where a call's run-time shape becomes compile-time: calls
 * fn(arch, std::integral_constant<size_t, G>) with the architecture to use
 * (NoArch = scalar reference) and the group size when it is one of the hot
 * ones (32, 64, 128), else G = 0 meaning "use the run-time group".
 */
template <int Bits, class Fn>
KVBITS_ALWAYS_INLINE decltype(auto) dispatch(std::size_t n, std::size_t group, Fn&& fn) {
  return pick_arch<Bits>(n, group, Archs{}, [&](auto arch) {
    if constexpr (std::is_same_v<decltype(arch), NoArch> || !is_grouped_bits(Bits)) {
      return fn(arch, std::integral_constant<std::size_t, 0>{});
    } else {
      switch (group) {
        case 32: return fn(arch, std::integral_constant<std::size_t, 32>{});
        case 64: return fn(arch, std::integral_constant<std::size_t, 64>{});
        case 128: return fn(arch, std::integral_constant<std::size_t, 128>{});
        default: return fn(arch, std::integral_constant<std::size_t, 0>{});
      }
    }
  });
}

template <class Fn, std::size_t... Index>
KVBITS_ALWAYS_INLINE void unrolled(Fn&& fn, std::index_sequence<Index...>) {
  (fn(std::integral_constant<std::size_t, Index>{}), ...);
}

#if KVBITS_XSIMD_KERNELS

/**
 * Visits every code of one group's block as int32 batches, in storage order:
 * fn(element index inside the group of lane 0, codes). Lanes of one batch are
 * consecutive elements in both code orders.
 */
template <class A, int Bits, class Fn>
KVBITS_ALWAYS_INLINE void for_each_code(const std::uint8_t* codes, std::size_t group, Fn&& fn) {
  using L = Lanes<A>;
  using I = typename L::I;
  constexpr std::size_t width = L::kWidth;
  if constexpr (kPlanar<Bits>) {
    const std::size_t stride = group * Bits / 8;
    for (std::size_t j = 0; j < stride; j += width) {
      const I bytes = L::load_bytes(codes + j);
      unrolled(
          [&](auto field) {
            if constexpr (Bits == 8) {
              fn(j, bytes);
            } else if constexpr (field.value + 1 == 8 / Bits) {
              fn(field.value * stride + j, bytes >> static_cast<std::int32_t>(field.value * Bits));
            } else {
              fn(field.value * stride + j,
                 (bytes >> static_cast<std::int32_t>(field.value * Bits)) & I((1 << Bits) - 1));
            }
          },
          std::make_index_sequence<static_cast<std::size_t>(8 / Bits)>{});
    }
  } else {
    constexpr std::size_t chunk = L::kStreamCodes;
    for (std::size_t c = 0; c < group; c += chunk) {
      I batches[chunk / width];
      L::template load_stream<Bits>(codes + c * Bits / 8, batches);
      for (std::size_t u = 0; u < chunk / width; ++u) fn(c + u * width, batches[u]);
    }
  }
}

/// Encodes one group of `group` floats into its block (metadata + codes).
template <class A, int Bits>
KVBITS_ALWAYS_INLINE void encode_group(const float* KVBITS_RESTRICT xs, std::size_t group, Scheme scheme,
                                       std::uint8_t* KVBITS_RESTRICT block) noexcept {
  using L = Lanes<A>;
  using F = typename L::F;
  using I = typename L::I;
  constexpr std::size_t width = L::kWidth;
  kvbits::detail::GroupParams params{};
  if (scheme == Scheme::asymmetric) {
    F lo = F::load_unaligned(xs);
    F hi = lo;
    for (std::size_t i = width; i < group; i += width) {
      const F v = F::load_unaligned(xs + i);
      lo = xsimd::min(lo, v);
      hi = xsimd::max(hi, v);
    }
    params = kvbits::detail::asymmetric_params(L::reduce_min(lo), L::reduce_max(hi), Bits);
  } else {
    F top = xsimd::abs(F::load_unaligned(xs));
    for (std::size_t i = width; i < group; i += width) top = xsimd::max(top, xsimd::abs(F::load_unaligned(xs + i)));
    params = kvbits::detail::symmetric_params(L::reduce_max(top), Bits);
  }
  kvbits::detail::store_metadata(params, scheme, block);
  std::uint8_t* codes = block + metadata_bytes(scheme);

  const F inverse(params.inverse_scale);
  const F origin(params.min);
  const F low(scheme == Scheme::asymmetric ? 0.0f : -static_cast<float>(kvbits::detail::symmetric_limit(Bits)));
  const F high(scheme == Scheme::asymmetric ? static_cast<float>(kvbits::detail::max_code(Bits))
                                            : static_cast<float>(kvbits::detail::symmetric_limit(Bits)));
  const I bias(scheme == Scheme::asymmetric ? 0 : kvbits::detail::symmetric_offset(Bits));
  // Same operations as detail::asymmetric_code / symmetric_code (origin is 0
  // for symmetric, and x - 0 == x exactly), so the codes are bit-identical.
  const auto code = [&](std::size_t i) {
    const F scaled = xsimd::nearbyint((F::load_unaligned(xs + i) - origin) * inverse);
    return xsimd::to_int(xsimd::min(xsimd::max(scaled, low), high)) + bias;
  };

  if constexpr (kPlanar<Bits>) {
    const std::size_t stride = group * Bits / 8;
    for (std::size_t j = 0; j < stride; j += width) {
      I packed = code(j);
      unrolled(
          [&](auto field) {
            constexpr std::size_t f = field.value + 1;
            packed = packed | (code(f * stride + j) << static_cast<std::int32_t>(f * Bits));
          },
          std::make_index_sequence<static_cast<std::size_t>(8 / Bits - 1)>{});
      L::store_bytes(packed, codes + j);
    }
  } else {
    std::uint8_t unpacked[kMaxVectorLength];
    for (std::size_t i = 0; i < group; i += width) L::store_bytes(code(i), unpacked + i);
    kernel::detail::pack_codes<Bits>(unpacked, group, codes);
  }
}

template <class A, int Bits, std::size_t G>
inline void encode(const float* KVBITS_RESTRICT x, std::size_t n, std::size_t runtime_group, Scheme scheme,
                   std::uint8_t* KVBITS_RESTRICT out) noexcept {
  using L = Lanes<A>;
  using F = typename L::F;
  constexpr std::size_t width = L::kWidth;
  if constexpr (Bits == 32) {
    std::memcpy(out, x, n * sizeof(float));
  } else if constexpr (Bits == 16) {
    const F top(kHalfMax);
    for (std::size_t i = 0; i < n; i += width) {
      L::store_halves(xsimd::min(xsimd::max(F::load_unaligned(x + i), -top), top), out + 2 * i);
    }
  } else {
    const std::size_t group = G != 0 ? G : runtime_group;
    const std::size_t block_bytes = group_bytes(Bits, group, scheme);
    for (std::size_t g = 0; g < n / group; ++g) {
      encode_group<A, Bits>(x + g * group, group, scheme, out + g * block_bytes);
    }
  }
}

template <class A, int Bits, std::size_t G>
inline void decode(const std::uint8_t* KVBITS_RESTRICT in, std::size_t n, std::size_t runtime_group, Scheme scheme,
                   float* KVBITS_RESTRICT y) noexcept {
  using L = Lanes<A>;
  using F = typename L::F;
  constexpr std::size_t width = L::kWidth;
  if constexpr (Bits == 32) {
    std::memcpy(y, in, n * sizeof(float));
  } else if constexpr (Bits == 16) {
    for (std::size_t i = 0; i < n; i += width) L::load_halves(in + 2 * i).store_unaligned(y + i);
  } else {
    const std::size_t group = G != 0 ? G : runtime_group;
    const std::size_t block_bytes = group_bytes(Bits, group, scheme);
    for (std::size_t g = 0; g < n / group; ++g) {
      const std::uint8_t* block = in + g * block_bytes;
      const auto affine = kvbits::detail::load_affine(block, scheme, Bits);
      const F scale(affine.scale);
      const F offset(affine.offset);
      float* yg = y + g * group;
      for_each_code<A, Bits>(block + metadata_bytes(scheme), group, [&](std::size_t i, const auto& codes) {
        xsimd::fma(scale, xsimd::to_float(codes), offset).store_unaligned(yg + i);
      });
    }
  }
}

/// sum over the W lanes of q[i..] * values, two accumulators to halve the dependency chain.
template <class A, class Load>
KVBITS_ALWAYS_INLINE float dot_plain(const float* KVBITS_RESTRICT q, std::size_t n, Load&& load) noexcept {
  using F = typename Lanes<A>::F;
  constexpr std::size_t width = Lanes<A>::kWidth;
  F even(0.0f);
  F odd(0.0f);
  std::size_t i = 0;
  for (; i + 2 * width <= n; i += 2 * width) {
    even = xsimd::fma(F::load_unaligned(q + i), load(i), even);
    odd = xsimd::fma(F::load_unaligned(q + i + width), load(i + width), odd);
  }
  if (i < n) even = xsimd::fma(F::load_unaligned(q + i), load(i), even);
  return xsimd::hadd(even + odd);
}

template <class A, int Bits, std::size_t G>
inline void dot_rows(const float* KVBITS_RESTRICT q, std::size_t n, std::size_t runtime_group, Scheme scheme,
                     const std::uint8_t* rows, std::size_t stride, std::size_t count,
                     float* KVBITS_RESTRICT scores) noexcept {
  using L = Lanes<A>;
  using F = typename L::F;
  constexpr std::size_t width = L::kWidth;
  if constexpr (Bits == 32) {
    for (std::size_t r = 0; r < count; ++r) {
      const float* row = reinterpret_cast<const float*>(rows + r * stride);
      scores[r] = dot_plain<A>(q, n, [&](std::size_t i) { return F::load_unaligned(row + i); });
    }
  } else if constexpr (Bits == 16) {
    for (std::size_t r = 0; r < count; ++r) {
      const std::uint8_t* row = rows + r * stride;
      scores[r] = dot_plain<A>(q, n, [&](std::size_t i) { return L::load_halves(row + 2 * i); });
    }
  } else {
    const std::size_t group = G != 0 ? G : runtime_group;
    const std::size_t groups = n / group;
    const std::size_t block_bytes = group_bytes(Bits, group, scheme);
    const std::size_t meta = metadata_bytes(scheme);
    // Per-query precomputation, hoisted out of the row loop: the offset term of
    // a group is offset * sum(q over the group).
    float q_sums[kMaxVectorLength / 8];
    for (std::size_t g = 0; g < groups; ++g) {
      F sum(0.0f);
      for (std::size_t i = 0; i < group; i += width) sum += F::load_unaligned(q + g * group + i);
      q_sums[g] = xsimd::hadd(sum);
    }
    for (std::size_t r = 0; r < count; ++r) {
      const std::uint8_t* row = rows + r * stride;
      F total(0.0f);
      float offset_total = 0.0f;
      for (std::size_t g = 0; g < groups; ++g) {
        const std::uint8_t* block = row + g * block_bytes;
        const auto affine = kvbits::detail::load_affine(block, scheme, Bits);
        const float* qg = q + g * group;
        F products(0.0f);
        for_each_code<A, Bits>(block + meta, group, [&](std::size_t i, const auto& codes) {
          products = xsimd::fma(F::load_unaligned(qg + i), xsimd::to_float(codes), products);
        });
        total = xsimd::fma(products, F(affine.scale), total);
        offset_total += affine.offset * q_sums[g];
      }
      scores[r] = xsimd::hadd(total) + offset_total;
    }
  }
}

template <class A, int Bits, std::size_t G>
inline void axpy_rows(const float* KVBITS_RESTRICT weights, std::size_t n, std::size_t runtime_group,
                      Scheme scheme, const std::uint8_t* rows, std::size_t stride, std::size_t count,
                      float* KVBITS_RESTRICT y) noexcept {
  using L = Lanes<A>;
  using F = typename L::F;
  constexpr std::size_t width = L::kWidth;
  if constexpr (Bits == 32 || Bits == 16) {
    for (std::size_t r = 0; r < count; ++r) {
      const std::uint8_t* row = rows + r * stride;
      const F w(weights[r]);
      for (std::size_t i = 0; i < n; i += width) {
        F v;
        if constexpr (Bits == 32) {
          v = F::load_unaligned(reinterpret_cast<const float*>(row) + i);
        } else {
          v = L::load_halves(row + 2 * i);
        }
        xsimd::fma(w, v, F::load_unaligned(y + i)).store_unaligned(y + i);
      }
    }
  } else {
    const std::size_t group = G != 0 ? G : runtime_group;
    const std::size_t groups = n / group;
    const std::size_t block_bytes = group_bytes(Bits, group, scheme);
    const std::size_t meta = metadata_bytes(scheme);
    // The offset part of every row is constant over a group: sum it per group
    // over all rows and add it once at the end.
    float offsets[kMaxVectorLength / 8] = {};
    for (std::size_t r = 0; r < count; ++r) {
      const std::uint8_t* row = rows + r * stride;
      const float w = weights[r];
      for (std::size_t g = 0; g < groups; ++g) {
        const std::uint8_t* block = row + g * block_bytes;
        const auto affine = kvbits::detail::load_affine(block, scheme, Bits);
        offsets[g] += w * affine.offset;
        const F scale(w * affine.scale);
        float* yg = y + g * group;
        for_each_code<A, Bits>(block + meta, group, [&](std::size_t i, const auto& codes) {
          xsimd::fma(scale, xsimd::to_float(codes), F::load_unaligned(yg + i)).store_unaligned(yg + i);
        });
      }
    }
    for (std::size_t g = 0; g < groups; ++g) {
      const F offset(offsets[g]);
      for (std::size_t i = 0; i < group; i += width) {
        (F::load_unaligned(y + g * group + i) + offset).store_unaligned(y + g * group + i);
      }
    }
  }
}

#endif  // KVBITS_XSIMD_KERNELS

}  // namespace simd

/**
 * The xsimd kernel set, in the shape of ScalarKernels (same contract: n a
 * multiple of 8 and of group, group a multiple of 8, finite inputs, no
 * alignment needed, no aliasing). Without a usable SIMD architecture every
 * kernel is the scalar reference.
 */
struct XsimdKernels {
  template <int Bits>
  static void encode(const float* KVBITS_RESTRICT x, std::size_t n, std::size_t group, Scheme scheme,
                     std::uint8_t* KVBITS_RESTRICT out) noexcept {
    simd::dispatch<Bits>(n, group, [&](auto arch, [[maybe_unused]] auto g) {
      if constexpr (std::is_same_v<decltype(arch), simd::NoArch>) {
        ScalarKernels::encode<Bits>(x, n, group, scheme, out);
      } else {
#if KVBITS_XSIMD_KERNELS
        simd::encode<decltype(arch), Bits, g.value>(x, n, group, scheme, out);
#endif
      }
    });
  }

  template <int Bits>
  static void decode(const std::uint8_t* KVBITS_RESTRICT in, std::size_t n, std::size_t group, Scheme scheme,
                     float* KVBITS_RESTRICT y) noexcept {
    simd::dispatch<Bits>(n, group, [&](auto arch, [[maybe_unused]] auto g) {
      if constexpr (std::is_same_v<decltype(arch), simd::NoArch>) {
        ScalarKernels::decode<Bits>(in, n, group, scheme, y);
      } else {
#if KVBITS_XSIMD_KERNELS
        simd::decode<decltype(arch), Bits, g.value>(in, n, group, scheme, y);
#endif
      }
    });
  }

  template <int Bits>
  static float dot(const float* KVBITS_RESTRICT q, const std::uint8_t* KVBITS_RESTRICT in, std::size_t n,
                   std::size_t group, Scheme scheme) noexcept {
    float score = 0.0f;
    dot_rows<Bits>(q, n, group, scheme, in, packed_size(QuantFormat{Bits, group, scheme}, n), 1, &score);
    return score;
  }

  template <int Bits>
  static void axpy(float w, const std::uint8_t* KVBITS_RESTRICT in, std::size_t n, std::size_t group,
                   Scheme scheme, float* KVBITS_RESTRICT y) noexcept {
    axpy_rows<Bits>(&w, n, group, scheme, in, packed_size(QuantFormat{Bits, group, scheme}, n), 1, y);
  }

  /// scores[r] = q . decode(rows + r * stride) for r < count.
  template <int Bits>
  static void dot_rows(const float* KVBITS_RESTRICT q, std::size_t n, std::size_t group, Scheme scheme,
                       const std::uint8_t* rows, std::size_t stride, std::size_t count,
                       float* KVBITS_RESTRICT scores) noexcept {
    simd::dispatch<Bits>(n, group, [&](auto arch, [[maybe_unused]] auto g) {
      if constexpr (std::is_same_v<decltype(arch), simd::NoArch>) {
        ScalarKernels::dot_rows<Bits>(q, n, group, scheme, rows, stride, count, scores);
      } else {
#if KVBITS_XSIMD_KERNELS
        simd::dot_rows<decltype(arch), Bits, g.value>(q, n, group, scheme, rows, stride, count, scores);
#endif
      }
    });
  }

  /// y += sum_r weights[r] * decode(rows + r * stride) for r < count.
  template <int Bits>
  static void axpy_rows(const float* KVBITS_RESTRICT weights, std::size_t n, std::size_t group, Scheme scheme,
                        const std::uint8_t* rows, std::size_t stride, std::size_t count,
                        float* KVBITS_RESTRICT y) noexcept {
    simd::dispatch<Bits>(n, group, [&](auto arch, [[maybe_unused]] auto g) {
      if constexpr (std::is_same_v<decltype(arch), simd::NoArch>) {
        ScalarKernels::axpy_rows<Bits>(weights, n, group, scheme, rows, stride, count, y);
      } else {
#if KVBITS_XSIMD_KERNELS
        simd::axpy_rows<decltype(arch), Bits, g.value>(weights, n, group, scheme, rows, stride, count, y);
#endif
      }
    });
  }
};

}  // namespace kvbits::kernel
