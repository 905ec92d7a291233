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
#include "kvbits/core/cache_line_allocator.hpp"
#include "kvbits/core/isa_namespace.hpp"

namespace kvbits::detail {
inline namespace KVBITS_ISA_NAMESPACE {

/// One page of a layer's streams in the order the attention pass visits them.
struct PageVisit {
  std::size_t stream;  // index into LayerStore's streams
  std::size_t page;    // page within that stream
  std::size_t first;   // index of its first row in the visit order of all rows
  std::size_t index;   // its own index in the visit order of all pages
};

/**
 * Decode attention over every stream of a layer with an online softmax, page
 * by page, through the backend's row kernels for all query heads of a KV head
 * at once (dot_rows_for_queries, axpy_rows_for_queries); optionally the
 * probability each token received (summed over heads) and the per-slot
 * attention statistics (AttentionStats), from the same saved weights.
 *
 * Probabilities come without a second exp pass: each page's softmax weights
 * w = exp(s - m_page) are saved with the running max m_page they used, and
 * p = w * exp(m_page - m_final) / l_final afterwards (one exp per page and head).
 *
 * The work splits into units that may run on different threads: ranges of KV
 * heads (each query head's arithmetic is that of the serial pass, so the
 * result is bit-identical), or, with fewer KV heads than tasks, ranges of
 * pages of one KV head whose partial softmax states are merged by
 * log-sum-exp afterwards (flash-decoding). Every unit writes only its own
 * heads' state or its own lane, so units share nothing mutable.
 *
 * Owns its scratch, which grows to its steady-state size on first use and then
 * never allocates; one object serves one attention pass at a time.
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
    widest_page_ = widest_page;
    pages_.reserve(max_pages_);
  }

  /**
   * out = attention of q over `store` (inputs checked by the caller).
   * @param q, out [heads][head_dim]; @param received empty or [store.size()].
   */
  void run(const LayerStore& store, const KeyBasis& basis, std::size_t layer, const float* q,
           std::size_t heads, float* out, std::span<float> received) {
    run_parallel(store, basis, layer, q, heads, out, received, 1, [](std::size_t count, auto&& unit) {
      for (std::size_t u = 0; u < count; ++u) unit(u);
    });
  }

  /**
   * run() split into units for up to `tasks` threads: parallel_for(count, unit)
   * must call unit(u) once for every u < count, on any threads, and return when
   * all have returned. With kv_heads >= tasks the units are ranges of KV heads
   * (bit-identical to run()); otherwise each KV head's pages split into
   * ranges merged by log-sum-exp (equal to run() up to float summation order).
   */
  template <class ParallelFor>
  void run_parallel(const LayerStore& store, const KeyBasis& basis, std::size_t layer, const float* q,
                    std::size_t heads, float* out, std::span<float> received, std::size_t tasks,
                    ParallelFor&& parallel_for) {
    const std::size_t d = head_dim_;
    const std::size_t group = heads / kv_heads_;
    const bool keep_statistics = store.keeps_statistics();
    const bool save = !received.empty() || keep_statistics;
    const std::size_t split = tasks <= kv_heads_ ? 1 : (tasks + kv_heads_ - 1) / kv_heads_;
    const std::size_t units =
        split == 1 ? std::min(std::max<std::size_t>(tasks, 1), kv_heads_) : kv_heads_ * split;
    grow(heads, save, units);
    list_pages(store);

    // Queries move into the keys' stored basis; the softmax scale folds in here.
    const float softmax_scale = 1.0f / std::sqrt(static_cast<float>(d));
    for (std::size_t h = 0; h < heads; ++h) {
      float* query = query_.data() + h * d;
      std::memcpy(query, q + h * d, d * sizeof(float));
      basis.query_to_stored(layer, h / group, query);
      scale_in_place(query, d, softmax_scale);
    }

    const std::span<const PageVisit> pages(pages_);
    const std::size_t tokens = store.size();
    // Each unit runs in its own lane, whose buffers own their cache lines, and copies its KV head's
    // results out once: threads never write the same line while they attend (online-softmax state
    // written per page into shared arrays cost a two-thread pass 10-20 % in line transfers).
    const auto attend_in_lane = [&](Lane& lane, std::size_t g, std::span<const PageVisit> range) {
      std::fill_n(lane.max.data(), group, -std::numeric_limits<float>::infinity());
      std::fill_n(lane.sum.data(), group, 0.0f);
      std::fill_n(lane.accumulator.data(), group * d, 0.0f);
      attend_head(store, g, group, range, tokens, save, lane, lane.max.data(), lane.sum.data(),
                  lane.accumulator.data());
    };
    if (split == 1) {
      parallel_for(units, [&](std::size_t u) {
        Lane& lane = lanes_[u];
        for (std::size_t g = u * kv_heads_ / units; g < (u + 1) * kv_heads_ / units; ++g) {
          attend_in_lane(lane, g, pages);
          std::copy_n(lane.max.data(), group, running_max_.data() + g * group);
          std::copy_n(lane.sum.data(), group, running_sum_.data() + g * group);
          std::copy_n(lane.accumulator.data(), group * d, accumulator_.data() + g * group * d);
        }
      });
    } else {
      parallel_for(units, [&](std::size_t u) {
        attend_in_lane(lanes_[u], u / split, page_range(u % split, split, tokens));
      });
      merge_partials(group, split);
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
  // The scratch of one unit of work, each buffer on cache lines of its own.
  struct Lane {
    using Buffer = std::vector<float, CacheLineAllocator<float>>;
    Buffer scores;       // [query heads per KV head][widest page] scores, then weights, of one page
    Buffer max;          // [query heads per KV head] running max of the unit's pages
    Buffer sum;          // [query heads per KV head] running sum
    Buffer accumulator;  // [query heads per KV head][head_dim] un-normalised outputs
  };

  void list_pages(const LayerStore& store) {
    pages_.clear();  // capacity max_pages_, reserved by configure
    std::size_t first = 0;
    for (std::size_t s = 0; s < kStreamCount; ++s) {
      const PagedStream& stream = store.stream(s);
      for (std::size_t p = 0; p < stream.page_count(); ++p) {
        pages_.push_back({s, p, first, pages_.size()});
        first += stream.rows_in_page(p);
      }
    }
  }

  // The pages of part `part` of `parts`: those whose first row falls in its share of the rows.
  [[nodiscard]] std::span<const PageVisit> page_range(std::size_t part, std::size_t parts,
                                                      std::size_t tokens) const noexcept {
    const auto starts_before = [&](std::size_t row) {
      return static_cast<std::size_t>(
          std::lower_bound(pages_.begin(), pages_.end(), row,
                           [](const PageVisit& page, std::size_t r) { return page.first < r; }) -
          pages_.begin());
    };
    const std::size_t begin = starts_before(part * tokens / parts);
    const std::size_t end = starts_before((part + 1) * tokens / parts);
    return std::span<const PageVisit>(pages_).subspan(begin, end - begin);
  }

  /**
   * Online softmax of query heads [g * group, (g + 1) * group) over `pages`
   * of KV head g, into running_max / running_sum [group] and accumulator
   * [group][head_dim]; with `save`, each page's weights and shift as well.
   */
  void attend_head(const LayerStore& store, std::size_t g, std::size_t group,
                   std::span<const PageVisit> pages, std::size_t tokens, bool save, Lane& lane,
                   float* running_max, float* running_sum, float* accumulator) {
    const std::size_t d = head_dim_;
    const std::size_t first_head = g * group;
    float* const scores = lane.scores.data();  // [group][widest page]
    // Online softmax of head h over the page's scores: rescale the running state when this page
    // raises the max, then turn the scores into weights.
    const auto softmax_page = [&](std::size_t h, float* head_scores, std::size_t rows,
                                  const PageVisit& page) {
      const float page_max = max_of(head_scores, rows);
      if (page_max > running_max[h]) {
        const float correction = std::exp(running_max[h] - page_max);
        running_sum[h] *= correction;
        scale_in_place(accumulator + h * d, d, correction);
        running_max[h] = page_max;
      }
      running_sum[h] += exp_shift_sum(head_scores, rows, running_max[h]);
      if (save) {
        const std::size_t head = first_head + h;
        std::memcpy(saved_.data() + head * tokens + page.first, head_scores, rows * sizeof(float));
        page_shift_[head * max_pages_ + page.index] = running_max[h];
      }
    };
    for (const PageVisit& page : pages) {
      const PagedStream& stream = store.stream(page.stream);
      const std::size_t rows = stream.rows_in_page(page.page);
      const std::uint8_t* keys = stream.key_rows(page.page, g);
      const std::uint8_t* values = stream.value_rows(page.page, g);
      // The query heads of KV head g read the same rows: the backend decodes each row once for all of
      // them where it can, with every head's scores and sums those of a call of its own.
      dot_rows_for_queries<B>(stream.key_format(), query_.data() + first_head * d, group, d, keys,
                              stream.key_row(), rows, scores, widest_page_);
      for (std::size_t h = 0; h < group; ++h) softmax_page(h, scores + h * widest_page_, rows, page);
      axpy_rows_for_queries<B>(stream.value_format(), scores, widest_page_, group, d, values,
                               stream.value_row(), rows, accumulator);
    }
  }

  // The page ranges' partial states of every query head, merged in page order by log-sum-exp.
  void merge_partials(std::size_t group, std::size_t split) {
    const std::size_t d = head_dim_;
    for (std::size_t g = 0; g < kv_heads_; ++g) {
      for (std::size_t h = 0; h < group; ++h) {
        const std::size_t head = g * group + h;
        float best = -std::numeric_limits<float>::infinity();
        for (std::size_t part = 0; part < split; ++part) {
          best = std::max(best, lanes_[g * split + part].max[h]);
        }
        float sum = 0.0f;
        float* accumulator = accumulator_.data() + head * d;
        std::fill_n(accumulator, d, 0.0f);
        for (std::size_t part = 0; part < split; ++part) {
          const Lane& lane = lanes_[g * split + part];
          if (lane.sum[h] == 0.0f) continue;  // a range without rows
          const float factor = std::exp(lane.max[h] - best);
          sum += lane.sum[h] * factor;
          const float* partial = lane.accumulator.data() + h * d;
          for (std::size_t i = 0; i < d; ++i) accumulator[i] += partial[i] * factor;
        }
        running_max_[head] = best;
        running_sum_[head] = sum;
      }
    }
  }

  // Each buffer checks its own size: after a std::bad_alloc midway, the next call grows the rest.
  void grow(std::size_t heads, bool save, std::size_t units) {
    const auto at_least = [](auto& buffer, std::size_t size) {
      if (buffer.size() < size) buffer.resize(size);
    };
    const std::size_t group = heads / kv_heads_;
    if (lanes_.size() < units) lanes_.resize(units);
    for (std::size_t u = 0; u < units; ++u) {
      Lane& lane = lanes_[u];
      at_least(lane.scores, group * widest_page_);
      at_least(lane.max, group);
      at_least(lane.sum, group);
      at_least(lane.accumulator, group * head_dim_);
    }
    at_least(query_, heads * head_dim_);
    at_least(accumulator_, heads * head_dim_);
    at_least(running_max_, heads);
    at_least(running_sum_, heads);
    if (!save) return;
    at_least(saved_, heads * capacity_);
    at_least(page_shift_, heads * max_pages_);
    at_least(probability_, capacity_);
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
    for (const PageVisit& page : pages_) {
      const PagedStream& stream = store.stream(page.stream);
      const std::size_t rows = stream.rows_in_page(page.page);
      for (std::size_t h = 0; h < heads; ++h) {
        const float* weight = saved_.data() + h * tokens + page.first;
        const float factor =
            std::exp(page_shift_[h * max_pages_ + page.index] - running_max_[h]) / running_sum_[h];
        if (keep_statistics) {
          store.statistics(page.stream)
              .accumulate(page.page * stream.page_tokens(), weight, rows, factor, h == 0);
        }
        if (!want_received) continue;
        float* KVBITS_RESTRICT sum = probability + page.first;
        const float keep = h == 0 ? 0.0f : 1.0f;
        for (std::size_t i = 0; i < rows; ++i) sum[i] = sum[i] * keep + weight[i] * factor;
      }
    }
    if (!want_received) return;
    std::size_t visited = 0;
    for (const PagedStream& stream : store.streams()) {
      for (std::uint32_t token : stream.slot_tokens()) received[token] = probability[visited++];
    }
  }

  std::size_t head_dim_ = 8;
  std::size_t kv_heads_ = 1;
  std::size_t capacity_ = 1;
  std::size_t max_pages_ = 1;       // most pages one layer's streams hold together
  std::size_t widest_page_ = 1;     // most slots of any stream's page
  std::vector<PageVisit> pages_;    // [pages] of the running pass, capacity max_pages_
  std::vector<Lane> lanes_;         // [units] scratch of each unit of work
  std::vector<float> query_;        // [n_heads][head_dim] transformed, pre-scaled queries
  std::vector<float> accumulator_;  // [n_heads][head_dim] un-normalised outputs
  std::vector<float> running_max_;  // [n_heads]
  std::vector<float> running_sum_;  // [n_heads]
  std::vector<float> saved_;        // [n_heads][size] weights, then probabilities, in visit order
  std::vector<float> page_shift_;   // [n_heads][max_pages_] running max each page's weights used
  std::vector<float> probability_;  // [size] probabilities summed over heads, visit order
};

}  // namespace KVBITS_ISA_NAMESPACE
}  // namespace kvbits::detail
