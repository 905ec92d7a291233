// SPDX-License-Identifier: MIT
#pragma once

#include <span>
#include <string>

#include <kvbits/kvbits.hpp>

#include "odr_unit.hpp"

namespace kvbits::odr {

/**
 * The computation every unit runs: the keys encoded at 4 bits, then a cache of random widths
 * holding the keys and values, attended to once, and the logit features of the keys.
 * @tparam Backend the codec backend, which names the instruction set it was built for.
 */
template <class Backend>
Run compute(const Input& input) {
  Run run;
  run.isa = KVBITS_ISA_NAME;
  run.backend = std::string(Backend::name());

  const std::size_t width = kKvHeads * kHeadDim;
  const QuantFormat format{4, kGroup, Scheme::asymmetric};
  const std::size_t packed = packed_size(format, width);
  run.codes.resize(kTokens * packed);
  for (std::size_t t = 0; t < kTokens; ++t) {
    Backend::encode(format, std::span(input.keys).subspan(t * width, width),
                    std::span(run.codes).subspan(t * packed, packed));
  }

  CacheOptions options;
  options.kv_heads = kKvHeads;
  options.head_dim = kHeadDim;
  options.capacity = kTokens;
  options.sink_tokens = 2;
  options.residual_window = 4;
  options.key.group_size = kGroup;
  options.value.group_size = kGroup;
  QuantizedKVCache<RandomPolicy, Backend> cache(options, RandomPolicy(parse_width_mix(kWidthMix), kSeed));
  for (std::size_t t = 0; t < kTokens; ++t) {
    cache.append(0, std::span(input.keys).subspan(t * width, width),
                 std::span(input.values).subspan(t * width, width));
  }
  run.attention.resize(kQueryHeads * kHeadDim);
  run.received.resize(kTokens);
  cache.attend(0, input.query, run.attention, run.received);

  // The write-time features' exp pass is vectorised too.
  FeatureContext context;
  context.next_token = 5;
  context.next_token_logits = input.keys;
  run.features.resize(LogitFeatures::size);
  LogitFeatures{}.extract(context, run.features);
  return run;
}

}  // namespace kvbits::odr
