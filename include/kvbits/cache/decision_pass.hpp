// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cstddef>

#include "kvbits/cache/decision_schedule.hpp"
#include "kvbits/cache/layer_store.hpp"
#include "kvbits/cache/move_plan.hpp"
#include "kvbits/cache/options.hpp"
#include "kvbits/cache/token_notes.hpp"
#include "kvbits/cache/token_repack.hpp"
#include "kvbits/codec/backend.hpp"
#include "kvbits/policy/decision_context.hpp"

namespace kvbits::detail {

/// One layer as the decisions of an append see it.
struct DecidingLayer {
  std::size_t layer;
  const LayerStore& store;
  const TokenNotes& notes;
  bool with_statistics;           // fill DecisionContext::attention
  double cache_bits_per_element;  // the cache's, before this append
};

/**
 * context <- what the policy sees about a stored token at `age`. Only the
 * token's own fields are written: the rest (cache_bits_per_element) is set
 * once per append by the caller.
 */
inline void describe_stored_token(const DecidingLayer& at, std::size_t token, std::size_t age,
                                  DecisionContext& context) noexcept {
  context.token = at.notes.info(at.layer, token);
  if (at.with_statistics) context.attention = at.store.attention_stats(token);
  context.age = age;
  context.current = at.store.bits(token);
}

/// Stages a stored token's rows re-packed to `bits` as a move of `plan`.
template <Backend B>
void stage_move(const LayerStore& store, const CacheOptions& options, std::size_t token,
                const BitDecision& bits, RepackScratch& scratch, MovePlan& plan) {
  repack_token<B>(store, options, token, bits, scratch, plan.next_keys(), plan.next_values());
  plan.stage_move(token, store.slot(token).stream, pair_stream(bits));
}

/**
 * Plans what appending token `current` (index `token`, rows `key`, `value`
 * [kv_heads][head_dim] in the stored basis) decides: the new token (no
 * window) or the token leaving the window, then every stored token that
 * reaches one of the schedule's ages. A revisit's answer is clamped
 * element-wise to the token's current widths; an unchanged token is not moved.
 * @param consult returns the policy's (checked) BitDecision for a DecisionContext.
 */
template <Backend B, class Consult>
void plan_append_decisions(const DecisionSchedule& schedule, const DecidingLayer& at,
                           const CacheOptions& options, std::size_t token, const TokenInfo& current,
                           const float* key, const float* value, Consult&& consult, RepackScratch& scratch,
                           MovePlan& plan) {
  if (schedule.decides_on_append(token)) {
    if (schedule.window() == 0) {
      DecisionContext context;
      context.token = current;
      context.cache_bits_per_element = at.cache_bits_per_element;
      const BitDecision bits = consult(context);
      encode_token<B>(options, key, value, bits, plan.next_keys(), plan.next_values());
      plan.stage_insert(pair_stream(bits));
    } else {
      const std::size_t leaving = schedule.first_decided(token);
      DecisionContext context;
      context.cache_bits_per_element = at.cache_bits_per_element;
      describe_stored_token(at, leaving, schedule.window(), context);
      const BitDecision bits = consult(context);
      stage_move<B>(at.store, options, leaving, bits, scratch, plan);
    }
  }
  // One context for every revisit: each overwrites the token's own fields.
  DecisionContext revisit;
  revisit.cache_bits_per_element = at.cache_bits_per_element;
  for (std::size_t age : schedule.ages()) {
    if (age > token) break;
    const std::size_t old = token - age;
    if (schedule.is_sink(old) || at.store.in_residual(old)) continue;
    const BitDecision now = at.store.bits(old);
    describe_stored_token(at, old, age, revisit);
    const BitDecision asked = consult(revisit);
    const BitDecision bits{std::min(asked.key_bits, now.key_bits),
                           std::min(asked.value_bits, now.value_bits)};
    if (bits != now) stage_move<B>(at.store, options, old, bits, scratch, plan);
  }
}

}  // namespace kvbits::detail
