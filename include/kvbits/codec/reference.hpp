// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kvbits/codec/format.hpp"
#include "kvbits/codec/group_params.hpp"
#include "kvbits/config.hpp"
#include "kvbits/core/fp16.hpp"
#include "kvbits/core/isa_namespace.hpp"
#include "kvbits/core/multiply_add.hpp"

// Scalar reference kernels: plain C++ and the definition of correct. Every SIMD
// kernel is tested against these.
//
// Contract of every kernel here: n is a multiple of 8 and of `group`, `group`
// is a multiple of 8, inputs are finite (the checked entry points in
// codec/backend.hpp enforce this), pointers need no alignment and do not alias.
namespace kvbits::kernel {
inline namespace KVBITS_ISA_NAMESPACE {

namespace detail {

// Position of element i's code inside a planar block (2, 4, 8 bits):
// byte i % (G/k), bit field i / (G/k), with k = 8 / Bits codes per byte.
template <int Bits>
constexpr std::size_t planar_stride(std::size_t group) noexcept {
  return group * Bits / 8;
}

// A whole group's codes packed in the order of QuantFormat, loop by loop (fields,
// then bytes) rather than element by element, so it vectorises.
template <int Bits>
inline void pack_codes(const std::uint8_t* KVBITS_RESTRICT codes, std::size_t group,
                       std::uint8_t* KVBITS_RESTRICT out) noexcept {
  if constexpr (Bits == 2 || Bits == 4 || Bits == 8) {
    const std::size_t stride = planar_stride<Bits>(group);
    for (std::size_t j = 0; j < stride; ++j) {
      unsigned byte = 0;
      for (std::size_t field = 0; field < 8 / Bits; ++field) {
        byte |= unsigned{codes[field * stride + j]} << (field * Bits);
      }
      out[j] = static_cast<std::uint8_t>(byte);
    }
  } else {
    for (std::size_t unit = 0; unit < group / 8; ++unit) {
      std::uint64_t word = 0;
      for (std::size_t i = 0; i < 8; ++i) {
        word |= static_cast<std::uint64_t>(codes[unit * 8 + i]) << (i * Bits);
      }
      for (std::size_t b = 0; b < static_cast<std::size_t>(Bits); ++b) {
        out[unit * Bits + b] = static_cast<std::uint8_t>(word >> (8 * b));
      }
    }
  }
}

template <int Bits>
inline int unpack_code(const std::uint8_t* codes, std::size_t group, std::size_t i) noexcept {
  constexpr unsigned kMask = (1u << Bits) - 1u;
  if constexpr (Bits == 2 || Bits == 4 || Bits == 8) {
    const std::size_t stride = planar_stride<Bits>(group);
    return static_cast<int>(
        (static_cast<unsigned>(codes[i % stride]) >> ((i / stride) * static_cast<std::size_t>(Bits))) &
        kMask);
  } else {
    const std::uint8_t* unit = codes + (i / 8) * Bits;
    const std::size_t bit = (i % 8) * Bits;
    const unsigned pair =
        static_cast<unsigned>(unit[bit / 8]) |
        (bit / 8 + 1 < static_cast<std::size_t>(Bits) ? static_cast<unsigned>(unit[bit / 8 + 1]) << 8 : 0u);
    return static_cast<int>((pair >> (bit % 8)) & kMask);
  }
}

/**
 * Calls visit(i, unpack_code<Bits>(codes, group, i)) for i = 0 .. group - 1 in
 * that order, loop by loop rather than element by element: the planar widths
 * walk their fields without a division per element (code i is field i / stride
 * of byte i % stride), the bit streams read each unit of 8 codes as one word.
 */
template <int Bits, class Visit>
inline void for_each_code(const std::uint8_t* codes, std::size_t group, Visit&& visit) noexcept {
  constexpr unsigned kMask = (1u << Bits) - 1u;
  if constexpr (Bits == 2 || Bits == 4 || Bits == 8) {
    const std::size_t stride = planar_stride<Bits>(group);
    for (std::size_t field = 0; field < 8 / Bits; ++field) {
      const unsigned shift = static_cast<unsigned>(field) * static_cast<unsigned>(Bits);
      for (std::size_t j = 0; j < stride; ++j) {
        visit(field * stride + j, static_cast<int>((static_cast<unsigned>(codes[j]) >> shift) & kMask));
      }
    }
  } else {
    for (std::size_t unit = 0; unit < group / 8; ++unit) {
      std::uint64_t word = 0;
      for (std::size_t b = 0; b < static_cast<std::size_t>(Bits); ++b) {
        word |= static_cast<std::uint64_t>(codes[unit * Bits + b]) << (8 * b);
      }
      for (std::size_t i = 0; i < 8; ++i) visit(unit * 8 + i, static_cast<int>((word >> (i * Bits)) & kMask));
    }
  }
}

/// The group's codes unpacked into codes [group], in element order (for_each_code).
template <int Bits>
inline void unpack_codes(const std::uint8_t* KVBITS_RESTRICT packed, std::size_t group,
                         std::uint8_t* KVBITS_RESTRICT codes) noexcept {
  for_each_code<Bits>(packed, group,
                      [codes](std::size_t i, int code) { codes[i] = static_cast<std::uint8_t>(code); });
}

}  // namespace detail

/**
 * Packs n floats x into `out` (packed_size bytes) in the grouped format, with
 * each group's parameters from detail::group_params (min/max fit), or at 2 and
 * 3 bits from detail::fit_group_params (least-squares search).
 * @tparam Bits 2, 3, 4, 5, 6 or 8.
 */
template <int Bits>
inline void encode_grouped_ref(const float* KVBITS_RESTRICT x, std::size_t n, std::size_t group,
                               Scheme scheme, std::uint8_t* KVBITS_RESTRICT out) noexcept {
  const std::size_t block_bytes = group_bytes(Bits, group, scheme);
  kvbits::detail::GroupParams fitted[kvbits::detail::kMaxGroups];
  if constexpr (kvbits::detail::fits_by_search(Bits)) {
    kvbits::detail::fit_group_params(x, n, group, scheme, Bits, fitted);
  }
  std::uint8_t codes[kMaxVectorLength];
  for (std::size_t g = 0; g < n / group; ++g) {
    const float* xs = x + g * group;
    std::uint8_t* block = out + g * block_bytes;
    kvbits::detail::GroupParams params;
    if constexpr (kvbits::detail::fits_by_search(Bits)) {
      params = fitted[g];
    } else {
      const auto [lo, hi] = std::minmax_element(xs, xs + group);
      params = kvbits::detail::group_params(scheme, *lo, *hi, Bits);
    }
    for (std::size_t i = 0; i < group; ++i) {
      codes[i] = static_cast<std::uint8_t>(scheme == Scheme::asymmetric
                                               ? kvbits::detail::asymmetric_code(xs[i], params, Bits)
                                               : kvbits::detail::symmetric_code(xs[i], params, Bits));
    }
    kvbits::detail::store_metadata(params, scheme, block);
    detail::pack_codes<Bits>(codes, group, block + metadata_bytes(scheme));
  }
}

/// Unpacks n floats from a grouped-format vector.
template <int Bits>
inline void decode_grouped_ref(const std::uint8_t* KVBITS_RESTRICT in, std::size_t n, std::size_t group,
                               Scheme scheme, float* KVBITS_RESTRICT y) noexcept {
  const std::size_t block_bytes = group_bytes(Bits, group, scheme);
  for (std::size_t g = 0; g < n / group; ++g) {
    const std::uint8_t* block = in + g * block_bytes;
    const auto affine = kvbits::detail::load_affine(block, scheme, Bits);
    const std::uint8_t* codes = block + metadata_bytes(scheme);
    float* out = y + g * group;
    detail::for_each_code<Bits>(codes, group, [&](std::size_t i, int code) {
      out[i] = affine.offset + affine.scale * static_cast<float>(code);
    });
  }
}

/// q . decode(in) without materialising the decoded vector.
template <int Bits>
inline float dot_grouped_ref(const float* KVBITS_RESTRICT q, const std::uint8_t* KVBITS_RESTRICT in,
                             std::size_t n, std::size_t group, Scheme scheme) noexcept {
  const std::size_t block_bytes = group_bytes(Bits, group, scheme);
  float total = 0.0f;
  for (std::size_t g = 0; g < n / group; ++g) {
    const std::uint8_t* block = in + g * block_bytes;
    const auto affine = kvbits::detail::load_affine(block, scheme, Bits);
    const std::uint8_t* codes = block + metadata_bytes(scheme);
    // sum q*(offset + scale*c) = offset*sum(q) + scale*sum(q*c): one multiply per element.
    float q_sum = 0.0f;
    float qc_sum = 0.0f;
    const float* q_group = q + g * group;
    // The roundings are spelled out (SIMD kernels reproduce them): each product on its own,
    // the last step as one multiply-add.
    detail::for_each_code<Bits>(codes, group, [&](std::size_t i, int code) {
      q_sum += q_group[i];
      qc_sum += kvbits::detail::rounded_product(q_group[i], static_cast<float>(code));
    });
    total += kvbits::detail::multiply_add(affine.offset, q_sum, affine.scale * qc_sum);
  }
  return total;
}

/// y += w * decode(in).
template <int Bits>
inline void axpy_grouped_ref(float w, const std::uint8_t* KVBITS_RESTRICT in, std::size_t n,
                             std::size_t group, Scheme scheme, float* KVBITS_RESTRICT y) noexcept {
  const std::size_t block_bytes = group_bytes(Bits, group, scheme);
  for (std::size_t g = 0; g < n / group; ++g) {
    const std::uint8_t* block = in + g * block_bytes;
    const auto affine = kvbits::detail::load_affine(block, scheme, Bits);
    const float scale = w * affine.scale;
    const float offset = w * affine.offset;
    const std::uint8_t* codes = block + metadata_bytes(scheme);
    float* out = y + g * group;
    detail::for_each_code<Bits>(codes, group, [&](std::size_t i, int code) {
      out[i] += kvbits::detail::multiply_add(scale, static_cast<float>(code), offset);
    });
  }
}

// --- 16 bits: IEEE binary16, round-to-nearest-even, saturating ----------------

inline void encode_half_ref(const float* KVBITS_RESTRICT x, std::size_t n,
                            std::uint8_t* KVBITS_RESTRICT out) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint16_t h = float_to_half_saturate(x[i]);
    out[2 * i] = static_cast<std::uint8_t>(h & 0xFFu);
    out[2 * i + 1] = static_cast<std::uint8_t>(h >> 8);
  }
}

