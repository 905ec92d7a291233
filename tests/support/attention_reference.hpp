// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace kvbits::test {

/**
 * The softmax weights of decode attention, per query head, in double:
 * p[h][t] = softmax_t(q_h . K_g[t] / sqrt(d)), g = h / (heads / kv_heads).
 * @param keys [tokens][kv_heads][d]; @param q [heads][d].
 * @return [heads][tokens].
 */
inline std::vector<double> reference_probabilities(const std::vector<float>& keys,
                                                   const std::vector<float>& q, std::size_t kv_heads,
                                                   std::size_t d) {
  const std::size_t tokens = keys.size() / (kv_heads * d);
  const std::size_t heads = q.size() / d;
  const std::size_t group = heads / kv_heads;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  std::vector<double> p(heads * tokens);
  for (std::size_t h = 0; h < heads; ++h) {
    double* row = p.data() + h * tokens;
    double best = -1e300;
    for (std::size_t t = 0; t < tokens; ++t) {
      double dot = 0.0;
      for (std::size_t i = 0; i < d; ++i) {
        dot +=
            static_cast<double>(q[h * d + i]) * static_cast<double>(keys[(t * kv_heads + h / group) * d + i]);
      }
      row[t] = dot * scale;
      best = std::max(best, row[t]);
    }
    double sum = 0.0;
    for (std::size_t t = 0; t < tokens; ++t) {
      row[t] = std::exp(row[t] - best);
      sum += row[t];
    }
    for (std::size_t t = 0; t < tokens; ++t) row[t] /= sum;
  }
  return p;
}

/**
 * Straightforward decode attention in double precision, the oracle of the
 * cache tests: out_h = softmax(q_h . K_g / sqrt(d)) . V_g, g = h / (heads / kv_heads).
 * @param keys, values [tokens][kv_heads][d]; @param q [heads][d];
 * @param received if not null, [tokens]: probability summed over heads.
 * @return out [heads][d].
 */
inline std::vector<double> reference_attention(const std::vector<float>& keys,
                                               const std::vector<float>& values, const std::vector<float>& q,
                                               std::size_t kv_heads, std::size_t d,
                                               std::vector<double>* received = nullptr) {
  const std::size_t tokens = keys.size() / (kv_heads * d);
  const std::size_t heads = q.size() / d;
  const std::size_t group = heads / kv_heads;
  const std::vector<double> p = reference_probabilities(keys, q, kv_heads, d);
  std::vector<double> out(heads * d, 0.0);
  if (received != nullptr) received->assign(tokens, 0.0);
  for (std::size_t h = 0; h < heads; ++h) {
    const std::size_t g = h / group;
    for (std::size_t t = 0; t < tokens; ++t) {
      const double weight = p[h * tokens + t];
      if (received != nullptr) (*received)[t] += weight;
      for (std::size_t i = 0; i < d; ++i)
        out[h * d + i] += weight * static_cast<double>(values[(t * kv_heads + g) * d + i]);
    }
  }
  return out;
}

/// max_i |actual_i - expected_i| / max_i |expected_i| (the error relative to the output's scale).
template <class A, class E>
inline double relative_error(const A& actual, const E& expected) {
  double worst = 0.0;
  double scale = 0.0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    worst = std::max(worst, std::fabs(static_cast<double>(actual[i]) - static_cast<double>(expected[i])));
    scale = std::max(scale, std::fabs(static_cast<double>(expected[i])));
  }
  return scale > 0.0 ? worst / scale : worst;
}

}  // namespace kvbits::test
