// SPDX-License-Identifier: MIT
// Codec tests: layouts, round-trip bounds, SIMD == scalar, fused ops == decode
// then op, error paths, and the fp16 helpers the metadata relies on.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "kvbits/codec/backend.hpp"
#include "kvbits/codec/default_backend.hpp"
#include "kvbits/codec/format.hpp"
#include "kvbits/codec/group_params.hpp"
#include "kvbits/codec/scalar_backend.hpp"
#include "kvbits/codec/xsimd_backend.hpp"
#include "kvbits/codec/xsimd_lanes.hpp"
#include "kvbits/core/error.hpp"
#include "kvbits/core/fp16.hpp"

namespace {

using kvbits::QuantFormat;
using kvbits::Scheme;

// Every width of the traits table, and those stored with a (half-precision) code: adding a
// width to kvbits::kBitWidthTable adds it to every test that loops over these.
constexpr auto kBitWidths = kvbits::kSupportedBits;
constexpr auto kCodedBitWidths = [] {
  std::array<int, kvbits::kSupportedBits.size() - 1> widths{};
  std::size_t n = 0;
  for (int bits : kvbits::kSupportedBits) {
    if (bits != 32) widths[n++] = bits;
  }
  return widths;
}();
constexpr std::size_t kGroupSizes[] = {8, 16, 32, 64, 128, 0};  // 0 = one group spanning the vector
constexpr std::size_t kLengths[] = {8, 48, 64, 128, 1024};      // 48: six groups of 8, a pair left over
constexpr Scheme kSchemes[] = {Scheme::asymmetric, Scheme::symmetric};

// --- tolerances -------------------------------------------------------------

// Round trip: |x - x^| <= scale / 2 holds in exact arithmetic; the float
// evaluation of (x - min) * (1 / scale) and of min + scale * code adds a few
// rounding errors relative to the magnitudes involved.
constexpr float kRoundTripRelSlack = 8.0f * FLT_EPSILON;
// binary16 round trip: RNE is within half a unit in the last place: 2^-11 relative,
// 2^-25 absolute in the denormal range.
constexpr float kHalfRelErr = 1.0f / 2048.0f;
constexpr float kHalfAbsErr = 1.0f / 33554432.0f;

// SIMD vs scalar decode: same codes, but offset + scale * code may be fused in
// one and not the other: one rounding of the magnitude |offset| + scale * code.
constexpr float kDecodeRelTol = 2.0f * FLT_EPSILON;

// dot / axpy: a different summation order. Relative to the magnitude of the
// terms summed (sum |q_i| * (|offset| + scale * code_i)), so cancellation in
// the result cannot make a correct kernel fail.
constexpr float kMaxRelErrDot2Bit = 2e-5f;
constexpr float kMaxRelErrDot3Bit = 2e-5f;
constexpr float kMaxRelErrDot4Bit = 2e-5f;
constexpr float kMaxRelErrDot5Bit = 2e-5f;
constexpr float kMaxRelErrDot6Bit = 2e-5f;
constexpr float kMaxRelErrDot8Bit = 2e-5f;
constexpr float kMaxRelErrDot16Bit = 2e-5f;
constexpr float kMaxRelErrDot32Bit = 2e-5f;
// The integer dot kernels (AVX-512 VNNI, n = 64 or 128: 2/4/8 bits in groups of
// 32, 64 or the whole row, 3 bits in groups of 32 or 64) round the query to
// a grid of power-of-two step <= 2^-21 * max|q| once per call and then sum
// exactly in int32: each element's query moves by at most half a step, so the
// score moves by at most 2^-22 * max|q| * sum_i scale * code_i on top of the
// float roundings dot_tolerance covers (query_grid_bound).
constexpr float kMaxRelErrQueryGrid = 0x1p-22f;
constexpr float kMaxRelErrAxpy = 4.0f * FLT_EPSILON;  // per element: y + w * x^ is 1-2 roundings
constexpr float kMaxRelErrAxpyRows = 1e-5f;           // per element, summed over rows

constexpr float dot_tolerance(int bits) {
  switch (bits) {
    case 2:
      return kMaxRelErrDot2Bit;
    case 3:
      return kMaxRelErrDot3Bit;
    case 4:
      return kMaxRelErrDot4Bit;
    case 5:
      return kMaxRelErrDot5Bit;
    case 6:
      return kMaxRelErrDot6Bit;
    case 8:
      return kMaxRelErrDot8Bit;
    case 16:
      return kMaxRelErrDot16Bit;
    default:
      return kMaxRelErrDot32Bit;
  }
}

// Round trip, in steps |scale| of the group: round-to-nearest is within half a
// step; the mid-tread symmetric grid has 2^(bits-1) steps below zero but
// 2^(bits-1) - 1 above, so the end opposite the largest magnitude may clip by
// one step (2-bit groups may be mid-rise, within half a step: see sign_picks_grid).
constexpr float kMaxErrStepsAsymmetric = 0.5f;
constexpr float kMaxErrStepsSymmetric = 1.0f;

constexpr float max_error_in_steps(Scheme scheme) {
  return scheme == Scheme::asymmetric ? kMaxErrStepsAsymmetric : kMaxErrStepsSymmetric;
}

// The fitted 2/3-bit parameters are scored in closed form from float sums of
// x^2, x L and L^2, so "never worse than the min/max fit" holds up to their
// rounding, relative to the group's sum of x^2.
constexpr double kFitScoreRelSlack = 1e-5;

// ggml's tests/test-quantize-fns.cpp thresholds, for x[i] = 0.1 + 2 cos(i + offset), n = 4096:
// total error = sqrt(sum (x - x^)^2) / n, dot error = |q . x^ - q . x| / n.
constexpr double kGgmlMaxTotalError = 0.002;
constexpr double kGgmlMaxTotalError3Bit = 0.004;
constexpr double kGgmlMaxTotalError2Bit = 0.0075;
constexpr double kGgmlMaxDotError = 0.02;
constexpr double kGgmlMaxDotError2Bit = 0.04;

// A few absolute units for sums that are exactly zero in magnitude.
constexpr float kTinyAbs = 1e-30f;

// --- inputs -----------------------------------------------------------------

enum class Kind { random, outliers, constant, constant_unrepresentable, zeros, denormals, huge, mixed_scale };
constexpr Kind kKinds[] = {Kind::random, Kind::outliers,  Kind::constant, Kind::constant_unrepresentable,
                           Kind::zeros,  Kind::denormals, Kind::huge,     Kind::mixed_scale};

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::random:
      return "random";
    case Kind::outliers:
      return "outlier channels";
    case Kind::constant:
      return "constant (fp16-representable)";
    case Kind::constant_unrepresentable:
      return "constant (not fp16-representable)";
    case Kind::zeros:
      return "signed zeros";
    case Kind::denormals:
      return "denormals";
    case Kind::huge:
      return "huge magnitudes";
    case Kind::mixed_scale:
      return "groups of very different scale";
  }
  return "?";
}

std::vector<float> make_vector(Kind kind, std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(n);
  for (std::size_t i = 0; i < n; ++i) {
    switch (kind) {
      case Kind::random:
        x[i] = normal(rng);
        break;
      // Real keys have a few channels ~100x larger than the rest.
      case Kind::outliers:
        x[i] = normal(rng) * (i % 64 == 3 || i % 64 == 40 ? 100.0f : 1.0f);
        break;
      case Kind::constant:
        x[i] = -1.375f;
        break;
      case Kind::constant_unrepresentable:
        x[i] = 0.1f;
        break;
      case Kind::zeros:
        x[i] = (i % 3 == 0) ? -0.0f : 0.0f;
        break;
      case Kind::denormals:
        x[i] = normal(rng) * 1e-39f;
        break;
      case Kind::huge:
        x[i] = (i % 4 == 0) ? 1e30f : (i % 4 == 1 ? -1e30f : normal(rng) * 1e5f);
        break;
      case Kind::mixed_scale:
        x[i] = normal(rng) * std::ldexp(1.0f, static_cast<int>(i / 8 % 5) * 6 - 12);
        break;
    }
  }
  return x;
}

std::size_t group_of(const QuantFormat& format, std::size_t n) {
  return kvbits::effective_group_size(format, n);
}

bool valid_combination(const QuantFormat& format, std::size_t n) {
  if (!kvbits::is_grouped_bits(format.bits))
    return format.group_size == 32 && format.scheme == Scheme::asymmetric;
  const std::size_t group = group_of(format, n);
  return n % group == 0;
}

std::string describe(const QuantFormat& format, std::size_t n) {
  return "bits " + std::to_string(format.bits) + ", G " + std::to_string(format.group_size) + ", " +
         (format.scheme == Scheme::asymmetric ? "asymmetric" : "symmetric") + ", n " + std::to_string(n);
}

/// Calls fn(format, n) for every supported (bits, G, scheme, n); 16/32 bits once per n.
template <class Fn>
void for_each_format(Fn&& fn) {
  for (int bits : kBitWidths) {
    for (std::size_t group : kGroupSizes) {
      for (Scheme scheme : kSchemes) {
        for (std::size_t n : kLengths) {
          const QuantFormat format{bits, group, scheme};
          if (valid_combination(format, n)) fn(format, n);
        }
      }
    }
  }
}

float clamp_half_range(float x) { return std::clamp(x, -kvbits::kHalfMax, kvbits::kHalfMax); }

