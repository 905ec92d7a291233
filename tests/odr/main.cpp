// SPDX-License-Identifier: MIT
// Two translation units, one built for the x86-64 baseline and one for the build machine, run
// the same encode and attention through XsimdBackend in one program. Each must run its own
// kernels (it reports its own instruction set) and agree with the scalar reference computed
// here: were a kernel's definition shared, the linker would keep one of the two and at least
// one unit would report or compute what the other's flags chose.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "computation.hpp"
#include "odr_unit.hpp"

namespace {

using kvbits::odr::Input;
using kvbits::odr::Run;

// Attention outputs are weighted means of decoded values of magnitude ~1: the kernels sum
// in another order (and may fuse multiply-adds), which moves them by a few float ulps.
constexpr float kMaxAttentionError = 1e-4f;
// Probabilities over 40 tokens, summed over 8 heads, with the same reordering.
constexpr float kMaxReceivedError = 1e-5f;
// Entropy (~8.5 nats) and probabilities over 5,120 logits, summed in another order.
constexpr float kMaxFeatureError = 1e-4f;
// ctest reads this exit code as "skipped".
constexpr int kSkipped = 77;

Input make_input() {
  std::mt19937 rng(2024);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const auto draw = [&](std::size_t n) {
    std::vector<float> x(n);
    for (float& value : x) value = normal(rng);
    return x;
  };
  const std::size_t width = kvbits::odr::kKvHeads * kvbits::odr::kHeadDim;
  Input input;
  input.keys = draw(kvbits::odr::kTokens * width);
  input.values = draw(kvbits::odr::kTokens * width);
  input.query = draw(kvbits::odr::kQueryHeads * kvbits::odr::kHeadDim);
  return input;
}

/// @return how many elements of `actual` lie farther than `tolerance` from `expected` (the first 5 printed).
std::size_t count_far(const char* unit, const char* what, const std::vector<float>& expected,
                      const std::vector<float>& actual, float tolerance) {
  if (expected.size() != actual.size()) {
    std::printf("%s: %s holds %zu values, expected %zu\n", unit, what, actual.size(), expected.size());
    return 1;
  }
  std::size_t far = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    if (!(std::fabs(actual[i] - expected[i]) <= tolerance)) {
      if (far++ < 5)
        std::printf("%s: %s[%zu] = %.9g, expected %.9g\n", unit, what, i, actual[i], expected[i]);
    }
  }
  return far;
}

/// @return the problems of one unit's run against the reference.
std::size_t check(const char* unit, const Run& run, const Run& reference) {
  std::printf("%s unit: instruction set %s, backend %s\n", unit, run.isa.c_str(), run.backend.c_str());
  std::size_t problems = 0;
  if (run.codes != reference.codes) {
    std::printf("%s: the encoded keys differ from the scalar reference's bytes\n", unit);
    ++problems;
  }
  problems += count_far(unit, "attention", reference.attention, run.attention, kMaxAttentionError);
  problems += count_far(unit, "received", reference.received, run.received, kMaxReceivedError);
  problems += count_far(unit, "features", reference.features, run.features, kMaxFeatureError);
  return problems;
}

}  // namespace

int main() {
  const Input input = make_input();
  // The scalar reference, built like the baseline unit.
  const Run reference = kvbits::odr::compute<kvbits::ScalarBackend>(input);
  const Run baseline = kvbits::odr::run_baseline(input);
  const Run native = kvbits::odr::run_native(input);

  std::size_t problems = check("baseline", baseline, reference) + check("native", native, reference);
  // This file is built like the baseline unit, so the two must name the same instruction set.
  if (baseline.isa != reference.isa || baseline.isa != "sse2") {
    std::printf("the baseline unit reports %s, expected sse2 (this file: %s)\n", baseline.isa.c_str(),
                reference.isa.c_str());
    ++problems;
  }
  if (problems == 0 && native.isa == baseline.isa) {
    std::printf("SKIPPED: -march=native adds nothing to the x86-64 baseline on this machine\n");
    return kSkipped;
  }
  if (native.isa == baseline.isa) ++problems;
  // The xsimd kernels need SSE4.2: below it XsimdBackend runs the scalar kernels ("xsimd-none").
  const bool native_kernels = native.isa.rfind("avx", 0) == 0 || native.isa.rfind("sse4_2", 0) == 0;
  if (baseline.backend != "xsimd-none" || native_kernels == (native.backend == "xsimd-none")) {
    std::printf("backends %s and %s do not match the instruction sets %s and %s\n", baseline.backend.c_str(),
                native.backend.c_str(), baseline.isa.c_str(), native.isa.c_str());
    ++problems;
  }
  std::printf("%s\n", problems == 0 ? "both units ran their own kernels and agree with the scalar reference"
                                    : "FAILED");
  return problems == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
