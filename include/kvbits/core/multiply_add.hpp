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

}  // namespace KVBITS_ISA_NAMESPACE
}  // namespace kvbits::detail
