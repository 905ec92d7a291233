// SPDX-License-Identifier: MIT
#pragma once

// The codec kernels of both backends, compiled here. A program built with
// KVBITS_EXTERN_KERNELS defined in every source file includes this header in exactly one
// of them (with the same -march as the rest); the others then only declare the kernels,
// which saves most of each file's compile time (docs/integration.md, "Compile time").
// Without the macro every file that attends or encodes compiles them itself.

#include "kvbits/codec/scalar_backend.hpp"
#include "kvbits/codec/xsimd_backend.hpp"

template struct kvbits::detail::CodecDispatch<kvbits::kernel::ScalarKernels>;
template struct kvbits::detail::CodecDispatch<kvbits::kernel::XsimdKernels>;