/// The affine map (scale, offset) of element i's group.
kvbits::detail::GroupAffine affine_of(const QuantFormat& format, std::span<const std::uint8_t> packed,
                                      std::size_t n, std::size_t i) {
  const std::size_t group = group_of(format, n);
  const std::size_t block = kvbits::group_bytes(format.bits, group, format.scheme);
  return kvbits::detail::load_affine(packed.data() + i / group * block, format.scheme, format.bits);
}

/// Magnitude of the terms that make up x^_i: |offset| + scale * code (= |x^_i| for 16/32 bits).
float term_magnitude(const QuantFormat& format, std::span<const std::uint8_t> packed,
                     std::span<const float> decoded, std::size_t i) {
  if (!kvbits::is_grouped_bits(format.bits)) return std::fabs(decoded[i]);
  const auto affine = affine_of(format, packed, decoded.size(), i);
  return std::fabs(affine.offset) + std::fabs(decoded[i] - affine.offset);
}

/// kMaxRelErrQueryGrid's bound for q . decode(packed): 2^-22 * max|q| * sum_i scale * code_i (0 at 16/32
/// bits).
float query_grid_bound(const QuantFormat& format, std::span<const std::uint8_t> packed,
                       std::span<const float> decoded, std::span<const float> q) {
  if (!kvbits::is_grouped_bits(format.bits)) return 0.0f;
  float largest = 0.0f;
  float codes = 0.0f;
  for (std::size_t i = 0; i < q.size(); ++i) {
    largest = std::max(largest, std::fabs(q[i]));
    codes += std::fabs(decoded[i] - affine_of(format, packed, decoded.size(), i).offset);
  }
  return kMaxRelErrQueryGrid * largest * codes;
}

template <class Backend>
std::vector<std::uint8_t> encode(const QuantFormat& format, const std::vector<float>& x) {
  std::vector<std::uint8_t> packed(kvbits::packed_size(format, x.size()));
  Backend::encode(format, x, packed);
  return packed;
}

template <class Backend>
std::vector<float> decode(const QuantFormat& format, const std::vector<std::uint8_t>& packed, std::size_t n) {
  std::vector<float> y(n);
  Backend::decode(format, packed, y);
  return y;
}

}  // namespace

// --- layout -----------------------------------------------------------------

namespace {

// Expected storage bits per element, rows = bits {2, 3, 4, 5, 6, 8}, columns = G {8, 16, 32, 64, 128}:
// bits + 8 * metadata bytes / G.
constexpr double kBitsPerElementAsymmetric[6][5] = {
    {6.0, 4.0, 3.0, 2.5, 2.25},    // 2 bits
    {7.0, 5.0, 4.0, 3.5, 3.25},    // 3 bits
    {8.0, 6.0, 5.0, 4.5, 4.25},    // 4 bits
    {9.0, 7.0, 6.0, 5.5, 5.25},    // 5 bits
    {10.0, 8.0, 7.0, 6.5, 6.25},   // 6 bits
    {12.0, 10.0, 9.0, 8.5, 8.25},  // 8 bits
};
constexpr double kBitsPerElementSymmetric[6][5] = {
    {4.0, 3.0, 2.5, 2.25, 2.125},   // 2 bits
    {5.0, 4.0, 3.5, 3.25, 3.125},   // 3 bits
    {6.0, 5.0, 4.5, 4.25, 4.125},   // 4 bits
    {7.0, 6.0, 5.5, 5.25, 5.125},   // 5 bits
    {8.0, 7.0, 6.5, 6.25, 6.125},   // 6 bits
    {10.0, 9.0, 8.5, 8.25, 8.125},  // 8 bits
};

template <int Bits, std::size_t Group, Scheme S>
constexpr bool layout_matches(std::size_t row, std::size_t column) {
  using Traits = kvbits::FormatTraits<Bits, Group, S>;
  const double expected = S == Scheme::asymmetric ? kBitsPerElementAsymmetric[row][column]
                                                  : kBitsPerElementSymmetric[row][column];
  const std::size_t meta = S == Scheme::asymmetric ? 4 : 2;
  return Traits::kBits == Bits && Traits::kGroup == Group && Traits::kMetadataBytes == meta &&
         Traits::kBlockBytes == meta + Group * Bits / 8 &&
         sizeof(typename Traits::block_type) == Traits::kBlockBytes && Traits::kBitsPerElement == expected &&
         kvbits::bits_per_element(QuantFormat{Bits, Group, S}, 1024) == expected;
}

template <int Bits, std::size_t Row, Scheme S>
constexpr bool layout_row_matches() {
  return layout_matches<Bits, 8, S>(Row, 0) && layout_matches<Bits, 16, S>(Row, 1) &&
         layout_matches<Bits, 32, S>(Row, 2) && layout_matches<Bits, 64, S>(Row, 3) &&
         layout_matches<Bits, 128, S>(Row, 4);
}

}  // namespace

TEST_CASE("block sizes and bits per element follow the documented layout", "[codec][layout]") {
  STATIC_REQUIRE(kvbits::FormatTraits<4, 32>::kBitsPerElement == 5.0);
  STATIC_REQUIRE(sizeof(kvbits::Block<4, 32>) == 20);
  STATIC_REQUIRE(sizeof(kvbits::Block<3, 32, Scheme::symmetric>) == 14);
  STATIC_REQUIRE(layout_row_matches<2, 0, Scheme::asymmetric>());
  STATIC_REQUIRE(layout_row_matches<3, 1, Scheme::asymmetric>());
  STATIC_REQUIRE(layout_row_matches<4, 2, Scheme::asymmetric>());
  STATIC_REQUIRE(layout_row_matches<5, 3, Scheme::asymmetric>());
  STATIC_REQUIRE(layout_row_matches<6, 4, Scheme::asymmetric>());
  STATIC_REQUIRE(layout_row_matches<8, 5, Scheme::asymmetric>());
  STATIC_REQUIRE(layout_row_matches<2, 0, Scheme::symmetric>());
  STATIC_REQUIRE(layout_row_matches<3, 1, Scheme::symmetric>());
  STATIC_REQUIRE(layout_row_matches<4, 2, Scheme::symmetric>());
  STATIC_REQUIRE(layout_row_matches<5, 3, Scheme::symmetric>());
  STATIC_REQUIRE(layout_row_matches<6, 4, Scheme::symmetric>());
  STATIC_REQUIRE(layout_row_matches<8, 5, Scheme::symmetric>());
  STATIC_REQUIRE(kvbits::bits_per_element(QuantFormat{16, 32, Scheme::asymmetric}, 64) == 16.0);
  STATIC_REQUIRE(kvbits::bits_per_element(QuantFormat{32, 32, Scheme::asymmetric}, 64) == 32.0);
  STATIC_REQUIRE(kvbits::packed_size(QuantFormat{4, 0, Scheme::asymmetric}, 128) == 4 + 64);
  STATIC_REQUIRE(kvbits::packed_size(QuantFormat{5, 32, Scheme::symmetric}, 1024) == 32 * (2 + 20));
}

TEST_CASE("backends satisfy the Backend concept and name themselves", "[codec]") {
  STATIC_REQUIRE(kvbits::Backend<kvbits::ScalarBackend>);
  STATIC_REQUIRE(kvbits::Backend<kvbits::XsimdBackend>);
  STATIC_REQUIRE(kvbits::Backend<kvbits::DefaultBackend>);
  STATIC_REQUIRE(kvbits::ScalarBackend::name() == "scalar");
  STATIC_REQUIRE(kvbits::XsimdBackend::name().substr(0, 6) == "xsimd-");
#if KVBITS_XSIMD_KERNELS
  STATIC_REQUIRE(kvbits::XsimdBackend::available());
  STATIC_REQUIRE(std::is_same_v<kvbits::DefaultBackend, kvbits::XsimdBackend>);
  STATIC_REQUIRE(kvbits::XsimdBackend::alignment() >= 16);
  // The name is the widest architecture this translation unit was compiled for.
#if defined(__AVX512BW__)
  STATIC_REQUIRE(kvbits::XsimdBackend::name() == "xsimd-avx512bw");
#elif defined(__AVX2__) && defined(__FMA__)
  STATIC_REQUIRE(kvbits::XsimdBackend::name() == "xsimd-fma3+avx2");
#elif defined(__aarch64__)
  STATIC_REQUIRE(kvbits::XsimdBackend::name() == "xsimd-arm64+neon");
#elif defined(__FMA__)
  STATIC_REQUIRE(kvbits::XsimdBackend::name() == "xsimd-fma3+sse4.2");
#else
  STATIC_REQUIRE(kvbits::XsimdBackend::name() == "xsimd-sse4.2");
#endif
#else
  STATIC_REQUIRE(std::is_same_v<kvbits::DefaultBackend, kvbits::ScalarBackend>);
#endif
  INFO("xsimd backend: " << kvbits::XsimdBackend::name());
  SUCCEED();
}

// --- round trips --------------------------------------------------------------

