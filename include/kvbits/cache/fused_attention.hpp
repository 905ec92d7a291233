// SPDX-License-Identifier: MIT
#pragma once

#include "kvbits/core/simd_headers.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <vector>

#include "kvbits/cache/key_basis.hpp"
#include "kvbits/cache/layer_store.hpp"
#include "kvbits/cache/softmax.hpp"
#include "kvbits/codec/backend.hpp"

namespace kvbits::detail {

/**
 * Decode attention over every stream of a layer with an online softmax, page
 * by page, through Backend::dot_rows and Backend::axpy_rows; optionally the
 * probability each token received (summed over heads) and the per-slot
 * attention statistics (AttentionStats), from the same saved weights.
 *
 * Probabilities come without a second exp pass: each page's softmax weights
 * w = exp(s - m_page) are saved with the running max m_page they used, and
 * p = w * exp(m_page - m_final) / l_final afterwards (one exp per page and head).
 *
 * Owns its scratch, which grows to its steady-state size on first use and then
 * never allocates; not for two threads at once.
 */
template <Backend B>
class FusedAttention {
 public:
  /// @param widest_page most slots of any stream's page.
  void configure(const CacheOptions& options, std::size_t widest_page) {
    head_dim_ = options.head_dim;
    kv_heads_ = options.kv_heads;
    capacity_ = options.capacity;
    // Every stream but the float area has pages of >= 16 slots; the float area has one page.
    max_pages_ = (options.capacity + 15) / 16 + kStreamCount;
    scores_.resize(widest_page);
  }

  /**
   * out = attention of q over `store` (inputs checked by the caller).
   * @param q, out [heads][head_dim]; @param received empty or [store.size()].
   */
  void run(const LayerStore& store, const KeyBasis& basis, std::size_t layer, const float* q,
           std::size_t heads, float* out, std::span<float> received) {
    const std::size_t d = head_dim_;
    const std::size_t group = heads / kv_heads_;
    const std::size_t tokens = store.size();
    const bool keep_statistics = store.keeps_statistics();
    const bool save = !received.empty() || keep_statistics;
    grow(heads, save);

    // Queries move into the keys' stored basis; the softmax scale folds in here.
    const float softmax_scale = 1.0f / std::sqrt(static_cast<float>(d));
    for (std::size_t h = 0; h < heads; ++h) {
      float* query = query_.data() + h * d;
      std::memcpy(query, q + h * d, d * sizeof(float));
      basis.query_to_stored(layer, h / group, query);
      scale_in_place(query, d, softmax_scale);
    }
    std::fill_n(accumulator_.data(), heads * d, 0.0f);
    std::fill_n(running_max_.data(), heads, -std::numeric_limits<float>::infinity());
    std::fill_n(running_sum_.data(), heads, 0.0f);

    std::size_t visited = 0;  // stream-order index of the first row of the current page
    std::size_t page_visit = 0;
    for (const PagedStream& stream : store.streams()) {
      if (stream.size() == 0) continue;
      const QuantFormat& key_fmt = stream.key_format();
      const QuantFormat& value_fmt = stream.value_format();
      for (std::size_t p = 0; p < stream.page_count(); ++p, ++page_visit) {
        const std::size_t rows = stream.rows_in_page(p);
        for (std::size_t g = 0; g < kv_heads_; ++g) {
          const std::uint8_t* keys = stream.key_rows(p, g);
          const std::uint8_t* values = stream.value_rows(p, g);
          for (std::size_t h = g * group; h < (g + 1) * group; ++h) {
            float* scores = scores_.data();
            B::dot_rows(key_fmt, query_.data() + h * d, d, keys, stream.key_row(), rows, scores);
            // Online softmax: rescale the running state when this page raises the max.
            const float page_max = max_of(scores, rows);
            float& running_max = running_max_[h];
            float* accumulator = accumulator_.data() + h * d;
            if (page_max > running_max) {
              const float correction = std::exp(running_max - page_max);
              running_sum_[h] *= correction;
              scale_in_place(accumulator, d, correction);
              running_max = page_max;
            }
            running_sum_[h] += exp_shift_sum(scores, rows, running_max);
            if (save) {
              std::memcpy(saved_.data() + h * tokens + visited, scores, rows * sizeof(float));
              page_shift_[h * max_pages_ + page_visit] = running_max;
            }
            B::axpy_rows(value_fmt, scores, d, values, stream.value_row(), rows, accumulator);
          }
        }
        visited += rows;
      }
    }

    for (std::size_t h = 0; h < heads; ++h) {
      float* o = out + h * d;
      const float inverse_sum = 1.0f / running_sum_[h];
      const float* accumulator = accumulator_.data() + h * d;
      for (std::size_t i = 0; i < d; ++i) o[i] = accumulator[i] * inverse_sum;
      basis.output_to_caller(o);
    }
    if (save) finish_probabilities(store, heads, keep_statistics, received);
  }

