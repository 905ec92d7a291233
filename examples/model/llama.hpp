// SPDX-License-Identifier: MIT
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

// Intrinsics first, so that Eigen parses them under kvbits' GCC 12 warning fix.
#include "kvbits/core/simd_headers.hpp"

#include <Eigen/Core>

#include "kvbits/core/decision.hpp"
#include "kvbits/core/error.hpp"
#include "model/kv_cache.hpp"

namespace kvbits::model {

/// Hyper-parameters of a LLaMA-style decoder.
struct LlamaConfig {
  std::size_t dim = 0;          ///< residual stream width
  std::size_t layers = 0;       ///< transformer blocks
  std::size_t heads = 0;        ///< query heads
  std::size_t kv_heads = 0;     ///< key/value heads (GQA when fewer than `heads`)
  std::size_t ffn_dim = 0;      ///< SwiGLU hidden width
  std::size_t vocab = 0;        ///< vocabulary size
  std::size_t context = 0;      ///< context length the model was trained for
  float rms_eps = 1e-5f;        ///< RMSNorm epsilon
  float rope_theta = 10000.0f;  ///< RoPE base frequency

  /// @return the width of one attention head.
  [[nodiscard]] std::size_t head_dim() const noexcept { return heads == 0 ? 0 : dim / heads; }

  /// @throw Error(invalid_argument) unless the shape is a usable LLaMA.
  void validate() const {
    kvbits::detail::require(dim > 0 && layers > 0 && heads > 0 && kv_heads > 0 && ffn_dim > 0 && vocab > 0,
                            Errc::invalid_argument, "llama: every dimension must be positive");
    kvbits::detail::require(dim % heads == 0, Errc::invalid_argument,
                            "llama: dim must be a multiple of the head count");
    kvbits::detail::require(heads % kv_heads == 0, Errc::invalid_argument,
                            "llama: head count must be a multiple of the KV head count");
    kvbits::detail::require(head_dim() % 2 == 0, Errc::invalid_argument,
                            "llama: RoPE needs an even head dimension");
    kvbits::detail::require(rms_eps > 0.0f && rope_theta > 0.0f, Errc::invalid_argument,
                            "llama: rms_eps and rope_theta must be positive");
  }
};

/// Weights of one transformer block; every matrix is row-major [out][in].
struct LlamaLayerWeights {
  std::vector<float> attn_norm;  // [dim]
  std::vector<float> wq;         // [heads * head_dim][dim]
  std::vector<float> wk;         // [kv_heads * head_dim][dim]
  std::vector<float> wv;         // [kv_heads * head_dim][dim]
  std::vector<float> wo;         // [dim][heads * head_dim]
  std::vector<float> ffn_norm;   // [dim]
  std::vector<float> w_gate;     // [ffn_dim][dim]
  std::vector<float> w_up;       // [ffn_dim][dim]
  std::vector<float> w_down;     // [dim][ffn_dim]
};

/// All weights of the model.
struct LlamaWeights {
  std::vector<float> token_embedding;     // [vocab][dim]
  std::vector<LlamaLayerWeights> layers;  // [layers]
  std::vector<float> output_norm;         // [dim]
  std::vector<float> output;              // [vocab][dim]; empty = tied to token_embedding
};

namespace detail {

using RowMajorMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMatrixMap = Eigen::Map<const RowMajorMatrix>;
using VectorMap = Eigen::Map<Eigen::VectorXf>;

inline Eigen::Index to_index(std::size_t n) noexcept { return static_cast<Eigen::Index>(n); }

inline void require_size(const std::vector<float>& tensor, std::size_t expected, const std::string& name) {
  kvbits::detail::require(tensor.size() == expected, Errc::shape_mismatch,
                          "llama: tensor " + name + " has " + std::to_string(tensor.size()) +
                              " elements, expected " + std::to_string(expected));
}

}  // namespace detail

/**
 * A LLaMA-style decoder evaluated one token at a time: RMSNorm, RoPE on consecutive pairs
 * (2i, 2i+1), grouped-query attention delegated to a KV cache, SwiGLU feed-forward, and a tied or
 * separate output matrix. The model owns only weights and scratch space; all K/V history lives in
 * the cache passed to `forward`, so the cache's precision is the only thing that differs between
 * runs with different caches.
 *
 * Not thread-safe: `forward` writes to the scratch buffers. Use one model object per thread.
 */
class LlamaModel {
 public:
  /**
   * @param config  shape of the model
   * @param weights weights matching `config`
   * @throw Error(invalid_argument) for an unusable config, Error(shape_mismatch) for a weight
   *        whose size does not match it.
   */
  LlamaModel(const LlamaConfig& config, LlamaWeights weights)
      : config_(config), weights_(std::move(weights)) {
    config_.validate();
    const std::size_t dim = config_.dim;
    const std::size_t q_dim = config_.heads * config_.head_dim();
    const std::size_t kv_dim = config_.kv_heads * config_.head_dim();
    detail::require_size(weights_.token_embedding, config_.vocab * dim, "token_embedding");
    detail::require_size(weights_.output_norm, dim, "output_norm");
    if (!weights_.output.empty()) {
      detail::require_size(weights_.output, config_.vocab * dim, "output");
    }
    kvbits::detail::require(weights_.layers.size() == config_.layers, Errc::shape_mismatch,
                            "llama: weights hold " + std::to_string(weights_.layers.size()) +
                                " layers, config says " + std::to_string(config_.layers));
    for (std::size_t l = 0; l < config_.layers; ++l) {
      const auto& layer = weights_.layers[l];
      const std::string prefix = "layer " + std::to_string(l) + " ";
      detail::require_size(layer.attn_norm, dim, prefix + "attn_norm");
      detail::require_size(layer.wq, q_dim * dim, prefix + "wq");
      detail::require_size(layer.wk, kv_dim * dim, prefix + "wk");
      detail::require_size(layer.wv, kv_dim * dim, prefix + "wv");
      detail::require_size(layer.wo, dim * q_dim, prefix + "wo");
      detail::require_size(layer.ffn_norm, dim, prefix + "ffn_norm");
      detail::require_size(layer.w_gate, config_.ffn_dim * dim, prefix + "w_gate");
      detail::require_size(layer.w_up, config_.ffn_dim * dim, prefix + "w_up");
      detail::require_size(layer.w_down, dim * config_.ffn_dim, prefix + "w_down");
    }
    x_.resize(detail::to_index(dim));
    normed_.resize(detail::to_index(dim));
    q_.resize(detail::to_index(q_dim));
    k_.resize(detail::to_index(kv_dim));
    v_.resize(detail::to_index(kv_dim));
    attention_.resize(detail::to_index(q_dim));
    gate_.resize(detail::to_index(config_.ffn_dim));
    up_.resize(detail::to_index(config_.ffn_dim));
    rope_cos_.resize(config_.head_dim() / 2);
    rope_sin_.resize(config_.head_dim() / 2);
  }

