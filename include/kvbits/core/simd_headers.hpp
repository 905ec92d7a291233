// SPDX-License-Identifier: MIT
#pragma once

// The one place kvbits includes the compiler's intrinsics and xsimd.
//
// GCC 12 reports -Wmaybe-uninitialized inside its own AVX-512 intrinsics
// (_mm512_undefined_*, GCC bug 105593; -Wuninitialized once they are inlined
// into fully unrolled kernels). The diagnostic state where the intrinsics
// header is first parsed decides, so every kvbits header that needs
// intrinsics includes this one first and the warning is silenced for that
// parse only. Code that includes Eigen should include this header before it.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif
#include <xsimd/xsimd.hpp>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