TEMPLATE_TEST_CASE("round trip stays within half a quantization step", "[codec][roundtrip]",
                   kvbits::ScalarBackend, kvbits::XsimdBackend) {
  std::uint32_t seed = 1;
  for_each_format([&](const QuantFormat& format, std::size_t n) {
    for (Kind kind : kKinds) {
      const std::vector<float> x = make_vector(kind, n, seed++);
      const auto packed = encode<TestType>(format, x);
      const auto y = decode<TestType>(format, packed, n);
      INFO(describe(format, n) << ", input " << kind_name(kind));
      for (std::size_t i = 0; i < n; ++i) {
        const float expected = format.bits == 32 ? x[i] : clamp_half_range(x[i]);
        float bound = 0.0f;
        if (format.bits == 16) {
          bound = kHalfRelErr * std::fabs(expected) + kHalfAbsErr;
        } else if (format.bits != 32) {
          const auto affine = affine_of(format, packed, n, i);
          const float step = std::fabs(affine.scale);
          const float top = static_cast<float>(kvbits::detail::max_code(format.bits));
          bound = step * max_error_in_steps(format.scheme) +
                  kRoundTripRelSlack * (std::fabs(affine.offset) + step * top + std::fabs(expected));
        }
        const float error = std::fabs(y[i] - expected);
        // 2 and 3 bits trade clipping at the group's ends for a lower total
        // error; their bound is the min/max fit's squared error (tested below).
        const bool searched =
            kvbits::is_grouped_bits(format.bits) && kvbits::detail::fits_by_search(format.bits);
        if (!(std::isfinite(y[i]) && (searched || error <= bound))) {
          INFO("index " << i << ": input " << x[i] << ", expected " << expected << ", actual " << y[i]
                        << ", error " << error << " > bound " << bound);
          CHECK(error <= bound);
          CHECK(std::isfinite(y[i]));
          break;
        }
      }
      // Constant groups: asymmetric stores the constant as min with scale 0, so an
      // fp16-representable constant (and zero in every scheme) decodes exactly.
      const bool exact =
          format.bits == 32 || kind == Kind::zeros ||
          (kind == Kind::constant && (format.bits == 16 || format.scheme == Scheme::asymmetric));
      if (exact) {
        for (std::size_t i = 0; i < n; ++i) {
          if (y[i] != x[i]) {
            INFO("index " << i << ": expected exactly " << x[i] << ", actual " << y[i]);
            CHECK(y[i] == x[i]);
            break;
          }
        }
      }
    }
  });
}

TEMPLATE_TEST_CASE("huge inputs saturate to the fp16 range instead of overflowing", "[codec][roundtrip]",
                   kvbits::ScalarBackend, kvbits::XsimdBackend) {
  for (int bits : kCodedBitWidths) {
    for (Scheme scheme : kSchemes) {
      const QuantFormat format{bits, 32, scheme};
      std::vector<float> x(64, 1e30f);
      for (std::size_t i = 0; i < x.size(); i += 2) x[i] = -1e30f;
      const auto packed = encode<TestType>(format, x);
      const auto y = decode<TestType>(format, packed, x.size());
      INFO(describe(format, x.size()));
      for (std::size_t i = 0; i < x.size(); ++i) {
        // Saturated to +-65504, up to half a step of the group's grid (which may
        // overshoot 65504 by that much: min + scale * max_code with scale rounded up),
        // or one step on the symmetric grid's short side.
        const float bound =
            bits == 16 ? 0.0f
                       : std::fabs(affine_of(format, packed, x.size(), i).scale) * max_error_in_steps(scheme);
        CAPTURE(i, x[i], y[i], bound);
        REQUIRE(std::isfinite(y[i]));
        REQUIRE(std::fabs(y[i] - clamp_half_range(x[i])) <= bound * (1.0f + kRoundTripRelSlack));
        REQUIRE(std::signbit(y[i]) == std::signbit(x[i]));
      }
    }
  }
}

// --- quantization quality (ggml's methodology) ----------------------------------