  /// @return the model's shape.
  [[nodiscard]] const LlamaConfig& config() const noexcept { return config_; }

  /**
   * Runs one token through the model: each layer appends the token's post-RoPE K and V to
   * `cache` and attends over everything the cache holds for that layer.
   * @tparam Cache an AttentionCache configured with this model's layers, kv_heads and head_dim
   * @param token    vocabulary id of the token
   * @param position its absolute position (0 for the first token of the sequence)
   * @param cache    the KV history of this sequence; grows by one token per layer
   * @param logits   [vocab] output: unnormalized next-token scores
   * @throw Error(invalid_argument) for an out-of-range token, Error(shape_mismatch) for a wrong
   *        `logits` size, or whatever the cache throws (its strong guarantee holds per layer; the
   *        sequence is then inconsistent and should be cleared).
   */
  template <AttentionCache Cache>
  void forward(std::int32_t token, std::size_t position, Cache& cache, std::span<float> logits) {
    kvbits::detail::require(token >= 0 && static_cast<std::size_t>(token) < config_.vocab,
                            Errc::invalid_argument,
                            "llama: token id " + std::to_string(token) + " outside the vocabulary");
    kvbits::detail::require(logits.size() == config_.vocab, Errc::shape_mismatch,
                            "llama: logits must have one entry per vocabulary piece");
    const Eigen::Index dim = detail::to_index(config_.dim);
    x_ = detail::ConstMatrixMap(weights_.token_embedding.data(), detail::to_index(config_.vocab), dim)
             .row(token)
             .transpose();
    prepare_rope(position);

    for (std::size_t l = 0; l < config_.layers; ++l) {
      const LlamaLayerWeights& layer = weights_.layers[l];
      rms_norm(layer.attn_norm);
      multiply(layer.wq, normed_, q_);
      multiply(layer.wk, normed_, k_);
      multiply(layer.wv, normed_, v_);
      apply_rope(q_);
      apply_rope(k_);
      const TokenInfo info{l, position, token, {}};
      cache.append(l, as_span(k_), as_span(v_), info);
      cache.attend(l, as_span(q_), as_mutable_span(attention_));
      add_product(layer.wo, attention_, x_);

      rms_norm(layer.ffn_norm);
      multiply(layer.w_gate, normed_, gate_);
      multiply(layer.w_up, normed_, up_);
      // SwiGLU: silu(gate) * up.
      gate_ = (gate_.array() / (1.0f + (-gate_.array()).exp())) * up_.array();
      add_product(layer.w_down, gate_, x_);
    }

    rms_norm(weights_.output_norm);
    const std::vector<float>& output = weights_.output.empty() ? weights_.token_embedding : weights_.output;
    detail::VectorMap out(logits.data(), detail::to_index(config_.vocab));
    out.noalias() = detail::ConstMatrixMap(output.data(), detail::to_index(config_.vocab), dim) * normed_;
  }

