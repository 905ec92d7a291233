// SPDX-License-Identifier: MIT
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "kvbits/core/random.hpp"
#include "model/llama.hpp"
#include "model/tokenizer.hpp"

namespace kvbits::model {

namespace detail {

using kvbits::detail::SplitMix64;

inline std::vector<float> toy_matrix(SplitMix64& rng, std::size_t rows, std::size_t cols) {
  // Scaled like a trained layer (variance ~ 1/cols) so activations stay O(1) through the stack.
  const float scale = std::sqrt(3.0f / static_cast<float>(cols));
  std::vector<float> m(rows * cols);
  for (float& w : m) w = scale * static_cast<float>(rng.symmetric());
  return m;
}

inline std::vector<float> toy_norm(SplitMix64& rng, std::size_t n) {
  std::vector<float> w(n);
  for (float& x : w) x = 1.0f + 0.1f * static_cast<float>(rng.symmetric());
  return w;
}

}  // namespace detail

/**
 * A small SentencePiece vocabulary for the toy model: <unk>, <s>, </s>, the 256 byte pieces
 * (ids 3..258), then U+2581, lowercase letters, a little punctuation and a few merged pieces.
 */
inline Tokenizer make_toy_tokenizer() {
  Vocabulary vocabulary = byte_fallback_vocabulary();
  auto add = [&](std::string piece) {
    // Earlier pieces merge first, as in a trained SentencePiece model.
    const float score = -static_cast<float>(vocabulary.size());
    vocabulary.add(std::move(piece), score);
  };
  const std::string space(detail::kSpaceMarker);
  for (const std::string& merged :
       {space + "t", std::string("he"), space + "the", space + "a", std::string("in"), std::string("ing"),
        space + "s", std::string("nd"), space + "and", space + "w", std::string("as"), space + "was",
        space + "o", std::string("ne"), space + "one"}) {
    add(merged);
  }
  add(space);
  for (char c = 'a'; c <= 'z'; ++c) add(std::string(1, c));
  for (const char* punctuation : {".", ",", "!", "?", "'", "\""}) add(punctuation);
  return Tokenizer(std::move(vocabulary));
}

/// Shape of the toy model: 2 layers, dim 32, 4 query heads over 2 KV heads (head_dim 8).
inline LlamaConfig toy_config(std::size_t vocab) {
  LlamaConfig config;
  config.dim = 32;
  config.layers = 2;
  config.heads = 4;
  config.kv_heads = 2;
  config.ffn_dim = 48;
  config.vocab = vocab;
  config.context = 256;
  config.rms_eps = 1e-5f;
  config.rope_theta = 10000.0f;
  return config;
}

/**
 * Deterministic pseudo-random weights for `config` (separate output matrix). The model talks
 * nonsense, but runs exactly the code path of a real LLaMA.
 * @param seed changes every weight
 */
inline LlamaWeights make_toy_weights(const LlamaConfig& config, std::uint64_t seed = 2024) {
  detail::SplitMix64 rng(seed);
  const std::size_t dim = config.dim;
  const std::size_t q_dim = config.heads * config.head_dim();
  const std::size_t kv_dim = config.kv_heads * config.head_dim();
  LlamaWeights weights;
  // Embeddings of unit scale, as after training; the matrices are scaled by their fan-in.
  weights.token_embedding.resize(config.vocab * dim);
  for (float& w : weights.token_embedding) w = static_cast<float>(rng.symmetric());
  for (std::size_t l = 0; l < config.layers; ++l) {
    LlamaLayerWeights layer;
    layer.attn_norm = detail::toy_norm(rng, dim);
    layer.wq = detail::toy_matrix(rng, q_dim, dim);
    layer.wk = detail::toy_matrix(rng, kv_dim, dim);
    layer.wv = detail::toy_matrix(rng, kv_dim, dim);
    layer.wo = detail::toy_matrix(rng, dim, q_dim);
    layer.ffn_norm = detail::toy_norm(rng, dim);
    layer.w_gate = detail::toy_matrix(rng, config.ffn_dim, dim);
    layer.w_up = detail::toy_matrix(rng, config.ffn_dim, dim);
    layer.w_down = detail::toy_matrix(rng, dim, config.ffn_dim);
    weights.layers.push_back(std::move(layer));
  }
  weights.output_norm = detail::toy_norm(rng, dim);
  weights.output = detail::toy_matrix(rng, config.vocab, dim);
  return weights;
}

/// The toy model, matching make_toy_tokenizer().
inline LlamaModel make_toy_model(std::uint64_t seed = 2024) {
  const LlamaConfig config = toy_config(make_toy_tokenizer().size());
  return LlamaModel(config, make_toy_weights(config, seed));
}

}  // namespace kvbits::model