inline float load_half(const std::uint8_t* in, std::size_t i) noexcept {
  return half_to_float(static_cast<std::uint16_t>(in[2 * i] | (in[2 * i + 1] << 8)));
}

inline void decode_half_ref(const std::uint8_t* KVBITS_RESTRICT in, std::size_t n,
                            float* KVBITS_RESTRICT y) noexcept {
  for (std::size_t i = 0; i < n; ++i) y[i] = load_half(in, i);
}

inline float dot_half_ref(const float* KVBITS_RESTRICT q, const std::uint8_t* KVBITS_RESTRICT in,
                          std::size_t n) noexcept {
  float total = 0.0f;
  for (std::size_t i = 0; i < n; ++i) total += q[i] * load_half(in, i);
  return total;
}

inline void axpy_half_ref(float w, const std::uint8_t* KVBITS_RESTRICT in, std::size_t n,
                          float* KVBITS_RESTRICT y) noexcept {
  for (std::size_t i = 0; i < n; ++i) y[i] += w * load_half(in, i);
}

// --- 32 bits: the floats themselves --------------------------------------------

inline float load_float(const std::uint8_t* in, std::size_t i) noexcept {
  float value;
  std::memcpy(&value, in + 4 * i, sizeof value);
  return value;
}

inline float dot_float_ref(const float* KVBITS_RESTRICT q, const std::uint8_t* KVBITS_RESTRICT in,
                           std::size_t n) noexcept {
  float total = 0.0f;
  for (std::size_t i = 0; i < n; ++i) total += q[i] * load_float(in, i);
  return total;
}

