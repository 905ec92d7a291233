// SPDX-License-Identifier: MIT
// What every benchmark program here needs: a clock that charges only this thread, and random
// rows to feed caches and kernels.
#pragma once

#include <cstddef>
#include <ctime>
#include <random>
#include <vector>

namespace kvbits::bench {

/// Thread CPU time in seconds: the machine is shared, and wall time would charge a benchmark for
/// other processes' time slices.
inline double thread_seconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + 1e-9 * static_cast<double>(now.tv_nsec);
}

/// @return n draws of a normal distribution with mean 0 and standard deviation `scale`.
inline std::vector<float> random_vector(std::mt19937& rng, std::size_t n, float scale = 1.0f) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> x(n);
  for (float& value : x) value = normal(rng);
  return x;
}

}  // namespace kvbits::bench