 private:
  static std::span<const float> as_span(const Eigen::VectorXf& v) noexcept {
    return {v.data(), static_cast<std::size_t>(v.size())};
  }
  static std::span<float> as_mutable_span(Eigen::VectorXf& v) noexcept {
    return {v.data(), static_cast<std::size_t>(v.size())};
  }

  // normed_ = x_ / rms(x_) * weight
  void rms_norm(const std::vector<float>& weight) {
    const float mean_square = x_.squaredNorm() / static_cast<float>(x_.size());
    const float inv_rms = 1.0f / std::sqrt(mean_square + config_.rms_eps);
    normed_ = (x_.array() * inv_rms) *
              Eigen::Map<const Eigen::ArrayXf>(weight.data(), detail::to_index(weight.size()));
  }

  // out = W · in, W row-major [out.size()][in.size()]
  static void multiply(const std::vector<float>& w, const Eigen::VectorXf& in, Eigen::VectorXf& out) {
    out.noalias() = detail::ConstMatrixMap(w.data(), out.size(), in.size()) * in;
  }

  // out += W · in, W row-major [out.size()][in.size()]
  static void add_product(const std::vector<float>& w, const Eigen::VectorXf& in, Eigen::VectorXf& out) {
    out.noalias() += detail::ConstMatrixMap(w.data(), out.size(), in.size()) * in;
  }

  void prepare_rope(std::size_t position) {
    const std::size_t head_dim = config_.head_dim();
    for (std::size_t i = 0; i < head_dim / 2; ++i) {
      // Angles in double: float loses whole radians at long positions.
      const double frequency = std::pow(static_cast<double>(config_.rope_theta),
                                        -static_cast<double>(2 * i) / static_cast<double>(head_dim));
      const double angle = static_cast<double>(position) * frequency;
      rope_cos_[i] = static_cast<float>(std::cos(angle));
      rope_sin_[i] = static_cast<float>(std::sin(angle));
    }
  }

  // Rotates the consecutive pairs (2i, 2i+1) of every head of `v` ([heads][head_dim]).
  void apply_rope(Eigen::VectorXf& v) const {
    const std::size_t head_dim = config_.head_dim();
    const auto n = static_cast<std::size_t>(v.size());
    float* data = v.data();
    for (std::size_t head = 0; head < n; head += head_dim) {
      for (std::size_t i = 0; i < head_dim / 2; ++i) {
        float& even = data[head + 2 * i];
        float& odd = data[head + 2 * i + 1];
        const float a = even;
        const float b = odd;
        even = a * rope_cos_[i] - b * rope_sin_[i];
        odd = a * rope_sin_[i] + b * rope_cos_[i];
      }
    }
  }

  LlamaConfig config_;
  LlamaWeights weights_;
  // Scratch for one token.
  Eigen::VectorXf x_;            // [dim] residual stream
  Eigen::VectorXf normed_;       // [dim] RMSNorm output
  Eigen::VectorXf q_;            // [heads][head_dim]
  Eigen::VectorXf k_;            // [kv_heads][head_dim]
  Eigen::VectorXf v_;            // [kv_heads][head_dim]
  Eigen::VectorXf attention_;    // [heads][head_dim]
  Eigen::VectorXf gate_;         // [ffn_dim]
  Eigen::VectorXf up_;           // [ffn_dim]
  std::vector<float> rope_cos_;  // [head_dim / 2]
  std::vector<float> rope_sin_;  // [head_dim / 2]
};

}  // namespace kvbits::model