 private:
  void grow(std::size_t heads, bool save) {
    const std::size_t width = heads * head_dim_;
    if (query_.size() < width) {
      query_.resize(width);
      accumulator_.resize(width);
      running_max_.resize(heads);
      running_sum_.resize(heads);
    }
    if (save && saved_.size() < heads * capacity_) {
      saved_.resize(heads * capacity_);
      page_shift_.resize(heads * max_pages_);
      probability_.resize(capacity_);
    }
  }

  // Page by page (its statistics stay in L1 across heads): each head's probabilities
  // p = w * exp(m_page - m_final) / l_final go into the statistics and/or the
  // per-token sum over heads, which is then scattered through each stream's
  // slot-to-token map into `received`.
  void finish_probabilities(const LayerStore& store, std::size_t heads, bool keep_statistics,
                            std::span<float> received) {
    const std::size_t tokens = store.size();
    const bool want_received = !received.empty();
    if (keep_statistics) store.count_query(heads);
    float* probability = probability_.data();
    std::size_t visited = 0;
    std::size_t page_visit = 0;
    for (std::size_t s = 0; s < kStreamCount; ++s) {
      const PagedStream& stream = store.stream(s);
      for (std::size_t p = 0; p < stream.page_count(); ++p, ++page_visit) {
        const std::size_t rows = stream.rows_in_page(p);
        for (std::size_t h = 0; h < heads; ++h) {
          const float* weight = saved_.data() + h * tokens + visited;
          const float factor =
              std::exp(page_shift_[h * max_pages_ + page_visit] - running_max_[h]) / running_sum_[h];
          if (keep_statistics) {
            store.statistics(s).accumulate(p * stream.page_tokens(), weight, rows, factor, h == 0);
          }
          if (!want_received) continue;
          float* KVBITS_RESTRICT sum = probability + visited;
          const float keep = h == 0 ? 0.0f : 1.0f;
          for (std::size_t i = 0; i < rows; ++i) sum[i] = sum[i] * keep + weight[i] * factor;
        }
        visited += rows;
      }
    }
    if (!want_received) return;
    visited = 0;
    for (const PagedStream& stream : store.streams()) {
      for (std::uint32_t token : stream.slot_tokens()) received[token] = probability[visited++];
    }
  }

  std::size_t head_dim_ = 8;
  std::size_t kv_heads_ = 1;
  std::size_t capacity_ = 1;
  std::size_t max_pages_ = 1;       // most pages one layer's streams hold together
  std::vector<float> query_;        // [n_heads][head_dim] transformed, pre-scaled queries
  std::vector<float> accumulator_;  // [n_heads][head_dim] un-normalised outputs
  std::vector<float> running_max_;  // [n_heads]
  std::vector<float> running_sum_;  // [n_heads]
  std::vector<float> scores_;       // [widest page] scores, then weights, of one page
  std::vector<float> saved_;        // [n_heads][size] weights, then probabilities, in stream order
  std::vector<float> page_shift_;   // [n_heads][max_pages_] running max each page's weights used
  std::vector<float> probability_;  // [size] probabilities summed over heads, stream order
};

}  // namespace kvbits::detail