namespace {

/// ggml's synthetic test vector: 0.1 + 2 cos(i + offset).
std::vector<float> ggml_test_vector(std::size_t n, float offset) {
  std::vector<float> x(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = 0.1f + 2.0f * std::cos(static_cast<float>(i) + offset);
  return x;
}

struct GgmlErrors {
  double total;  // sqrt(sum (x - x^)^2) / n
  double dot;    // |q . x^ - q . x| / n
};

/// ggml's total and dot-product errors of `format` over n = 4096 elements,
/// encoded as four vectors of kMaxVectorLength (the longest one codec call takes).
template <class Backend>
GgmlErrors ggml_errors(const QuantFormat& format) {
  constexpr std::size_t kN = 4096;
  constexpr std::size_t kChunk = kvbits::kMaxVectorLength;
  const std::vector<float> x = ggml_test_vector(kN, 0.0f);
  const std::vector<float> q = ggml_test_vector(kN, 1.0f);
  double squared = 0.0;
  double dot_quantized = 0.0;
  double dot_exact = 0.0;
  for (std::size_t start = 0; start < kN; start += kChunk) {
    const std::vector<float> xs(x.begin() + static_cast<std::ptrdiff_t>(start),
                                x.begin() + static_cast<std::ptrdiff_t>(start + kChunk));
    const std::vector<float> qs(q.begin() + static_cast<std::ptrdiff_t>(start),
                                q.begin() + static_cast<std::ptrdiff_t>(start + kChunk));
    const auto packed = encode<Backend>(format, xs);
    const auto y = decode<Backend>(format, packed, kChunk);
    dot_quantized += Backend::dot(format, qs, packed);
    for (std::size_t i = 0; i < kChunk; ++i) {
      const double error = static_cast<double>(xs[i]) - static_cast<double>(y[i]);
      squared += error * error;
      dot_exact += static_cast<double>(qs[i]) * static_cast<double>(xs[i]);
    }
  }
  return {std::sqrt(squared) / kN, std::fabs(dot_quantized - dot_exact) / kN};
}

double ggml_max_total_error(int bits) {
  return bits == 2 ? kGgmlMaxTotalError2Bit : (bits == 3 ? kGgmlMaxTotalError3Bit : kGgmlMaxTotalError);
}

double ggml_max_dot_error(int bits) { return bits == 2 ? kGgmlMaxDotError2Bit : kGgmlMaxDotError; }

}  // namespace

TEMPLATE_TEST_CASE("every width meets ggml's quantization error thresholds", "[codec][quality]",
                   kvbits::ScalarBackend, kvbits::DefaultBackend) {
  INFO("backend " << TestType::name());
  for (int bits : kCodedBitWidths) {
    for (Scheme scheme : kSchemes) {
      // The cache's groups (32, 64, one group per 128-element head) and the smallest one.
      for (std::size_t group : {std::size_t{8}, std::size_t{32}, std::size_t{64}, std::size_t{128}}) {
        const QuantFormat format{bits, group, scheme};
        if (!valid_combination(format, kvbits::kMaxVectorLength)) continue;  // 16 bits: once
        const GgmlErrors errors = ggml_errors<TestType>(format);
        INFO("bits " << bits << ", " << (scheme == Scheme::asymmetric ? "asymmetric" : "symmetric") << ", G "
                     << group << ": total error " << errors.total << " (max " << ggml_max_total_error(bits)
                     << "), dot error " << errors.dot << " (max " << ggml_max_dot_error(bits) << ")");
        CHECK(errors.total <= ggml_max_total_error(bits));
        CHECK(errors.dot <= ggml_max_dot_error(bits));
      }
    }
  }
}

TEST_CASE("fitted 2- and 3-bit groups are never worse than the min/max fit", "[codec][quality]") {
  // Per group: squared error of the stored codes <= that of the min/max
  // parameters with round-to-nearest codes (the search scores that fit too).
  std::uint32_t seed = 900;
  for (int bits : {2, 3}) {
    for (Scheme scheme : kSchemes) {
      for (std::size_t group : {std::size_t{8}, std::size_t{32}, std::size_t{128}}) {
        const QuantFormat format{bits, group, scheme};
        for (Kind kind : kKinds) {
          const std::vector<float> x = make_vector(kind, 1024, seed++);
          const auto y =
              decode<kvbits::ScalarBackend>(format, encode<kvbits::ScalarBackend>(format, x), x.size());
          for (std::size_t start = 0; start < x.size(); start += group) {
            const auto first = x.begin() + static_cast<std::ptrdiff_t>(start);
            const auto [lo, hi] = std::minmax_element(first, first + static_cast<std::ptrdiff_t>(group));
            const auto min_max = scheme == Scheme::asymmetric
                                     ? kvbits::detail::asymmetric_params(*lo, *hi, bits)
                                     : kvbits::detail::symmetric_params(*lo, *hi, bits);
            double fitted = 0.0;
            double baseline = 0.0;
            double energy = 0.0;
            for (std::size_t i = start; i < start + group; ++i) {
              const float expected = clamp_half_range(x[i]);
              const float reference =
                  scheme == Scheme::asymmetric
                      ? min_max.min + min_max.scale * static_cast<float>(kvbits::detail::asymmetric_code(
                                                          x[i], min_max, bits))
                      : min_max.scale *
                            (static_cast<float>(kvbits::detail::symmetric_code(x[i], min_max, bits)) -
                             kvbits::detail::symmetric_zero(min_max.scale, bits));
              energy += static_cast<double>(expected) * expected;
              fitted += (static_cast<double>(y[i]) - expected) * (static_cast<double>(y[i]) - expected);
              baseline +=
                  (static_cast<double>(reference) - expected) * (static_cast<double>(reference) - expected);
            }
            if (!(fitted <= baseline + kFitScoreRelSlack * energy + 1e-30)) {
              INFO(describe(format, x.size())
                   << ", input " << kind_name(kind) << ", group at " << start << ": squared error " << fitted
                   << ", min/max fit " << baseline);
              CHECK(fitted <= baseline + kFitScoreRelSlack * energy + 1e-30);
            }
          }
        }
      }
    }
  }
}

// --- the same bytes from every build --------------------------------------------

namespace {

/// Inputs made with integer arithmetic only (no libm, nothing a compiler may
/// fuse), so every build encodes the same floats: uniform steps of 2^-20 in
/// [-8, 8), some groups scaled by powers of two up to 2^12 or down to 2^-20,
/// and a constant group.
std::vector<float> portable_vector(std::size_t n, std::uint32_t seed) {
  std::vector<float> x(n);
  std::uint32_t state = seed;
  const auto next = [&] {
    state = state * 1664525u + 1013904223u;
    return state;
  };
  for (std::size_t i = 0; i < n; ++i) {
    const auto steps = static_cast<std::int32_t>(next() >> 8) - (1 << 23);
    x[i] = static_cast<float>(steps) * 0x1p-20f;
  }
  for (std::size_t start = 0; start < n; start += 32) {
    const std::uint32_t kind = next() >> 29;
    for (std::size_t i = start; i < start + 32 && i < n; ++i) {
      if (kind == 0) x[i] *= 0x1p12f;
      if (kind == 1) x[i] *= 0x1p-20f;
      if (kind == 2) x[i] = 0.75f;
    }
  }
  return x;
}

/// FNV-1a over bytes, folded into `hash`.
std::uint64_t fnv1a(std::uint64_t hash, const std::vector<std::uint8_t>& bytes) {
  for (std::uint8_t byte : bytes) hash = (hash ^ byte) * 0x100000001b3ull;
  return hash;
}

// FNV-1a of every encoding in "2- and 3-bit encode gives the same bytes on
// every build". Encode's bytes are part of the format: if a change alters
// them on purpose, update this value and say why in the commit.
constexpr std::uint64_t kFittedEncodeChecksum = 0xd9a3a3b5d9cd677cull;

}  // namespace

TEST_CASE("2- and 3-bit encode gives the same bytes on every build", "[codec][simd]") {
  // The least-squares search must not depend on -march (FMA contraction,
  // vector width): test_codec and test_codec_x86_64_v2/v3/v4 all check this value.
  std::uint64_t hash = 0xcbf29ce484222325ull;
  std::uint32_t seed = 4242;
  for (int bits : {2, 3}) {
    for (Scheme scheme : kSchemes) {
      for (std::size_t group :
           {std::size_t{8}, std::size_t{32}, std::size_t{64}, std::size_t{128}, std::size_t{0}}) {
        const QuantFormat format{bits, group, scheme};
        const std::vector<float> x = portable_vector(256, seed++);
        const auto scalar = encode<kvbits::ScalarBackend>(format, x);
        REQUIRE(encode<kvbits::XsimdBackend>(format, x) == scalar);
        hash = fnv1a(hash, scalar);
      }
    }
  }
  INFO("checksum 0x" << std::hex << hash << ", expected 0x" << kFittedEncodeChecksum);
  CHECK(hash == kFittedEncodeChecksum);
}

// --- SIMD == scalar -------------------------------------------------------------

TEST_CASE("xsimd encode is byte-identical to the scalar reference", "[codec][simd]") {
  INFO("xsimd backend: " << kvbits::XsimdBackend::name());
  std::uint32_t seed = 100;
  for_each_format([&](const QuantFormat& format, std::size_t n) {
    for (Kind kind : kKinds) {
      const std::vector<float> x = make_vector(kind, n, seed++);
      const auto expected = encode<kvbits::ScalarBackend>(format, x);
      const auto actual = encode<kvbits::XsimdBackend>(format, x);
      const auto mismatch = std::mismatch(expected.begin(), expected.end(), actual.begin());
      if (mismatch.first != expected.end()) {
        const auto byte = static_cast<std::size_t>(mismatch.first - expected.begin());
        INFO(describe(format, n) << ", input " << kind_name(kind) << ": byte " << byte << " of "
                                 << expected.size() << ", expected " << int{*mismatch.first} << ", actual "
                                 << int{*mismatch.second});
        CHECK(mismatch.first == expected.end());
      }
    }
  });
}

TEST_CASE("xsimd encode matches the reference for random and adversarial group ranges", "[codec][simd]") {
  // The SIMD encoders compute the fp16 group parameters in vectors (directed
  // F16C rounding, vector division); this drives them with group ranges drawn
  // from every float exponent and the fp16 edge cases (+-0, denormals, +-65504
  // and beyond), four groups per vector so each lane of the parameter vector
  // sees different data, and requires byte-identical output.
  std::mt19937 rng(555);
  std::uniform_int_distribution<std::uint32_t> any_bits;
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  constexpr float kEdges[] = {0.0f,     -0.0f,     5.9604645e-08f, -5.9604645e-08f, 6.0975552e-05f,
                              65504.0f, -65504.0f, 65519.99f,      -65519.99f,      65520.0f,
                              1e30f,    -1e30f,    1e-10f,         -1e-10f,         1.0f,
                              -1.0f,    0.1f,      -0.1f,          3.4e38f,         -3.4e38f};
  const auto random_value = [&](int kind) {
    if (kind == 0) return kEdges[any_bits(rng) % std::size(kEdges)];
    float value = std::bit_cast<float>(any_bits(rng));
    while (!std::isfinite(value)) value = std::bit_cast<float>(any_bits(rng));
    return kind == 1 ? std::fmod(value, 70000.0f) : value;
  };
  std::size_t mismatches = 0;
  // Groups of 32 (encode_fixed) and of 8 (encode_eights: two groups per vector).
  for (std::size_t trial = 0; trial < 40000; ++trial) {
    const std::size_t group = trial % 2 == 0 ? 32 : 8;
    const std::size_t n = 4 * group;
    std::vector<float> x(n);
    for (std::size_t g = 0; g < 4; ++g) {
      float a = random_value(static_cast<int>(any_bits(rng) % 3));
      float b = random_value(static_cast<int>(any_bits(rng) % 3));
      if (any_bits(rng) % 8 == 0) b = a;  // constant groups
      if (b < a) std::swap(a, b);
      for (std::size_t i = 0; i < group; ++i) {
        // Endpoints at varying positions, the rest in between.
        const float t = unit(rng);
        x[g * group + i] =
            i == (trial + g) % group ? a : (i == (trial + 3 * g + 1) % group ? b : a + (b - a) * t);
        if (!std::isfinite(x[g * group + i])) x[g * group + i] = a;
      }
    }
    for (int bits : {2, 4, 5, 6, 8}) {
      for (Scheme scheme : kSchemes) {
        const QuantFormat format{bits, group, scheme};
        const auto expected = encode<kvbits::ScalarBackend>(format, x);
        const auto actual = encode<kvbits::XsimdBackend>(format, x);
        const auto mismatch = std::mismatch(expected.begin(), expected.end(), actual.begin());
        if (mismatch.first != expected.end() && mismatches++ < 5) {
          const auto byte = static_cast<std::size_t>(mismatch.first - expected.begin());
          const std::size_t g = byte / kvbits::group_bytes(bits, group, scheme);
          INFO(describe(format, n)
               << ", trial " << trial << ": byte " << byte << " (group " << g << ", range ["
               << *std::min_element(x.begin() + static_cast<std::ptrdiff_t>(g * group),
                                    x.begin() + static_cast<std::ptrdiff_t>((g + 1) * group))
               << ", "
               << *std::max_element(x.begin() + static_cast<std::ptrdiff_t>(g * group),
                                    x.begin() + static_cast<std::ptrdiff_t>((g + 1) * group))
               << "]), expected " << int{*mismatch.first} << ", actual " << int{*mismatch.second});
          CHECK(mismatch.first == expected.end());
        }
      }
    }
  }
  CHECK(mismatches == 0);
}

TEST_CASE("xsimd decode, dot and axpy agree with the scalar reference", "[codec][simd]") {
  INFO("xsimd backend: " << kvbits::XsimdBackend::name());
  std::uint32_t seed = 200;
  for_each_format([&](const QuantFormat& format, std::size_t n) {
    for (Kind kind : {Kind::random, Kind::outliers, Kind::mixed_scale, Kind::huge}) {
      INFO(describe(format, n) << ", input " << kind_name(kind));
      const std::vector<float> x = make_vector(kind, n, seed++);
      const std::vector<float> q = make_vector(Kind::random, n, seed++);
      const auto packed = encode<kvbits::ScalarBackend>(format, x);

      const auto expected = decode<kvbits::ScalarBackend>(format, packed, n);
      const auto actual = decode<kvbits::XsimdBackend>(format, packed, n);
      float magnitude = 0.0f;  // sum |q_i| * (|offset| + scale * code_i)
      for (std::size_t i = 0; i < n; ++i) {
        const float terms = term_magnitude(format, packed, expected, i);
        magnitude += std::fabs(q[i]) * terms;
        const float tolerance = kDecodeRelTol * terms;
        if (!(std::fabs(actual[i] - expected[i]) <= tolerance)) {
          INFO("decode index " << i << ": expected " << expected[i] << ", actual " << actual[i]);
          CHECK(std::fabs(actual[i] - expected[i]) <= tolerance);
          break;
        }
      }

      const float dot_expected = kvbits::ScalarBackend::dot(format, q, packed);
      const float dot_actual = kvbits::XsimdBackend::dot(format, q, packed);
      INFO("dot: expected " << dot_expected << ", actual " << dot_actual << ", term magnitude " << magnitude);
      CHECK(std::fabs(dot_actual - dot_expected) <= dot_tolerance(format.bits) * magnitude +
                                                        query_grid_bound(format, packed, expected, q) +
                                                        kTinyAbs);

      const float w = -0.75f;
      std::vector<float> y_expected(q);
      std::vector<float> y_actual(q);
      kvbits::ScalarBackend::axpy(format, w, packed, y_expected);
      kvbits::XsimdBackend::axpy(format, w, packed, y_actual);
      for (std::size_t i = 0; i < n; ++i) {
        const float tolerance =
            kMaxRelErrAxpy * (std::fabs(q[i]) + std::fabs(w) * term_magnitude(format, packed, expected, i)) +
            kTinyAbs;
        if (!(std::fabs(y_actual[i] - y_expected[i]) <= tolerance)) {
          INFO("axpy index " << i << ": expected " << y_expected[i] << ", actual " << y_actual[i]);
          CHECK(std::fabs(y_actual[i] - y_expected[i]) <= tolerance);
          break;
        }
      }
    }
  });
}

// --- fused ops == decode then op -------------------------------------------------

TEMPLATE_TEST_CASE("dot_rows and axpy_rows equal decode-then-dot and decode-then-axpy", "[codec][rows]",
                   kvbits::ScalarBackend, kvbits::XsimdBackend) {
  constexpr std::size_t kRows = 13;
  constexpr std::size_t kPadding = 3;  // rows may sit in a larger stride
  std::uint32_t seed = 300;
  for_each_format([&](const QuantFormat& format, std::size_t n) {
    INFO(describe(format, n));
    const std::size_t row_bytes = kvbits::packed_size(format, n);
    const std::size_t stride = row_bytes + kPadding;
    std::vector<std::uint8_t> rows(kRows * stride, 0xEE);
    std::vector<std::vector<float>> decoded(kRows);
    for (std::size_t r = 0; r < kRows; ++r) {
      const auto x = make_vector(r % 2 == 0 ? Kind::outliers : Kind::random, n, seed++);
      TestType::encode(format, x, std::span(rows).subspan(r * stride, row_bytes));
      decoded[r].resize(n);
      TestType::decode(format, std::span<const std::uint8_t>(rows).subspan(r * stride, row_bytes),
                       decoded[r]);
    }
    const auto q = make_vector(Kind::random, n, seed++);
    std::vector<float> weights(kRows);
    for (std::size_t r = 0; r < kRows; ++r) weights[r] = 1.0f / static_cast<float>(r + 2);

    std::vector<float> scores(kRows);
    TestType::dot_rows(format, q.data(), n, rows.data(), stride, kRows, scores.data());
    for (std::size_t r = 0; r < kRows; ++r) {
      const std::span<const std::uint8_t> packed =
          std::span<const std::uint8_t>(rows).subspan(r * stride, row_bytes);
      float expected = 0.0f;
      float magnitude = 0.0f;
      for (std::size_t i = 0; i < n; ++i) {
        expected += q[i] * decoded[r][i];
        magnitude += std::fabs(q[i]) * term_magnitude(format, packed, decoded[r], i);
      }
      const float single = TestType::dot(format, q, packed);
      const float bound =
          dot_tolerance(format.bits) * magnitude + query_grid_bound(format, packed, decoded[r], q) + kTinyAbs;
      INFO("row " << r << ": expected " << expected << ", dot_rows " << scores[r] << ", dot " << single);
      CHECK(std::fabs(scores[r] - expected) <= bound);
      CHECK(std::fabs(single - expected) <= bound);
    }

    std::vector<float> y(q);
    TestType::axpy_rows(format, weights.data(), n, rows.data(), stride, kRows, y.data());
    for (std::size_t i = 0; i < n; ++i) {
      float expected = q[i];
      float magnitude = std::fabs(q[i]);
      for (std::size_t r = 0; r < kRows; ++r) {
        expected += weights[r] * decoded[r][i];
        const std::span<const std::uint8_t> packed =
            std::span<const std::uint8_t>(rows).subspan(r * stride, row_bytes);
        magnitude += weights[r] * term_magnitude(format, packed, decoded[r], i);
      }
      if (!(std::fabs(y[i] - expected) <= kMaxRelErrAxpyRows * magnitude + kTinyAbs)) {
        INFO("axpy_rows index " << i << ": expected " << expected << ", actual " << y[i]);
        CHECK(std::fabs(y[i] - expected) <= kMaxRelErrAxpyRows * magnitude + kTinyAbs);
        break;
      }
    }
    // The padding between rows is never written.
    for (std::size_t r = 0; r < kRows; ++r) {
      for (std::size_t b = row_bytes; b < stride; ++b) REQUIRE(rows[r * stride + b] == 0xEE);
    }
  });
}

namespace {

/// REQUIREs every actual[i] to have the bits of expected[i], naming the first index that differs.
void require_same_bits(std::span<const float> actual, std::span<const float> expected) {
  REQUIRE(actual.size() == expected.size());
  // One assertion for the first difference: per-element messages would cost more than the kernels.
  const auto same_bits = [](float a, float b) {
    return std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b);
  };
  const auto i = static_cast<std::size_t>(
      std::mismatch(actual.begin(), actual.end(), expected.begin(), same_bits).first - actual.begin());
  if (i < actual.size()) {
    INFO("index " << i << ": expected " << expected[i] << ", actual " << actual[i]);
    REQUIRE(same_bits(actual[i], expected[i]));
  }
}

/// XsimdBackend::dot_rows against ScalarBackend::dot_rows over rows[r * stride] (decoded[r] their
/// decoded values), within dot_tolerance and query_grid_bound of each row.
void check_dot_rows_against_reference(const QuantFormat& format, std::size_t n,
                                      std::span<const std::uint8_t> rows, std::size_t stride,
                                      const std::vector<std::vector<float>>& decoded,
                                      std::span<const float> q) {
  const std::size_t count = decoded.size();
  const std::size_t row_bytes = kvbits::packed_size(format, n);
  std::vector<float> expected_scores(count);
  std::vector<float> actual_scores(count);
  kvbits::ScalarBackend::dot_rows(format, q.data(), n, rows.data(), stride, count, expected_scores.data());
  kvbits::XsimdBackend::dot_rows(format, q.data(), n, rows.data(), stride, count, actual_scores.data());
  for (std::size_t r = 0; r < count; ++r) {
    const std::span<const std::uint8_t> packed = rows.subspan(r * stride, row_bytes);
    float magnitude = 0.0f;
    for (std::size_t i = 0; i < n; ++i)
      magnitude += std::fabs(q[i]) * term_magnitude(format, packed, decoded[r], i);
    const float bound =
        dot_tolerance(format.bits) * magnitude + query_grid_bound(format, packed, decoded[r], q) + kTinyAbs;
    if (!(std::fabs(actual_scores[r] - expected_scores[r]) <= bound)) {
      INFO("dot_rows row " << r << ": expected " << expected_scores[r] << ", actual " << actual_scores[r]
                           << ", term magnitude " << magnitude);
      CHECK(std::fabs(actual_scores[r] - expected_scores[r]) <= bound);
    }
  }
}

}  // namespace

