// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "kvbits/codec/format.hpp"
#include "kvbits/codec/reference.hpp"
#include "kvbits/codec/xsimd_code_visitors.hpp"
#include "kvbits/codec/xsimd_dispatch.hpp"
#include "kvbits/codec/xsimd_dot_avx2.hpp"
#include "kvbits/codec/xsimd_dot_vnni.hpp"
#include "kvbits/codec/xsimd_encode.hpp"
#include "kvbits/codec/xsimd_encode_avx512.hpp"
#include "kvbits/codec/xsimd_lanes.hpp"
#include "kvbits/codec/xsimd_rows_any_length.hpp"
#include "kvbits/codec/xsimd_rows_float.hpp"
#include "kvbits/codec/xsimd_rows_in_parts.hpp"
#include "kvbits/codec/xsimd_rows_quantized.hpp"
#include "kvbits/codec/xsimd_rows_shared.hpp"
#include "kvbits/codec/xsimd_rows_two_bit_g8.hpp"
#include "kvbits/config.hpp"
#include "kvbits/core/isa_namespace.hpp"
#include "kvbits/core/multiply_add.hpp"

// SIMD kernels on xsimd batches, in the shape of kernel::ScalarKernels: the
// include point of the xsimd kernel set. This header picks, once per call, the
// kernel a row operation runs and defines XsimdKernels; the kernels live in
// headers of one job each:
//   xsimd_dispatch.hpp        architecture, group and scheme of a call
//   xsimd_lanes.hpp           per-architecture batch helpers
//   xsimd_code_visitors.hpp   a block's codes as int32 / float batches
//   xsimd_encode.hpp          encode and decode of whole vectors
//   xsimd_encode_avx512.hpp   AVX-512 encoders for short groups
//   xsimd_prefetch.hpp        the row kernels' software prefetch
//   xsimd_row_affines.hpp     scales and offsets of W rows as vectors
//   xsimd_rows_float.hpp      dot_rows / axpy_rows over 16/32-bit rows
//   xsimd_rows_quantized.hpp  dot_rows / axpy_rows over 2/4/8-bit rows in floats
//   xsimd_rows_in_parts.hpp   axpy_rows over one-group rows longer than the registers hold
//   xsimd_rows_any_length.hpp dot_rows of one or several queries over rows of any length
//   xsimd_dot_vnni.hpp        integer dot_rows on AVX-512 VNNI
//   xsimd_rows_shared.hpp     dot_rows / axpy_rows of several queries over 2/4/8-bit rows
//   xsimd_rows_two_bit_g8.hpp dot_rows / axpy_rows over 2-bit rows in groups of 8 (the reference's sums)
// dot and axpy sum in a different order from the reference and are tested
// against it with tolerances.
namespace kvbits::kernel {
inline namespace KVBITS_ISA_NAMESPACE {
namespace simd {

#if KVBITS_XSIMD_KERNELS

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

/// Runs fn(std::integral_constant<size_t, N>) when n is one of the fixed
/// lengths (64, 128) the fixed-length row kernels support for (A, Bits, G).
/// @return whether it ran.
template <class A, int Bits, std::size_t G, class Fn>
KVBITS_ALWAYS_INLINE bool with_fixed_length(std::size_t n, Fn&& fn) {
  if constexpr (kFixedRows<A, Bits, 128, G>) {
    if (n == 128) {
      fn(std::integral_constant<std::size_t, 128>{});
      return true;
    }
  }
  if constexpr (kFixedRows<A, Bits, 64, G>) {
    if (n == 64) {
      fn(std::integral_constant<std::size_t, 64>{});
      return true;
    }
  }
  return false;
}

/// Runs fn(std::integral_constant<size_t, N>) when n is one of the lengths
/// (64, 128) the float row kernels support for (A, Bits). @return whether it ran.
template <class A, int Bits, class Fn>
KVBITS_ALWAYS_INLINE bool with_float_length(std::size_t n, Fn&& fn) {
  if constexpr (kFixedFloatRows<A, Bits, 128>) {
    if (n == 128) {
      fn(std::integral_constant<std::size_t, 128>{});
      return true;
    }
  }
  if constexpr (kFixedFloatRows<A, Bits, 64>) {
    if (n == 64) {
      fn(std::integral_constant<std::size_t, 64>{});
      return true;
    }
  }
  return false;
}

template <class A, int Bits, std::size_t G>
inline void dot_rows(const float* KVBITS_RESTRICT q, std::size_t n, std::size_t runtime_group, Scheme scheme,
                     const std::uint8_t* rows, std::size_t stride, std::size_t count,
                     float* KVBITS_RESTRICT scores) noexcept {
  using L = Lanes<A>;
  using F = typename L::F;
  if (with_float_length<A, Bits>(
          n, [&](auto length) { dot_rows_float<A, Bits, length.value>(q, rows, stride, count, scores); })) {
    return;
  }
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
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
    bool done = false;
    const auto integer = [&](auto length) {
      with_scheme(scheme, [&](auto fixed) {
        constexpr std::size_t kLength = decltype(length)::value;
        if constexpr (kLength == G && kPlanar<Bits>) {
          done = dot_rows_integer<Bits, kLength, fixed.value>(q, rows, stride, count, scores);
        } else {
          done = dot_rows_integer_groups<Bits, kLength, G, fixed.value>(q, rows, stride, count, scores);
        }
      });
    };
    if constexpr (kIntegerDotRows<Bits, 128, G>) {
      if (n == 128) integer(std::integral_constant<std::size_t, 128>{});
    }
    if constexpr (kIntegerDotRows<Bits, 64, G>) {
      if (n == 64) integer(std::integral_constant<std::size_t, 64>{});
    }
    if (done) return;
#elif KVBITS_INTEGER_DOT_AVX2
    if (avx2::dot_rows<Bits, G>(q, 1, n, scheme, rows, stride, count, scores, 0)) return;
#endif
    if (with_fixed_length<A, Bits, G>(n, [&](auto length) {
          with_scheme(scheme, [&](auto fixed) {
            dot_rows_fixed<A, Bits, length.value, G, fixed.value>(q, rows, stride, count, scores);
          });
        })) {
      return;
    }
    dot_rows_any_length<A, Bits, G, 1>(q, n, runtime_group, scheme, rows, stride, count, scores, 0);
  }
}

/// Batches of outputs that axpy_rows_by_group keeps in registers, at most.
inline constexpr std::size_t kMaxGroupBatches = 8;

/// Whether axpy_rows_by_group applies to Bits-wide groups of G codes on A.
template <class A, int Bits, std::size_t G>
inline constexpr bool kRegisterGroup =
    G != 0 && !(Bits == 32 || Bits == 16) && fits<Bits, A>(0, G) && G / Lanes<A>::kWidth <= kMaxGroupBatches;

/**
 * Runs fn(std::integral_constant<size_t, kG>) for the call's group as a
 * compile-time constant: G when dispatch fixed it, else the run-time group if
 * it is one of the common sizes; only for groups that kRegisterGroup admits.
 * @return whether it ran.
 */
template <class A, int Bits, std::size_t G, class Fn>
KVBITS_ALWAYS_INLINE bool with_register_group(std::size_t group, Fn&& fn) {
  bool ran = false;
  const auto attempt = [&](auto candidate) {
    if constexpr (kRegisterGroup<A, Bits, decltype(candidate)::value>) {
      if (!ran && group == decltype(candidate)::value) {
        fn(candidate);
        ran = true;
      }
    }
  };
  if constexpr (G != 0) {
    attempt(std::integral_constant<std::size_t, G>{});
  } else {
    unrolled([&](auto i) { attempt(std::integral_constant<std::size_t, std::size_t{8} << i.value>{}); },
             std::make_index_sequence<5>{});  // 8, 16, 32, 64, 128
  }
  return ran;
}

/**
 * axpy_rows Groups groups at a time, with their outputs in registers over all
 * rows: y is read and written once per call instead of once per row, which
 * put a store-to-load round trip on every row's dependency chain, and the
 * groups of one pass are independent chains. Each output and each group's
 * offset sum still takes the rows in order with the same operations, so the
 * sums are those of the per-row loop in axpy_rows bit for bit. With Q > 1 the
 * queries of one KV head (weights + h * weight_stride into y + h * n) share
 * each code's widening; each query's sums stay those of a call of its own.
 */
template <class A, int Bits, std::size_t G, std::size_t Groups, Scheme S, std::size_t Q = 1>
inline void axpy_rows_by_group(const float* KVBITS_RESTRICT weights, std::size_t weight_stride, std::size_t n,
                               const std::uint8_t* rows, std::size_t stride, std::size_t count,
                               float* KVBITS_RESTRICT y) noexcept {
  using F = typename Lanes<A>::F;
  constexpr std::size_t width = Lanes<A>::kWidth;
  constexpr std::size_t kBatches = Groups * G / width;
  constexpr std::size_t block_bytes = group_bytes(Bits, G, S);
  constexpr std::size_t meta = metadata_bytes(S);
  for (std::size_t first = 0; first < n / G; first += Groups) {
    F acc[Q][kBatches];  // [query][Groups * G / W] the pass's outputs
    for (std::size_t h = 0; h < Q; ++h) {
      for (std::size_t i = 0; i < kBatches; ++i) {
        acc[h][i] = F::load_unaligned(y + h * n + first * G + i * width);
      }
    }
    float offsets[Q][Groups] = {};  // [query][Groups] sum over rows of w * the group's offset
    const std::uint8_t* row = rows + first * block_bytes;
    for (std::size_t r = 0; r < count; ++r, row += stride) {
      unrolled(
          [&](auto group) {
            const std::uint8_t* block = row + group.value * block_bytes;
            const auto affine = kvbits::detail::load_affine(block, S, Bits);
            F scale[Q];
            for (std::size_t h = 0; h < Q; ++h) {
              const float w = weights[h * weight_stride + r];
              offsets[h][group.value] =
                  kvbits::detail::multiply_add(w, affine.offset, offsets[h][group.value]);
              scale[h] = F(w * affine.scale);
            }
            for_each_code_fixed<A, Bits, G>(block + meta, [&](auto index, const auto& codes) {
              constexpr std::size_t batch = (decltype(group)::value * G + decltype(index)::value) / width;
              const F values = xsimd::to_float(codes);
              for (std::size_t h = 0; h < Q; ++h) acc[h][batch] = xsimd::fma(scale[h], values, acc[h][batch]);
            });
          },
          std::make_index_sequence<Groups>{});
    }
    for (std::size_t h = 0; h < Q; ++h) {
      for (std::size_t i = 0; i < kBatches; ++i) {
        (acc[h][i] + F(offsets[h][i * width / G])).store_unaligned(y + h * n + first * G + i * width);
      }
    }
  }
}

/// Runs axpy_rows_by_group for Q queries with as many groups per pass (4, 2 or
/// 1) as divide the row's groups and keep Q times their batches within kMaxGroupBatches.
template <class A, int Bits, std::size_t G, Scheme S, std::size_t Q = 1>
inline void axpy_rows_in_registers(const float* KVBITS_RESTRICT weights, std::size_t weight_stride,
                                   std::size_t n, const std::uint8_t* rows, std::size_t stride,
                                   std::size_t count, float* KVBITS_RESTRICT y) noexcept {
  constexpr std::size_t kGroupBatches = Q * G / Lanes<A>::kWidth;
  if constexpr (4 * kGroupBatches <= kMaxGroupBatches) {
    if (n / G % 4 == 0) {
      return axpy_rows_by_group<A, Bits, G, 4, S, Q>(weights, weight_stride, n, rows, stride, count, y);
    }
  }
  if constexpr (2 * kGroupBatches <= kMaxGroupBatches) {
    if (n / G % 2 == 0) {
      return axpy_rows_by_group<A, Bits, G, 2, S, Q>(weights, weight_stride, n, rows, stride, count, y);
    }
  }
  axpy_rows_by_group<A, Bits, G, 1, S, Q>(weights, weight_stride, n, rows, stride, count, y);
}

/**
 * axpy_rows_in_registers for `queries` queries' weights (weights + h * weight_stride) into
 * y [queries][n] over the same rows, in passes of 4, 2 or 1 queries whose outputs fit
 * kMaxGroupBatches: each code is widened once for the pass, and every query's sums are those of
 * a call of its own bit for bit. @return false, writing nothing, when axpy_rows would not take
 * axpy_rows_in_registers for this shape (a fixed-length kernel, or a group it does not hold).
 */
template <class A, int Bits, std::size_t G>
inline bool axpy_rows_in_registers_shared(const float* KVBITS_RESTRICT weights, std::size_t weight_stride,
                                          std::size_t queries, std::size_t n, std::size_t runtime_group,
                                          Scheme scheme, const std::uint8_t* rows, std::size_t stride,
                                          std::size_t count, float* KVBITS_RESTRICT y) noexcept {
  if constexpr (Bits == 32 || Bits == 16) {
    return false;
  } else {
    if (with_fixed_length<A, Bits, G>(n, [](auto) {})) return false;
    return with_register_group<A, Bits, G>(G != 0 ? G : runtime_group, [&](auto fixed_group) {
      constexpr std::size_t kG = decltype(fixed_group)::value;
      constexpr std::size_t kGroupBatches = kG / Lanes<A>::kWidth;
      with_scheme(scheme, [&](auto fixed) {
        for (std::size_t first = 0; first < queries;) {
          const auto pass = [&](auto take) {
            axpy_rows_in_registers<A, Bits, kG, fixed.value, take.value>(
                weights + first * weight_stride, weight_stride, n, rows, stride, count, y + first * n);
            first += take.value;
          };
          const std::size_t left = queries - first;
          if constexpr (4 * kGroupBatches <= kMaxGroupBatches) {
            if (left >= 4) {
              pass(std::integral_constant<std::size_t, 4>{});
              continue;
            }
          }
          if constexpr (2 * kGroupBatches <= kMaxGroupBatches) {
            if (left >= 2) {
              pass(std::integral_constant<std::size_t, 2>{});
              continue;
            }
          }
          pass(std::integral_constant<std::size_t, 1>{});
        }
      });
    });
  }
}

template <class A, int Bits, std::size_t G>
inline void axpy_rows(const float* KVBITS_RESTRICT weights, std::size_t n, std::size_t runtime_group,
                      Scheme scheme, const std::uint8_t* rows, std::size_t stride, std::size_t count,
                      float* KVBITS_RESTRICT y) noexcept {
  using L = Lanes<A>;
  using F = typename L::F;
  constexpr std::size_t width = L::kWidth;
  if (with_float_length<A, Bits>(
          n, [&](auto length) { axpy_rows_float<A, Bits, length.value>(weights, rows, stride, count, y); })) {
    return;
  }
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
    if (with_fixed_length<A, Bits, G>(n, [&](auto length) {
          with_scheme(scheme, [&](auto fixed) {
            axpy_rows_fixed<A, Bits, length.value, G, fixed.value>(weights, rows, stride, count, y);
          });
        })) {
      return;
    }
    if (with_register_group<A, Bits, G>(G != 0 ? G : runtime_group, [&](auto fixed_group) {
          with_scheme(scheme, [&](auto fixed) {
            axpy_rows_in_registers<A, Bits, fixed_group.value, fixed.value>(weights, 0, n, rows, stride,
                                                                            count, y);
          });
        })) {
      return;
    }
    if (axpy_rows_in_parts_shared<A, Bits, G>(weights, 0, 1, n, runtime_group, scheme, rows, stride, count,
                                              y)) {
      return;
    }
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
#if KVBITS_XSIMD_KERNELS && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__F16C__)
    if constexpr (simd::kEightsEncode<Bits>) {
      if (group == 8 && n % 16 == 0) {
        simd::with_scheme(scheme, [&](auto fixed) { simd::encode_eights<Bits, fixed.value>(x, n, out); });
        return;
      }
    }
#endif
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
        const bool done = simd::run_two_bit_g8<Bits>(group, scheme, [&](auto fixed) {
          simd::dot_rows_two_bit_g8<fixed.value>(q, n, rows, stride, count, scores);
        });
        if (!done) ScalarKernels::dot_rows<Bits>(q, n, group, scheme, rows, stride, count, scores);
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
        const bool done = simd::run_two_bit_g8<Bits>(group, scheme, [&](auto fixed) {
          simd::axpy_rows_two_bit_g8<fixed.value>(weights, n, rows, stride, count, y);
        });
        if (!done) ScalarKernels::axpy_rows<Bits>(weights, n, group, scheme, rows, stride, count, y);
      } else {
#if KVBITS_XSIMD_KERNELS
        simd::axpy_rows<decltype(arch), Bits, g.value>(weights, n, group, scheme, rows, stride, count, y);
#endif
      }
    });
  }

  /// dot_rows of each query h < queries (q [queries][n]) into scores + h * score_stride;
  /// each row decoded once where a shared kernel applies, same scores either way.
  template <int Bits>
  static void dot_rows_multi(const float* KVBITS_RESTRICT q, std::size_t queries, std::size_t n,
                             std::size_t group, Scheme scheme, const std::uint8_t* rows, std::size_t stride,
                             std::size_t count, float* KVBITS_RESTRICT scores,
                             std::size_t score_stride) noexcept {
    for (std::size_t first = 0; first < queries; first += simd::kMaxSharedQueries) {
      const std::size_t take = std::min(simd::kMaxSharedQueries, queries - first);
      bool shared = false;
#if KVBITS_XSIMD_KERNELS
      shared = simd::dispatch<Bits>(n, group, [&](auto arch, [[maybe_unused]] auto g) {
        if constexpr (std::is_same_v<decltype(arch), simd::NoArch>) {
          return false;
        } else {
          return simd::dot_rows_shared<decltype(arch), Bits, g.value>(
                     q + first * n, take, n, scheme, rows, stride, count, scores + first * score_stride,
                     score_stride) ||
                 simd::dot_rows_any_length_shared<decltype(arch), Bits, g.value>(
                     q + first * n, take, n, group, scheme, rows, stride, count,
                     scores + first * score_stride, score_stride);
        }
      });
#endif
      if (shared) continue;
      for (std::size_t h = first; h < first + take; ++h) {
        dot_rows<Bits>(q + h * n, n, group, scheme, rows, stride, count, scores + h * score_stride);
      }
    }
  }

  /// axpy_rows of each query's weights (weights + h * weight_stride) into y + h * n;
  /// each row decoded once where a shared kernel applies, same sums either way.
  template <int Bits>
  static void axpy_rows_multi(const float* KVBITS_RESTRICT weights, std::size_t weight_stride,
                              std::size_t queries, std::size_t n, std::size_t group, Scheme scheme,
                              const std::uint8_t* rows, std::size_t stride, std::size_t count,
                              float* KVBITS_RESTRICT y) noexcept {
#if KVBITS_XSIMD_KERNELS
    const bool shared = simd::dispatch<Bits>(n, group, [&](auto arch, [[maybe_unused]] auto g) {
      if constexpr (std::is_same_v<decltype(arch), simd::NoArch>) {
        return false;
      } else {
        return simd::axpy_rows_shared<decltype(arch), Bits, g.value>(weights, weight_stride, queries, n,
                                                                     scheme, rows, stride, count, y) ||
               simd::axpy_rows_in_registers_shared<decltype(arch), Bits, g.value>(
                   weights, weight_stride, queries, n, group, scheme, rows, stride, count, y) ||
               simd::axpy_rows_in_parts_shared<decltype(arch), Bits, g.value>(
                   weights, weight_stride, queries, n, group, scheme, rows, stride, count, y);
      }
    });
    if (shared) return;
#endif
    for (std::size_t h = 0; h < queries; ++h) {
      axpy_rows<Bits>(weights + h * weight_stride, n, group, scheme, rows, stride, count, y + h * n);
    }
  }
};

}  // namespace KVBITS_ISA_NAMESPACE
}  // namespace kvbits::kernel
