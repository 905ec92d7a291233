// SPDX-License-Identifier: MIT
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "kvbits/codec/format.hpp"
#include "kvbits/core/bit_width.hpp"
#include "kvbits/core/error.hpp"
#include "kvbits/core/finite.hpp"

namespace kvbits {

/**
 * A Backend packs vectors and computes the two products attention needs over
 * packed data. It is an empty tag type with static members only. It may also
 * offer dot_rows_multi / axpy_rows_multi (HasMultiQueryRows below), which
 * attention then uses for the query heads that share a KV head; without them
 * it calls dot_rows / axpy_rows once per head.
 */
template <class B>
concept Backend = requires {
  { B::name() } -> std::convertible_to<std::string_view>;
  { B::alignment() } -> std::convertible_to<std::size_t>;
  { B::available() } -> std::convertible_to<bool>;
}
&&requires(const QuantFormat& format, std::span<const float> x, std::span<std::uint8_t> out,
           std::span<const std::uint8_t> in, std::span<float> y, const float* q, const std::uint8_t* rows,
           float* scores, std::size_t n, float w) {
  B::encode(format, x, out);
  B::decode(format, in, y);
  { B::dot(format, x, in) } -> std::convertible_to<float>;
  B::axpy(format, w, in, y);
  B::dot_rows(format, q, n, rows, n, n, scores);
  B::axpy_rows(format, q, n, rows, n, n, scores);
};

}  // namespace kvbits

namespace kvbits::detail {

inline void require_length(std::size_t actual, std::size_t expected, const char* what) {
  if (actual != expected) {
    throw Error(Errc::shape_mismatch, std::string(what) + " holds " + std::to_string(actual) +
                                          " elements, expected " + std::to_string(expected));
  }
}

/**
 * The operations of a backend, built on its kernel set. Validation and the
 * run-time -> compile-time bit dispatch happen here, once per call, so the
 * kernels' loops stay free of both. The row kernels' debug-only checks are
 * CodecFrontend's (below), so that this class alone can be compiled once for a
 * whole program (kvbits/kernel_instantiations.hpp) and each caller still gets
 * the checks its own KVBITS_DEBUG_CHECKS asks for.
 * @tparam Kernels a type with static templates encode/decode/dot/axpy/
 *         dot_rows/axpy_rows<Bits> as kernel::ScalarKernels has.
 */
template <class Kernels>
struct CodecDispatch {
  /**
   * Packs x into out. Nothing is written when it throws.
   * @param format storage format; @param x the vector (n = x.size());
   * @param out exactly packed_size(format, n) bytes.
   * @throws Error(invalid_argument) for a format that cannot hold n elements,
   *         Error(shape_mismatch) for a wrong output size,
   *         Error(non_finite_input) when x holds NaN or Inf.
   */
  static void encode(const QuantFormat& format, std::span<const float> x, std::span<std::uint8_t> out);

  /// Unpacks `in` (packed_size(format, y.size()) bytes) into y.
  static void decode(const QuantFormat& format, std::span<const std::uint8_t> in, std::span<float> y);

  /**
   * encode for vectors the library made itself (finite, sized by packed_size):
   * no format, length or finiteness checks, one width dispatch. The bytes are
   * those of encode().
   * @param format a validated storage format that holds n elements;
   * @param x n finite floats; @param out packed_size(format, n) bytes.
   */
  static void encode_unchecked(const QuantFormat& format, const float* x, std::size_t n, std::uint8_t* out);

  /**
   * out <- `in` (format `from`) decoded and re-encoded in `to`, through a stack
   * buffer, each width dispatched once: the bytes of decode() then encode(),
   * without their checks (stored codes decode to finite values).
   * @param from, to validated formats that hold n <= kMaxVectorLength elements;
   * @param in packed_size(from, n) bytes; @param out packed_size(to, n) bytes.
   */
  static void transcode_unchecked(const QuantFormat& from, const QuantFormat& to, std::size_t n,
                                  const std::uint8_t* in, std::uint8_t* out);

  /// @return q . decode(in), without materialising the decoded vector.
  static float dot(const QuantFormat& format, std::span<const float> q, std::span<const std::uint8_t> in);

  /// y += w * decode(in).
  static void axpy(const QuantFormat& format, float w, std::span<const std::uint8_t> in, std::span<float> y);