TEST_CASE("xsimd dot_rows and axpy_rows match the scalar reference over many rows", "[codec][rows][simd]") {
  // More rows than any batch width, and not a multiple of one, so the kernels'
  // batched row reduction and their tail both run; n = 64 and 128 take the
  // fixed-length (register-resident) kernels for every group size (on AVX2, SSE
  // and NEON one group of 128 or 64 runs in parts of the row over chunks of 64
  // rows: 133 rows are two chunks and a tail), n = 8 and 16 (small heads) the
  // kernels for any length, whose axpy_rows keeps a group's outputs in registers.
  constexpr std::size_t kRows = 133;
  constexpr std::size_t kPadding = 5;
  std::uint32_t seed = 400;
  for (int bits : kBitWidths) {
    for (std::size_t group : kGroupSizes) {
      for (Scheme scheme : kSchemes) {
        for (std::size_t n : {std::size_t{8}, std::size_t{16}, std::size_t{64}, std::size_t{128}}) {
          const QuantFormat format{bits, group, scheme};
          if (!valid_combination(format, n)) continue;  // 16/32 bits: once per n
          INFO(describe(format, n));
          const std::size_t row_bytes = kvbits::packed_size(format, n);
          const std::size_t stride = row_bytes + kPadding;
          std::vector<std::uint8_t> rows(kRows * stride, 0xEE);
          std::vector<std::vector<float>> decoded(kRows, std::vector<float>(n));
          for (std::size_t r = 0; r < kRows; ++r) {
            const auto x = make_vector(r % 3 == 0 ? Kind::outliers : Kind::random, n, seed++);
            const std::span<std::uint8_t> packed = std::span(rows).subspan(r * stride, row_bytes);
            kvbits::ScalarBackend::encode(format, x, packed);
            kvbits::ScalarBackend::decode(format, packed, decoded[r]);
          }
          // Every other query spans 2^24 in magnitude: its small elements fall below the integer
          // kernels' query grid step (kMaxRelErrQueryGrid).
          const Kind query_kind = seed % 2 == 0 ? Kind::random : Kind::mixed_scale;
          const auto q = make_vector(query_kind, n, seed++);
          std::vector<float> weights(kRows);
          for (std::size_t r = 0; r < kRows; ++r)
            weights[r] = (r % 2 == 0 ? 1.0f : -0.5f) / static_cast<float>(r + 1);

          check_dot_rows_against_reference(format, n, rows, stride, decoded, q);

          std::vector<float> y_expected(q);
          std::vector<float> y_actual(q);
          kvbits::ScalarBackend::axpy_rows(format, weights.data(), n, rows.data(), stride, kRows,
                                           y_expected.data());
          kvbits::XsimdBackend::axpy_rows(format, weights.data(), n, rows.data(), stride, kRows,
                                          y_actual.data());
          for (std::size_t i = 0; i < n; ++i) {
            float magnitude = std::fabs(q[i]);
            for (std::size_t r = 0; r < kRows; ++r) {
              const std::span<const std::uint8_t> packed =
                  std::span<const std::uint8_t>(rows).subspan(r * stride, row_bytes);
              magnitude += std::fabs(weights[r]) * term_magnitude(format, packed, decoded[r], i);
            }
            if (!(std::fabs(y_actual[i] - y_expected[i]) <= kMaxRelErrAxpyRows * magnitude + kTinyAbs)) {
              INFO("axpy_rows index " << i << ": expected " << y_expected[i] << ", actual " << y_actual[i]);
              CHECK(std::fabs(y_actual[i] - y_expected[i]) <= kMaxRelErrAxpyRows * magnitude + kTinyAbs);
              break;
            }
          }
          for (std::size_t r = 0; r < kRows; ++r) {
            for (std::size_t b = row_bytes; b < stride; ++b) REQUIRE(rows[r * stride + b] == 0xEE);
          }
        }
      }
    }
  }
}

