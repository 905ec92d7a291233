// SPDX-License-Identifier: MIT
#pragma once

#include "kvbits/core/simd_headers.hpp"

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <istream>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "kvbits/cache/argument_checks.hpp"
#include "kvbits/cache/cache_file.hpp"
#include "kvbits/cache/decision_pass.hpp"
#include "kvbits/cache/decision_schedule.hpp"
#include "kvbits/cache/fused_attention.hpp"
#include "kvbits/cache/key_basis.hpp"
#include "kvbits/cache/layer_store.hpp"
#include "kvbits/cache/memory_accounting.hpp"
#include "kvbits/cache/memory_report.hpp"
#include "kvbits/cache/move_plan.hpp"
#include "kvbits/cache/options.hpp"
#include "kvbits/cache/token_notes.hpp"
#include "kvbits/cache/token_repack.hpp"
#include "kvbits/codec/backend.hpp"
#include "kvbits/codec/default_backend.hpp"
#include "kvbits/core/bit_width.hpp"
#include "kvbits/core/decision.hpp"
#include "kvbits/core/error.hpp"
#include "kvbits/core/finite.hpp"
#include "kvbits/policy/policy.hpp"

namespace kvbits {

/**
 * A per-token mixed-precision KV cache with fused decode attention.
 *
 * Every layer stores its tokens in streams: one append-only paged stream per
 * (key bits, value bits) pair plus a float area for the first `sink_tokens`
 * tokens and the `residual_window` most recent ones (LayerStore). The policy
 * decides a token's widths when it leaves the window (on insert when the
 * window is 0), and again at each of its decision ages, when it may keep or
 * lower them (DecisionSchedule). attend() streams every non-empty stream page
 * by page through Backend::dot_rows / axpy_rows with an online softmax
 * (FusedAttention) and, when the policy wants them, updates per-token
 * attention statistics. See docs/design.md for the layout and the guarantees.
 *
 * Thread safety: distinct caches are independent. On one cache, attend()
 * with an AttentionScratch of the caller's (one per thread) may run from
 * several threads at once, and beside the other const members, when the
 * policy keeps no attention statistics; with statistics, attends write them,
 * so only attends on different layers may overlap. attend() without a scratch
 * and attend_parallel() use the cache's own scratch: one at a time. Every
 * non-const member excludes all other calls. attend_parallel() splits one
 * pass over the caller's threads (docs/integration.md, "Threads").
 *
 * @tparam P the precision policy (see the Policy concept).
 * @tparam B the codec backend (see the Backend concept).
 */
template <Policy P, Backend B = DefaultBackend>
class QuantizedKVCache {
 public:
  using policy_type = P;   ///< the precision policy
  using backend_type = B;  ///< the codec backend

  /**
   * Validates `options` and the policy's decision ages, and allocates the
   * token index, the float sink/window area, the notes ring and all scratch;
   * quantized pages are allocated as streams grow. Whether the policy wants
   * attention statistics and its decision ages are read once, here.
   * @param options shape and codec configuration; @param policy decides token precisions.
   * @throws Error(invalid_argument) or Error(unsupported) naming the offending option or age.
   */
  explicit QuantizedKVCache(const CacheOptions& options, P policy = P{})
      : options_(validated(options)),
        policy_(std::move(policy)),
        schedule_(options_, policy_decision_ages(policy_)),
        keep_statistics_(policy_wants_attention_stats(policy_)) {
    const std::size_t width = options_.kv_heads * options_.head_dim;
    const std::size_t alignment = std::max<std::size_t>(64, B::alignment());
    layers_.resize(options_.layers);
    for (Layer& layer : layers_) {
      layer.store.configure(options_, schedule_.sinks() + schedule_.window(), alignment, keep_statistics_);
      layer.notes.configure(schedule_.ring_size());
    }
    basis_.configure(options_);
    attention_ = attention_scratch();
    plan_.configure(schedule_.ages().size() + 1, width * sizeof(float));
    key_work_.resize(width);
    value_work_.resize(width);
    repack_.configure(options_);
  }

