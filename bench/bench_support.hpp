// SPDX-License-Identifier: MIT
// What every benchmark program here needs: a clock that charges only this thread, random rows
// to feed caches and kernels, and the timed loop of one cache's attention.
#pragma once

#include <cstddef>
#include <ctime>
#include <random>
#include <vector>

#include <benchmark/benchmark.h>

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

/// Thread CPU seconds per cache.attend(0, q, out) over the benchmark loop, after one untimed
/// call that grows the cache's scratch.
template <class Cache>
double seconds_per_attend(benchmark::State& state, Cache& cache, const std::vector<float>& q,
                          std::vector<float>& out) {
  cache.attend(0, q, out);
  const double start = thread_seconds();
  for (auto _ : state) {
    cache.attend(0, q, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  return (thread_seconds() - start) / static_cast<double>(state.iterations());
}

}  // namespace kvbits::bench