#if KVBITS_XSIMD_KERNELS

namespace {

/// REQUIREs lane k of Lanes<A>::reduce_rows_as_hadd to equal xsimd::hadd of row k bit for bit.
template <class A>
void check_reduce_rows_as_hadd(std::uint32_t seed) {
  using L = kvbits::kernel::simd::Lanes<A>;
  using F = typename L::F;
  constexpr std::size_t width = L::kWidth;
  std::mt19937 rng(seed);
  // Magnitudes from 2^-20 to 2^20: any other pairing or order rounds differently.
  std::uniform_real_distribution<float> mantissa(-1.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-20, 20);
  for (int trial = 0; trial < 200; ++trial) {
    F rows[width];
    for (F& row : rows) {
      alignas(64) float values[width];
      for (float& value : values) value = std::ldexp(mantissa(rng), exponent(rng));
      row = F::load_aligned(values);
    }
    alignas(64) float sums[width];
    L::reduce_rows_as_hadd(rows).store_aligned(sums);
    for (std::size_t k = 0; k < width; ++k) {
      INFO(A::name() << ", row " << k);
      REQUIRE(std::bit_cast<std::uint32_t>(sums[k]) == std::bit_cast<std::uint32_t>(xsimd::hadd(rows[k])));
    }
  }
}

template <class... A>
void check_reduce_rows_as_hadd(kvbits::kernel::simd::ArchChain<A...>) {
  (check_reduce_rows_as_hadd<A>(900), ...);
}

}  // namespace

TEST_CASE("W rows reduced at once sum each row as xsimd's horizontal add does, on every architecture",
          "[codec][simd]") {
  // The row kernels without a fixed length score W rows with one transposing
  // reduction; this is what keeps their scores those of one hadd per row.
  check_reduce_rows_as_hadd(kvbits::kernel::simd::Archs{});
}

#if KVBITS_INTEGER_DOT_AVX2

namespace {

/// The AVX2 integer dot_rows for one query, with the group as a compile-time constant.
template <int Bits>
bool avx2_integer_dot(std::size_t group, const float* q, std::size_t n, Scheme scheme,
                      const std::uint8_t* rows, std::size_t stride, std::size_t count, float* scores) {
  namespace avx2 = kvbits::kernel::simd::avx2;
  switch (group) {
    case 32:
      return avx2::dot_rows<Bits, 32>(q, 1, n, scheme, rows, stride, count, scores, 0);
    case 64:
      return avx2::dot_rows<Bits, 64>(q, 1, n, scheme, rows, stride, count, scores, 0);
    case 128:
      return avx2::dot_rows<Bits, 128>(q, 1, n, scheme, rows, stride, count, scores, 0);
    default:
      FAIL("no test group " << group);
      return false;
  }
}

}  // namespace

TEST_CASE("without AVX-512, 2- and 4-bit rows of one group are scored by the AVX2 integer kernel",
          "[codec][rows][simd]") {
  // XsimdBackend sends the cache's default rows to it (its scores are the kernel's, bit for bit),
  // and the kernel declines 8-bit rows, groups of 32 and a query off its grid, writing nothing.
  constexpr std::size_t kRows = 21;
  constexpr float kUntouched = -1234.5f;
  std::uint32_t seed = 950;
  for (Scheme scheme : kSchemes) {
    for (std::size_t n : {std::size_t{64}, std::size_t{128}}) {
      for (int bits : {2, 4, 8}) {
        for (std::size_t group : {std::size_t{32}, n}) {
          const QuantFormat format{bits, group, scheme};
          INFO(describe(format, n));
          const std::size_t stride = kvbits::packed_size(format, n);
          std::vector<std::uint8_t> rows(kRows * stride);
          for (std::size_t r = 0; r < kRows; ++r) {
            const auto x = make_vector(Kind::random, n, seed++);
            kvbits::ScalarBackend::encode(format, x, std::span(rows).subspan(r * stride, stride));
          }
          const auto run = [&](const std::vector<float>& q, std::vector<float>& scores) {
            const auto call = [&](auto fixed_bits) {
              return avx2_integer_dot<decltype(fixed_bits)::value>(group, q.data(), n, scheme, rows.data(),
                                                                   stride, kRows, scores.data());
            };
            if (bits == 2) return call(std::integral_constant<int, 2>{});
            if (bits == 4) return call(std::integral_constant<int, 4>{});
            return call(std::integral_constant<int, 8>{});
          };
          const auto q = make_vector(Kind::random, n, seed++);
          std::vector<float> integer(kRows, kUntouched);
          const bool ran = run(q, integer);
          REQUIRE(ran == (bits != 8 && group == n));
          if (!ran) {
            REQUIRE(std::all_of(integer.begin(), integer.end(), [&](float s) { return s == kUntouched; }));
            continue;
          }
          std::vector<float> through_backend(kRows);
          kvbits::XsimdBackend::dot_rows(format, q.data(), n, rows.data(), stride, kRows,
                                         through_backend.data());
          require_same_bits(integer, through_backend);
          std::vector<float> off_grid(kRows, kUntouched);
          REQUIRE_FALSE(run(std::vector<float>(n, 0.0f), off_grid));
          REQUIRE(std::all_of(off_grid.begin(), off_grid.end(), [&](float s) { return s == kUntouched; }));
        }
      }
    }
  }
}

#endif  // KVBITS_INTEGER_DOT_AVX2

#endif

TEST_CASE("xsimd dot_rows and axpy_rows over 2-bit groups of 8 give the reference's sums bit for bit",
          "[codec][rows][simd]") {
  // The one grouped format no SIMD batch tiles (2 code bytes per group) has its
  // own kernel, which promises the reference's arithmetic, not just its tolerance.
  constexpr std::size_t kRows = 37;
  constexpr std::size_t kPadding = 3;
  std::uint32_t seed = 700;
  for (Scheme scheme : kSchemes) {
    for (std::size_t n : {std::size_t{8}, std::size_t{16}, std::size_t{64}}) {
      const QuantFormat format{2, 8, scheme};
      INFO(describe(format, n));
      const std::size_t row_bytes = kvbits::packed_size(format, n);
      const std::size_t stride = row_bytes + kPadding;
      std::vector<std::uint8_t> rows(kRows * stride, 0xEE);
      for (std::size_t r = 0; r < kRows; ++r) {
        const auto x = make_vector(r % 3 == 0 ? Kind::outliers : Kind::random, n, seed++);
        kvbits::ScalarBackend::encode(format, x, std::span(rows).subspan(r * stride, row_bytes));
      }
      std::vector<float> weights(kRows);
      for (std::size_t r = 0; r < kRows; ++r) weights[r] = make_vector(Kind::random, 8, seed++)[r % 8];
      const Kind query_kind = seed % 2 == 0 ? Kind::random : Kind::mixed_scale;
      const auto q = make_vector(query_kind, n, seed++);
      std::vector<float> scores_expected(kRows);
      std::vector<float> scores_actual(kRows);
      kvbits::ScalarBackend::dot_rows(format, q.data(), n, rows.data(), stride, kRows,
                                      scores_expected.data());
      kvbits::XsimdBackend::dot_rows(format, q.data(), n, rows.data(), stride, kRows, scores_actual.data());
      require_same_bits(scores_actual, scores_expected);
      const auto y0 = make_vector(Kind::random, n, seed++);
      std::vector<float> y_expected(y0);
      std::vector<float> y_actual(y0);
      kvbits::ScalarBackend::axpy_rows(format, weights.data(), n, rows.data(), stride, kRows,
                                       y_expected.data());
      kvbits::XsimdBackend::axpy_rows(format, weights.data(), n, rows.data(), stride, kRows, y_actual.data());
      require_same_bits(y_actual, y_expected);
    }
  }
}

