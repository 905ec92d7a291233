// SPDX-License-Identifier: MIT
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kvbits/codec/format.hpp"
#include "kvbits/core/fp16.hpp"
#include "kvbits/core/isa_namespace.hpp"

// The fitted parameter search below is compiled once and called by every
// backend, so its floating-point evaluation (and thus its choice) is the same
// machine code for the scalar reference and the SIMD kernels.
#if defined(__GNUC__) || defined(__clang__)
#define KVBITS_SHARED_FIT __attribute__((noinline))
#else
#define KVBITS_SHARED_FIT
#endif

namespace kvbits::detail {
inline namespace KVBITS_ISA_NAMESPACE {

/**
 * Quantization parameters of one group, computed identically by every backend
 * (SIMD kernels reduce min/max with vectors, then call these) so that codes are
 * bit-exact across backends.
 */
struct GroupParams {
  std::uint16_t scale_half;  // stored metadata
  std::uint16_t min_half;    // stored metadata (asymmetric only)
  float scale;               // half_to_float(scale_half); negative for most symmetric groups
  float min;                 // half_to_float(min_half); 0 for symmetric
  float inverse_scale;       // 1 / scale, or 0 for a constant group
};

/// Largest code of a `bits`-wide unsigned field.
constexpr int max_code(int bits) noexcept { return (1 << bits) - 1; }

/// Zero point of the symmetric scheme: code = round(x / scale) + offset.
constexpr int symmetric_offset(int bits) noexcept { return 1 << (bits - 1); }

/// Smallest round(x / scale) of the symmetric scheme (code 0).
constexpr int symmetric_low(int bits) noexcept { return -symmetric_offset(bits); }

/// Largest round(x / scale) of the symmetric scheme (code 2^bits - 1).
constexpr int symmetric_high(int bits) noexcept { return symmetric_offset(bits) - 1; }

/**
 * Whether the sign of a symmetric group's scale picks its grid (2 bits) rather
 * than the side of the extra level (3 bits and up). Four mid-tread levels
 * (-2, -1, 0, +1) * s lose a whole step on one side of a spread-out group (the
 * 2-bit dot error was 2-3x ggml's limit); four mid-rise levels (-3/2, -1/2,
 * +1/2, +3/2) * s are symmetric about 0 but have no 0, and on a group ruled by
 * an outlier they send every small value to +-s/2 (up to 30x the squared error
 * of mid-tread on keys-like rows). So the search picks per 2-bit group: s < 0
 * is mid-rise, s > 0 mid-tread with the extra level below 0. From 3 bits on,
 * one step is a small part of the range and mid-tread, with the sign choosing
 * the extra level's side, measures better (docs/benchmarks.md).
 */
constexpr bool sign_picks_grid(int bits) noexcept { return bits == 2; }

/// Whether a symmetric group with this stored scale has mid-rise levels, (code - 2^(bits-1) + 1/2) * scale.
inline bool is_mid_rise(float scale, int bits) noexcept { return sign_picks_grid(bits) && scale < 0.0f; }

/// Code whose level is 0 in a symmetric group: x^ = (code - symmetric_zero) * scale.
inline float symmetric_zero(float scale, int bits) noexcept {
  return static_cast<float>(symmetric_offset(bits)) - (is_mid_rise(scale, bits) ? 0.5f : 0.0f);
}

/// Whether encode fits this width's group parameters by a least-squares search
/// (2 and 3 bits, where min/max ranges with round-to-nearest bias the codes)
/// rather than taking them from the group's range.
constexpr bool fits_by_search(int bits) noexcept { return bits <= 3; }

/// 1 / scale, or 0 for a zero (symmetric, scale 0) group.
inline float inverse_of(float scale) noexcept { return scale != 0.0f ? 1.0f / scale : 0.0f; }

/**
 * Asymmetric parameters for a group spanning [lo, hi] (finite).
 * The fp16 min is rounded down and the fp16 scale up, so every element lies in
 * [min, min + scale * max_code] and round-to-nearest keeps |x - x^| <= scale / 2
 * (values beyond the fp16 range saturate). Inputs are finite, so plain
 * comparisons replace std::fmin (a libm call without -ffast-math).
 */
inline GroupParams asymmetric_params(float lo, float hi, int bits) noexcept {
  // -0 and +0 compare equal, so a reduction may return either; adding +0 turns
  // -0 into +0 so that the stored bytes never depend on element order.
  lo += 0.0f;
  hi += 0.0f;
  GroupParams p{};
  p.min_half = float_to_half_down(lo);
  p.min = half_to_float(p.min_half);
  const float range = (hi < kHalfMax ? hi : kHalfMax) - p.min;
  p.scale_half = float_to_half_up(range / static_cast<float>(max_code(bits)));
  p.scale = half_to_float(p.scale_half);
  p.inverse_scale = p.scale > 0.0f ? 1.0f / p.scale : 0.0f;
  return p;
}

/**
 * Symmetric parameters for a group spanning [lo, hi] (finite), with |scale|
 * rounded up to fp16 so that the value of largest magnitude m (hi on a tie)
 * stays in range. 3 bits and up use all 2^bits levels as ggml's q4_0 does: m
 * maps to code 0, scale = m / -2^(bits-1); the other end of the range may clip
 * by at most one step (x = -m would need code 2^bits), so |x - x^| <= |scale|.
 * 2 bits: the mid-rise grid with +-m on its outer levels, scale = -|m| / (3/2),
 * so |x - x^| <= |scale| / 2.
 */
inline GroupParams symmetric_params(float lo, float hi, int bits) noexcept {
  lo += 0.0f;
  hi += 0.0f;
  const bool positive = hi >= -lo;
  const float largest = positive ? hi : -lo;
  const float magnitude = largest < kHalfMax ? largest : kHalfMax;
  // Mid-tread: dividing by a power of two is exact, so multiplying by its inverse is too.
  const float step = sign_picks_grid(bits) ? magnitude / (static_cast<float>(symmetric_offset(bits)) - 0.5f)
                                           : magnitude * (1.0f / static_cast<float>(symmetric_offset(bits)));
  const std::uint16_t step_half = float_to_half_up(step);
  // fp16 is sign-magnitude: the sign bit makes the scale negative (mid-rise, or m > 0 on the extra level).
  const bool negative = sign_picks_grid(bits) || positive;
  GroupParams p{};
  p.scale_half = static_cast<std::uint16_t>(step_half | (negative && step_half != 0 ? 0x8000u : 0u));
  p.scale = half_to_float(p.scale_half);
  p.min_half = 0;
  p.min = 0.0f;
  p.inverse_scale = inverse_of(p.scale);
  return p;
}

/// Code of x under asymmetric parameters: clamp(round((x - min) / scale)).
inline int asymmetric_code(float x, const GroupParams& p, int bits) noexcept {
  // Clamp in float before converting: saturated inputs may exceed int range.
  // Comparisons, not std::fmin/fmax (libm calls without -ffast-math): x is finite.
  const float scaled = std::nearbyint((x - p.min) * p.inverse_scale);
  const auto top = static_cast<float>(max_code(bits));
  return static_cast<int>(scaled < 0.0f ? 0.0f : (scaled > top ? top : scaled));
}

/// Code of x under symmetric parameters: clamp(round(x / scale)) + offset, in
/// [0, 2^bits), rounding down on a mid-rise grid (see sign_picks_grid).
inline int symmetric_code(float x, const GroupParams& p, int bits) noexcept {
  const float ratio = x * p.inverse_scale;
  // Mid-rise: level floor(x / scale) + 1/2 is the nearest one.
  const float scaled = is_mid_rise(p.scale, bits) ? std::floor(ratio) : std::nearbyint(ratio);
  const auto low = static_cast<float>(symmetric_low(bits));
  const auto high = static_cast<float>(symmetric_high(bits));
  return static_cast<int>(scaled < low ? low : (scaled > high ? high : scaled)) + symmetric_offset(bits);
}

// --- least-squares parameter search (2 and 3 bits) ---------------------------
//
// The method of ggml's k-quant fitting: for a few candidate grids around the
// min/max fit, quantize the group to nearest, fit (scale, min) to those codes
// by least squares (symmetric: the scale alone, see choose_symmetric),
// round it to fp16 and score it by the squared error of those codes under the
// rounded parameters. The best score wins; the stored codes are then
// re-quantized to nearest under the winner, which can only lower the error
// further. The min/max fit itself is candidate 0 and is scored as it is, so a
// fitted group is never worse than the min/max one (up to the float rounding
// of the scores).
//
// The chosen bytes must not depend on the build. Compilers may contract
// a * b + c into one fused multiply-add where the target has one (GCC does by
// default), which rounds once instead of twice; so every product below that
// feeds a sum is exact (then fused and unfused agree) or the fused form is
// written out with std::fma, and every sum runs in one fixed order whatever
// the vector width.

/// Candidates of one search; candidate k quantizes y = x - origin to the grid
/// L = clamp(round((y - start[k]) * inverse[k])).
inline constexpr std::size_t kFitCandidates = 8;

#if !defined(__GNUC__) && !defined(__clang__)
#error "kvbits' 2/3-bit parameter search needs GCC or Clang vector extensions"
#endif
// Lane types pass between functions by reference only: by value, their ABI
// depends on the target's vector registers (GCC's -Wpsabi).

// Lane 2k + p: candidate k over the elements i with i % 2 == p. A pair of
// elements is one 64-bit broadcast, and the two parities are added at the end,
// so every sum has the same order on any vector width (or on scalars).
inline constexpr std::size_t kSearchLanes = 2 * kFitCandidates;

// The 16 lanes run as chunks of the target's widest float vector: GCC lowers a
// generic vector wider than the hardware's into per-lane selects and stack
// round trips (the search ran 14x slower on AVX2 than in 8-lane chunks). Every
// lane does the same arithmetic at any chunk width, so the sums do not change.
#if defined(__AVX512F__)
inline constexpr std::size_t kSearchChunkLanes = 16;
#elif defined(__AVX__)
inline constexpr std::size_t kSearchChunkLanes = 8;
#else
inline constexpr std::size_t kSearchChunkLanes = 4;
#endif
inline constexpr std::size_t kSearchChunks = kSearchLanes / kSearchChunkLanes;
typedef float SearchChunk __attribute__((vector_size(kSearchChunkLanes * sizeof(float))));
typedef std::uint64_t PairChunk __attribute__((vector_size(kSearchChunkLanes * sizeof(float))));

// The solve and the scoring run on all candidates at once, lane k = candidate k.
typedef float CandidateLanes __attribute__((vector_size(kFitCandidates * sizeof(float))));
typedef double CandidateWideLanes __attribute__((vector_size(kFitCandidates * sizeof(double))));
typedef std::int32_t CandidateMask __attribute__((vector_size(kFitCandidates * sizeof(float))));

/// Sums over one group, per candidate, that the least-squares fit and its score need.
struct CandidateSums {
  CandidateLanes code_sum;     // sum L
  CandidateLanes code_square;  // sum L^2
  CandidateLanes value_code;   // sum y L
};

/// What one group's search has collected when its candidates are solved.
struct GroupSearch {
  CandidateSums sums;
  float sum;      // sum y
  float square;   // sum y^2, rounded to float (symmetric only)
  float origin;   // y = x - origin
  bool searched;  // false: the group keeps its min/max parameters
};

/**
 * v with the 3 low bits of its significand cleared (rounded toward zero to 21
 * bits), so that v * L is exact in float for every code |L| <= 7 and v * v is
 * exact in double. The fit sees the group through this 2^-21 relative change.
 */
inline float shortened(float v) noexcept {
  return std::bit_cast<float>(std::bit_cast<std::uint32_t>(v) & ~std::uint32_t{7});
}

/// Smallest and largest of xs[0, group), over 8 interleaved lanes (exact in any order).
inline void group_range(const float* xs, std::size_t group, float& lo, float& hi) noexcept {
  float low[8];
  float high[8];
  for (std::size_t k = 0; k < 8; ++k) low[k] = high[k] = xs[k];
  for (std::size_t i = 8; i < group; i += 8) {
    for (std::size_t k = 0; k < 8; ++k) {
      low[k] = xs[i + k] < low[k] ? xs[i + k] : low[k];
      high[k] = xs[i + k] > high[k] ? xs[i + k] : high[k];
    }
  }
  lo = low[0];
  hi = high[0];
  for (std::size_t k = 1; k < 8; ++k) {
    lo = low[k] < lo ? low[k] : lo;
    hi = high[k] > hi ? high[k] : hi;
  }
}

/**
 * y[0, group) = shortened(xs - origin) and their sums into `search`, over 8
 * interleaved lanes. `kSquare`: whether the fit needs sum y^2 (the symmetric
 * one does; each y^2 is exact in double, so fused or not it adds the same).
 */
template <bool kSquare>
inline void shift_group(const float* xs, std::size_t group, float origin, float* y,
                        GroupSearch& search) noexcept {
  float sum[8] = {};
  double square[8] = {};
  for (std::size_t i = 0; i < group; i += 8) {
    for (std::size_t k = 0; k < 8; ++k) {
      const float value = shortened(xs[i + k] - origin);
      y[i + k] = value;
      sum[k] += value;
      if constexpr (kSquare) square[k] += static_cast<double>(value) * static_cast<double>(value);
    }
  }
  search.origin = origin;
  search.sum = ((sum[0] + sum[4]) + (sum[1] + sum[5])) + ((sum[2] + sum[6]) + (sum[3] + sum[7]));
  search.square = static_cast<float>(((square[0] + square[4]) + (square[1] + square[5])) +
                                     ((square[2] + square[6]) + (square[3] + square[7])));
}

// Round-to-nearest-even by adding and subtracting 1.5 * 2^23 (exact for |v| <
// 2^22, and every clamped value of the search is a few units): unlike
// std::nearbyint it is plain arithmetic, so it vectorizes everywhere.
inline constexpr float kRoundMagic = 12582912.0f;

/// The 16 search lanes of `candidates` (lanes 2k and 2k + 1 = candidate k), as chunks. (This and
/// add_parities are templates on the chunk type so that only the target's chunk width is compiled.)
template <typename Chunk, std::size_t Chunks>
inline void spread_candidates(const CandidateLanes& candidates, Chunk (&chunks)[Chunks]) noexcept {
  static_assert(kFitCandidates == 8, "the shuffles below name 8 candidates");
  const CandidateLanes& v = candidates;
  if constexpr (Chunks == 1) {
    chunks[0] = __builtin_shufflevector(v, v, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  } else if constexpr (Chunks == 2) {
    chunks[0] = __builtin_shufflevector(v, v, 0, 0, 1, 1, 2, 2, 3, 3);
    chunks[1] = __builtin_shufflevector(v, v, 4, 4, 5, 5, 6, 6, 7, 7);
  } else {
    static_assert(Chunks == 4);
    chunks[0] = __builtin_shufflevector(v, v, 0, 0, 1, 1);
    chunks[1] = __builtin_shufflevector(v, v, 2, 2, 3, 3);
    chunks[2] = __builtin_shufflevector(v, v, 4, 4, 5, 5);
    chunks[3] = __builtin_shufflevector(v, v, 6, 6, 7, 7);
  }
}

/// Per candidate k: lane 2k + lane 2k + 1 (even elements' sum + odd elements' sum).
template <typename Chunk, std::size_t Chunks>
inline void add_parities(const Chunk (&chunks)[Chunks], CandidateLanes& total) noexcept {
  if constexpr (Chunks == 1) {
    const Chunk& c = chunks[0];
    total = __builtin_shufflevector(c, c, 0, 2, 4, 6, 8, 10, 12, 14) +
            __builtin_shufflevector(c, c, 1, 3, 5, 7, 9, 11, 13, 15);
  } else if constexpr (Chunks == 2) {
    total = __builtin_shufflevector(chunks[0], chunks[1], 0, 2, 4, 6, 8, 10, 12, 14) +
            __builtin_shufflevector(chunks[0], chunks[1], 1, 3, 5, 7, 9, 11, 13, 15);
  } else {
    static_assert(Chunks == 4);
    const Chunk low = __builtin_shufflevector(chunks[0], chunks[1], 0, 2, 4, 6) +
                      __builtin_shufflevector(chunks[0], chunks[1], 1, 3, 5, 7);
    const Chunk high = __builtin_shufflevector(chunks[2], chunks[3], 0, 2, 4, 6) +
                       __builtin_shufflevector(chunks[2], chunks[3], 1, 3, 5, 7);
    total = __builtin_shufflevector(low, high, 0, 1, 2, 3, 4, 5, 6, 7);
  }
}

/**
 * One pass over the shifted group y[0, group) for all candidates at once;
 * codes are clamped to [low, high]. `kSignPicksGrid`: candidates with a
 * negative inverse are mid-rise (sign_picks_grid), code L = round(t - 1/2) +
 * 1/2 for t clamped to [low + 1/2, high + 1/2] (the nearest level; on a tie it
 * may differ from encode's floor, which only moves that candidate's score
 * between two equal errors); the sums stay exact, as 2 L is a small integer.
 */
template <bool kSignPicksGrid>
inline void candidate_sums(const float* y, std::size_t group, const CandidateLanes& start,
                           const CandidateLanes& inverse, float low, float high,
                           CandidateSums& result) noexcept {
  const CandidateLanes zero{};
  CandidateLanes half = zero;
  if constexpr (kSignPicksGrid) half = inverse < zero ? zero + 0.5f : zero;
  SearchChunk starts[kSearchChunks];
  SearchChunk inverses[kSearchChunks];
  SearchChunk halves[kSearchChunks];  // 1/2 on mid-rise lanes
  spread_candidates(start, starts);
  spread_candidates(inverse, inverses);
  spread_candidates(half, halves);
  SearchChunk lows[kSearchChunks];
  SearchChunk highs[kSearchChunks];
  for (std::size_t c = 0; c < kSearchChunks; ++c) {
    lows[c] = halves[c] + low;
    highs[c] = halves[c] + high;
  }
  SearchChunk sums[kSearchChunks] = {};
  SearchChunk squares[kSearchChunks] = {};
  SearchChunk products[kSearchChunks] = {};
  for (std::size_t i = 0; i < group; i += 2) {
    std::uint64_t pair;
    std::memcpy(&pair, y + i, sizeof pair);
    const PairChunk pairs = PairChunk{} + pair;
    SearchChunk values;
    std::memcpy(&values, &pairs, sizeof values);
#pragma GCC unroll 4
    for (std::size_t c = 0; c < kSearchChunks; ++c) {
      SearchChunk scaled = (values - starts[c]) * inverses[c];
      scaled = scaled < lows[c] ? lows[c] : scaled;
      scaled = scaled > highs[c] ? highs[c] : scaled;
      SearchChunk code;
      if constexpr (kSignPicksGrid) {
        code = (((scaled - halves[c]) + kRoundMagic) - kRoundMagic) + halves[c];  // every step exact
      } else {
        code = (scaled + kRoundMagic) - kRoundMagic;
      }
      sums[c] += code;
      squares[c] += code * code;     // exact: small integers or halves of them
      products[c] += values * code;  // exact: see shortened
    }
  }
  add_parities(sums, result.code_sum);
  add_parities(squares, result.code_square);
  add_parities(products, result.value_code);
}

/// a * b + c rounded once per lane: the same bits with or without an FMA unit.
inline void fused(const CandidateLanes& a, const CandidateLanes& b, const CandidateLanes& c,
                  CandidateLanes& result) noexcept {
#if defined(__FMA__) && defined(__AVX__)
  static_assert(kFitCandidates == 8, "one 256-bit operation per call");
  result = _mm256_fmadd_ps(a, b, c);
#else
  for (std::size_t k = 0; k < kFitCandidates; ++k) result[k] = std::fma(a[k], b[k], c[k]);
#endif
}

/// Rounds every lane to fp16 (round-to-nearest-even): its bits into `halves`, its value returned.
inline void round_to_half(const CandidateLanes& values, std::uint16_t (&halves)[kFitCandidates],
                          CandidateLanes& rounded) noexcept {
#if defined(__F16C__) && defined(__AVX__)
  const __m128i packed = _mm256_cvtps_ph(values, _MM_FROUND_TO_NEAREST_INT);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(halves), packed);
  rounded = _mm256_cvtph_ps(packed);
#else
  for (std::size_t k = 0; k < kFitCandidates; ++k) {
    halves[k] = float_to_half(values[k]);
    rounded[k] = half_to_float(halves[k]);
  }
#endif
}

/**
 * Squared error of each candidate's codes under (scale b, min = origin + a),
 * less sum y^2 (the same for every candidate, so left out):
 * n a^2 - 2 a sum y + b^2 sum L^2 + 2 a b sum L - 2 b sum y L.
 */
inline void asymmetric_scores(const CandidateSums& sums, float n, float sum, const CandidateLanes& a,
                              const CandidateLanes& b, CandidateLanes& scores) noexcept {
  const CandidateLanes zero{};
  CandidateLanes code_terms;  // 2 a sum L - 2 sum y L
  fused(a + a, sums.code_sum, -2.0f * sums.value_code, code_terms);
  CandidateLanes slope_terms;  // b sum L^2 + code_terms
  fused(b, sums.code_square, code_terms, slope_terms);
  CandidateLanes offset_terms;  // n a - 2 sum y
  fused(zero + n, a, zero - 2.0f * sum, offset_terms);
  fused(b, slope_terms, a * offset_terms, scores);
}

/// As asymmetric_scores with a = 0: b^2 sum L^2 - 2 b sum y L.
inline void symmetric_scores(const CandidateSums& sums, const CandidateLanes& b,
                             CandidateLanes& scores) noexcept {
  CandidateLanes slope_terms;
  fused(b, sums.code_square, -2.0f * sums.value_code, slope_terms);
  scores = b * slope_terms;
}

/// The first usable candidate whose score is below `baseline` and every earlier one's, or kFitCandidates.
inline std::size_t best_candidate(const CandidateLanes& scores, const CandidateMask& usable,
                                  float baseline) noexcept {
  std::size_t best = kFitCandidates;
  float best_score = baseline;
  for (std::size_t k = 0; k < kFitCandidates; ++k) {
    // Branch-free: which candidate wins is data, not control flow.
    const bool better = (usable[k] != 0) & (scores[k] < best_score);
    best_score = better ? scores[k] : best_score;
    best = better ? k : best;
  }
  return best;
}

/// Grids of asymmetric candidates 1..7: max_code + kAsymmetricSteps[k] steps span the group's range
/// (lane 0, the min/max fit, is not used).
inline constexpr CandidateLanes kAsymmetricSteps = {0.0f, -0.5f, -0.25f, 0.0f, 0.25f, 0.5f, 0.75f, 1.0f};

/**
 * First half of the asymmetric search for a group xs[0, group) spanning
 * [lo, hi] with min/max parameters `min_max`: the candidates' sums. Constant
 * groups and ranges near the fp16 limit (where saturation rules) keep min_max.
 * @param y scratch for the group's shifted values, [group]
 */
inline void collect_asymmetric(const float* xs, std::size_t group, float lo, float hi,
                               const GroupParams& min_max, int bits, float* y, GroupSearch& search) noexcept {
  search.searched = hi - lo > 0.0f && lo >= -0.5f * kHalfMax && hi <= 0.5f * kHalfMax;
  if (!search.searched) return;
  const auto top = static_cast<float>(max_code(bits));
  // y = x - (the min/max fit's fp16 min); candidate 0 is that fit's grid, the
  // others start at lo (y = lo - origin) and span the range.
  const float origin = min_max.min;
  // One division per group, not one per grid (the divider is slow).
  const float per_range = 1.0f / (hi - lo);
  // Lanes, not arrays: a vector load of 8 scalar stores would stall on store forwarding.
  const CandidateLanes zero{};
  CandidateLanes start = zero + (lo - origin);
  CandidateLanes inverse = ((zero + top) + kAsymmetricSteps) * per_range;
  start[0] = 0.0f;
  inverse[0] = min_max.inverse_scale;
  shift_group<false>(xs, group, origin, y, search);
  // The low clamp matters too: shortening y may put it a hair below lo - origin.
  candidate_sums<false>(y, group, start, inverse, 0.0f, top, search.sums);
}

/**
 * Second half of the asymmetric search: least squares y ~ scale L + (min -
 * origin) for every candidate at once, rounded to fp16 and scored; the best
 * score wins, min_max (candidate 0's codes) on a tie.
 */
inline GroupParams choose_asymmetric(const GroupSearch& search, std::size_t group,
                                     const GroupParams& min_max) noexcept {
  if (!search.searched) return min_max;
  const CandidateSums& sums = search.sums;
  // Least squares for all candidates at once. The numerators' products are of
  // two floats, exact in double, so they round once however they are fused.
  const CandidateWideLanes l = __builtin_convertvector(sums.code_sum, CandidateWideLanes);
  const CandidateWideLanes ll = __builtin_convertvector(sums.code_square, CandidateWideLanes);
  const CandidateWideLanes yl = __builtin_convertvector(sums.value_code, CandidateWideLanes);
  const auto n = static_cast<double>(group);
  const double sum = search.sum;
  const CandidateLanes det = __builtin_convertvector(n * ll - l * l, CandidateLanes);  // exact
  const CandidateMask solvable = det > 0.0f;  // else every code is equal: no slope to fit
  const CandidateLanes divisor = solvable ? det : CandidateLanes{} + 1.0f;
  const CandidateLanes slope = __builtin_convertvector(n * yl - sum * l, CandidateLanes) / divisor;
  const CandidateLanes offset = __builtin_convertvector(ll * sum - l * yl, CandidateLanes) / divisor;
  std::uint16_t scale_half[kFitCandidates];
  std::uint16_t min_half[kFitCandidates];
  CandidateLanes scale;
  CandidateLanes min;
  round_to_half(slope, scale_half, scale);
  round_to_half(offset + search.origin, min_half, min);
  const CandidateMask usable =
      solvable & (scale > 0.0f) & (scale <= kHalfMax) & (min >= -kHalfMax) & (min <= kHalfMax);

  const auto count = static_cast<float>(group);
  CandidateLanes scores;
  asymmetric_scores(sums, count, search.sum, min - search.origin, scale, scores);
  // The min/max fit scored with candidate 0's codes, which are its own.
  CandidateLanes min_max_scores;
  asymmetric_scores(sums, count, search.sum, CandidateLanes{}, CandidateLanes{} + min_max.scale,
                    min_max_scores);
  const float baseline = min_max_scores[0];
  const std::size_t best = best_candidate(scores, usable, baseline);
  if (best == kFitCandidates) return min_max;
  return {scale_half[best], min_half[best], scale[best], min[best], 1.0f / scale[best]};
}

/// Symmetric candidates 1..7 (3 bits and up): the largest magnitude m sits kSymmetricSteps[k]
/// steps from zero, on the side of the extra level (negative, candidates 1..4) or the other one
/// (lane 0, the min/max fit, is not used).
inline constexpr CandidateLanes kSymmetricSteps = {0.0f, -0.5f, 0.0f, 0.5f, 1.0f, -0.5f, 0.0f, 0.5f};
inline constexpr CandidateMask kSymmetricExtraSide = {-1, -1, -1, -1, -1, 0, 0, 0};

/// 2-bit symmetric candidates 1..7 (candidate 0, the min/max fit, is mid-rise): m sits
/// kTwoBitSteps[k] steps beyond the outer level on its side, of the mid-rise grid
/// (candidates 1..4: spread-out groups; positive steps clip the ends, which pays on bell-shaped
/// ones) or of the mid-tread grid (groups ruled by a few outliers, whose other values want a level at 0).
inline constexpr CandidateLanes kTwoBitSteps = {0.0f, -0.25f, 0.25f, 0.5f, 1.0f, 0.0f, 0.5f, 1.0f};
inline constexpr CandidateMask kTwoBitMidRise = {-1, -1, -1, -1, -1, 0, 0, 0};

/// 1 / scale of the symmetric candidates 1..7 for a group whose signed extreme is 1 / per_extreme.
template <int Bits>
inline void symmetric_candidate_inverses(float per_extreme, CandidateLanes& inverse) noexcept {
  const CandidateLanes zero{};
  const CandidateLanes low = zero + static_cast<float>(symmetric_low(Bits));
  const CandidateLanes high = zero + static_cast<float>(symmetric_high(Bits));
  if constexpr (sign_picks_grid(Bits)) {
    // Mid-rise: a negative scale whatever m's sign. Mid-tread: a positive one, so m > 0 takes the high side.
    const CandidateLanes mid_rise = ((low + 0.5f) - kTwoBitSteps) * std::fabs(per_extreme);
    const CandidateLanes mid_tread =
        (per_extreme > 0.0f ? high + kTwoBitSteps : low - kTwoBitSteps) * per_extreme;
    inverse = kTwoBitMidRise ? mid_rise : mid_tread;
  } else {
    inverse = (kSymmetricExtraSide ? low - kSymmetricSteps : high + kSymmetricSteps) * per_extreme;
  }
}

/**
 * First half of the symmetric search (over the scale alone) for a group
 * xs[0, group) spanning [lo, hi]: the candidates' sums. Zero groups and
 * magnitudes near the fp16 limit keep min_max.
 * @param y scratch for the group's values, [group]
 */
template <int Bits>
inline void collect_symmetric(const float* xs, std::size_t group, float lo, float hi,
                              const GroupParams& min_max, float* y, GroupSearch& search) noexcept {
  const float extreme = hi + 0.0f >= -lo ? hi : lo;  // signed value of largest magnitude
  search.searched = min_max.scale != 0.0f && std::fabs(extreme) < 0.5f * kHalfMax;
  if (!search.searched) return;
  const auto low = static_cast<float>(symmetric_low(Bits));
  const auto high = static_cast<float>(symmetric_high(Bits));
  CandidateLanes inverse;
  symmetric_candidate_inverses<Bits>(1.0f / extreme, inverse);
  inverse[0] = min_max.inverse_scale;
  shift_group<true>(xs, group, 0.0f, y, search);
  candidate_sums<sign_picks_grid(Bits)>(y, group, CandidateLanes{}, inverse, low, high, search.sums);
}

/**
 * Second half of the symmetric search. Each candidate's scale is the one with
 * sum x * x^ = sum x^2 for its codes, not the least-squares sum x L / sum L^2:
 * a least-squares fit leaves sum x * (x - x^) = SSE, which shrinks every dot
 * product with a query correlated with x (attention logits) toward zero; with
 * the symmetric grid's one free parameter that bias is as large as the SSE and
 * sets ggml's dot-product error.
 */
inline GroupParams choose_symmetric(const GroupSearch& search, const GroupParams& min_max) noexcept {
  if (!search.searched) return min_max;
  const CandidateSums& sums = search.sums;
  const CandidateLanes yl = sums.value_code;
  const CandidateMask coded = yl != 0.0f;  // else every code is zero: nothing to fit
  std::uint16_t scale_half[kFitCandidates];
  CandidateLanes scale;
  round_to_half(search.square / (coded ? yl : CandidateLanes{} + 1.0f), scale_half, scale);
  const CandidateMask usable = coded & (scale != 0.0f) & (scale >= -kHalfMax) & (scale <= kHalfMax);
  CandidateLanes scores;
  symmetric_scores(sums, scale, scores);
  CandidateLanes min_max_scores;
  symmetric_scores(sums, CandidateLanes{} + min_max.scale, min_max_scores);
  const float baseline = min_max_scores[0];
  const std::size_t best = best_candidate(scores, usable, baseline);
  if (best == kFitCandidates) return min_max;
  return {scale_half[best], 0, scale[best], 0.0f, 1.0f / scale[best]};
}

/// Most groups of one vector: kMaxVectorLength elements in groups of 8.
inline constexpr std::size_t kMaxGroups = kMaxVectorLength / 8;

/// The symmetric half of fit_group_params, for one width so that its rule (sign_picks_grid) is a constant.
template <int Bits>
KVBITS_SHARED_FIT inline void fit_symmetric(const float* x, std::size_t group, std::size_t groups,
                                            const float* lo, const float* hi, float* y, GroupSearch* search,
                                            GroupParams* params) noexcept {
  for (std::size_t g = 0; g < groups; ++g) params[g] = symmetric_params(lo[g], hi[g], Bits);
  for (std::size_t g = 0; g < groups; ++g) {
    collect_symmetric<Bits>(x + g * group, group, lo[g], hi[g], params[g], y + g * group, search[g]);
  }
  for (std::size_t g = 0; g < groups; ++g) params[g] = choose_symmetric(search[g], params[g]);
}

/**
 * The parameters encode stores for every group of x[0, n) (n a multiple of
 * `group`) at 2 or 3 bits: the least-squares search.
 *
 * All groups of the vector go through each step before the next one starts:
 * one group's search is a long chain of dependent steps (range, fp16 rounding,
 * divisions, sums, solves), and side by side the chains of different groups
 * overlap instead of running one after another.
 * @param params [n / group] output
 */
KVBITS_SHARED_FIT inline void fit_group_params(const float* x, std::size_t n, std::size_t group,
                                               Scheme scheme, int bits, GroupParams* params) noexcept {
  const std::size_t groups = n / group;
  float lo[kMaxGroups];
  float hi[kMaxGroups];
  for (std::size_t g = 0; g < groups; ++g) group_range(x + g * group, group, lo[g], hi[g]);
  float y[kMaxVectorLength];
  GroupSearch search[kMaxGroups];
  if (scheme == Scheme::asymmetric) {
    for (std::size_t g = 0; g < groups; ++g) params[g] = asymmetric_params(lo[g], hi[g], bits);
    for (std::size_t g = 0; g < groups; ++g) {
      collect_asymmetric(x + g * group, group, lo[g], hi[g], params[g], bits, y + g * group, search[g]);
    }
    for (std::size_t g = 0; g < groups; ++g) params[g] = choose_asymmetric(search[g], group, params[g]);
  } else if (bits == 2) {
    fit_symmetric<2>(x, group, groups, lo, hi, y, search, params);
  } else {
    fit_symmetric<3>(x, group, groups, lo, hi, y, search, params);
  }
}

/**
 * The parameters encode stores for one group at 4 bits and up, spanning
 * [lo, hi] (its min and max, reduced by the caller in any order): the min/max
 * fit. 2 and 3 bits use fit_group_params for the whole vector instead.
 */
inline GroupParams group_params(Scheme scheme, float lo, float hi, int bits) noexcept {
  return scheme == Scheme::asymmetric ? asymmetric_params(lo, hi, bits) : symmetric_params(lo, hi, bits);
}

/// Writes the group's metadata (little-endian fp16 scale, then min when asymmetric).
inline void store_metadata(const GroupParams& p, Scheme scheme, std::uint8_t* out) noexcept {
  out[0] = static_cast<std::uint8_t>(p.scale_half & 0xFFu);
  out[1] = static_cast<std::uint8_t>(p.scale_half >> 8);
  if (scheme == Scheme::asymmetric) {
    out[2] = static_cast<std::uint8_t>(p.min_half & 0xFFu);
    out[3] = static_cast<std::uint8_t>(p.min_half >> 8);
  }
}

/// The dequantization affine map of one group: x^ = offset + scale * code.
struct GroupAffine {
  float scale;
  float offset;
};

/// Reads a group's metadata as the affine map from code to value (symmetric:
/// offset = -scale * symmetric_zero, see sign_picks_grid).
inline GroupAffine load_affine(const std::uint8_t* block, Scheme scheme, int bits) noexcept {
  const float scale = half_to_float(static_cast<std::uint16_t>(block[0] | (block[1] << 8)));
  if (scheme == Scheme::asymmetric) {
    return {scale, half_to_float(static_cast<std::uint16_t>(block[2] | (block[3] << 8)))};
  }
  return {scale, -scale * symmetric_zero(scale, bits)};
}

}  // namespace KVBITS_ISA_NAMESPACE
}  // namespace kvbits::detail

#undef KVBITS_SHARED_FIT