  /**
   * A deep copy: every token at its current widths, the window, demotion
   * state, attention statistics, key scales and a copy of the policy (a
   * RandomPolicy's copy continues the same draws). Forks a conversation that
   * shares a prompt: prefill once, copy, continue each copy on its own; the
   * copies share nothing. Costs the allocation and copy of every page.
   * @throws std::bad_alloc (or what copying the policy throws).
   */
  QuantizedKVCache(const QuantizedKVCache& other) requires std::copy_constructible<P>
      : QuantizedKVCache(other.options_, other.policy_) {
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      layers_[l].store.copy_contents(other.layers_[l].store);
      layers_[l].notes = other.layers_[l].notes;
    }
    basis_ = other.basis_;
    tally_ = other.tally_;
  }

  /// Becomes a deep copy of `other` (see the copy constructor). Strong guarantee.
  QuantizedKVCache& operator=(const QuantizedKVCache& other) requires std::copy_constructible<P> {
    if (this != &other) {
      QuantizedKVCache copy(other);
      *this = std::move(copy);
    }
    return *this;
  }

  /// Moves the cache; the moved-from one may only be assigned to or destroyed.
  QuantizedKVCache(QuantizedKVCache&&) noexcept(std::is_nothrow_move_constructible_v<P>) = default;
  /// Moves the cache; the moved-from one may only be assigned to or destroyed.
  QuantizedKVCache& operator=(QuantizedKVCache&&) noexcept(std::is_nothrow_move_assignable_v<P>) = default;
  ~QuantizedKVCache() = default;

  /// @return the options the cache was built with.
  [[nodiscard]] const CacheOptions& options() const noexcept { return options_; }

  /// @return the policy (e.g. to read its statistics).
  [[nodiscard]] const P& policy() const noexcept { return policy_; }
  /// @return the policy, to adjust it between steps (its ages and statistics wish stay as read).
  [[nodiscard]] P& policy() noexcept { return policy_; }

  /// @return tokens stored in `layer`. @throws Error(invalid_argument) for a bad layer.
  [[nodiscard]] std::size_t size(std::size_t layer) const {
    check_layer(layer);
    return layers_[layer].store.size();
  }

  /**
   * Stores one token's key and value for `layer`, then lets the policy decide
   * the token leaving the window (or this token, with no window) and revisit
   * the stored tokens that have just reached a decision age: at most
   * 1 + ages().size() policy calls and re-encodes per append. A revisit keeps
   * or lowers a token's widths (the policy's answer is clamped element-wise
   * to the current widths); it never raises them.
   *
   * @param layer layer index; @param k, v [kv_heads][head_dim], post-RoPE;
   * @param info position, token id and up to kMaxTokenFeatures features
   *        (`info.layer` is replaced by `layer`).
   * @throws Error(shape_mismatch | non_finite_input | capacity_exhausted |
   *         invalid_argument) leaving the cache unchanged; an exception from
   *         the policy, and std::bad_alloc, propagate with the same guarantee
   *         (the policy's own state is what its calls made it). See docs/errors.md.
   */
  void append(std::size_t layer, std::span<const float> k, std::span<const float> v,
              const TokenInfo& info = {}) {
    check_layer(layer);
    detail::require_token_vectors(options_, k, v);
    detail::TokenNotes::require_fits(info.features, "token info features");
    Layer& state = layers_[layer];
    const std::size_t token = state.store.size();
    detail::require_room(options_, layer, token);
    to_stored_basis(layer, k.data(), v.data());
    TokenInfo current = info;
    current.layer = layer;

    plan_.clear();
    plan_.set_insert(detail::kResidualStream, as_bytes(key_work_), as_bytes(value_work_));
    const detail::DecidingLayer deciding{layer, state.store, state.notes, keep_statistics_,
                                         bits_per_element()};
    detail::plan_append_decisions<B>(
        schedule_, deciding, options_, token, current, key_work_.data(), value_work_.data(),
        [this](const DecisionContext& context) { return checked_consult(context); }, repack_, plan_);
    apply_plan(state, true);
    ++tally_.tokens;
    state.notes.write(token, current);
  }

