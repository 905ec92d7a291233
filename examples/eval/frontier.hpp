// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cstddef>
#include <optional>
#include <span>
#include <vector>

namespace kvbits::eval {

/// A policy's place in the memory/quality plane.
struct OperatingPoint {
  double bits = 0.0;     ///< storage bits per K/V element
  double mean_kl = 0.0;  ///< mean KL(FP32 || policy), nats
};

/**
 * The Pareto frontier: the points no other point beats, where q beats p when it costs no more
 * bits and has no more KL, and is strictly better in one of the two. Equal points both stay.
 * @param points the candidates
 * @return indices of the frontier's points, by bits ascending (then KL, then index)
 */
inline std::vector<std::size_t> pareto_frontier(std::span<const OperatingPoint> points) {
  std::vector<std::size_t> frontier;
  for (std::size_t p = 0; p < points.size(); ++p) {
    bool beaten = false;
    for (std::size_t q = 0; q < points.size() && !beaten; ++q) {
      beaten = points[q].bits <= points[p].bits && points[q].mean_kl <= points[p].mean_kl &&
               (points[q].bits < points[p].bits || points[q].mean_kl < points[p].mean_kl);
    }
    if (!beaten) frontier.push_back(p);
  }
  std::sort(frontier.begin(), frontier.end(), [&](std::size_t a, std::size_t b) {
    if (points[a].bits != points[b].bits) return points[a].bits < points[b].bits;
    if (points[a].mean_kl != points[b].mean_kl) return points[a].mean_kl < points[b].mean_kl;
    return a < b;
  });
  return frontier;
}

/**
 * The policy to choose at a memory budget: the lowest mean KL among the points of at most
 * `budget` bits per element (with 1e-9 of slack for rounding); on equal KL the fewer bits, then
 * the lower index.
 * @param points the candidates
 * @param budget bits per element
 * @return the winner's index, or nothing when every point exceeds the budget
 */
inline std::optional<std::size_t> budget_winner(std::span<const OperatingPoint> points, double budget) {
  std::optional<std::size_t> best;
  for (std::size_t p = 0; p < points.size(); ++p) {
    if (points[p].bits > budget + 1e-9) continue;
    if (!best || points[p].mean_kl < points[*best].mean_kl ||
        (points[p].mean_kl == points[*best].mean_kl && points[p].bits < points[*best].bits)) {
      best = p;
    }
  }
  return best;
}

}  // namespace kvbits::eval
