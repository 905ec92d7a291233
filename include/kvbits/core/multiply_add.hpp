// SPDX-License-Identifier: MIT
#pragma once

#include <cmath>

#include "kvbits/config.hpp"
#include "kvbits/core/isa_namespace.hpp"

namespace kvbits::detail {
inline namespace KVBITS_ISA_NAMESPACE {

/**
 * a * b + c with the rounding fixed by the target, not by the compiler: one
 * rounding where the target has an FMA unit, two where it has none (and
 * nothing can be contracted). Left to the compiler, a * b + c may be
 * contracted in one inlined copy of a kernel and not in another, and the SIMD
 * kernels that promise the reference's bits (or each query the bits of its
 * one-query call) need one rule.
 */
KVBITS_ALWAYS_INLINE float multiply_add(float a, float b, float c) noexcept {
#if defined(__FMA__) || defined(__aarch64__)
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

/**
 * a * b rounded on its own, never contracted into a following add: a fused
 * multiply-add with a +0 addend, which the compiler may not fold back into a
 * plain product (the two differ in the sign of a zero product). The sums that
 * use it start at +0, so that sign never shows.
 */
KVBITS_ALWAYS_INLINE float rounded_product(float a, float b) noexcept {
#if defined(__FMA__) || defined(__aarch64__)
  return std::fma(a, b, 0.0f);
#else
  return a * b;
#endif
}

}  // namespace KVBITS_ISA_NAMESPACE
}  // namespace kvbits::detail