  /**
   * One decode step of attention over every token of `layer`:
   * out_h = softmax(q_h . K_g^T / sqrt(head_dim)) . V_g with g = h / (n_heads / kv_heads).
   * Allocation-free once scratch has grown to the largest n_heads (and, with
   * `received` or statistics, to the capacity). Not safe to call concurrently on one object.
   *
   * @param layer layer index;
   * @param q [n_heads][head_dim], n_heads a positive multiple of kv_heads;
   * @param out [n_heads][head_dim], overwritten;
   * @param received empty, or [size(layer)]: overwritten with each token's
   *        attention probability summed over the n_heads query heads (sums to n_heads).
   * @throws Error(invalid_argument) for a bad or empty layer,
   *         Error(shape_mismatch) for wrong span sizes, Error(non_finite_input)
   *         for a NaN/Inf query; nothing is written (nor counted) then.
   */
  void attend(std::size_t layer, std::span<const float> q, std::span<float> out,
              std::span<float> received = {}) const {
    check_layer(layer);
    const std::size_t heads =
        detail::require_attend(options_, layer, layers_[layer].store.size(), q, out, received);
    attention_.run(layers_[layer].store, basis_, layer, q.data(), heads, out.data(), received);
  }

  /// Scratch of one attention pass: give each thread that attends concurrently its own.
  using AttentionScratch = detail::FusedAttention<B>;

  /**
   * @return scratch for attend(..., scratch) on this cache, configured for its
   *         shape; it grows on first use and then never allocates.
   */
  [[nodiscard]] AttentionScratch attention_scratch() const {
    std::size_t widest_page = 0;
    for (const detail::PagedStream& stream : layers_[0].store.streams()) {
      widest_page = std::max(widest_page, stream.page_tokens());
    }
    AttentionScratch scratch;
    scratch.configure(options_, widest_page);
    return scratch;
  }

  /**
   * attend() with the caller's scratch (from attention_scratch() of this
   * cache), so that threads can attend one cache at once (see the class
   * comment for when). Same result, arguments and errors as attend().
   */
  void attend(std::size_t layer, std::span<const float> q, std::span<float> out, AttentionScratch& scratch,
              std::span<float> received = {}) const {
    check_layer(layer);
    const std::size_t heads =
        detail::require_attend(options_, layer, layers_[layer].store.size(), q, out, received);
    scratch.run(layers_[layer].store, basis_, layer, q.data(), heads, out.data(), received);
  }

  /**
   * attend() with its work split over `tasks` threads through the caller's
   * parallel_for(count, unit) (kvbits::ThreadPool is one): by KV heads when
   * there are at least `tasks` of them, bit-identical to attend(); otherwise
   * each KV head's tokens split into ranges merged by log-sum-exp, equal to
   * attend() up to float summation order. Same arguments and errors as attend().
   * @param layer, q, out, received as for attend();
   * @param tasks units of work to aim for, usually the number of threads (>= 1);
   * @param parallel_for parallel_for(count, unit) calls unit(u) once for every u < count, on any
   *        threads, and returns when all have returned.
   */
  template <class ParallelFor>
  void attend_parallel(std::size_t layer, std::span<const float> q, std::span<float> out, std::size_t tasks,
                       ParallelFor&& parallel_for, std::span<float> received = {}) const {
    check_layer(layer);
    const std::size_t heads =
        detail::require_attend(options_, layer, layers_[layer].store.size(), q, out, received);
    attention_.run_parallel(layers_[layer].store, basis_, layer, q.data(), heads, out.data(), received, tasks,
                            std::forward<ParallelFor>(parallel_for));
  }

