// SPDX-License-Identifier: MIT
#pragma once

#include "kvbits/codec/scalar_backend.hpp"
#include "kvbits/codec/xsimd_backend.hpp"

namespace kvbits {

/// The backend a cache uses unless told otherwise: the xsimd kernels when the
/// compile target has a SIMD architecture they support (x86 SSE4.2 and up,
/// AArch64 NEON), else the scalar reference.
#if KVBITS_XSIMD_KERNELS
using DefaultBackend = XsimdBackend;
#else
using DefaultBackend = ScalarBackend;
#endif

}  // namespace kvbits