  /**
   * Attention hot path: scores[r] = q . decode(row r) for `count` packed
   * vectors of n elements spaced `stride` bytes apart from `rows`.
   * Precondition: stride >= packed_size(format, n).
   */
  static void dot_rows(const QuantFormat& format, const float* q, std::size_t n, const std::uint8_t* rows,
                       std::size_t stride, std::size_t count, float* scores);

  /// Attention hot path: y += sum_r weights[r] * decode(row r); layout as dot_rows.
  static void axpy_rows(const QuantFormat& format, const float* weights, std::size_t n,
                        const std::uint8_t* rows, std::size_t stride, std::size_t count, float* y);

  /**
   * dot_rows for the `queries` query heads that share these rows (grouped-query
   * attention): scores[h * score_stride + r] = q_h . decode(row r), q_h =
   * q + h * n. Each row is decoded once for all of them where the kernel set
   * can; every score is bit for bit the one dot_rows gives that query.
   */
  static void dot_rows_multi(const QuantFormat& format, const float* q, std::size_t queries, std::size_t n,
                             const std::uint8_t* rows, std::size_t stride, std::size_t count, float* scores,
                             std::size_t score_stride);

  /**
   * axpy_rows for `queries` query heads over the same rows: y_h += sum_r
   * weights[h * weight_stride + r] * decode(row r), y_h = y + h * n; each row
   * decoded once where the kernel set can, each y_h bit for bit axpy_rows'.
   */
  static void axpy_rows_multi(const QuantFormat& format, const float* weights, std::size_t weight_stride,
                              std::size_t queries, std::size_t n, const std::uint8_t* rows,
                              std::size_t stride, std::size_t count, float* y);
};

template <class Kernels>
void CodecDispatch<Kernels>::encode(const QuantFormat& format, std::span<const float> x,
                                    std::span<std::uint8_t> out) {
  validate(format, x.size());
  require_length(out.size(), packed_size(format, x.size()), "packed output (bytes)");
  require_finite(x, "input vector");
  dispatch_bits(format.bits, [&](auto bits) {
    Kernels::template encode<bits.value>(x.data(), x.size(), effective_group_size(format, x.size()),
                                         format.scheme, out.data());
  });
}

template <class Kernels>
void CodecDispatch<Kernels>::decode(const QuantFormat& format, std::span<const std::uint8_t> in,
                                    std::span<float> y) {
  validate(format, y.size());
  require_length(in.size(), packed_size(format, y.size()), "packed input (bytes)");
  dispatch_bits(format.bits, [&](auto bits) {
    Kernels::template decode<bits.value>(in.data(), y.size(), effective_group_size(format, y.size()),
                                         format.scheme, y.data());
  });
}

template <class Kernels>
void CodecDispatch<Kernels>::encode_unchecked(const QuantFormat& format, const float* x, std::size_t n,
                                              std::uint8_t* out) {
  dispatch_bits(format.bits, [&](auto bits) {
    Kernels::template encode<bits.value>(x, n, effective_group_size(format, n), format.scheme, out);
  });
}

template <class Kernels>
void CodecDispatch<Kernels>::transcode_unchecked(const QuantFormat& from, const QuantFormat& to,
                                                 std::size_t n, const std::uint8_t* in, std::uint8_t* out) {
  float decoded[kMaxVectorLength];  // [n] used
  dispatch_bits(from.bits, [&](auto bits) {
    Kernels::template decode<bits.value>(in, n, effective_group_size(from, n), from.scheme, decoded);
  });
  encode_unchecked(to, decoded, n, out);
}

template <class Kernels>
float CodecDispatch<Kernels>::dot(const QuantFormat& format, std::span<const float> q,
                                  std::span<const std::uint8_t> in) {
  validate(format, q.size());
  require_length(in.size(), packed_size(format, q.size()), "packed input (bytes)");
  return dispatch_bits(format.bits, [&](auto bits) {
    return Kernels::template dot<bits.value>(q.data(), in.data(), q.size(),
                                             effective_group_size(format, q.size()), format.scheme);
  });
}

template <class Kernels>
void CodecDispatch<Kernels>::axpy(const QuantFormat& format, float w, std::span<const std::uint8_t> in,
                                  std::span<float> y) {
  validate(format, y.size());
  require_length(in.size(), packed_size(format, y.size()), "packed input (bytes)");
  dispatch_bits(format.bits, [&](auto bits) {
    Kernels::template axpy<bits.value>(w, in.data(), y.size(), effective_group_size(format, y.size()),
                                       format.scheme, y.data());
  });
}

template <class Kernels>
void CodecDispatch<Kernels>::dot_rows(const QuantFormat& format, const float* q, std::size_t n,
                                      const std::uint8_t* rows, std::size_t stride, std::size_t count,
                                      float* scores) {
  dispatch_bits(format.bits, [&](auto bits) {
    Kernels::template dot_rows<bits.value>(q, n, effective_group_size(format, n), format.scheme, rows, stride,
                                           count, scores);
  });
}

template <class Kernels>
void CodecDispatch<Kernels>::axpy_rows(const QuantFormat& format, const float* weights, std::size_t n,
                                       const std::uint8_t* rows, std::size_t stride, std::size_t count,
                                       float* y) {
  dispatch_bits(format.bits, [&](auto bits) {
    Kernels::template axpy_rows<bits.value>(weights, n, effective_group_size(format, n), format.scheme, rows,
                                            stride, count, y);
  });
}

template <class Kernels>
void CodecDispatch<Kernels>::dot_rows_multi(const QuantFormat& format, const float* q, std::size_t queries,
                                            std::size_t n, const std::uint8_t* rows, std::size_t stride,
                                            std::size_t count, float* scores, std::size_t score_stride) {
  dispatch_bits(format.bits, [&](auto bits) {
    Kernels::template dot_rows_multi<bits.value>(q, queries, n, effective_group_size(format, n),
                                                 format.scheme, rows, stride, count, scores, score_stride);
  });
}

template <class Kernels>
void CodecDispatch<Kernels>::axpy_rows_multi(const QuantFormat& format, const float* weights,
                                             std::size_t weight_stride, std::size_t queries, std::size_t n,
                                             const std::uint8_t* rows, std::size_t stride, std::size_t count,
                                             float* y) {
  dispatch_bits(format.bits, [&](auto bits) {
    Kernels::template axpy_rows_multi<bits.value>(weights, weight_stride, queries, n,
                                                  effective_group_size(format, n), format.scheme, rows,
                                                  stride, count, y);
  });
}

/**
 * CodecDispatch with the row kernels' preconditions checked when
 * KVBITS_DEBUG_CHECKS is 1. These members are inline and never part of the
 * kernels compiled once, so the checks follow the calling source file.
 */
template <class Kernels>
struct CodecFrontend : CodecDispatch<Kernels> {
  /// CodecDispatch::dot_rows, the stride checked in debug builds.
  static void dot_rows(const QuantFormat& format, const float* q, std::size_t n, const std::uint8_t* rows,
                       std::size_t stride, std::size_t count, float* scores) {
    require_row_stride(format, n, stride);
    CodecDispatch<Kernels>::dot_rows(format, q, n, rows, stride, count, scores);
  }

