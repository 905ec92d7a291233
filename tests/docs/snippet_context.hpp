// SPDX-License-Identifier: MIT
// The engine around the documentation's C++ fragments (check_snippets.py compiles each in a
// function of namespace engine): the names a fragment takes from its surroundings. Declared only,
// since fragments are compiled, not run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <kvbits/kvbits.hpp>

namespace engine {

// The model's shape.
extern std::size_t n_layers, n_kv_heads, head_dim, max_context;

// The layer being computed and its current token.
extern std::size_t layer, position;
extern std::int32_t token_id;
extern std::span<const float> k, v;  // [kv_heads][head_dim], post-RoPE
extern std::span<const float> q;     // [n_heads][head_dim], post-RoPE
extern std::span<float> out;         // [n_heads][head_dim]

// One sequence: its cache, its prompt and the tokens that follow.
extern kvbits::QuantizedKVCache<kvbits::StaticPolicy> cache;
extern std::vector<std::int32_t> prompt, continuation;

// The engine's forward passes over tokens, storing their keys and values in `sequence`.
template <class Cache>
void prefill(std::span<const std::int32_t> tokens, Cache& sequence);
template <class Cache>
void decode(Cache& sequence, std::span<const std::int32_t> tokens);

}  // namespace engine
