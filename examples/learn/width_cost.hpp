// SPDX-License-Identifier: MIT
#pragma once

// Intrinsics first, so that Eigen parses them under kvbits' GCC 12 warning fix.
#include "kvbits/core/simd_headers.hpp"

#include <array>
#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>

#include "kvbits/controller/training_set.hpp"
#include "kvbits/core/error.hpp"
#include "learn/damage_dataset.hpp"
#include "learn/tool_controller.hpp"

namespace kvbits::learn {

/**
 * Attention time per context token at one model's shape and cache options, per side and width
 * (cheapest first), relative to the all-16-bit cache: key[b] is the time of a static cache whose
 * keys are at width b and values at 16 bits over that of the 16/16 cache; value[b] the same with
 * the sides swapped. 1 at 16 bits. The two sides add up: a b/b cache takes key[b] + value[b] - 1
 * of the 16/16 one's time, to within 4 % at stories260K's shape and 9 % at bible919K's.
 */
struct AttentionTime {
  std::string_view model;                       ///< the dataset's model file name
  std::string_view cache;                       ///< the dataset's cache options
  std::array<double, kControllerWidths> key;    ///< [widths] keys at b, values at 16
  std::array<double, kControllerWidths> value;  ///< [widths] values at b, keys at 16
};

/**
 * The attention times the trainer knows. Printed by examples/learn/fit_width_cost.py from
 * bench/bench_width_cost.cpp (one layer's attention over 512 tokens, median of 5 repetitions; the
 * command and the machine are in docs/learned.md). At these shapes 16 bits is the fastest width:
 * the grouped widths pay for unpacking codes and applying scales, which a 16-bit row does not.
 */
inline constexpr std::array<AttentionTime, 2> kAttentionTimes = {{
    {"stories260K.gguf",
     "t=scale",
     {3.634, 1.281, 1.231, 1.316, 1.355, 1.230, 1.000},
     {3.253, 1.006, 1.017, 1.012, 1.073, 1.004, 1.000}},
    {"bible919K.gguf",
     "g=32",
     {1.699, 2.244, 1.379, 2.264, 2.339, 1.371, 1.000},
     {1.731, 2.985, 1.320, 2.482, 2.477, 1.335, 1.000}},
}};

/**
 * @return the attention times of the dataset's model and cache options.
 * @throw Error(invalid_argument) naming them when kAttentionTimes has no entry for them.
 */
inline const AttentionTime& attention_time(const DamageDataset& data) {
  std::string known;
  for (const AttentionTime& entry : kAttentionTimes) {
    if (entry.model == data.model && entry.cache == data.cache) return entry;
    known += known.empty() ? "" : ", ";
    known += std::string(entry.model) + " with '" + std::string(entry.cache) + "'";
  }
  throw Error(Errc::invalid_argument,
              "no attention time is known for " + data.model + " with cache '" + data.cache +
                  "' (known: " + known + "); measure it with bench_width_cost and add it to kAttentionTimes");
}

/**
 * The loss's price of each width, per head (cheapest width first):
 *   cost_h(b) = (1 - time_share) * storage(b) / 16 + time_share * time_h(b)
 * where storage(b) is the storage bits per element of width b at the dataset's cache options
 * (group metadata included, as the dataset recorded them) and time_h(b) the head's relative
 * attention time (attention_time). Both are 1 at 16 bits. time_share 0 is the memory model the
 * shipped weights were trained with; 1 prices attention time alone.
 * @param data       the dataset (its bits per element, model and cache options)
 * @param time_share the weight of the attention time, in [0, 1]
 * @throw Error(invalid_argument) for a share outside [0, 1], a dataset without one bits value per
 *        width, or, when time_share > 0, a model without attention times.
 */
inline std::array<std::array<double, kControllerWidths>, kHeads> width_costs(const DamageDataset& data,
                                                                             double time_share = 0.0) {
  kvbits::detail::require(data.bits_per_element.size() == kControllerWidths, Errc::invalid_argument,
                          "dataset: one bits/element value per width expected");
  kvbits::detail::require(std::isfinite(time_share) && time_share >= 0.0 && time_share <= 1.0,
                          Errc::invalid_argument, "the time share of the cost must be in [0, 1]");
  std::array<std::array<double, kControllerWidths>, kHeads> cost{};
  for (std::size_t b = 0; b < kControllerWidths; ++b) {
    const double storage = data.bits_per_element[b] / 16.0;
    cost[kKeyHead][b] = cost[kValueHead][b] = storage;
  }
  if (time_share == 0.0) return cost;
  const AttentionTime& time = attention_time(data);
  for (std::size_t b = 0; b < kControllerWidths; ++b) {
    cost[kKeyHead][b] = (1.0 - time_share) * cost[kKeyHead][b] + time_share * time.key[b];
    cost[kValueHead][b] = (1.0 - time_share) * cost[kValueHead][b] + time_share * time.value[b];
  }
  return cost;
}

}  // namespace kvbits::learn