  /// CodecDispatch::axpy_rows, the stride checked in debug builds.
  static void axpy_rows(const QuantFormat& format, const float* weights, std::size_t n,
                        const std::uint8_t* rows, std::size_t stride, std::size_t count, float* y) {
    require_row_stride(format, n, stride);
    CodecDispatch<Kernels>::axpy_rows(format, weights, n, rows, stride, count, y);
  }

  /// CodecDispatch::dot_rows_multi, both strides checked in debug builds.
  static void dot_rows_multi(const QuantFormat& format, const float* q, std::size_t queries, std::size_t n,
                             const std::uint8_t* rows, std::size_t stride, std::size_t count, float* scores,
                             std::size_t score_stride) {
    require_row_stride(format, n, stride);
    KVBITS_DEBUG_REQUIRE(queries <= 1 || score_stride >= count, Errc::invalid_argument,
                         "score stride is smaller than the row count");
    CodecDispatch<Kernels>::dot_rows_multi(format, q, queries, n, rows, stride, count, scores, score_stride);
  }

  /// CodecDispatch::axpy_rows_multi, both strides checked in debug builds.
  static void axpy_rows_multi(const QuantFormat& format, const float* weights, std::size_t weight_stride,
                              std::size_t queries, std::size_t n, const std::uint8_t* rows,
                              std::size_t stride, std::size_t count, float* y) {
    require_row_stride(format, n, stride);
    KVBITS_DEBUG_REQUIRE(queries <= 1 || weight_stride >= count, Errc::invalid_argument,
                         "weight stride is smaller than the row count");
    CodecDispatch<Kernels>::axpy_rows_multi(format, weights, weight_stride, queries, n, rows, stride, count,
                                            y);
  }

