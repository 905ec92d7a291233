// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gguf/gguf.hpp"
#include "kvbits/core/error.hpp"
#include "model/llama.hpp"
#include "model/tokenizer.hpp"

namespace kvbits::model {

namespace detail {

inline std::size_t metadata_size(const gguf::File& file, std::string_view key) {
  return static_cast<std::size_t>(file.get_uint(key));
}

// Reads a weight matrix stored with ne[0] = `cols` (the contiguous, input dimension) and
// ne[1] = `rows`, i.e. row-major [rows][cols]; a vector when rows == 0.
inline std::vector<float> load_tensor(const gguf::File& file, const std::string& name, std::size_t cols,
                                      std::size_t rows = 0) {
  const gguf::TensorInfo* info = file.find_tensor(name);
  kvbits::detail::require(info != nullptr, Errc::corrupt_data, "model file has no tensor '" + name + "'");
  std::vector<std::uint64_t> expected{cols};
  if (rows != 0) expected.push_back(rows);
  std::string shape;
  for (const auto d : expected) shape += (shape.empty() ? "" : " x ") + std::to_string(d);
  kvbits::detail::require(info->dims == expected, Errc::corrupt_data,
                          "tensor '" + name + "' does not have the expected shape (ne = " + shape + ")");
  return file.tensor_f32(name);
}

}  // namespace detail

/**
 * Builds the SentencePiece tokenizer stored in a GGUF file (tokenizer.ggml.*).
 * @param file a parsed GGUF file whose tokenizer.ggml.model is "llama"
 * @throw Error(unsupported) for another tokenizer model, Error(corrupt_data) for missing or
 *        inconsistent vocabulary arrays.
 */
inline Tokenizer load_tokenizer(const gguf::File& file) {
  const std::string kind = file.find_string("tokenizer.ggml.model").value_or("");
  kvbits::detail::require(
      kind == "llama", Errc::unsupported,
      "tokenizer model '" + kind + "' is not supported (only SentencePiece BPE, \"llama\")");
  auto pieces = file.get_string_array("tokenizer.ggml.tokens");
  auto scores = file.get_float_array("tokenizer.ggml.scores");
  const auto raw_types = file.get_int_array("tokenizer.ggml.token_type");
  kvbits::detail::require(scores.size() == pieces.size() && raw_types.size() == pieces.size(),
                          Errc::corrupt_data, "tokenizer arrays tokens/scores/token_type differ in length");
  std::vector<TokenType> types;
  types.reserve(raw_types.size());
  for (const std::int64_t t : raw_types) {
    kvbits::detail::require(t >= 0 && t <= static_cast<std::int64_t>(TokenType::byte), Errc::corrupt_data,
                            "tokenizer token_type out of range");
    types.push_back(static_cast<TokenType>(t));
  }
  SpecialTokens special;
  auto special_id = [&](std::string_view key, std::int32_t fallback) {
    const std::uint64_t id = file.find_uint(key).value_or(static_cast<std::uint64_t>(fallback));
    kvbits::detail::require(id < pieces.size(), Errc::corrupt_data,
                            std::string(key) + " is outside the vocabulary");
    return static_cast<std::int32_t>(id);
  };
  special.unknown = special_id("tokenizer.ggml.unknown_token_id", special.unknown);
  special.bos = special_id("tokenizer.ggml.bos_token_id", special.bos);
  special.eos = special_id("tokenizer.ggml.eos_token_id", special.eos);
  try {
    return Tokenizer(std::move(pieces), std::move(scores), std::move(types), special);
  } catch (const Error& error) {
    throw Error(Errc::corrupt_data, error.what());
  }
}

/**
 * Reads a LLaMA model's shape from GGUF metadata (llama.* keys).
 * @throw Error(unsupported) for another architecture or partial rotary embeddings,
 *        Error(corrupt_data) for missing keys.
 */
inline LlamaConfig load_llama_config(const gguf::File& file) {
  const std::string arch = file.find_string("general.architecture").value_or("");
  kvbits::detail::require(arch == "llama", Errc::unsupported,
                          "architecture '" + arch + "' is not supported (only \"llama\")");
  LlamaConfig config;
  config.dim = detail::metadata_size(file, "llama.embedding_length");
  config.layers = detail::metadata_size(file, "llama.block_count");
  config.heads = detail::metadata_size(file, "llama.attention.head_count");
  config.kv_heads =
      static_cast<std::size_t>(file.find_uint("llama.attention.head_count_kv").value_or(config.heads));
  config.ffn_dim = detail::metadata_size(file, "llama.feed_forward_length");
  config.context = detail::metadata_size(file, "llama.context_length");
  config.rms_eps = static_cast<float>(file.get_float("llama.attention.layer_norm_rms_epsilon"));
  config.rope_theta = static_cast<float>(file.find_float("llama.rope.freq_base").value_or(10000.0));
  const gguf::TensorInfo* embedding = file.find_tensor("token_embd.weight");
  kvbits::detail::require(embedding != nullptr && embedding->dims.size() == 2, Errc::corrupt_data,
                          "model file has no 2-D tensor 'token_embd.weight'");
  config.vocab = static_cast<std::size_t>(embedding->dims[1]);
  try {
    config.validate();
  } catch (const Error& error) {
    throw Error(Errc::corrupt_data, error.what());
  }
  if (const auto rotary = file.find_uint("llama.rope.dimension_count")) {
    kvbits::detail::require(*rotary == config.head_dim(), Errc::unsupported,
                            "partial rotary embeddings (llama.rope.dimension_count != head_dim) "
                            "are not supported");
  }
  return config;
}

/**
 * Loads every weight of a LLaMA model, converted to F32.
 * @throw Error(corrupt_data) for a missing or misshapen tensor, plus what load_llama_config and
 *        the GGUF reader throw.
 */
inline LlamaModel load_llama(const gguf::File& file) {
  const LlamaConfig config = load_llama_config(file);
  const std::size_t dim = config.dim;
  const std::size_t q_dim = config.heads * config.head_dim();
  const std::size_t kv_dim = config.kv_heads * config.head_dim();
  LlamaWeights weights;
  weights.token_embedding = detail::load_tensor(file, "token_embd.weight", dim, config.vocab);
  weights.output_norm = detail::load_tensor(file, "output_norm.weight", dim);
  // Without output.weight the output projection is tied to the embedding.
  if (file.find_tensor("output.weight") != nullptr) {
    weights.output = detail::load_tensor(file, "output.weight", dim, config.vocab);
  }
  for (std::size_t l = 0; l < config.layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    LlamaLayerWeights layer;
    layer.attn_norm = detail::load_tensor(file, p + "attn_norm.weight", dim);
    layer.wq = detail::load_tensor(file, p + "attn_q.weight", dim, q_dim);
    layer.wk = detail::load_tensor(file, p + "attn_k.weight", dim, kv_dim);
    layer.wv = detail::load_tensor(file, p + "attn_v.weight", dim, kv_dim);
    layer.wo = detail::load_tensor(file, p + "attn_output.weight", q_dim, dim);
    layer.ffn_norm = detail::load_tensor(file, p + "ffn_norm.weight", dim);
    layer.w_gate = detail::load_tensor(file, p + "ffn_gate.weight", dim, config.ffn_dim);
    layer.w_up = detail::load_tensor(file, p + "ffn_up.weight", dim, config.ffn_dim);
    layer.w_down = detail::load_tensor(file, p + "ffn_down.weight", config.ffn_dim, dim);
    weights.layers.push_back(std::move(layer));
  }
  return LlamaModel(config, std::move(weights));
}

/// A model together with its tokenizer.
struct LoadedModel {
  Tokenizer tokenizer;
  LlamaModel model;
};

/**
 * Opens a GGUF LLaMA model file.
 * @param path file to read
 * @throw Error (io_error, corrupt_data, unsupported) with a message naming the problem, also
 *        when the tokenizer and the model disagree on the vocabulary size.
 */
inline LoadedModel load_model(const std::string& path) {
  const gguf::File file = gguf::File::open(path);
  Tokenizer tokenizer = load_tokenizer(file);
  LlamaModel model = load_llama(file);
  kvbits::detail::require(tokenizer.size() == model.config().vocab, Errc::corrupt_data,
                          "tokenizer has " + std::to_string(tokenizer.size()) +
                              " pieces but the model's vocabulary is " +
                              std::to_string(model.config().vocab));
  return LoadedModel{std::move(tokenizer), std::move(model)};
}

}  // namespace kvbits::model
