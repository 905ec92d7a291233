// SPDX-License-Identifier: MIT
#pragma once

// Umbrella header. Order: configuration and core types, codecs, then the
// components built on them.
#include "kvbits/config.hpp"
#include "kvbits/core/simd_headers.hpp"

#include "kvbits/core/bit_width.hpp"
#include "kvbits/core/concepts.hpp"
#include "kvbits/core/decision.hpp"
#include "kvbits/core/error.hpp"
#include "kvbits/core/finite.hpp"
#include "kvbits/core/fp16.hpp"

#include "kvbits/codec/backend.hpp"
#include "kvbits/codec/default_backend.hpp"
#include "kvbits/codec/format.hpp"
#include "kvbits/codec/group_params.hpp"
#include "kvbits/codec/reference.hpp"
#include "kvbits/codec/scalar_backend.hpp"
#include "kvbits/codec/xsimd_backend.hpp"
#include "kvbits/codec/xsimd_kernels.hpp"
#include "kvbits/codec/xsimd_lanes.hpp"

#include "kvbits/policy/rule_policy.hpp"
#include "kvbits/policy/static_policy.hpp"

#include "kvbits/cache/memory_report.hpp"
#include "kvbits/cache/options.hpp"
#include "kvbits/cache/quantized_kv_cache.hpp"