  /**
   * Causal prefill: appends T tokens and computes, for each token t, attention
   * of q[t] over every token before it and itself. Equal to T calls of
   * append(layer, k[t], v[t], infos[t]) followed by attend(layer, q[t], out[t]).
   *
   * @param layer layer index;
   * @param k, v [T][kv_heads][head_dim]; @param q, out [T][n_heads][head_dim];
   * @param infos empty (positions then count from size(layer), token ids -1) or [T].
   * @throws Error(shape_mismatch | non_finite_input | capacity_exhausted |
   *         invalid_argument) for the arguments, including a key or value that
   *         overflows in its transform's basis, before anything is stored
   *         (strong guarantee). What can only fail midway (an exception from
   *         the policy, unsupported policy widths, std::bad_alloc) gives the
   *         basic guarantee: the tokens appended before it stay, each whole as
   *         append() stores it, `out` keeps the rows computed before it and the
   *         rest of `out` is unchanged. See docs/errors.md.
   */
  void prefill(std::size_t layer, std::span<const float> k, std::span<const float> v,
               std::span<const float> q, std::span<float> out, std::span<const TokenInfo> infos = {}) {
    check_layer(layer);
    const std::size_t width = options_.kv_heads * options_.head_dim;
    const std::size_t start = layers_[layer].store.size();
    const detail::PrefillShape shape = detail::require_prefill(options_, layer, start, k, v, q, out, infos);
    // Finite inputs stay finite without a transform; with one, check every token before storing any.
    if (options_.key.transform != KeyTransform::none || options_.value.transform != KeyTransform::none) {
      for (std::size_t t = 0; t < shape.steps; ++t) to_stored_basis(layer, &k[t * width], &v[t * width]);
    }
    for (std::size_t t = 0; t < shape.steps; ++t) {
      TokenInfo info = infos.empty() ? TokenInfo{layer, start + t, -1, {}} : infos[t];
      append(layer, k.subspan(t * width, width), v.subspan(t * width, width), info);
      attention_.run(layers_[layer].store, basis_, layer, q.data() + t * shape.query_width, shape.heads,
                     out.data() + t * shape.query_width, {});
    }
  }

  /**
   * Re-encodes a stored token to fewer bits: a side whose width is unchanged
   * is copied verbatim, 8 -> 4, 4 -> 2, 8 -> 2 (6 -> 3, 6 -> 2) asymmetric codes
   * are re-quantized in integers (codec/requantize.hpp), other changes are
   * decoded and re-encoded; its old slot is filled by the stream's last
   * token. Equal widths are a no-op.
   * @throws Error(invalid_argument) for a bad layer/token/width, for more bits
   *         than the token has, and for a sink/window token (those get their
   *         width from the policy when they leave the window); cache unchanged.
   */
  void demote(std::size_t layer, std::size_t token, int key_bits, int value_bits) {
    check_token(layer, token);
    Layer& state = layers_[layer];
    const BitDecision now = state.store.bits(token);
    const BitDecision wanted{key_bits, value_bits};
    detail::require_demotion(layer, token, state.store.in_residual(token), now, wanted);
    if (wanted == now) return;
    plan_.clear();
    detail::stage_move<B>(state.store, options_, token, wanted, repack_, plan_);
    apply_plan(state, false);
  }

  /// @return the storage widths of a token (32/32 for sink and window tokens).
  [[nodiscard]] BitDecision token_bits(std::size_t layer, std::size_t token) const {
    check_token(layer, token);
    return layers_[layer].store.bits(token);
  }

  /// @return true while the token sits in the float sink/window area (not yet decided).
  [[nodiscard]] bool in_residual(std::size_t layer, std::size_t token) const {
    check_token(layer, token);
    return layers_[layer].store.in_residual(token);
  }

  /**
   * @return the attention a token has received in its layer since it was
   *         stored (AttentionStats), or all zero when the policy does not want
   *         attention statistics. @throws Error(invalid_argument) for a bad layer/token.
   */
  [[nodiscard]] AttentionStats attention_stats(std::size_t layer, std::size_t token) const {
    check_token(layer, token);
    return keep_statistics_ ? layers_[layer].store.attention_stats(token) : AttentionStats{};
  }

  /**
   * @return storage bits per K/V element of the whole cache (codes, metadata,
   *         sink and window floats), kept in O(1): equal to memory().total.average_bits.
   */
  [[nodiscard]] double bits_per_element() const noexcept {
    return detail::average_bits(tally_.stored_bytes, tally_.tokens, options_);
  }

  /**
   * @return true while the policy may still be asked about the token (a window
   *         token, or a decided one younger than the last decision age), i.e.
   *         while set_features accepts it. @throws Error(invalid_argument) for a bad layer/token.
   */
  [[nodiscard]] bool awaits_decision(std::size_t layer, std::size_t token) const {
    check_token(layer, token);
    return schedule_.may_consult(token, layers_[layer].store.size());
  }