TEST_CASE("xsimd dot_rows with several groups per row applies each group's parameters",
          "[codec][rows][simd]") {
  // With groups of 32 or 64 elements in rows of 64 or 128 (2/3/4/8 bits), the AVX-512 VNNI kernel
  // keeps each group's integer sums in their own lanes and scales them by that group's scale:
  // groups whose ranges differ by 2^24 (mixed_scale), constant groups (scale 0) and zeros find a
  // scale applied to the wrong group. 40 rows: two batches of 16 rows and a tail.
  constexpr std::size_t kRows = 40;
  constexpr Kind kRowKinds[] = {Kind::mixed_scale, Kind::random, Kind::constant, Kind::outliers, Kind::zeros};
  std::uint32_t seed = 500;
  for (int bits : {2, 3, 4, 8}) {
    for (std::size_t group : {std::size_t{32}, std::size_t{64}}) {
      for (Scheme scheme : kSchemes) {
        for (std::size_t n : {std::size_t{64}, std::size_t{128}}) {
          const QuantFormat format{bits, group, scheme};
          if (group > n) continue;
          INFO(describe(format, n));
          const std::size_t row_bytes = kvbits::packed_size(format, n);
          std::vector<std::uint8_t> rows(kRows * row_bytes);
          std::vector<std::vector<float>> decoded(kRows, std::vector<float>(n));
          for (std::size_t r = 0; r < kRows; ++r) {
            auto x = make_vector(kRowKinds[r % std::size(kRowKinds)], n, seed++);
            // Every other row: the second group 2^20 times the first.
            if (r % 2 == 1) {
              for (std::size_t i = group; i < n && i < 2 * group; ++i) x[i] *= 0x1p20f;
            }
            const std::span<std::uint8_t> packed = std::span(rows).subspan(r * row_bytes, row_bytes);
            kvbits::ScalarBackend::encode(format, x, packed);
            kvbits::ScalarBackend::decode(format, packed, decoded[r]);
          }
          for (Kind query_kind : {Kind::random, Kind::mixed_scale}) {
            INFO("query " << kind_name(query_kind));
            const auto q = make_vector(query_kind, n, seed++);
            check_dot_rows_against_reference(format, n, rows, row_bytes, decoded, q);
          }
        }
      }
    }
  }
}

TEMPLATE_TEST_CASE("several-query row kernels give each query exactly its own call's result",
                   "[codec][rows][gqa]", kvbits::ScalarBackend, kvbits::XsimdBackend) {
  // The query heads of one KV head share its rows (grouped-query attention): dot_rows_multi and
  // axpy_rows_multi decode each row once for all of them, and each query's scores and sums must be
  // bit for bit those of dot_rows / axpy_rows on its own. Lengths with kernels of their own (64,
  // 128) and without (8, 16, 32: small heads, whose rows share one widening per row and query
  // pass on AVX2 and SSE batches). 70 rows (four batches of 16 and a tail; the long one-group
  // rows of AVX2, SSE and NEON run in chunks of 64), padded rows, score and weight strides wider
  // than the rows, 1 to 9 queries (more than one pass of the shared kernels), and an all-zero
  // query that the integer grid rejects.
  constexpr std::size_t kRows = 70;
  constexpr std::size_t kPadding = 5;
  constexpr std::size_t kScoreStride = kRows + 3;
  constexpr float kUntouched = -1234.5f;
  std::uint32_t seed = 600;
  for (int bits : kBitWidths) {
    for (std::size_t group : kGroupSizes) {
      for (Scheme scheme : kSchemes) {
        for (std::size_t n :
             {std::size_t{8}, std::size_t{16}, std::size_t{32}, std::size_t{64}, std::size_t{128}}) {
          const QuantFormat format{bits, group, scheme};
          if (!valid_combination(format, n)) continue;
          const std::size_t row_bytes = kvbits::packed_size(format, n);
          const std::size_t stride = row_bytes + kPadding;
          std::vector<std::uint8_t> rows(kRows * stride, 0xEE);
          for (std::size_t r = 0; r < kRows; ++r) {
            const auto x = make_vector(r % 3 == 0 ? Kind::outliers : Kind::random, n, seed++);
            TestType::encode(format, x, std::span(rows).subspan(r * stride, row_bytes));
          }
          for (std::size_t queries : {1u, 2u, 3u, 4u, 5u, 8u, 9u}) {
            INFO(describe(format, n) << ", " << queries << " queries");
            std::vector<float> q(queries * n);
            std::vector<float> weights(queries * kScoreStride, kUntouched);
            for (std::size_t h = 0; h < queries; ++h) {
              const auto one = make_vector(h == 2 ? Kind::zeros : Kind::random, n, seed++);
              std::copy(one.begin(), one.end(), q.begin() + static_cast<std::ptrdiff_t>(h * n));
              for (std::size_t r = 0; r < kRows; ++r) {
                weights[h * kScoreStride + r] =
                    static_cast<float>((r + h) % 5 + 1) / static_cast<float>(r + 7);
              }
            }
            std::vector<float> scores(queries * kScoreStride, kUntouched);
            TestType::dot_rows_multi(format, q.data(), queries, n, rows.data(), stride, kRows, scores.data(),
                                     kScoreStride);
            const auto y_start = make_vector(Kind::random, queries * n, seed++);
            std::vector<float> y(y_start);
            TestType::axpy_rows_multi(format, weights.data(), kScoreStride, queries, n, rows.data(), stride,
                                      kRows, y.data());
            for (std::size_t h = 0; h < queries; ++h) {
              INFO("query " << h);
              std::vector<float> own_scores(kRows);
              TestType::dot_rows(format, q.data() + h * n, n, rows.data(), stride, kRows, own_scores.data());
              require_same_bits(std::span(scores).subspan(h * kScoreStride, kRows), own_scores);
              for (std::size_t r = kRows; r < kScoreStride; ++r)
                REQUIRE(scores[h * kScoreStride + r] == kUntouched);
              std::vector<float> own_y(y_start.begin() + static_cast<std::ptrdiff_t>(h * n),
                                       y_start.begin() + static_cast<std::ptrdiff_t>((h + 1) * n));
              TestType::axpy_rows(format, weights.data() + h * kScoreStride, n, rows.data(), stride, kRows,
                                  own_y.data());
              require_same_bits(std::span(y).subspan(h * n, n), own_y);
            }
          }
        }
      }
    }
  }
}

// --- errors -------------------------------------------------------------------------

namespace {

template <class Fn>
kvbits::Errc error_code_of(Fn&& fn) {
  try {
    fn();
  } catch (const kvbits::Error& error) {
    return error.code();
  }
  FAIL("expected kvbits::Error, nothing was thrown");
  return kvbits::Errc::unsupported;
}

}  // namespace

TEMPLATE_TEST_CASE("invalid calls throw the documented errors and write nothing", "[codec][errors]",
                   kvbits::ScalarBackend, kvbits::XsimdBackend) {
  const QuantFormat format{4, 32, Scheme::asymmetric};
  const std::size_t n = 64;
  std::vector<float> x = make_vector(Kind::random, n, 7);
  constexpr std::uint8_t kCanary = 0xA5;

  SECTION("NaN or Inf input: non_finite_input, output untouched") {
    for (int bits : kBitWidths) {
      for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                        -std::numeric_limits<float>::infinity()}) {
        for (std::size_t where : {std::size_t{0}, std::size_t{37}, n - 1}) {
          const QuantFormat f{bits, 32, Scheme::asymmetric};
          std::vector<float> input(x);
          input[where] = bad;
          std::vector<std::uint8_t> out(kvbits::packed_size(f, n), kCanary);
          CAPTURE(bits, bad, where);
          CHECK(error_code_of([&] { TestType::encode(f, input, out); }) == kvbits::Errc::non_finite_input);
          CHECK(std::all_of(out.begin(), out.end(), [](std::uint8_t b) { return b == kCanary; }));
        }
      }
    }
  }

  SECTION("wrong buffer sizes: shape_mismatch") {
    const std::size_t size = kvbits::packed_size(format, n);
    for (std::size_t wrong : {size - 1, size + 1, std::size_t{0}}) {
      CAPTURE(wrong, size);
      std::vector<std::uint8_t> out(wrong, kCanary);
      std::vector<float> y(n);
      CHECK(error_code_of([&] { TestType::encode(format, x, out); }) == kvbits::Errc::shape_mismatch);
      CHECK(std::all_of(out.begin(), out.end(), [](std::uint8_t b) { return b == kCanary; }));
      CHECK(error_code_of([&] { TestType::decode(format, out, y); }) == kvbits::Errc::shape_mismatch);
      CHECK(error_code_of([&] { static_cast<void>(TestType::dot(format, x, out)); }) ==
            kvbits::Errc::shape_mismatch);
      CHECK(error_code_of([&] { TestType::axpy(format, 1.0f, out, y); }) == kvbits::Errc::shape_mismatch);
    }
  }

  SECTION("unsupported bit widths: invalid_argument") {
    for (int bits : {7, 1, 0, 12, -4, 64}) {
      CAPTURE(bits);
      const QuantFormat f{bits, 32, Scheme::asymmetric};
      std::vector<std::uint8_t> out(n * 4, kCanary);
      std::vector<float> y(n);
      CHECK(error_code_of([&] { TestType::encode(f, x, out); }) == kvbits::Errc::invalid_argument);
      CHECK(error_code_of([&] { TestType::decode(f, out, y); }) == kvbits::Errc::invalid_argument);
      CHECK(error_code_of([&] { static_cast<void>(TestType::dot(f, x, out)); }) ==
            kvbits::Errc::invalid_argument);
      CHECK(error_code_of([&] { TestType::axpy(f, 1.0f, out, y); }) == kvbits::Errc::invalid_argument);
      CHECK(std::all_of(out.begin(), out.end(), [](std::uint8_t b) { return b == kCanary; }));
    }
  }

  SECTION("bad group sizes and vector lengths: invalid_argument") {
    struct Case {
      std::size_t group;
      std::size_t length;
    };
    // G = 12 (not whole units), G not dividing n, n not a multiple of 8, n > 1024, n = 0.
    for (const Case c : {Case{12, 48}, Case{64, 96}, Case{32, 48}, Case{8, 12}, Case{0, 20}, Case{8, 1032},
                         Case{0, 2048}, Case{8, 0}}) {
      CAPTURE(c.group, c.length);
      const QuantFormat f{4, c.group, Scheme::asymmetric};
      std::vector<float> input(c.length, 1.0f);
      std::vector<std::uint8_t> out(c.length * 4 + 8, kCanary);
      CHECK(error_code_of([&] { TestType::encode(f, input, out); }) == kvbits::Errc::invalid_argument);
      CHECK(std::all_of(out.begin(), out.end(), [](std::uint8_t b) { return b == kCanary; }));
      CHECK(error_code_of([&] { TestType::decode(f, out, input); }) == kvbits::Errc::invalid_argument);
    }
    // 16 and 32 bits have no groups but still need n a multiple of 8 in [8, 1024].
    for (int bits : {16, 32}) {
      CAPTURE(bits);
      std::vector<float> input(12, 1.0f);
      std::vector<std::uint8_t> out(48, kCanary);
      CHECK(error_code_of([&] {
              TestType::encode(QuantFormat{bits, 32, Scheme::asymmetric}, input, out);
            }) == kvbits::Errc::invalid_argument);
    }
  }
}