inline void axpy_float_ref(float w, const std::uint8_t* KVBITS_RESTRICT in, std::size_t n,
                           float* KVBITS_RESTRICT y) noexcept {
  for (std::size_t i = 0; i < n; ++i) y[i] += w * load_float(in, i);
}

/**
 * The scalar kernel set, in the shape every backend's kernel set has: one
 * template per operation over the compile-time bit width.
 */
struct ScalarKernels {
  template <int Bits>
  static void encode(const float* KVBITS_RESTRICT x, std::size_t n, std::size_t group, Scheme scheme,
                     std::uint8_t* KVBITS_RESTRICT out) noexcept {
    if constexpr (Bits == 32) {
      std::memcpy(out, x, n * sizeof(float));
    } else if constexpr (Bits == 16) {
      encode_half_ref(x, n, out);
    } else {
      encode_grouped_ref<Bits>(x, n, group, scheme, out);
    }
  }

  template <int Bits>
  static void decode(const std::uint8_t* KVBITS_RESTRICT in, std::size_t n, std::size_t group, Scheme scheme,
                     float* KVBITS_RESTRICT y) noexcept {
    if constexpr (Bits == 32) {
      std::memcpy(y, in, n * sizeof(float));
    } else if constexpr (Bits == 16) {
      decode_half_ref(in, n, y);
    } else {
      decode_grouped_ref<Bits>(in, n, group, scheme, y);
    }
  }

