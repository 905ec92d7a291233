// SPDX-License-Identifier: MIT
#pragma once

#include "kvbits/config.hpp"

// KVBITS_ISA_NAMESPACE names the inline namespace that holds every definition
// whose code depends on the instruction set the compiler targets: the codec
// kernels and both backends, fp16 conversion, the group parameter search, and
// the attention pass with its softmax. As with Highway's HWY_NAMESPACE, two
// translation units built with different -m flags then define differently
// named entities (kvbits::avx2::XsimdBackend, kvbits::sse2::XsimdBackend)
// rather than two bodies of one inline function, of which the linker would
// keep either. Callers never spell it: the namespace is inline.
//
// The name is derived from exactly the target macros that kvbits and xsimd
// choose code by:
//  - x86: the widest of avx512bw, avx512dq, avx512cd, avx512f, avx2, avx,
//    sse4_2, sse4_1, ssse3, sse3, sse2 (xsimd's order of preference), then FMA,
//    F16C and BMI2. Every AVX2 and AVX-512 processor has all three
//    (x86-64-v3), so from avx2 up the name adds only what is missing
//    (`avx2_nofma`); below avx2 it adds what is present (`avx_f16c`). An
//    AVX-512 target with VNNI (integer row kernels) adds `_vnni`;
//  - ARM: neon64 (AArch64) or neon (32-bit with NEON);
//  - anything else: scalar.
// KVBITS_ISA_NAME is the name as a string literal, e.g. "avx512bw".
#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)

#if defined(__AVX512F__) && defined(__AVX512BW__)
#define KVBITS_ISA_BASE avx512bw
#elif defined(__AVX512F__) && defined(__AVX512DQ__)
#define KVBITS_ISA_BASE avx512dq
#elif defined(__AVX512F__) && defined(__AVX512CD__)
#define KVBITS_ISA_BASE avx512cd
#elif defined(__AVX512F__)
#define KVBITS_ISA_BASE avx512f
#elif defined(__AVX2__)
#define KVBITS_ISA_BASE avx2
#elif defined(__AVX__)
#define KVBITS_ISA_BASE avx
#elif defined(__SSE4_2__)
#define KVBITS_ISA_BASE sse4_2
#elif defined(__SSE4_1__)
#define KVBITS_ISA_BASE sse4_1
#elif defined(__SSSE3__)
#define KVBITS_ISA_BASE ssse3
#elif defined(__SSE3__)
#define KVBITS_ISA_BASE sse3
#elif defined(__SSE2__) || defined(_M_X64)
#define KVBITS_ISA_BASE sse2
#else
#define KVBITS_ISA_BASE x87
#endif

#if defined(__AVX2__)
#if defined(__FMA__)
#define KVBITS_ISA_FMA
#else
#define KVBITS_ISA_FMA _nofma
#endif
#if defined(__F16C__)
#define KVBITS_ISA_F16C
#else
#define KVBITS_ISA_F16C _nof16c
#endif
#if defined(__BMI2__)
#define KVBITS_ISA_BMI2
#else
#define KVBITS_ISA_BMI2 _nobmi2
#endif
#else
#if defined(__FMA__)
#define KVBITS_ISA_FMA _fma
#else
#define KVBITS_ISA_FMA
#endif
#if defined(__F16C__)
#define KVBITS_ISA_F16C _f16c
#else
#define KVBITS_ISA_F16C
#endif
#if defined(__BMI2__)
#define KVBITS_ISA_BMI2 _bmi2
#else
#define KVBITS_ISA_BMI2
#endif
#endif

#else

#if defined(__aarch64__)
#define KVBITS_ISA_BASE neon64
#elif defined(__ARM_NEON)
#define KVBITS_ISA_BASE neon
#else
#define KVBITS_ISA_BASE scalar
#endif
#define KVBITS_ISA_FMA
#define KVBITS_ISA_F16C
#define KVBITS_ISA_BMI2

#endif

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#define KVBITS_ISA_VNNI _vnni
#else
#define KVBITS_ISA_VNNI
#endif

#define KVBITS_ISA_JOIN_IMPL(base, fma, f16c, bmi2, vnni) base##fma##f16c##bmi2##vnni
#define KVBITS_ISA_JOIN(base, fma, f16c, bmi2, vnni) KVBITS_ISA_JOIN_IMPL(base, fma, f16c, bmi2, vnni)
#define KVBITS_ISA_NAMESPACE \
  KVBITS_ISA_JOIN(KVBITS_ISA_BASE, KVBITS_ISA_FMA, KVBITS_ISA_F16C, KVBITS_ISA_BMI2, KVBITS_ISA_VNNI)
#define KVBITS_ISA_NAME KVBITS_STRINGIFY(KVBITS_ISA_NAMESPACE)
