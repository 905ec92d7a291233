// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "kvbits/core/decision.hpp"
#include "kvbits/core/error.hpp"
#include "kvbits/policy/policy.hpp"

namespace kvbits::eval {

/**
 * Several caches driven as one: every token is appended to all of them, and attention is read
 * from the first. Caches built alike and fed alike hold the same state (their policies see the
 * same calls in the same order), so after one model pass over a shared prefix each of them can
 * continue a different sequence: the effect of copying the cache after the prefix, for caches
 * that cannot be copied, at the cost of the extra appends instead of extra model passes.
 * When any policy keeps attention statistics, every cache also runs the attention so that its
 * statistics advance as well; otherwise attention has no effect on a cache and runs once.
 * @tparam Cache a kvbits::QuantizedKVCache (or a type with the same append/attend/size/policy)
 */
template <class Cache>
class MirroredCaches {
 public:
  /**
   * @param caches identically built, identically filled caches (not empty); they must outlive this
   * @throw Error(invalid_argument) for no caches.
   */
  explicit MirroredCaches(std::span<Cache> caches) : caches_(caches) {
    kvbits::detail::require(!caches.empty(), Errc::invalid_argument, "MirroredCaches: no caches");
    for (const Cache& cache : caches_)
      attend_all_ = attend_all_ || policy_wants_attention_stats(cache.policy());
  }

  /// @return tokens stored for `layer` (the same in every cache).
  [[nodiscard]] std::size_t size(std::size_t layer) const { return caches_[0].size(layer); }

  /// Appends the token to every cache.
  void append(std::size_t layer, std::span<const float> k, std::span<const float> v,
              const TokenInfo& info = {}) {
    for (Cache& cache : caches_) cache.append(layer, k, v, info);
  }

  /// Attention over the first cache (and, for statistics, over the others into scratch).
  void attend(std::size_t layer, std::span<const float> q, std::span<float> out) const {
    caches_[0].attend(layer, q, out);
    if (!attend_all_) return;
    scratch_.resize(out.size());
    for (std::size_t i = 1; i < caches_.size(); ++i) caches_[i].attend(layer, q, scratch_);
  }

 private:
  std::span<Cache> caches_;
  bool attend_all_ = false;             // some policy reads attention statistics
  mutable std::vector<float> scratch_;  // [heads][head_dim] discarded attention of the others
};

}  // namespace kvbits::eval