// --- fp16 helpers ---------------------------------------------------------------------

namespace {

bool is_nan_half(std::uint16_t h) { return (h & 0x7C00u) == 0x7C00u && (h & 0x3FFu) != 0; }

/// Total order of finite halves as integers (sign-magnitude -> two's complement style).
int half_order(std::uint16_t h) {
  return (h & 0x8000u) ? -static_cast<int>(h & 0x7FFFu) : static_cast<int>(h);
}

}  // namespace

TEST_CASE("fp16: every half converts to float and back unchanged", "[fp16]") {
  for (std::uint32_t bits = 0; bits <= 0xFFFFu; ++bits) {
    const auto h = static_cast<std::uint16_t>(bits);
    const float f = kvbits::half_to_float(h);
    const float portable = kvbits::detail::half_to_float_portable(h);
    if (is_nan_half(h)) {
      if (!(std::isnan(f) && std::isnan(portable) && is_nan_half(kvbits::float_to_half(f)))) {
        INFO("half 0x" << std::hex << bits << " is NaN, expected NaN after conversions");
        CHECK(std::isnan(f));
        CHECK(std::isnan(portable));
      }
      continue;
    }
    const std::uint16_t back = kvbits::float_to_half(f);
    const std::uint16_t back_portable = kvbits::detail::float_to_half_portable(portable);
    if (std::bit_cast<std::uint32_t>(f) != std::bit_cast<std::uint32_t>(portable) || back != h ||
        back_portable != h) {
      INFO("half 0x" << std::hex << bits << ": float " << f << " vs portable " << portable << ", back 0x"
                     << back << ", portable back 0x" << back_portable);
      CHECK(back == h);
      CHECK(back_portable == h);
      CHECK(std::bit_cast<std::uint32_t>(f) == std::bit_cast<std::uint32_t>(portable));
    }
  }
}

TEST_CASE("fp16: float_to_half agrees with the portable RNE conversion", "[fp16]") {
  std::mt19937 rng(42);
  std::uniform_int_distribution<std::uint32_t> any_bits;
  std::size_t checked = 0;
  const auto check = [&](float value) {
    const std::uint16_t expected = kvbits::detail::float_to_half_portable(value);
    const std::uint16_t actual = kvbits::float_to_half(value);
    ++checked;
    if (std::isnan(value) ? !(is_nan_half(expected) && is_nan_half(actual)) : expected != actual) {
      INFO("input " << value << " (0x" << std::hex << std::bit_cast<std::uint32_t>(value) << "): expected 0x"
                    << expected << ", actual 0x" << actual);
      CHECK(expected == actual);
    }
  };
  // Random bit patterns cover every exponent, including overflow, denormals and NaN.
  for (int i = 0; i < 1'000'000; ++i) check(std::bit_cast<float>(any_bits(rng)));
  // Exact midpoints between neighbouring halves: RNE picks the even one.
  for (std::uint32_t bits = 0; bits < 0x7BFFu; ++bits) {
    const auto h = static_cast<std::uint16_t>(bits);
    const float lo = kvbits::half_to_float(h);
    const float hi = kvbits::half_to_float(static_cast<std::uint16_t>(h + 1));
    const float mid = lo + (hi - lo) / 2.0f;  // exact: one more bit than fp16 has
    check(mid);
    check(-mid);
    const std::uint16_t even = (h & 1u) == 0 ? h : static_cast<std::uint16_t>(h + 1);
    if (kvbits::float_to_half(mid) != even) {
      INFO("tie between 0x" << std::hex << bits << " and its successor: expected 0x" << even << ", actual 0x"
                            << kvbits::float_to_half(mid));
      CHECK(kvbits::float_to_half(mid) == even);
    }
  }
  CHECK(checked > 1'000'000);
  // Overflow: IEEE gives Inf, the saturating variant the largest finite value.
  CHECK(kvbits::float_to_half(1e30f) == 0x7C00u);
  CHECK(kvbits::float_to_half(65520.0f) == 0x7C00u);  // the first value that rounds past 65504
  CHECK(kvbits::float_to_half(65519.99f) == 0x7BFFu);
}

TEST_CASE("fp16: directed rounding brackets the input and saturation is finite", "[fp16]") {
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::uint32_t> any_bits;
  std::size_t failures = 0;
  for (int i = 0; i < 500'000; ++i) {
    float value = std::bit_cast<float>(any_bits(rng));
    if (!std::isfinite(value)) continue;
    // Keep most inputs inside the fp16 range so that both neighbours exist.
    if (i % 4 != 0) value = std::fmod(value, 70000.0f);
    const std::uint16_t down = kvbits::float_to_half_down(value);
    const std::uint16_t up = kvbits::float_to_half_up(value);
    const float down_value = kvbits::half_to_float(down);
    const float up_value = kvbits::half_to_float(up);
    const float clamped = clamp_half_range(value);
    // Bracketing: down <= x <= up (after saturation), and they are neighbours (or equal).
    const bool brackets = down_value <= clamped && up_value >= clamped &&
                          half_order(up) - half_order(down) <= (down_value == up_value ? 0 : 1) &&
                          std::isfinite(down_value) && std::isfinite(up_value);
    // The first few failures in detail; messages for every input would cost more than the conversions.
    if (!brackets && failures++ < 5) {
      CAPTURE(value, down, up, down_value, up_value);
      CHECK(down_value <= clamped);
      CHECK(up_value >= clamped);
      CHECK(half_order(up) - half_order(down) <= (down_value == up_value ? 0 : 1));
      CHECK(std::isfinite(down_value));
      CHECK(std::isfinite(up_value));
    }
  }
  REQUIRE(failures == 0);
  // Exactly representable values are returned unchanged by both.
  for (float exact : {0.0f, 1.0f, -2.5f, 65504.0f, -65504.0f, 5.9604645e-08f, -5.9604645e-08f}) {
    CAPTURE(exact);
    CHECK(kvbits::half_to_float(kvbits::float_to_half_down(exact)) == exact);
    CHECK(kvbits::half_to_float(kvbits::float_to_half_up(exact)) == exact);
  }
  // Tiny values straddle zero by one denormal step.
  CHECK(kvbits::float_to_half_down(1e-10f) == 0x0000u);
  CHECK(kvbits::float_to_half_up(1e-10f) == 0x0001u);
  CHECK(kvbits::float_to_half_down(-1e-10f) == 0x8001u);
  CHECK(kvbits::float_to_half_up(-1e-10f) == 0x8000u);
  // Saturation.
  CHECK(kvbits::float_to_half_saturate(1e30f) == 0x7BFFu);
  CHECK(kvbits::float_to_half_saturate(-1e30f) == 0xFBFFu);
  CHECK(kvbits::float_to_half_saturate(std::numeric_limits<float>::infinity()) == 0x7BFFu);
  CHECK(is_nan_half(kvbits::float_to_half_saturate(std::numeric_limits<float>::quiet_NaN())));
  CHECK(kvbits::float_to_half_down(1e30f) == 0x7BFFu);
  CHECK(kvbits::float_to_half_up(-1e30f) == 0xFBFFu);
  CHECK(kvbits::float_to_half_up(65504.5f) == 0x7BFFu);
}