  /**
   * Replaces the features the policy will see for a token it may still be
   * asked about: a window token, or a decided token younger than the last
   * decision age (features such as attention received become known only
   * after the token has been stored).
   * @param layer, token the token;
   * @param features at most kMaxTokenFeatures values.
   * @throws Error(invalid_argument) for any other token (sinks are never
   *         decided), Error(shape_mismatch) for too many features; unchanged then.
   */
  void set_features(std::size_t layer, std::size_t token, std::span<const float> features) {
    check_token(layer, token);
    detail::require_consultable(layer, token, schedule_.may_consult(token, layers_[layer].store.size()));
    detail::TokenNotes::require_fits(features, "set_features");
    layers_[layer].notes.set_features(token, features);
  }

  /**
   * Decodes a stored token back to the caller's basis (transforms undone).
   * @param layer, token the token;
   * @param k_out, v_out [kv_heads][head_dim].
   */
  void read_token(std::size_t layer, std::size_t token, std::span<float> k_out,
                  std::span<float> v_out) const {
    check_token(layer, token);
    const std::size_t width = options_.kv_heads * options_.head_dim;
    detail::require_length(k_out.size(), width, "key output [kv_heads][head_dim]");
    detail::require_length(v_out.size(), width, "value output [kv_heads][head_dim]");
    detail::decode_token<B>(layers_[layer].store, token, options_.head_dim, k_out.data(), v_out.data());
    basis_.token_to_caller(layer, k_out.data(), v_out.data());
  }

  /**
   * Sets the channel_scale divisors of a layer's keys: channel c of kv head g
   * is stored as k_c / s_gc and the query multiplied by s_gc.
   * @param layer layer index;
   * @param scales [kv_heads][head_dim], finite and > 0 (powers of two keep
   *        the transform exact in float).
   * @throws Error(unsupported) unless key.transform is channel_scale,
   *         Error(invalid_argument) when the layer already holds tokens (they
   *         were stored with the old scales) or a scale is not positive.
   */
  void set_key_scales(std::size_t layer, std::span<const float> scales) {
    check_layer(layer);
    basis_.set_scales(layer, scales, layers_[layer].store.empty());
  }

  /**
   * Calibration pass for KeyTransform::channel_scale: sets s_gc to the power
   * of two at or above the largest |k_gc| over the sample keys (1 for an
   * all-zero channel), so every stored channel lies in [-1, 1] and an outlier
   * channel no longer sets the quantization step of the others.
   * @param layer layer index;
   * @param sample_keys [tokens][kv_heads][head_dim], post-RoPE keys of the layer.
   * @throws as set_key_scales, plus Error(shape_mismatch | non_finite_input) for the samples.
   */
  void calibrate_key_scales(std::size_t layer, std::span<const float> sample_keys) {
    check_layer(layer);
    basis_.calibrate(layer, sample_keys, layers_[layer].store.empty());
  }

  /// @return the channel_scale divisors of `layer`: [kv_heads][head_dim] (all 1 unless set).
  [[nodiscard]] std::span<const float> key_scales(std::size_t layer) const {
    check_layer(layer);
    return basis_.scales(layer);
  }

  /// Drops every token and statistic of every layer; keeps key scales and a spare page per stream.
  void clear() noexcept {
    for (Layer& state : layers_) state.store.clear();
    tally_ = {};
  }

  /// @return bytes, average bits per element and width histograms, per layer and in total.
  [[nodiscard]] MemoryReport memory() const { return detail::cache_memory(layers_, options_); }

  /**
   * Writes the whole cache as a cache file (cache/cache_file.hpp; docs/design.md): every
   * token at its current widths, the window, attention statistics, key scales, the notes the
   * policy may still read, and the policy's description and state. Loading the file into a
   * cache with the same options and policy gives a cache that continues bit-identically.
   * @param out a binary stream; the file is written at its position.
   * @throws Error(io_error) when the stream fails (it then holds an incomplete file, which
   *         load() rejects).
   */
  void save(std::ostream& out) const {
    detail::write_cache_file(out, "the cache file", options_, schedule_, policy_, layers_, basis_);
  }

  /// Writes the cache to a file, replacing it (see save(std::ostream&)).
  /// @throws Error(io_error) naming the path.
  void save(const std::filesystem::path& path) const {
    detail::write_file(path, [this](std::ostream& out, std::string_view name) {
      detail::write_cache_file(out, name, options_, schedule_, policy_, layers_, basis_);
    });
  }