 private:
  // Rows of n values in `format` must not overlap: the precondition every row kernel shares.
  static void require_row_stride([[maybe_unused]] const QuantFormat& format, [[maybe_unused]] std::size_t n,
                                 [[maybe_unused]] std::size_t stride) {
    KVBITS_DEBUG_REQUIRE(stride >= packed_size(format, n), Errc::invalid_argument,
                         "row stride is smaller than one packed vector");
  }
};

/// Whether B has CodecFrontend's several-query row kernels (a user's Backend need not).
template <class B>
concept HasMultiQueryRows = requires(const QuantFormat& format, const float* q, const std::uint8_t* rows,
                                     float* out, std::size_t n) {
  B::dot_rows_multi(format, q, n, n, rows, n, n, out, n);
  B::axpy_rows_multi(format, q, n, n, n, rows, n, n, out);
};

/// B::dot_rows_multi, or B::dot_rows per query for a backend without it; same scores.
template <Backend B>
void dot_rows_for_queries(const QuantFormat& format, const float* q, std::size_t queries, std::size_t n,
                          const std::uint8_t* rows, std::size_t stride, std::size_t count, float* scores,
                          std::size_t score_stride) {
  if constexpr (HasMultiQueryRows<B>) {
    B::dot_rows_multi(format, q, queries, n, rows, stride, count, scores, score_stride);
  } else {
    for (std::size_t h = 0; h < queries; ++h) {
      B::dot_rows(format, q + h * n, n, rows, stride, count, scores + h * score_stride);
    }
  }
}

/// B::axpy_rows_multi, or B::axpy_rows per query for a backend without it; same sums.
template <Backend B>
void axpy_rows_for_queries(const QuantFormat& format, const float* weights, std::size_t weight_stride,
                           std::size_t queries, std::size_t n, const std::uint8_t* rows, std::size_t stride,
                           std::size_t count, float* y) {
  if constexpr (HasMultiQueryRows<B>) {
    B::axpy_rows_multi(format, weights, weight_stride, queries, n, rows, stride, count, y);
  } else {
    for (std::size_t h = 0; h < queries; ++h) {
      B::axpy_rows(format, weights + h * weight_stride, n, rows, stride, count, y + h * n);
    }
  }
}

/// Whether B has CodecFrontend's unchecked entry points (a user's Backend need not).
template <class B>
concept HasUncheckedCodec = requires(const QuantFormat& format, const float* x, const std::uint8_t* in,
                                     std::uint8_t* out, std::size_t n) {
  B::encode_unchecked(format, x, n, out);
  B::transcode_unchecked(format, format, n, in, out);
};

/// B::encode_unchecked, or B::encode for a backend without it; same contract and bytes.
template <Backend B>
void encode_trusted(const QuantFormat& format, const float* x, std::size_t n, std::uint8_t* out) {
  if constexpr (HasUncheckedCodec<B>) {
    B::encode_unchecked(format, x, n, out);
  } else {
    B::encode(format, std::span<const float>(x, n), std::span<std::uint8_t>(out, packed_size(format, n)));
  }
}

/// B::transcode_unchecked, or B::decode then B::encode for a backend without it.
template <Backend B>
void transcode_trusted(const QuantFormat& from, const QuantFormat& to, std::size_t n, const std::uint8_t* in,
                       std::uint8_t* out) {
  if constexpr (HasUncheckedCodec<B>) {
    B::transcode_unchecked(from, to, n, in, out);
  } else {
    float decoded[kMaxVectorLength];  // [n] used
    B::decode(from, std::span<const std::uint8_t>(in, packed_size(from, n)), std::span<float>(decoded, n));
    encode_trusted<B>(to, decoded, n, out);
  }
}

}  // namespace kvbits::detail
