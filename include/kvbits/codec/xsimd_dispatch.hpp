// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

#include "kvbits/codec/format.hpp"
#include "kvbits/codec/xsimd_lanes.hpp"
#include "kvbits/config.hpp"
#include "kvbits/core/isa_namespace.hpp"

// Where a SIMD kernel call's run-time shape becomes compile-time: the
// architecture, the group size and the scheme. A kernel runs on the widest
// architecture whose batch tiles the group's code bytes (planar formats) or
// whole code units (bit streams); e.g. 2-bit G = 32 has 8 bytes of codes per
// field and runs on 256-bit batches under AVX-512, n = 8 at 16/32 bits on
// 256-bit ones. When none fits (2-bit G = 8 has 2 code bytes per field) and for
// 16 bits on x86 without F16C, the scalar reference kernel runs. The choice is made
// once per call, never inside a row loop.
namespace kvbits::kernel {
inline namespace KVBITS_ISA_NAMESPACE {
namespace simd {

template <int Bits>
inline constexpr bool kPlanar = Bits == 2 || Bits == 4 || Bits == 8;

/// Whether this build has Bits-wide kernels at all: 16 bits needs F16C on x86
/// (x86-64-v2 has none, so it uses the scalar reference there); AArch64 always
/// has the fp16 conversions.
template <int Bits>
inline constexpr bool kHasKernels =
#if defined(__F16C__) || defined(__aarch64__)
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
KVBITS_ALWAYS_INLINE decltype(auto) pick_arch(std::size_t n, std::size_t group, ArchChain<A, Rest...>,
                                              Fn&& fn) {
  if constexpr (kHasKernels<Bits>) {
    if (fits<Bits, A>(n, group)) return fn(A{});
  }
  return pick_arch<Bits>(n, group, ArchChain<Rest...>{}, std::forward<Fn>(fn));
}

/// The architecture pick_arch would choose for every call with a group of G
/// codes (G != 0, a grouped width, whose fit depends on the group alone).
template <int Bits, std::size_t G>
constexpr auto arch_for_group(ArchChain<>) noexcept {
  return NoArch{};
}

template <int Bits, std::size_t G, class A, class... Rest>
constexpr auto arch_for_group(ArchChain<A, Rest...>) noexcept {
  if constexpr (kHasKernels<Bits> && fits<Bits, A>(0, G)) {
    return A{};
  } else {
    return arch_for_group<Bits, G>(ArchChain<Rest...>{});
  }
}

/**
 * The one place where a call's run-time shape becomes compile-time: calls
 * fn(arch, std::integral_constant<size_t, G>) with the architecture to use
 * (NoArch = scalar reference) and the group size when it is one of the hot
 * ones (32, 64, 128), else G = 0 meaning "use the run-time group". A hot group
 * fixes the architecture at compile time (a grouped width's fit depends on the
 * group alone), so only the kernels a call can reach are instantiated.
 */
template <int Bits, class Fn>
KVBITS_ALWAYS_INLINE decltype(auto) dispatch(std::size_t n, std::size_t group, Fn&& fn) {
  const auto any_arch = [&](auto g) -> decltype(auto) {
    return pick_arch<Bits>(n, group, Archs{}, [&](auto arch) { return fn(arch, g); });
  };
  if constexpr (!is_grouped_bits(Bits)) {
    return any_arch(std::integral_constant<std::size_t, 0>{});
  } else {
    switch (group) {
      case 32:
        return fn(arch_for_group<Bits, 32>(Archs{}), std::integral_constant<std::size_t, 32>{});
      case 64:
        return fn(arch_for_group<Bits, 64>(Archs{}), std::integral_constant<std::size_t, 64>{});
      case 128:
        return fn(arch_for_group<Bits, 128>(Archs{}), std::integral_constant<std::size_t, 128>{});
      default:
        return any_arch(std::integral_constant<std::size_t, 0>{});
    }
  }
}

/// Runs fn(std::integral_constant<Scheme, S>) for the run-time scheme, so the
/// kernels below take it as a compile-time parameter.
template <class Fn>
KVBITS_ALWAYS_INLINE void with_scheme(Scheme scheme, Fn&& fn) {
  if (scheme == Scheme::asymmetric) {
    fn(std::integral_constant<Scheme, Scheme::asymmetric>{});
  } else {
    fn(std::integral_constant<Scheme, Scheme::symmetric>{});
  }
}

/// Most queries one pass of the shared kernels holds (more run in passes).
inline constexpr std::size_t kMaxSharedQueries = 8;

/// Calls fn(std::integral_constant<size_t, Q>) with Q the largest power of two
/// <= min(q, kMaxSharedQueries), q >= 1: four kernel instantiations, not eight,
/// for compile time; the caller runs what is left in further passes.
template <class Fn>
KVBITS_ALWAYS_INLINE std::size_t with_query_pass(std::size_t q, Fn&& fn) {
  static_assert(kMaxSharedQueries == 8, "passes of 8, 4, 2 and 1 queries");
  if (q >= 8) {
    fn(std::integral_constant<std::size_t, 8>{});
    return 8;
  }
  if (q >= 4) {
    fn(std::integral_constant<std::size_t, 4>{});
    return 4;
  }
  if (q >= 2) {
    fn(std::integral_constant<std::size_t, 2>{});
    return 2;
  }
  fn(std::integral_constant<std::size_t, 1>{});
  return 1;
}

template <class Fn, std::size_t... Index>
KVBITS_ALWAYS_INLINE void unrolled(Fn&& fn, std::index_sequence<Index...>) {
  (fn(std::integral_constant<std::size_t, Index>{}), ...);
}

}  // namespace simd
}  // namespace KVBITS_ISA_NAMESPACE
}  // namespace kvbits::kernel
