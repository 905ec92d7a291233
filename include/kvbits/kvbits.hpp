// SPDX-License-Identifier: MIT
#pragma once

// Umbrella header. Order: configuration and core types, codecs, then the
// components built on them.
#include "kvbits/config.hpp"
#include "kvbits/core/simd_headers.hpp"

#include "kvbits/core/bit_width.hpp"
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

#include "kvbits/features/age_feature.hpp"
#include "kvbits/features/attention_variance_feature.hpp"
#include "kvbits/features/confidence_feature.hpp"
#include "kvbits/features/decision_feature_context.hpp"
#include "kvbits/features/entropy_feature.hpp"
#include "kvbits/features/feature.hpp"
#include "kvbits/features/feature_set.hpp"
#include "kvbits/features/layer_feature.hpp"
#include "kvbits/features/position_feature.hpp"
#include "kvbits/features/rarity_feature.hpp"
#include "kvbits/features/received_mass_feature.hpp"
#include "kvbits/features/scalar_feature.hpp"
#include "kvbits/features/unigram_file.hpp"
#include "kvbits/features/unigram_table.hpp"

#include "kvbits/policy/budget_policy.hpp"
#include "kvbits/policy/decision_context.hpp"
#include "kvbits/policy/policy.hpp"
#include "kvbits/policy/policy_text.hpp"
#include "kvbits/policy/random_policy.hpp"
#include "kvbits/policy/rule_policy.hpp"
#include "kvbits/policy/static_policy.hpp"
#include "kvbits/policy/tiered_policy.hpp"

#include "kvbits/cache/memory_report.hpp"
#include "kvbits/cache/options.hpp"
#include "kvbits/cache/quantized_kv_cache.hpp"