  /**
   * Replaces the contents with a cache file written by save() from a cache with the same
   * options and an equal policy (the same describe(), decision ages and statistics wish),
   * including the policy's state (e.g. a RandomPolicy's generator). Reads exactly the
   * file's bytes from `in`. Reserved memory follows the tokens loaded: spare pages the saved
   * cache held are not restored. Strong guarantee: on any error the cache is unchanged.
   * @param in a binary stream positioned at the file.
   * @throws Error(corrupt_data) for a broken file (bad magic, truncation, checksum mismatch,
   *         impossible values), Error(unsupported) for a format version this build does not
   *         read (kOldestCacheFileVersion to kCacheFileVersion) or another width table,
   *         Error(invalid_argument) for a file saved from a cache with other options or another
   *         policy, Error(io_error) when the stream fails, std::bad_alloc.
   */
  void load(std::istream& in) requires std::copy_constructible<P> { *this = loaded(in, "cache file"); }

  /**
   * Replaces the contents with a file written by save(path) (see load(std::istream&)); the
   * file must end where the cache file does. Strong guarantee.
   * @throws as load(std::istream&), naming the path; Error(io_error) when it cannot be opened.
   */
  void load(const std::filesystem::path& path) requires std::copy_constructible<P> {
    *this = detail::read_file(
        path, [this](std::istream& in, std::string_view source) { return loaded(in, source); });
  }

 private:
  struct Layer {
    detail::LayerStore store;  // streams, token index, statistics, stored bytes
    detail::TokenNotes notes;  // TokenInfo of the tokens the policy may still be asked about
  };

  static const CacheOptions& validated(const CacheOptions& options) {
    detail::validate_cache_options(options);
    return options;
  }

  static const std::uint8_t* as_bytes(const std::vector<float>& x) noexcept {
    return reinterpret_cast<const std::uint8_t*>(x.data());
  }

  void check_layer(std::size_t layer) const { detail::require_layer(layer, layers_.size()); }

  // A cache with these options and a copy of the policy, filled from a cache file.
  QuantizedKVCache loaded(std::istream& in, std::string_view source) const {
    QuantizedKVCache fresh(options_, policy_);
    detail::read_cache_file(in, source, options_, schedule_, fresh.policy_, fresh.layers_, fresh.basis_);
    fresh.tally_ = detail::count_storage(fresh.layers_);
    return fresh;
  }

  void check_token(std::size_t layer, std::size_t token) const {
    check_layer(layer);
    detail::require_token(layer, token, layers_[layer].store.size());
  }

  // key_work_, value_work_ <- one token's k, v [kv_heads][head_dim] in the stored basis.
  // @throws Error(non_finite_input) when a transform overflows.
  void to_stored_basis(std::size_t layer, const float* k, const float* v) {
    basis_.key_to_stored(layer, k, key_work_.data());
    basis_.value_to_stored(v, value_work_.data());
    detail::require_finite(key_work_, "key after its transform");
    detail::require_finite(value_work_, "value after its transform");
  }

  BitDecision checked_consult(const DecisionContext& context) {
    const BitDecision bits = consult_policy(policy_, context);
    detail::require_policy_bits(bits);
    return bits;
  }

  // Reserves for the plan (may throw), then applies it (cannot) and keeps the tally.
  void apply_plan(Layer& state, bool with_insert) {
    plan_.reserve(state.store, with_insert);
    tally_.stored_bytes -= state.store.stored_bytes();
    plan_.commit(state.store, with_insert);
    tally_.stored_bytes += state.store.stored_bytes();
  }

  CacheOptions options_;
  P policy_;
  detail::DecisionSchedule schedule_;            // sinks, window, decision ages
  bool keep_statistics_;                         // the policy reads attention statistics
  std::vector<Layer> layers_;                    // [layers]
  detail::KeyBasis basis_;                       // transforms and channel scales
  mutable detail::FusedAttention<B> attention_;  // attention pass and its scratch
  detail::MovePlan plan_;                        // the changes of the running append/demote
  detail::StorageTally tally_;                   // running stored bytes and tokens of all layers
  std::vector<float> key_work_;                  // [kv_heads][head_dim] key in the stored basis
  std::vector<float> value_work_;                // [kv_heads][head_dim] value in the stored basis
  detail::RepackScratch repack_;                 // rows of the token being re-encoded
};

}  // namespace kvbits