  template <int Bits>
  static float dot(const float* KVBITS_RESTRICT q, const std::uint8_t* KVBITS_RESTRICT in, std::size_t n,
                   std::size_t group, Scheme scheme) noexcept {
    if constexpr (Bits == 32) {
      return dot_float_ref(q, in, n);
    } else if constexpr (Bits == 16) {
      return dot_half_ref(q, in, n);
    } else {
      return dot_grouped_ref<Bits>(q, in, n, group, scheme);
    }
  }

  template <int Bits>
  static void axpy(float w, const std::uint8_t* KVBITS_RESTRICT in, std::size_t n, std::size_t group,
                   Scheme scheme, float* KVBITS_RESTRICT y) noexcept {
    if constexpr (Bits == 32) {
      axpy_float_ref(w, in, n, y);
    } else if constexpr (Bits == 16) {
      axpy_half_ref(w, in, n, y);
    } else {
      axpy_grouped_ref<Bits>(w, in, n, group, scheme, y);
    }
  }

  /// scores[r] = q . decode(rows + r * stride) for r < count.
  template <int Bits>
  static void dot_rows(const float* KVBITS_RESTRICT q, std::size_t n, std::size_t group, Scheme scheme,
                       const std::uint8_t* rows, std::size_t stride, std::size_t count,
                       float* KVBITS_RESTRICT scores) noexcept {
    for (std::size_t r = 0; r < count; ++r) {
      scores[r] = dot<Bits>(q, rows + r * stride, n, group, scheme);
    }
  }

  /// y += sum_r weights[r] * decode(rows + r * stride) for r < count.
  template <int Bits>
  static void axpy_rows(const float* KVBITS_RESTRICT weights, std::size_t n, std::size_t group, Scheme scheme,
                        const std::uint8_t* rows, std::size_t stride, std::size_t count,
                        float* KVBITS_RESTRICT y) noexcept {
    for (std::size_t r = 0; r < count; ++r) {
      axpy<Bits>(weights[r], rows + r * stride, n, group, scheme, y);
    }
  }

  /// dot_rows of each query h < queries (q [queries][n]) into scores + h * score_stride.
  template <int Bits>
  static void dot_rows_multi(const float* KVBITS_RESTRICT q, std::size_t queries, std::size_t n,
                             std::size_t group, Scheme scheme, const std::uint8_t* rows, std::size_t stride,
                             std::size_t count, float* KVBITS_RESTRICT scores,
                             std::size_t score_stride) noexcept {
    for (std::size_t h = 0; h < queries; ++h) {
      dot_rows<Bits>(q + h * n, n, group, scheme, rows, stride, count, scores + h * score_stride);
    }
  }

  /// axpy_rows of each query's weights (weights + h * weight_stride) into y + h * n.
  template <int Bits>
  static void axpy_rows_multi(const float* KVBITS_RESTRICT weights, std::size_t weight_stride,
                              std::size_t queries, std::size_t n, std::size_t group, Scheme scheme,
                              const std::uint8_t* rows, std::size_t stride, std::size_t count,
                              float* KVBITS_RESTRICT y) noexcept {
    for (std::size_t h = 0; h < queries; ++h) {
      axpy_rows<Bits>(weights + h * weight_stride, n, group, scheme, rows, stride, count, y + h * n);
    }
  }
};

}  // namespace KVBITS_ISA_NAMESPACE
}  // namespace kvbits::kernel
