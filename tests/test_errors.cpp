// SPDX-License-Identifier: MIT
// The error contract of docs/errors.md: one test case per row, tagged with the row's id (the
// errors_doc_rows test checks the one-to-one match). Each case triggers the error, checks its
// code, and for a strong guarantee that the object is unchanged.

// Row E36 is about the row kernels' debug-only checks. This program's one kvbits translation
// unit turns them on for itself, whatever the build type.
#define KVBITS_DEBUG_CHECKS 1

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <istream>
#include <limits>
#include <memory>
#include <new>
#include <ostream>
#include <random>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "gguf/gguf.hpp"
#include "kvbits/kvbits.hpp"
#include "model/tokenizer.hpp"
#include "support/cache_test_data.hpp"
#include "support/gguf_writer.hpp"
#include "support/require_error.hpp"

// Allocation failure injection for the std::bad_alloc rows: while armed, the allocation that
// many allocations from now throws std::bad_alloc, once. Replacing operator new replaces it
// for the whole program; unarmed it only allocates, and counts the blocks alive.
namespace {
struct AllocationFaults {
  bool armed = false;
  std::size_t countdown = 0;  // allocations to let through before the failing one
};
AllocationFaults allocation_faults;
std::size_t live_allocations = 0;  // blocks allocated and not yet freed

bool next_allocation_fails() noexcept {
  if (!allocation_faults.armed) return false;
  if (allocation_faults.countdown > 0) {
    --allocation_faults.countdown;
    return false;
  }
  allocation_faults.armed = false;
  return true;
}
}  // namespace

// The replacement pairs malloc with free; GCC cannot see that and warns when it inlines the pair.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t bytes) {
  if (next_allocation_fails()) throw std::bad_alloc();
  void* p = std::malloc(bytes == 0 ? 1 : bytes);
  if (p == nullptr) throw std::bad_alloc();
  ++live_allocations;
  return p;
}
void* operator new(std::size_t bytes, std::align_val_t alignment) {
  if (next_allocation_fails()) throw std::bad_alloc();
  const auto align = static_cast<std::size_t>(alignment);
  void* p = std::aligned_alloc(align, (std::max<std::size_t>(bytes, 1) + align - 1) / align * align);
  if (p == nullptr) throw std::bad_alloc();
  ++live_allocations;
  return p;
}
void operator delete(void* p) noexcept {
  if (p != nullptr) --live_allocations;
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }
void operator delete(void* p, std::align_val_t) noexcept { operator delete(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { operator delete(p); }
// Every other form too, so that no block comes from another allocator (e.g. a sanitizer's).
void* operator new[](std::size_t bytes) { return operator new(bytes); }
void* operator new[](std::size_t bytes, std::align_val_t alignment) { return operator new(bytes, alignment); }
void* operator new(std::size_t bytes, const std::nothrow_t&) noexcept {
  try {
    return operator new(bytes);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}
void* operator new[](std::size_t bytes, const std::nothrow_t& nothrow) noexcept {
  return operator new(bytes, nothrow);
}
void* operator new(std::size_t bytes, std::align_val_t alignment, const std::nothrow_t&) noexcept {
  try {
    return operator new(bytes, alignment);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}
void* operator new[](std::size_t bytes, std::align_val_t alignment, const std::nothrow_t& nothrow) noexcept {
  return operator new(bytes, alignment, nothrow);
}
void operator delete[](void* p) noexcept { operator delete(p); }
void operator delete[](void* p, std::size_t) noexcept { operator delete(p); }
void operator delete[](void* p, std::align_val_t) noexcept { operator delete(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { operator delete(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { operator delete(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { operator delete(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { operator delete(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { operator delete(p); }

namespace {

using kvbits::BitDecision;
using kvbits::CacheOptions;
using kvbits::DecisionContext;
using kvbits::Errc;
using kvbits::KeyTransform;
using kvbits::QuantFormat;
using kvbits::TokenInfo;
using kvbits::test::require_error;

/**
 * Runs `call` with its allocation number `n` (from 0) failing.
 * @return true when it threw std::bad_alloc, false when it completed.
 */
template <class Call>
bool fails_at_allocation(std::size_t n, Call&& call) {
  struct Disarm {
    ~Disarm() { allocation_faults.armed = false; }
  } disarm;  // also when `call` throws something else
  allocation_faults = {true, n};
  try {
    call();
  } catch (const std::bad_alloc&) {
    return true;
  }
  return false;
}

/**
 * Fails the first, then the second, ... allocation of `call` until it completes, running
 * `check()` after every failure.
 * @return how many failures were injected (0 when `call` allocates nothing).
 */
template <class Call, class Check>
std::size_t for_each_allocation_failure(Call&& call, Check&& check) {
  std::size_t n = 0;
  while (fails_at_allocation(n, call)) {
    check();
    ++n;
  }
  return n;
}

/// for_each_allocation_failure for a call that keeps nothing (a constructor whose object dies
/// at once): checks that every failure frees what the call allocated. @return the failures.
template <class Call>
std::size_t for_each_allocation_failure_without_leaks(Call&& call) {
  std::size_t n = 0;
  for (;; ++n) {
    const std::size_t live = live_allocations;
    if (!fails_at_allocation(n, call)) return n;
    const std::size_t leaked = live_allocations - live;
    if (leaked != 0) FAIL("allocation " << n << " failed and " << leaked << " blocks were not freed");
  }
}

/// Thrown by ScriptedPolicy on request: a failure inside the user's policy.
struct PolicyFailure : std::runtime_error {
  PolicyFailure() : std::runtime_error("scripted policy failure") {}
};

/**
 * A policy for failure tests: `first` for a token leaving the window, `revisit` at its
 * decision ages, attention statistics kept. The call numbered `fail_at` (counted over all
 * copies, which share the script) throws PolicyFailure or, with `bad_widths`, answers 7/4.
 */
struct ScriptedPolicy {
  struct Script {
    std::size_t calls = 0;
    std::size_t fail_at = std::numeric_limits<std::size_t>::max();
    bool bad_widths = false;
  };
  std::shared_ptr<Script> script = std::make_shared<Script>();
  BitDecision first{8, 4};
  BitDecision revisit{4, 2};
  std::vector<std::size_t> ages{4};

  /// Makes the policy's `calls_from_now`-th call from now fail.
  void fail_after(std::size_t calls_from_now, bool bad_widths = false) const {
    script->fail_at = script->calls + calls_from_now;
    script->bad_widths = bad_widths;
  }
  void never_fail() const { script->fail_at = std::numeric_limits<std::size_t>::max(); }

  BitDecision decide(const DecisionContext& context) {
    if (script->calls++ == script->fail_at) {
      if (script->bad_widths) return BitDecision{7, 4};
      throw PolicyFailure();
    }
    return context.current == BitDecision{32, 32} ? first : revisit;
  }
  std::span<const std::size_t> decision_ages() const noexcept { return ages; }
  bool wants_attention_stats() const noexcept { return true; }
};

using Cache = kvbits::QuantizedKVCache<ScriptedPolicy>;

constexpr std::size_t kKvHeads = 2;
constexpr std::size_t kHeadDim = 16;
constexpr std::size_t kWidth = kKvHeads * kHeadDim;  // one token's k or v: [kv_heads][head_dim]
constexpr std::size_t kQueryHeads = 2 * kKvHeads;    // grouped-query attention, 2 query heads per kv head
constexpr float kSentinel = -12345.0f;               // what an output span holds before a failed call

/// Two layers, a sink, a window of 2 and group-8 codecs: every kind of stream and decision.
CacheOptions test_options() {
  CacheOptions options;
  options.layers = 2;
  options.kv_heads = kKvHeads;
  options.head_dim = kHeadDim;
  options.capacity = 16;
  options.residual_window = 2;
  options.sink_tokens = 1;
  options.key.group_size = 8;
  options.value.group_size = 8;
  return options;
}

/// The vector number `seed` of `n` values: deterministic test data.
std::vector<float> test_vector(std::uint32_t seed, std::size_t n, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  return kvbits::test::random_vector(rng, n, sigma);
}

/// Appends `tokens` tokens to `layer`, attending after each so statistics accumulate.
template <class C>
void fill(C& cache, std::size_t layer, std::size_t tokens) {
  std::vector<float> out(kQueryHeads * kHeadDim);
  for (std::size_t t = 0; t < tokens; ++t) {
    const auto seed = static_cast<std::uint32_t>(1000 * layer + cache.size(layer));
    cache.append(layer, test_vector(seed, kWidth), test_vector(seed + 500, kWidth),
                 TokenInfo{layer, cache.size(layer), 7, {}});
    cache.attend(layer, test_vector(seed + 900, kQueryHeads * kHeadDim), out);
  }
}

/// A cache with 9 tokens in layer 0 (sink, decided, revisited and window tokens) and 4 in layer 1.
Cache filled_cache(ScriptedPolicy policy = {}, const CacheOptions& options = test_options()) {
  Cache cache(options, std::move(policy));
  fill(cache, 0, 9);
  fill(cache, 1, 4);
  return cache;
}

/// One observable fact about a cache.
struct Observed {
  std::string what;
  double value;
};

/**
 * Everything observable about a cache but its spare capacity: sizes, every token's widths,
 * place, decoded values, statistics and whether it awaits a decision, key scales, attention
 * results, memory() without reserved_bytes, bits per element.
 */
template <class C>
std::vector<Observed> observe(const C& cache) {
  std::vector<Observed> seen;
  const auto add = [&seen](std::string what, double value) { seen.push_back({std::move(what), value}); };
  const auto add_all = [&add](const std::string& what, std::span<const float> values) {
    for (std::size_t i = 0; i < values.size(); ++i) add(what + "[" + std::to_string(i) + "]", values[i]);
  };
  const CacheOptions& options = cache.options();
  const std::size_t width = options.kv_heads * options.head_dim;
  std::vector<float> k(width), v(width);
  C probe(cache);  // attend() counts statistics, so a copy answers the queries
  for (std::size_t l = 0; l < options.layers; ++l) {
    const std::string layer = "layer " + std::to_string(l);
    const std::size_t size = cache.size(l);
    add(layer + " size", static_cast<double>(size));
    add_all(layer + " key scales", cache.key_scales(l));
    for (std::size_t t = 0; t < size; ++t) {
      const std::string token = layer + " token " + std::to_string(t);
      const BitDecision bits = cache.token_bits(l, t);
      add(token + " key bits", bits.key_bits);
      add(token + " value bits", bits.value_bits);
      add(token + " in residual", cache.in_residual(l, t) ? 1.0 : 0.0);
      add(token + " awaits decision", cache.awaits_decision(l, t) ? 1.0 : 0.0);
      const kvbits::AttentionStats stats = cache.attention_stats(l, t);
      add(token + " queries", stats.queries);
      add(token + " samples", stats.samples);
      add(token + " sum", stats.sum);
      add(token + " sum of squares", stats.sum_squares);
      add(token + " max", stats.max);
      add(token + " last", stats.last);
      cache.read_token(l, t, k, v);
      add_all(token + " k", k);
      add_all(token + " v", v);
    }
    if (size == 0) continue;
    std::vector<float> out(2 * width), received(size);
    probe.attend(l, test_vector(77, 2 * width), out, received);
    add_all(layer + " attention", out);
    add_all(layer + " received", received);
  }
  const kvbits::MemoryReport memory = cache.memory();
  for (std::size_t l = 0; l <= memory.layers.size(); ++l) {
    const kvbits::LayerMemory& m = l < memory.layers.size() ? memory.layers[l] : memory.total;
    const std::string what = l < memory.layers.size() ? "memory of layer " + std::to_string(l) : "memory";
    add(what + " tokens", static_cast<double>(m.tokens));
    add(what + " residual tokens", static_cast<double>(m.residual_tokens));
    add(what + " code bytes", static_cast<double>(m.code_bytes));
    add(what + " metadata bytes", static_cast<double>(m.metadata_bytes));
    add(what + " residual bytes", static_cast<double>(m.residual_bytes));
    add(what + " index bytes", static_cast<double>(m.index_bytes));
    add(what + " bytes", static_cast<double>(m.bytes));
    add(what + " average bits", m.average_bits);
    for (const int bits : kvbits::kSupportedBits) {
      add(what + " " + std::to_string(bits) + "-bit keys", static_cast<double>(m.histogram.key_tokens(bits)));
      add(what + " " + std::to_string(bits) + "-bit values",
          static_cast<double>(m.histogram.value_tokens(bits)));
    }
  }
  add("bits per element", cache.bits_per_element());
  return seen;
}

/// Fails naming the first fact that differs between two observations.
void require_same(const std::vector<Observed>& expected, const std::vector<Observed>& actual) {
  const std::size_t common = std::min(expected.size(), actual.size());
  for (std::size_t i = 0; i < common; ++i) {
    if (expected[i].what != actual[i].what || expected[i].value != actual[i].value) {
      FAIL("fact " << i << ": expected " << expected[i].what << " = " << expected[i].value << ", got "
                   << actual[i].what << " = " << actual[i].value);
    }
  }
  if (expected.size() != actual.size()) {
    FAIL("expected " << expected.size() << " facts, got " << actual.size());
  }
}

/// Fails naming the first element of `values` that is not kSentinel.
void require_unwritten(std::span<const float> values, const char* what) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (values[i] != kSentinel)
      FAIL(what << "[" << i << "]: expected " << kSentinel << ", got " << values[i]);
  }
}

/// Checks that `call` throws Error(code) mentioning `message` and leaves `cache` unchanged.
template <class C, class Call>
void require_strong(const C& cache, Errc code, const std::string& message, Call&& call) {
  const std::vector<Observed> before = observe(cache);
  require_error(std::forward<Call>(call), code, message);
  require_same(before, observe(cache));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// QuantizedKVCache

TEST_CASE("E01 the constructor rejects options and decision ages that break a rule", "[errors][cache][E01]") {
  const auto rejects = [](const CacheOptions& options, const std::string& message,
                          std::vector<std::size_t> ages = {}) {
    ScriptedPolicy policy;
    policy.ages = std::move(ages);
    require_error([&] { Cache cache(options, policy); }, Errc::invalid_argument, message);
  };
  CacheOptions options = test_options();
  SECTION("layers") {
    options.layers = 0;
    rejects(options, "layers must be at least 1");
  }
  SECTION("kv_heads") {
    options.kv_heads = 0;
    rejects(options, "kv_heads must be at least 1");
  }
  SECTION("head_dim") {
    options.head_dim = 12;
    rejects(options, "head_dim 12");
    options.head_dim = 264;
    rejects(options, "head_dim 264");
  }
  SECTION("capacity") {
    options.capacity = 0;
    rejects(options, "capacity must be at least 1");
    options.capacity = std::numeric_limits<std::uint32_t>::max();
    rejects(options, "exceeds the 32-bit token index");
  }
  SECTION("page_plane_bytes") {
    options.page_plane_bytes = 12288;
    rejects(options, "page_plane_bytes 12288 must be a power of two");
  }
  SECTION("group size") {
    options.value.group_size = 12;
    rejects(options, "value.group_size 12");
  }
  SECTION("unknown scheme and transform") {
    options.key.scheme = static_cast<kvbits::Scheme>(9);
    rejects(options, "key.scheme is not a known Scheme");
    options = test_options();
    options.value.transform = static_cast<KeyTransform>(9);
    rejects(options, "value.transform is not a known KeyTransform");
  }
  SECTION("hadamard needs a power-of-two head_dim") {
    options.head_dim = 24;
    options.key.group_size = 0;
    options.value.group_size = 0;
    options.key.transform = KeyTransform::hadamard;
    rejects(options, "hadamard needs a power-of-two head_dim, got 24");
  }
  SECTION("decision ages") {
    rejects(options, "strictly increasing and >= 1", {4, 4});
    rejects(options, "strictly increasing and >= 1", {0});
  }
}

TEST_CASE("E02 the constructor does not take channel scales on values", "[errors][cache][E02]") {
  CacheOptions options = test_options();
  options.value.transform = KeyTransform::channel_scale;
  require_error([&] { Cache cache(options); }, Errc::unsupported, "supported for keys only");
}

TEST_CASE("E03 a constructor that runs out of memory leaves nothing behind", "[errors][cache][E03]") {
  CHECK(for_each_allocation_failure_without_leaks([] { Cache cache(test_options()); }) > 0);
}

TEST_CASE("E04 every member taking a layer rejects one out of range", "[errors][cache][E04]") {
  Cache cache = filled_cache();
  const std::size_t bad = cache.options().layers;
  const std::vector<float> token = test_vector(1, kWidth);
  std::vector<float> out(kQueryHeads * kHeadDim, kSentinel), k(kWidth), v(kWidth);
  const std::vector<float> query = test_vector(2, kQueryHeads * kHeadDim);
  const std::vector<std::pair<std::string, std::function<void()>>> calls = {
      {"size", [&] { (void)cache.size(bad); }},
      {"append", [&] { cache.append(bad, token, token); }},
      {"attend", [&] { cache.attend(bad, query, out); }},
      {"prefill", [&] { cache.prefill(bad, token, token, query, out); }},
      {"demote", [&] { cache.demote(bad, 0, 4, 4); }},
      {"token_bits", [&] { (void)cache.token_bits(bad, 0); }},
      {"in_residual", [&] { (void)cache.in_residual(bad, 0); }},
      {"attention_stats", [&] { (void)cache.attention_stats(bad, 0); }},
      {"awaits_decision", [&] { (void)cache.awaits_decision(bad, 0); }},
      {"set_features", [&] { cache.set_features(bad, 0, {}); }},
      {"read_token", [&] { cache.read_token(bad, 0, k, v); }},
      {"set_key_scales", [&] { cache.set_key_scales(bad, token); }},
      {"calibrate_key_scales", [&] { cache.calibrate_key_scales(bad, token); }},
      {"key_scales", [&] { (void)cache.key_scales(bad); }},
  };
  for (const auto& [name, call] : calls) {
    INFO(name);
    require_strong(cache, Errc::invalid_argument, "layer 2 is out of range; the cache has 2 layers", call);
  }
  require_unwritten(out, "attention output");
}

TEST_CASE("E05 every member taking a token rejects one out of range", "[errors][cache][E05]") {
  Cache cache = filled_cache();
  const std::size_t bad = cache.size(1);
  std::vector<float> k(kWidth, kSentinel), v(kWidth, kSentinel);
  const std::vector<std::pair<std::string, std::function<void()>>> calls = {
      {"demote", [&] { cache.demote(1, bad, 2, 2); }},
      {"token_bits", [&] { (void)cache.token_bits(1, bad); }},
      {"in_residual", [&] { (void)cache.in_residual(1, bad); }},
      {"attention_stats", [&] { (void)cache.attention_stats(1, bad); }},
      {"awaits_decision", [&] { (void)cache.awaits_decision(1, bad); }},
      {"set_features", [&] { cache.set_features(1, bad, {}); }},
      {"read_token", [&] { cache.read_token(1, bad, k, v); }},
  };
  for (const auto& [name, call] : calls) {
    INFO(name);
    require_strong(cache, Errc::invalid_argument, "token 4 is out of range; layer 1 holds 4 tokens", call);
  }
  require_unwritten(k, "key output");
  require_unwritten(v, "value output");
}

TEST_CASE("E06 append rejects vectors and features of the wrong length", "[errors][cache][E06]") {
  Cache cache = filled_cache();
  const std::vector<float> token = test_vector(1, kWidth);
  const std::vector<float> longer = test_vector(2, kWidth + 8);
  require_strong(cache, Errc::shape_mismatch, "key [kv_heads][head_dim]",
                 [&] { cache.append(0, longer, token); });
  require_strong(cache, Errc::shape_mismatch, "value [kv_heads][head_dim] holds 24 elements, expected 32",
                 [&] { cache.append(0, token, std::span(longer).first(kWidth - 8)); });
  const std::vector<float> features(kvbits::kMaxTokenFeatures + 1, 1.0f);
  require_strong(cache, Errc::shape_mismatch, "token info features", [&] {
    cache.append(0, token, token, TokenInfo{0, 9, 1, features});
  });
}

TEST_CASE("E07 append rejects NaN and Inf, also when a transform overflows", "[errors][cache][E07]") {
  SECTION("in the caller's vectors") {
    Cache cache = filled_cache();
    std::vector<float> token = test_vector(1, kWidth);
    const std::vector<float> finite = token;
    token[5] = std::numeric_limits<float>::quiet_NaN();
    require_strong(cache, Errc::non_finite_input, "key has NaN or Inf at element 5",
                   [&] { cache.append(0, token, finite); });
    token[5] = std::numeric_limits<float>::infinity();
    require_strong(cache, Errc::non_finite_input, "value has NaN or Inf",
                   [&] { cache.append(1, finite, token); });
  }
  SECTION("after a channel scale") {
    CacheOptions options = test_options();
    options.key.transform = KeyTransform::channel_scale;
    Cache cache(options);
    cache.set_key_scales(0, std::vector<float>(kWidth, std::ldexp(1.0f, -120)));
    fill(cache, 0, 5);
    std::vector<float> key = test_vector(1, kWidth);
    key[3] = 1e30f;  // 1e30 * 2^120 overflows float
    require_strong(cache, Errc::non_finite_input, "key after its transform",
                   [&] { cache.append(0, key, test_vector(2, kWidth)); });
  }
  SECTION("after a Hadamard rotation") {
    CacheOptions options = test_options();
    options.value.transform = KeyTransform::hadamard;
    Cache cache = filled_cache({}, options);
    const std::vector<float> value(kWidth, 3e38f);  // the rotation's sums overflow
    require_strong(cache, Errc::non_finite_input, "value after its transform",
                   [&] { cache.append(0, test_vector(1, kWidth), value); });
  }
}

TEST_CASE("E08 append into a full layer is capacity_exhausted", "[errors][cache][E08]") {
  Cache cache = filled_cache();
  fill(cache, 1, cache.options().capacity - cache.size(1));
  const std::vector<float> token = test_vector(1, kWidth);
  require_strong(cache, Errc::capacity_exhausted, "already holds its capacity of 16 tokens",
                 [&] { cache.append(1, token, token); });
}

TEST_CASE("E09 append rejects unsupported widths from the policy", "[errors][cache][E09]") {
  Cache cache = filled_cache();
  const std::vector<float> token = test_vector(1, kWidth);
  // Appending token 9 decides token 7 (leaving the window), then revisits token 4 (age 4).
  SECTION("for the token leaving the window") {
    cache.policy().fail_after(0, true);
    require_strong(cache, Errc::invalid_argument, "the policy returned key/value bits 7/4",
                   [&] { cache.append(0, token, token); });
  }
  SECTION("for a revisit") {
    cache.policy().fail_after(1, true);
    require_strong(cache, Errc::invalid_argument, "a policy must return",
                   [&] { cache.append(0, token, token); });
  }
}

TEST_CASE("E10 an exception from the policy leaves the cache unchanged", "[errors][cache][E10]") {
  SECTION("thrown at a revisit, after the first decision of the same append") {
    Cache cache = filled_cache();
    const std::vector<Observed> before = observe(cache);
    cache.policy().fail_after(1);
    const std::vector<float> token = test_vector(1, kWidth);
    CHECK_THROWS_AS(cache.append(0, token, token), PolicyFailure);
    require_same(before, observe(cache));
    // The cache carries on: the same append succeeds once the policy does.
    cache.policy().never_fail();
    cache.append(0, token, token);
    CHECK(cache.size(0) == 10);
  }
  SECTION("a RulePolicy reading a feature the token does not have") {
    kvbits::RulePolicy rules;
    rules.feature_rules.push_back({3, 0.5f, {8, 8}});
    kvbits::QuantizedKVCache<kvbits::RulePolicy> cache(test_options(), rules);
    const std::vector<float> features(4, 1.0f);
    const std::vector<float> token = test_vector(1, kWidth);
    // Token 3 comes without features; appending token 5 decides it (the window is 2).
    for (std::size_t t = 0; t < 5; ++t) {
      cache.append(0, token, token, TokenInfo{0, t, 1, t == 3 ? std::span<const float>() : features});
    }
    require_strong(cache, Errc::shape_mismatch, "rule 0 reads feature 3 but the token has 0 features", [&] {
      cache.append(0, token, token, TokenInfo{0, 5, 1, features});
    });
  }
}

TEST_CASE("E11 append that runs out of memory leaves the cache unchanged", "[errors][cache][E11]") {
  Cache cache = filled_cache();
  std::size_t failures = 0;
  // Widths no token had before, so the decided tokens move into streams without pages.
  for (const BitDecision first : {BitDecision{5, 3}, BitDecision{6, 2}, BitDecision{16, 8}}) {
    cache.policy().first = first;
    cache.policy().revisit = BitDecision{first.key_bits / 2, 2};
    const std::vector<float> token = test_vector(static_cast<std::uint32_t>(first.key_bits), kWidth);
    const std::vector<Observed> before = observe(cache);
    failures += for_each_allocation_failure([&] { cache.append(0, token, token); },
                                            [&] { require_same(before, observe(cache)); });
  }
  CHECK(failures > 0);
}

TEST_CASE("E12 attend on an empty layer writes nothing", "[errors][cache][E12]") {
  Cache cache(test_options());
  fill(cache, 0, 3);
  std::vector<float> out(kQueryHeads * kHeadDim, kSentinel);
  require_strong(cache, Errc::invalid_argument, "attend on layer 1, which holds no tokens",
                 [&] { cache.attend(1, test_vector(1, out.size()), out); });
  require_unwritten(out, "attention output");
}

TEST_CASE("E13 attend rejects spans of the wrong length", "[errors][cache][E13]") {
  Cache cache = filled_cache();
  std::vector<float> out(kQueryHeads * kHeadDim, kSentinel), received(cache.size(0) + 1, kSentinel);
  const std::vector<float> query = test_vector(1, out.size());
  SECTION("query heads not a multiple of kv_heads") {
    const std::vector<float> three_heads = test_vector(2, 3 * kHeadDim);
    require_strong(cache, Errc::shape_mismatch, "a positive multiple of kv_heads = 2",
                   [&] { cache.attend(0, three_heads, std::span(out).first(three_heads.size())); });
  }
  SECTION("output") {
    require_strong(cache, Errc::shape_mismatch, "attention output [n_heads][head_dim]",
                   [&] { cache.attend(0, query, std::span(out).first(out.size() - 1)); });
  }
  SECTION("received") {
    require_strong(cache, Errc::shape_mismatch, "received holds 10 elements, expected 0 or size(layer) = 9",
                   [&] { cache.attend(0, query, out, received); });
  }
  require_unwritten(out, "attention output");
  require_unwritten(received, "received");
}

TEST_CASE("E14 attend rejects a NaN or Inf query", "[errors][cache][E14]") {
  Cache cache = filled_cache();
  std::vector<float> out(kQueryHeads * kHeadDim, kSentinel);
  std::vector<float> query = test_vector(1, out.size());
  query[17] = -std::numeric_limits<float>::infinity();
  require_strong(cache, Errc::non_finite_input, "query has NaN or Inf at element 17",
                 [&] { cache.attend(0, query, out); });
  require_unwritten(out, "attention output");
}

TEST_CASE("E15 attend that runs out of memory for its scratch writes nothing", "[errors][cache][E15]") {
  Cache cache = filled_cache();
  const std::size_t heads = 8 * kKvHeads;  // more query heads than any call before
  std::vector<float> out(heads * kHeadDim, kSentinel), received(cache.size(0), kSentinel);
  const std::vector<float> query = test_vector(1, out.size());
  const std::vector<Observed> before = observe(cache);
  const std::size_t failures = for_each_allocation_failure([&] { cache.attend(0, query, out, received); },
                                                           [&] {
                                                             require_unwritten(out, "attention output");
                                                             require_unwritten(received, "received");
                                                             require_same(before, observe(cache));
                                                           });
  CHECK(failures > 0);
}

TEST_CASE("E59 attend with a scratch and attend_parallel fail as attend does", "[errors][cache][E59]") {
  Cache cache = filled_cache();
  auto scratch = cache.attention_scratch();
  const auto serial = [](std::size_t count, auto&& unit) {
    for (std::size_t u = 0; u < count; ++u) unit(u);
  };
  std::vector<float> out(kQueryHeads * kHeadDim, kSentinel);
  std::vector<float> query = test_vector(1, out.size());
  SECTION("an empty layer") {
    Cache empty(test_options());
    require_strong(empty, Errc::invalid_argument, "holds no tokens",
                   [&] { empty.attend(0, query, out, scratch); });
    require_strong(empty, Errc::invalid_argument, "holds no tokens",
                   [&] { empty.attend_parallel(0, query, out, 2, serial); });
  }
  SECTION("a wrong output length") {
    require_strong(cache, Errc::shape_mismatch, "attention output",
                   [&] { cache.attend(0, query, std::span(out).first(8), scratch); });
    require_strong(cache, Errc::shape_mismatch, "attention output",
                   [&] { cache.attend_parallel(0, query, std::span(out).first(8), 2, serial); });
  }
  SECTION("a NaN query") {
    query[3] = std::numeric_limits<float>::quiet_NaN();
    require_strong(cache, Errc::non_finite_input, "query has NaN or Inf",
                   [&] { cache.attend(0, query, out, scratch); });
    require_strong(cache, Errc::non_finite_input, "query has NaN or Inf",
                   [&] { cache.attend_parallel(0, query, out, 2, serial); });
  }
  SECTION("no memory for the scratch") {
    const std::vector<Observed> before = observe(cache);
    const std::size_t failures = for_each_allocation_failure(
        [&] {
          auto fresh = cache.attention_scratch();
          cache.attend(0, query, out, fresh);
        },
        [&] {
          require_unwritten(out, "attention output");
          require_same(before, observe(cache));
        });
    CHECK(failures > 0);
    return;  // the last call succeeded and wrote `out`
  }
  require_unwritten(out, "attention output");
}

TEST_CASE("E60 save reports a failing stream", "[errors][cache][E60]") {
  const Cache cache = filled_cache();
  std::ostringstream broken;
  broken.setstate(std::ios::badbit);
  require_strong(cache, Errc::io_error, "", [&] { cache.save(broken); });
  require_strong(cache, Errc::io_error, "no-such-folder",
                 [&] { cache.save(std::filesystem::path("/nonexistent/no-such-folder/cache.kvbc")); });
}

namespace {

/// The bytes of `cache` saved as a cache file.
std::string saved_bytes(const Cache& cache) {
  std::ostringstream out(std::ios::binary);
  cache.save(out);
  return out.str();
}

/// Loads `bytes` into `cache`.
void load_bytes(Cache& cache, const std::string& bytes) {
  std::istringstream in(bytes, std::ios::binary);
  cache.load(in);
}

}  // namespace

TEST_CASE("E61 load rejects a truncated or corrupted cache file", "[errors][cache][E61]") {
  Cache cache = filled_cache();
  const std::string file = saved_bytes(filled_cache());
  SECTION("truncated") {
    require_strong(cache, Errc::corrupt_data, "",
                   [&] { load_bytes(cache, file.substr(0, file.size() / 2)); });
  }
  SECTION("a flipped byte") {
    std::string flipped = file;
    flipped[flipped.size() / 3] = static_cast<char>(flipped[flipped.size() / 3] ^ 0x10);
    require_strong(cache, Errc::corrupt_data, "", [&] { load_bytes(cache, flipped); });
  }
  SECTION("not a cache file") {
    require_strong(cache, Errc::corrupt_data, "", [&] { load_bytes(cache, std::string(64, 'x')); });
  }
}

TEST_CASE("E62 load rejects another format version", "[errors][cache][E62]") {
  Cache cache = filled_cache();
  std::string file = saved_bytes(cache);
  file[8] = static_cast<char>(file[8] + 1);  // the version follows the 8-byte magic
  require_strong(cache, Errc::unsupported, "version", [&] { load_bytes(cache, file); });
}

TEST_CASE("E63 load rejects a file saved from a cache with other options", "[errors][cache][E63]") {
  CacheOptions other = test_options();
  other.residual_window = 3;
  Cache source(other);
  fill(source, 0, 5);
  Cache cache = filled_cache();
  require_strong(cache, Errc::invalid_argument, "window", [&] { load_bytes(cache, saved_bytes(source)); });
}

TEST_CASE("E64 load reports a file it cannot open or a failing stream", "[errors][cache][E64]") {
  Cache cache = filled_cache();
  require_strong(cache, Errc::io_error, "no-such-file",
                 [&] { cache.load(std::filesystem::path("/nonexistent/no-such-file.kvbc")); });
  std::istringstream broken(saved_bytes(cache));
  broken.setstate(std::ios::badbit);
  require_strong(cache, Errc::io_error, "", [&] { cache.load(broken); });
}

TEST_CASE("E65 load that runs out of memory leaves the cache unchanged", "[errors][cache][E65]") {
  Cache cache = filled_cache();
  const std::string file = saved_bytes(filled_cache());
  const std::vector<Observed> before = observe(cache);
  const std::size_t failures = for_each_allocation_failure([&] { load_bytes(cache, file); },
                                                           [&] { require_same(before, observe(cache)); });
  CHECK(failures > 0);
}

namespace {

/// T tokens of keys, values and queries for a prefill.
struct PrefillInput {
  std::vector<float> k, v, q;
  explicit PrefillInput(std::size_t steps)
      : k(test_vector(11, steps * kWidth)),
        v(test_vector(12, steps * kWidth)),
        q(test_vector(13, steps * kQueryHeads * kHeadDim)) {}
};

}  // namespace

TEST_CASE("E16 prefill rejects spans of the wrong length before storing anything", "[errors][cache][E16]") {
  Cache cache = filled_cache();
  const PrefillInput in(4);
  std::vector<float> out(in.q.size(), kSentinel);
  const std::span<const float> k(in.k), v(in.v), q(in.q);
  SECTION("keys") {
    require_strong(cache, Errc::shape_mismatch, "prefill keys hold 40 elements",
                   [&] { cache.prefill(1, k.first(kWidth + 8), v, q, out); });
  }
  SECTION("values") {
    require_strong(cache, Errc::shape_mismatch, "prefill values [T][kv_heads][head_dim]",
                   [&] { cache.prefill(1, k, v.first(3 * kWidth), q, out); });
  }
  SECTION("queries") {
    require_strong(cache, Errc::shape_mismatch, "not a multiple of T = 4", [&] {
      cache.prefill(1, k, v, q.first(q.size() - 2), std::span(out).first(q.size() - 2));
    });
  }
  SECTION("output") {
    require_strong(cache, Errc::shape_mismatch, "prefill output [T][n_heads][head_dim]",
                   [&] { cache.prefill(1, k, v, q, std::span(out).first(out.size() - kHeadDim)); });
  }
  SECTION("infos") {
    const std::vector<TokenInfo> infos(3);
    require_strong(cache, Errc::shape_mismatch, "prefill infos hold 3 entries, expected 0 or T = 4",
                   [&] { cache.prefill(1, k, v, q, out, infos); });
    const std::vector<float> features(kvbits::kMaxTokenFeatures + 1, 0.0f);
    std::vector<TokenInfo> long_features(4);
    long_features[2].features = features;
    require_strong(cache, Errc::shape_mismatch, "prefill info features",
                   [&] { cache.prefill(1, k, v, q, out, long_features); });
  }
  require_unwritten(out, "prefill output");
}

TEST_CASE("E17 prefill rejects NaN and Inf in any token before storing anything", "[errors][cache][E17]") {
  PrefillInput in(4);
  std::vector<float> out(in.q.size(), kSentinel);
  SECTION("in the caller's vectors") {
    Cache cache = filled_cache();
    in.v[3 * kWidth + 1] = std::numeric_limits<float>::quiet_NaN();
    require_strong(cache, Errc::non_finite_input, "prefill values has NaN or Inf at element 97",
                   [&] { cache.prefill(1, in.k, in.v, in.q, out); });
    in.v[3 * kWidth + 1] = 0.0f;
    in.q.back() = std::numeric_limits<float>::infinity();
    require_strong(cache, Errc::non_finite_input, "prefill queries has NaN or Inf",
                   [&] { cache.prefill(1, in.k, in.v, in.q, out); });
  }
  SECTION("in the last token's key after its channel scale") {
    CacheOptions options = test_options();
    options.key.transform = KeyTransform::channel_scale;
    Cache cache(options);
    cache.set_key_scales(1, std::vector<float>(kWidth, std::ldexp(1.0f, -120)));
    in.k[3 * kWidth + 6] = 1e30f;  // finite, but 1e30 * 2^120 overflows
    require_strong(cache, Errc::non_finite_input, "key after its transform",
                   [&] { cache.prefill(1, in.k, in.v, in.q, out); });
  }
  require_unwritten(out, "prefill output");
}

TEST_CASE("E18 prefill past the capacity stores nothing", "[errors][cache][E18]") {
  Cache cache = filled_cache();
  const PrefillInput in(cache.options().capacity - cache.size(1) + 1);
  std::vector<float> out(in.q.size(), kSentinel);
  require_strong(cache, Errc::capacity_exhausted,
                 "prefill of 13 tokens into layer 1 holding 4 exceeds the capacity of 16",
                 [&] { cache.prefill(1, in.k, in.v, in.q, out); });
  require_unwritten(out, "prefill output");
}

namespace {

/**
 * After a prefill of `in` into layer 1 of a copy of `start` failed midway: the cache holds a
 * prefix of the tokens, and `out` the rows of a prefix of those (all of them, or all but the
 * last when `last_row_may_miss`: its attention failed), each as a successful prefill of those
 * rows would store and compute them, the token without a row as append() stores it; the rest
 * of `out` is unwritten.
 */
void require_prefix(const Cache& start, const Cache& cache, const PrefillInput& in,
                    std::span<const float> out, bool last_row_may_miss) {
  const std::size_t appended = cache.size(1) - start.size(1);
  const std::size_t row = kQueryHeads * kHeadDim;
  std::size_t rows = appended;
  if (last_row_may_miss && appended > 0 && out[(appended - 1) * row] == kSentinel) --rows;
  Cache reference = start;
  std::vector<float> reference_out(rows * row);
  if (rows > 0) {
    reference.prefill(1, std::span(in.k).first(rows * kWidth), std::span(in.v).first(rows * kWidth),
                      std::span(in.q).first(rows * row), reference_out);
  }
  if (rows < appended) {
    reference.append(1, std::span(in.k).subspan(rows * kWidth, kWidth),
                     std::span(in.v).subspan(rows * kWidth, kWidth), TokenInfo{1, reference.size(1), -1, {}});
  }
  require_same(observe(reference), observe(cache));
  for (std::size_t t = 0; t < out.size() / row; ++t) {
    INFO("prefill row " << t << " of " << rows << " computed, " << appended << " tokens appended");
    const std::span<const float> got = out.subspan(t * row, row);
    if (t >= rows) {
      require_unwritten(got, "prefill output row");
      continue;
    }
    for (std::size_t i = 0; i < row; ++i) {
      if (got[i] != reference_out[t * row + i]) {
        FAIL("prefill output row " << t << "[" << i << "]: expected " << reference_out[t * row + i]
                                   << ", got " << got[i]);
      }
    }
  }
}

}  // namespace

TEST_CASE("E19 prefill failing midway keeps the tokens before the failure", "[errors][cache][E19]") {
  const Cache start = filled_cache();
  const PrefillInput in(6);
  std::vector<float> out(in.q.size(), kSentinel);
  // Layer 1 holds 4 tokens: each prefill token decides one (the window is 2) and revisits one
  // from the second on, so the policy's call 3 is the decision of the prefill's token 2.
  SECTION("the policy throws") {
    Cache cache = start;
    cache.policy().fail_after(3);
    CHECK_THROWS_AS(cache.prefill(1, in.k, in.v, in.q, out), PolicyFailure);
    cache.policy().never_fail();
    CHECK(cache.size(1) == start.size(1) + 2);
    require_prefix(start, cache, in, out, false);
  }
  SECTION("the policy answers unsupported widths") {
    Cache cache = start;
    cache.policy().fail_after(4, true);
    require_error([&] { cache.prefill(1, in.k, in.v, in.q, out); }, Errc::invalid_argument, "7/4");
    cache.policy().never_fail();
    CHECK(cache.size(1) == start.size(1) + 2);
    require_prefix(start, cache, in, out, false);
  }
  SECTION("an allocation fails") {
    std::size_t failures = 0;
    for (std::size_t n = 0;; ++n) {
      Cache cache = start;
      std::fill(out.begin(), out.end(), kSentinel);
      if (!fails_at_allocation(n, [&] { cache.prefill(1, in.k, in.v, in.q, out); })) break;
      ++failures;
      require_prefix(start, cache, in, out, true);
    }
    CHECK(failures > 0);
  }
}

TEST_CASE("E20 demote rejects widths it cannot give", "[errors][cache][E20]") {
  Cache cache = filled_cache();
  REQUIRE(cache.token_bits(0, 5) == BitDecision{8, 4});  // decided, not yet revisited
  REQUIRE(cache.in_residual(0, 8));
  require_strong(cache, Errc::invalid_argument, "demote to key/value bits 7/4",
                 [&] { cache.demote(0, 5, 7, 4); });
  require_strong(cache, Errc::invalid_argument, "full-precision sink/window area",
                 [&] { cache.demote(0, 8, 4, 4); });
  require_strong(cache, Errc::invalid_argument, "full-precision sink/window area",
                 [&] { cache.demote(0, 0, 4, 4); });
  require_strong(cache, Errc::invalid_argument, "demote never adds bits", [&] { cache.demote(0, 5, 8, 8); });
}

TEST_CASE("E21 demote that runs out of memory leaves the cache unchanged", "[errors][cache][E21]") {
  Cache cache = filled_cache();
  const std::vector<Observed> before = observe(cache);
  REQUIRE(cache.token_bits(0, 5) == BitDecision{8, 4});
  const std::size_t failures = for_each_allocation_failure([&] { cache.demote(0, 5, 3, 3); },
                                                           [&] { require_same(before, observe(cache)); });
  CHECK(failures > 0);
  CHECK(cache.token_bits(0, 5) == BitDecision{3, 3});
}

TEST_CASE("E22 set_features rejects tokens that no longer await a decision", "[errors][cache][E22]") {
  Cache cache = filled_cache();
  const std::vector<float> features(3, 0.5f);
  REQUIRE_FALSE(cache.awaits_decision(0, 0));  // the sink
  REQUIRE_FALSE(cache.awaits_decision(0, 3));  // decided and past the last decision age
  require_strong(cache, Errc::invalid_argument, "token 0 of layer 0",
                 [&] { cache.set_features(0, 0, features); });
  require_strong(cache, Errc::invalid_argument, "only tokens that await a decision",
                 [&] { cache.set_features(0, 3, features); });
}

TEST_CASE("E23 set_features rejects more than kMaxTokenFeatures features", "[errors][cache][E23]") {
  Cache cache = filled_cache();
  const std::vector<float> features(kvbits::kMaxTokenFeatures + 1, 0.5f);
  REQUIRE(cache.awaits_decision(0, 8));
  require_strong(cache, Errc::shape_mismatch, "set_features", [&] { cache.set_features(0, 8, features); });
}

TEST_CASE("E24 read_token rejects outputs of the wrong length", "[errors][cache][E24]") {
  Cache cache = filled_cache();
  std::vector<float> k(kWidth, kSentinel), v(kWidth + 1, kSentinel);
  require_strong(cache, Errc::shape_mismatch, "value output [kv_heads][head_dim]",
                 [&] { cache.read_token(0, 2, k, v); });
  require_strong(cache, Errc::shape_mismatch, "key output [kv_heads][head_dim] holds 31 elements",
                 [&] { cache.read_token(0, 2, std::span(v).first(kWidth - 1), k); });
  require_unwritten(k, "key output");
  require_unwritten(v, "value output");
}

TEST_CASE("E25 key scales need the channel_scale transform", "[errors][cache][E25]") {
  Cache cache(test_options());
  const std::vector<float> scales(kWidth, 2.0f);
  require_strong(cache, Errc::unsupported, "key.transform = channel_scale",
                 [&] { cache.set_key_scales(0, scales); });
  require_strong(cache, Errc::unsupported, "key.transform = channel_scale",
                 [&] { cache.calibrate_key_scales(0, scales); });
}

TEST_CASE("E26 key scales need an empty layer and positive values", "[errors][cache][E26]") {
  CacheOptions options = test_options();
  options.key.transform = KeyTransform::channel_scale;
  Cache cache(options);
  fill(cache, 0, 2);
  std::vector<float> scales(kWidth, 2.0f);
  require_strong(cache, Errc::invalid_argument, "before appending tokens to it",
                 [&] { cache.set_key_scales(0, scales); });
  require_strong(cache, Errc::invalid_argument, "before appending tokens to it",
                 [&] { cache.calibrate_key_scales(0, scales); });
  scales[9] = 0.0f;
  require_strong(cache, Errc::invalid_argument, "key scale 9 is 0.000000, must be > 0",
                 [&] { cache.set_key_scales(1, scales); });
}

TEST_CASE("E27 key scales and samples must be finite and shaped", "[errors][cache][E27]") {
  CacheOptions options = test_options();
  options.key.transform = KeyTransform::channel_scale;
  Cache cache(options);
  std::vector<float> scales(kWidth, 2.0f);
  require_strong(cache, Errc::shape_mismatch, "key scales [kv_heads][head_dim]",
                 [&] { cache.set_key_scales(1, std::span(scales).first(kWidth - 8)); });
  scales[4] = std::numeric_limits<float>::infinity();
  require_strong(cache, Errc::non_finite_input, "key scales has NaN or Inf",
                 [&] { cache.set_key_scales(1, scales); });
  const std::vector<float> samples = test_vector(3, 3 * kWidth + 8);
  require_strong(cache, Errc::shape_mismatch, "sample keys hold 104 elements",
                 [&] { cache.calibrate_key_scales(1, samples); });
  std::vector<float> nan_samples = test_vector(3, 3 * kWidth);
  nan_samples[40] = std::numeric_limits<float>::quiet_NaN();
  require_strong(cache, Errc::non_finite_input, "sample keys has NaN or Inf at element 40",
                 [&] { cache.calibrate_key_scales(1, nan_samples); });
}

namespace {

/// A policy whose copy constructor throws while `copies_fail` is set.
struct CopyFailingPolicy {
  static inline bool copies_fail = false;
  CopyFailingPolicy() = default;
  CopyFailingPolicy(const CopyFailingPolicy&) {
    if (copies_fail) throw PolicyFailure();
  }
  CopyFailingPolicy(CopyFailingPolicy&&) noexcept = default;
  CopyFailingPolicy& operator=(const CopyFailingPolicy&) = default;
  CopyFailingPolicy& operator=(CopyFailingPolicy&&) noexcept = default;
  ~CopyFailingPolicy() = default;
  BitDecision decide(const TokenInfo&) const noexcept { return {4, 4}; }
};

}  // namespace

TEST_CASE("E28 a copy that fails leaves no object, an assignment that fails no change",
          "[errors][cache][E28]") {
  const Cache source = filled_cache();
  SECTION("out of memory") {
    CHECK(for_each_allocation_failure_without_leaks([&] { const Cache copy(source); }) > 0);
    Cache target(test_options());
    fill(target, 1, 3);
    const std::vector<Observed> before = observe(target);
    CHECK(for_each_allocation_failure([&] { target = source; },
                                      [&] { require_same(before, observe(target)); }) > 0);
    require_same(observe(source), observe(target));
  }
  SECTION("the policy's copy throws") {
    kvbits::QuantizedKVCache<CopyFailingPolicy> from(test_options()), target(test_options());
    fill(from, 0, 5);
    fill(target, 1, 2);
    const std::vector<Observed> before = observe(target);
    CopyFailingPolicy::copies_fail = true;
    CHECK_THROWS_AS(target = from, PolicyFailure);
    CHECK_THROWS_AS(kvbits::QuantizedKVCache<CopyFailingPolicy>(from), PolicyFailure);
    CopyFailingPolicy::copies_fail = false;
    require_same(before, observe(target));
  }
}

TEST_CASE("E29 memory() that runs out of memory changes nothing", "[errors][cache][E29]") {
  const Cache cache = filled_cache();
  const std::vector<Observed> before = observe(cache);
  CHECK(for_each_allocation_failure([&] { (void)cache.memory(); },
                                    [&] { require_same(before, observe(cache)); }) > 0);
}

TEST_CASE("E30 clear, the accessors, moves and the destructor never throw", "[errors][cache][E30]") {
  Cache cache(test_options());
  STATIC_REQUIRE(noexcept(cache.clear()));
  STATIC_REQUIRE(noexcept(cache.options()));
  STATIC_REQUIRE(noexcept(cache.policy()));
  STATIC_REQUIRE(noexcept(std::as_const(cache).policy()));
  STATIC_REQUIRE(noexcept(cache.bits_per_element()));
  STATIC_REQUIRE(std::is_nothrow_move_constructible_v<Cache>);
  STATIC_REQUIRE(std::is_nothrow_move_assignable_v<Cache>);
  STATIC_REQUIRE(std::is_nothrow_destructible_v<Cache>);
  STATIC_REQUIRE(std::is_nothrow_move_constructible_v<kvbits::QuantizedKVCache<kvbits::StaticPolicy>>);
  STATIC_REQUIRE(std::is_nothrow_move_assignable_v<kvbits::QuantizedKVCache<kvbits::StaticPolicy>>);
}

// ---------------------------------------------------------------------------------------------
// Codecs

namespace {

constexpr std::uint8_t kByteSentinel = 0xA5;

}  // namespace

TEMPLATE_TEST_CASE("E31 the codecs reject formats that cannot store the vector", "[errors][codec][E31]",
                   kvbits::ScalarBackend, kvbits::XsimdBackend) {
  using B = TestType;
  const std::vector<float> x = test_vector(1, 64);
  std::vector<float> y(64, kSentinel);
  std::vector<std::uint8_t> packed(1024, kByteSentinel);
  const auto rejects = [&](const QuantFormat& format, std::size_t n, const std::string& message) {
    require_error([&] { kvbits::validate(format, n); }, Errc::invalid_argument, message);
    require_error([&] { B::encode(format, std::span(x).first(n), packed); }, Errc::invalid_argument, message);
    require_error([&] { B::decode(format, packed, std::span(y).first(n)); }, Errc::invalid_argument, message);
    require_error([&] { (void)B::dot(format, std::span(x).first(n), packed); }, Errc::invalid_argument,
                  message);
    require_error([&] { B::axpy(format, 0.5f, packed, std::span(y).first(n)); }, Errc::invalid_argument,
                  message);
  };
  rejects(QuantFormat{7, 32}, 64, "bit width 7 is not supported");
  rejects(QuantFormat{4, 32}, 60, "vector length 60 must be a multiple of 8");
  rejects(QuantFormat{4, 12}, 48, "group size 12 must be a multiple of 8");
  rejects(QuantFormat{4, 24}, 64, "group size 24 must be a multiple of 8 that divides the vector length 64");
  require_unwritten(y, "decoded output");
  CHECK(std::all_of(packed.begin(), packed.end(), [](std::uint8_t b) { return b == kByteSentinel; }));
}

TEMPLATE_TEST_CASE("E32 the codecs reject packed spans of the wrong size", "[errors][codec][E32]",
                   kvbits::ScalarBackend, kvbits::XsimdBackend) {
  using B = TestType;
  const QuantFormat format{4, 32};
  const std::vector<float> x = test_vector(1, 64);
  std::vector<float> y(64, kSentinel);
  std::vector<std::uint8_t> packed(kvbits::packed_size(format, 64) + 1, kByteSentinel);
  const std::string message = "holds 41 elements, expected 40";
  require_error([&] { B::encode(format, x, packed); }, Errc::shape_mismatch,
                "packed output (bytes) " + message);
  require_error([&] { B::decode(format, packed, y); }, Errc::shape_mismatch,
                "packed input (bytes) " + message);
  require_error([&] { (void)B::dot(format, x, packed); }, Errc::shape_mismatch, message);
  require_error([&] { B::axpy(format, 1.0f, packed, y); }, Errc::shape_mismatch, message);
  require_unwritten(y, "decoded output");
  CHECK(std::all_of(packed.begin(), packed.end(), [](std::uint8_t b) { return b == kByteSentinel; }));
}

TEMPLATE_TEST_CASE("E33 encode rejects NaN and Inf", "[errors][codec][E33]", kvbits::ScalarBackend,
                   kvbits::XsimdBackend) {
  using B = TestType;
  const QuantFormat format{4, 32};
  std::vector<float> x = test_vector(1, 64);
  x[40] = std::numeric_limits<float>::quiet_NaN();
  std::vector<std::uint8_t> packed(kvbits::packed_size(format, 64), kByteSentinel);
  require_error([&] { B::encode(format, x, packed); }, Errc::non_finite_input,
                "input vector has NaN or Inf at element 40");
  CHECK(std::all_of(packed.begin(), packed.end(), [](std::uint8_t b) { return b == kByteSentinel; }));
}

TEST_CASE("E34 requantize needs formats that fit and an integer path", "[errors][codec][E34]") {
  const QuantFormat eight{8, 32}, four{4, 32};
  std::vector<std::uint8_t> in(kvbits::packed_size(eight, 64), 1),
      out(kvbits::packed_size(four, 64), kByteSentinel);
  require_error(
      [&] {
        kvbits::requantize(eight, QuantFormat{7, 32}, 64, in, out);
      },
      Errc::invalid_argument, "bit width 7");
  require_error([&] { kvbits::requantize(eight, four, 60, in, out); }, Errc::invalid_argument,
                "vector length 60");
  require_error(
      [&] {
        kvbits::requantize(eight, QuantFormat{3, 32}, 64, in, out);
      },
      Errc::invalid_argument, "no integer re-quantization from 8 to 3 bits");
  require_error(
      [&] {
        kvbits::requantize(eight, QuantFormat{4, 16}, 64, in, out);
      },
      Errc::invalid_argument, "one group size");
  require_error([&] { kvbits::requantize(four, eight, 64, in, out); }, Errc::invalid_argument,
                "from 4 to 8 bits");
  CHECK(std::all_of(out.begin(), out.end(), [](std::uint8_t b) { return b == kByteSentinel; }));
}

TEST_CASE("E35 requantize rejects spans of the wrong size", "[errors][codec][E35]") {
  const QuantFormat eight{8, 32}, four{4, 32};
  std::vector<std::uint8_t> in(kvbits::packed_size(eight, 64), 1),
      out(kvbits::packed_size(four, 64) + 2, kByteSentinel);
  require_error([&] { kvbits::requantize(eight, four, 64, std::span(in).first(in.size() - 1), out); },
                Errc::shape_mismatch, "packed input (bytes)");
  require_error([&] { kvbits::requantize(eight, four, 64, in, out); }, Errc::shape_mismatch,
                "packed output (bytes)");
  CHECK(std::all_of(out.begin(), out.end(), [](std::uint8_t b) { return b == kByteSentinel; }));
}

TEMPLATE_TEST_CASE("E36 the row kernels check the stride in debug builds", "[errors][codec][E36]",
                   kvbits::ScalarBackend, kvbits::XsimdBackend) {
  using B = TestType;
  STATIC_REQUIRE(KVBITS_DEBUG_CHECKS == 1);
  const QuantFormat format{4, 32};
  const std::size_t row = kvbits::packed_size(format, 64);
  const std::vector<float> q = test_vector(1, 64);
  const std::vector<std::uint8_t> rows(2 * row, 0x11);
  std::vector<float> scores(2, kSentinel), y(64, kSentinel);
  require_error([&] { B::dot_rows(format, q.data(), 64, rows.data(), row - 1, 2, scores.data()); },
                Errc::invalid_argument, "row stride is smaller than one packed vector");
  require_error([&] { B::axpy_rows(format, q.data(), 64, rows.data(), row - 1, 2, y.data()); },
                Errc::invalid_argument, "row stride is smaller than one packed vector");
  require_unwritten(scores, "scores");
  require_unwritten(y, "axpy output");
}

TEST_CASE("E37 dispatch_bits rejects unsupported widths without calling", "[errors][codec][E37]") {
  bool called = false;
  require_error([&] { kvbits::dispatch_bits(1, [&](auto) { called = true; }); }, Errc::invalid_argument,
                "bit width 1 is not supported; use 2, 3, 4, 5, 6, 8, 16 or 32");
  CHECK_FALSE(called);
}

// ---------------------------------------------------------------------------------------------
// Policies and their text

TEST_CASE("E38 parse_bit_decision rejects text that is not KEY/VALUE", "[errors][policy][E38]") {
  for (const std::string_view text : {"", "8", "8-4", "8/", "/4", "x/4", "8/4/2", "+8/4", "8.5/4"}) {
    INFO("text '" << text << "'");
    require_error([&] { (void)kvbits::parse_bit_decision(text, "test widths"); }, Errc::invalid_argument,
                  "test widths: widths '" + std::string(text) + "' are not KEY/VALUE bits");
  }
}

TEST_CASE("E39 parse_bit_decision and require_supported_bits reject unsupported widths",
          "[errors][policy][E39]") {
  require_error([] { (void)kvbits::parse_bit_decision("7/4", "tier 2"); }, Errc::invalid_argument,
                "tier 2: widths 7/4 must each be 2, 3, 4, 5, 6, 8, 16 or 32");
  require_error(
      [] {
        kvbits::require_supported_bits(BitDecision{4, 0}, "rung 1");
      },
      Errc::invalid_argument, "rung 1: widths 4/0");
}

TEST_CASE("E40 parse_tiers names the item that breaks a rule", "[errors][policy][E40]") {
  const std::vector<std::pair<std::string_view, std::string>> cases = {
      {"4=8/8", "missing the oldest tier"},
      {"0=8/8,*=4/4", "has age 0"},
      {"8=8/8,4=8/8,*=4/4", "ages must strictly increase"},
      {"*=4/4,*=4/4", "repeats the oldest tier"},
      {"*=4/4,4=8/8", "comes after the oldest tier"},
      {"v+=0.1,*=4/4", "must follow the oldest tier"},
      {"*=4/4,k+=-1", "finite attention threshold >= 0"},
      {"*=4/4,v+=0.1,v+=0.2", "repeats a refinement"},
      {"g=32,*=4/4", "is not AGE=K/V"},
      {"4=9/8,*=4/4", "must each be 2, 3, 4"},
      {"4=4/4,*=8/4", "an older tier may not be wider"},
  };
  for (const auto& [text, message] : cases) {
    INFO("tiers '" << text << "'");
    require_error([&] { (void)kvbits::parse_tiers(text); }, Errc::invalid_argument, message);
  }
}

TEST_CASE("E41 parse_width_mix names the item that breaks a rule", "[errors][policy][E41]") {
  require_error([] { (void)kvbits::parse_width_mix("4/2,8"); }, Errc::invalid_argument, "width mix item '8'");
  require_error([] { (void)kvbits::parse_width_mix("4/2:x"); }, Errc::invalid_argument,
                "the weight after ':' must be a finite number >= 0");
  require_error([] { (void)kvbits::parse_width_mix("4/2:-1"); }, Errc::invalid_argument,
                "finite number >= 0");
  require_error([] { (void)kvbits::parse_width_mix("4/9:1"); }, Errc::invalid_argument, "widths 4/9");
}

TEST_CASE("E42 TieredPolicy rejects tiers and refinements that break a rule", "[errors][policy][E42]") {
  using kvbits::AgeTier;
  using kvbits::TieredPolicy;
  require_error(
      [] {
        TieredPolicy policy({AgeTier{0, {8, 8}}}, {4, 4});
      },
      Errc::invalid_argument, "ages must be >= 1 and strictly increasing");
  require_error(
      [] {
        TieredPolicy policy({AgeTier{4, {8, 8}}, AgeTier{2, {8, 8}}}, {4, 4});
      },
      Errc::invalid_argument, "strictly increasing");
  require_error(
      [] {
        TieredPolicy policy({AgeTier{4, {4, 4}}}, {8, 4});
      },
      Errc::invalid_argument, "an older tier may not be wider");
  require_error([] { TieredPolicy policy({}, {4, 1}); }, Errc::invalid_argument, "oldest tier '*=4/1'");
  TieredPolicy policy = kvbits::parse_tiers("4=8/8,*=4/2,v+=0.02");
  const std::string before = policy.to_string();
  require_error(
      [&] {
        policy.set_refinement({std::nullopt, -0.5f});
      },
      Errc::invalid_argument, "thresholds must be finite and >= 0");
  require_error(
      [&] {
        policy.set_refinement({std::numeric_limits<float>::infinity(), std::nullopt});
      },
      Errc::invalid_argument, "thresholds must be finite and >= 0");
  CHECK(policy.to_string() == before);
}

TEST_CASE("E43 RandomPolicy rejects mixes that break a rule", "[errors][policy][E43]") {
  using kvbits::RandomPolicy;
  using kvbits::WeightedBits;
  require_error([] { RandomPolicy policy({}); }, Errc::invalid_argument, "at least one entry");
  require_error(
      [] {
        RandomPolicy policy({WeightedBits{{4, 9}, 1.0}});
      },
      Errc::invalid_argument, "width mix entry 0 (4/9)");
  require_error(
      [] {
        RandomPolicy policy({WeightedBits{{4, 4}, 1.0}, WeightedBits{{8, 8}, -1.0}});
      },
      Errc::invalid_argument, "width mix entry 1 (8/8): weight must be finite and >= 0");
  require_error(
      [] {
        RandomPolicy policy({WeightedBits{{4, 4}, 0.0}});
      },
      Errc::invalid_argument, "must sum to a finite value > 0");
}

TEST_CASE("E44 BudgetPolicy rejects options that break a rule", "[errors][policy][E44]") {
  using Budget = kvbits::BudgetPolicy<kvbits::StaticPolicy>;
  const auto rejects = [](const kvbits::BudgetOptions& options, const std::string& message) {
    require_error([&] { Budget policy(kvbits::StaticPolicy{}, options); }, Errc::invalid_argument, message);
  };
  kvbits::BudgetOptions options;
  options.target_bits_per_element = 0.0;
  rejects(options, "budget target bits per element must be finite and > 0");
  options = {};
  options.integral_gain = std::numeric_limits<double>::quiet_NaN();
  rejects(options, "budget gains must be finite and >= 0");
  options = {};
  options.integral_band = -1.0;
  rejects(options, "budget integral band must be finite and > 0");
  options = {};
  options.lowering_ages = kvbits::kMaxBudgetLoweringAges + 1;
  rejects(options, "budget lowering ages must be between 1 and 8");
  options = {};
  options.protect_age = std::numeric_limits<std::size_t>::max();
  rejects(options, "budget protect age is too large");
  options = {};
  options.ladder.clear();
  rejects(options, "budget width ladder is empty");
  options.ladder = {{4, 4}, {3, 3}};
  rejects(options, "budget ladder rung 1 (3/3)");
  options.ladder = {{4, 4}, {9, 4}};
  rejects(options, "budget ladder rung 1 (9/4)");
}

namespace {

using Widths = kvbits::WidthList<2, 4, 8, 16>;
using AgeNet = kvbits::Mlp<1, kvbits::Hidden<>, Widths>;
using AgeFeatures = kvbits::FeatureSet<kvbits::AgeFeature>;

}  // namespace

TEST_CASE("E45 LearnedPolicy rejects decision ages and quantiles that break a rule",
          "[errors][policy][E45]") {
  using Policy = kvbits::LearnedPolicy<AgeFeatures, AgeNet>;
  require_error(
      [] {
        Policy policy(AgeNet{}, {}, {{4, 4}, {}});
      },
      Errc::invalid_argument, "ages must be >= 1 and strictly increasing");
  require_error(
      [] {
        Policy policy(AgeNet{}, {}, {{0}, {}});
      },
      Errc::invalid_argument, "learned policy decision age 0 (0)");
  require_error(
      [] {
        Policy policy(AgeNet{}, {}, {{1}, 0.0});
      },
      Errc::invalid_argument, "learned policy quantile must be in (0, 1]");
}

TEST_CASE("E46 RulePolicy and LearnedPolicy need the features they read", "[errors][policy][E46]") {
  kvbits::RulePolicy rules;
  rules.feature_rules.push_back({2, 0.0f, {8, 8}});
  const std::vector<float> two(2, 1.0f);
  require_error(
      [&] {
        (void)rules.decide(TokenInfo{0, 5, 1, two});
      },
      Errc::shape_mismatch, "rule 0 reads feature 2 but the token has 2 features");
  using Net = kvbits::Mlp<2, kvbits::Hidden<>, Widths>;
  const kvbits::LearnedPolicy<AgeFeatures, Net, kvbits::FeatureSet<kvbits::EntropyFeature>> learned(Net{});
  DecisionContext context;
  context.age = 3;
  require_error([&] { (void)learned.decide(context); }, Errc::shape_mismatch, "features");
}

// ---------------------------------------------------------------------------------------------
// Learned controller weight files and training

namespace {

using FileNet = kvbits::Mlp<2, kvbits::Hidden<3>, Widths>;
constexpr std::array<std::string_view, 2> kFileNames = {"log_age", "entropy"};
constexpr kvbits::TrainingMetadata kFileTraining{0.25, 2.0, 0.01};

FileNet file_net() {
  FileNet net;
  float value = 0.125f;
  kvbits::detail::for_each_tensor(
      [&value](auto& tensor) {
        for (Eigen::Index i = 0; i < tensor.size(); ++i) tensor.data()[i] = (value = -value * 1.5f);
      },
      net.layers());
  return net;
}

std::vector<std::byte> file_bytes() { return kvbits::encode_weights(file_net(), kFileNames, kFileTraining); }

/// A path in the test's temporary folder, removed first.
std::filesystem::path temporary_path(const std::string& name) {
  const std::filesystem::path path = std::filesystem::temp_directory_path() / ("kvbits_test_errors_" + name);
  std::filesystem::remove(path);
  return path;
}

}  // namespace

TEST_CASE("E47 weight files that break the format are corrupt_data", "[errors][controller][E47]") {
  const std::vector<std::byte> bytes = file_bytes();
  const auto rejects = [](std::span<const std::byte> file, const std::string& message) {
    require_error([&] { (void)kvbits::decode_weights<FileNet>(file, kFileNames, "test.kvbc"); },
                  Errc::corrupt_data, message);
  };
  rejects(std::span(bytes).first(bytes.size() - 1), "test.kvbc");
  rejects(std::span(bytes).first(10), "test.kvbc");
  std::vector<std::byte> broken = bytes;
  broken[0] = std::byte{'X'};
  rejects(broken, "test.kvbc");
  broken = bytes;
  broken.back() ^= std::byte{1};
  rejects(broken, "checksum");
  broken = bytes;
  broken.push_back(std::byte{0});
  rejects(broken, "test.kvbc");
  std::string longer(kvbits::max_weight_file_bytes<FileNet>() + 1, '\0');
  std::memcpy(longer.data(), bytes.data(), bytes.size());
  std::istringstream stream(longer);
  require_error([&] { (void)kvbits::read_weights<FileNet>(stream, kFileNames); }, Errc::corrupt_data,
                "longer than any weight file of this controller");
}

TEST_CASE("E48 another weight file version is unsupported", "[errors][controller][E48]") {
  std::vector<std::byte> bytes = file_bytes();
  bytes[8] = std::byte{2};  // the u32 version after the 8-byte magic
  require_error([&] { (void)kvbits::decode_weights<FileNet>(bytes, kFileNames); }, Errc::unsupported,
                "version 2");
}

TEST_CASE("E49 a weight file for another controller is invalid_argument", "[errors][controller][E49]") {
  const std::vector<std::byte> bytes = file_bytes();
  constexpr std::array<std::string_view, 2> other_names = {"log_age", "rarity"};
  require_error([&] { (void)kvbits::decode_weights<FileNet>(bytes, other_names); }, Errc::invalid_argument,
                "rarity");
  using OtherSizes = kvbits::Mlp<2, kvbits::Hidden<4>, Widths>;
  require_error([&] { (void)kvbits::decode_weights<OtherSizes>(bytes, kFileNames); }, Errc::invalid_argument,
                "");
  using OtherWidths = kvbits::Mlp<2, kvbits::Hidden<3>, kvbits::WidthList<2, 4, 8, 32>>;
  require_error([&] { (void)kvbits::decode_weights<OtherWidths>(bytes, kFileNames); }, Errc::invalid_argument,
                "");
}

TEST_CASE("E50 an unreadable weight file is io_error", "[errors][controller][E50]") {
  const std::filesystem::path missing = temporary_path("missing.kvbc");
  require_error([&] { (void)kvbits::load_weights<FileNet>(missing, kFileNames); }, Errc::io_error,
                "cannot open '" + missing.string() + "'");
  std::istream broken(nullptr);
  require_error([&] { (void)kvbits::read_weights<FileNet>(broken, kFileNames, "stream"); }, Errc::io_error,
                "stream: read failed");
}

TEST_CASE("E51 encoding a controller that could not be loaded writes nothing", "[errors][controller][E51]") {
  FileNet net = file_net();
  std::get<0>(net.layers()).weight(0, 0) = std::numeric_limits<float>::quiet_NaN();
  require_error([&] { (void)kvbits::encode_weights(net, kFileNames, kFileTraining); }, Errc::invalid_argument,
                "");
  const std::filesystem::path path = temporary_path("nan.kvbc");
  require_error([&] { kvbits::save_weights(path, net, kFileNames, kFileTraining); }, Errc::invalid_argument,
                "");
  CHECK_FALSE(std::filesystem::exists(path));
  std::ostringstream stream;
  require_error([&] { kvbits::write_weights(stream, net, kFileNames, kFileTraining); },
                Errc::invalid_argument, "");
  CHECK(stream.str().empty());
  constexpr std::array<std::string_view, 2> empty_name = {"log_age", ""};
  require_error([&] { (void)kvbits::encode_weights(file_net(), empty_name, kFileTraining); },
                Errc::invalid_argument, "");
  const kvbits::TrainingMetadata negative{-1.0, 0.0, 0.0};
  require_error([&] { (void)kvbits::encode_weights(file_net(), kFileNames, negative); },
                Errc::invalid_argument, "");
}

TEST_CASE("E52 an unwritable weight file is io_error", "[errors][controller][E52]") {
  const std::filesystem::path path = temporary_path("no_such_folder") / "weights.kvbc";
  require_error([&] { kvbits::save_weights(path, file_net(), kFileNames, kFileTraining); }, Errc::io_error,
                path.string());
  std::ostream broken(nullptr);
  require_error([&] { kvbits::write_weights(broken, file_net(), kFileNames, kFileTraining); }, Errc::io_error,
                "");
}

TEST_CASE("E53 training rejects bad sets and options before changing the network",
          "[errors][controller][E53]") {
  using Set = kvbits::TrainingSet<FileNet>;
  Set good;
  const std::array<float, 2> x = {0.5f, 1.0f};
  const std::array<float, 4> damage = {0.0f, 0.1f, 0.2f, 0.3f};
  for (std::uint32_t i = 0; i < 4; ++i) good.add(x, i % 4, (i + 1) % 4, damage, damage, i);
  Set bad = good;
  bad.features[3] = std::numeric_limits<float>::infinity();
  const kvbits::TrainingOptions<FileNet> options;
  FileNet net = file_net();
  require_error([&] { (void)kvbits::train(net, bad, good, options); }, Errc::invalid_argument,
                "training set: feature 1 of sample 1");
  require_error([&] { (void)kvbits::train(net, good, Set{}, options); }, Errc::invalid_argument,
                "the validation set is empty");
  kvbits::TrainingOptions<FileNet> no_batches = options;
  no_batches.batch_size = 0;
  require_error([&] { (void)kvbits::train(net, good, good, no_batches); }, Errc::invalid_argument,
                "batch size");
  CHECK(net == file_net());
  require_error([&] { (void)kvbits::evaluate(net, bad, options.loss); }, Errc::invalid_argument, "feature 1");
  require_error([&] { (void)kvbits::split_training_set(good, 1.0, 1); }, Errc::invalid_argument, "(0, 1)");
  Set one;
  one.add(x, 0, 0, damage, damage);
  require_error([&] { (void)kvbits::split_training_set(one, 0.5, 1); }, Errc::invalid_argument,
                "at least two");
  Set targets = good;
  targets.heads[kvbits::kKeyHead].target[2] = 4;
  require_error([&] { targets.validate("labels"); }, Errc::invalid_argument, "labels");
  kvbits::AdamOptions adam;
  adam.beta1 = 1.0;
  require_error([&] { adam.validate(); }, Errc::invalid_argument, "beta1");
}

// ---------------------------------------------------------------------------------------------
// Unigram tables

TEST_CASE("E54 unigram tables that break the format are corrupt_data", "[errors][features][E54]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "line 1: empty input"},
      {"unigram 1\n", "line 1: not a unigram table"},
      {"kvbits-unigram x\n", "unreadable version"},
      {"kvbits-unigram 1\n2 3\n", "line 2: expected '<vocab_size> <total> <smoothing>'"},
      {"kvbits-unigram 1\n2 3 1\n1\n", "line 4: file ends after 1 of 2 counts"},
      {"kvbits-unigram 1\n2 3 1\n1\nx\n", "line 4: expected a count"},
      {"kvbits-unigram 1\n2 3 1\n1\n1\n", "counts sum to 2 but the header declares 3"},
      {"kvbits-unigram 1\n2 3 1\n1\n2\n9\n", "unexpected data after the last count"},
      {"kvbits-unigram 1\n2 3 0\n1\n2\n", "unigram table header"},
  };
  for (const auto& [text, message] : cases) {
    INFO("table '" << text << "'");
    std::istringstream in(text);
    require_error([&] { (void)kvbits::read_unigram_table(in); }, Errc::corrupt_data, message);
  }
}

TEST_CASE("E55 another unigram table version is unsupported", "[errors][features][E55]") {
  std::istringstream in("kvbits-unigram 2\n2 3 1\n1\n2\n");
  require_error([&] { (void)kvbits::read_unigram_table(in); }, Errc::unsupported, "unigram table version 2");
  const std::filesystem::path path = temporary_path("version2.unigram");
  std::ofstream(path) << "kvbits-unigram 2\n";
  require_error([&] { (void)kvbits::load_unigram_table(path); }, Errc::unsupported, "version 2");
  std::filesystem::remove(path);
}

TEST_CASE("E56 an unreadable unigram table is io_error", "[errors][features][E56]") {
  const std::filesystem::path path = temporary_path("missing.unigram");
  require_error([&] { (void)kvbits::load_unigram_table(path); }, Errc::io_error,
                "cannot open '" + path.string());
}

TEST_CASE("E57 an unwritable unigram table is io_error", "[errors][features][E57]") {
  const kvbits::UnigramTable table(4);
  const std::filesystem::path path = temporary_path("no_such_folder") / "table.unigram";
  require_error([&] { kvbits::save_unigram_table(table, path); }, Errc::io_error,
                "cannot open '" + path.string());
  std::ostream broken(nullptr);
  require_error([&] { kvbits::write_unigram_table(table, broken); }, Errc::io_error, "could not write");
}

TEST_CASE("E58 unigram tables and the rarity feature reject values that break a rule",
          "[errors][features][E58]") {
  using kvbits::UnigramTable;
  require_error([] { UnigramTable table(0); }, Errc::invalid_argument,
                "vocabulary size must be in [1, 2^31 - 1]");
  require_error([] { UnigramTable table(4, 0.0); }, Errc::invalid_argument, "");
  require_error([] { UnigramTable table(std::vector<std::uint64_t>{}, 1.0); }, Errc::invalid_argument, "");
  const std::uint64_t huge = std::numeric_limits<std::uint64_t>::max();
  require_error(
      [&] {
        UnigramTable table(std::vector<std::uint64_t>{huge, 1}, 1.0);
      },
      Errc::invalid_argument, "");
  UnigramTable table(4);
  table.add(std::vector<std::int32_t>{1, 2, 2});
  const std::vector<std::int32_t> ids = {0, 3, 4, 1};
  require_error([&] { table.add(ids); }, Errc::invalid_argument,
                "token id 4 at index 2 is outside the vocabulary of 4");
  CHECK(table.total() == 3);
  CHECK(table.count(0) == 0);
  CHECK(table.count(2) == 2);
  require_error([] { kvbits::RarityFeature feature(nullptr); }, Errc::invalid_argument,
                "needs a unigram table");
}

// ---------------------------------------------------------------------------------------------
// The examples' GGUF reader and tokenizer

namespace {

/// A small valid GGUF file: one metadata key and one f32 tensor.
std::vector<std::byte> gguf_bytes(std::uint32_t version = 3) {
  kvbits::test::GgufWriter writer(version);
  writer.add_u32("test.count", 3).add_string("test.name", "tiny");
  writer.add_tensor("weight", {4}, kvbits::test::gguf_id::kF32, kvbits::test::f32_bytes({1, 2, 3, 4}));
  return writer.build();
}

}  // namespace

TEST_CASE("X01 gguf::File::open reports paths it cannot map as io_error", "[errors][gguf][X01]") {
  const std::filesystem::path missing = temporary_path("missing.gguf");
  require_error([&] { (void)kvbits::gguf::File::open(missing.string()); }, Errc::io_error, missing.string());
  const std::filesystem::path folder = std::filesystem::temp_directory_path();
  require_error([&] { (void)kvbits::gguf::File::open(folder.string()); }, Errc::io_error,
                "not a regular file");
}

TEST_CASE("X02 GGUF bytes that break the format are corrupt_data", "[errors][gguf][X02]") {
  const std::vector<std::byte> bytes = gguf_bytes();
  require_error([&] { (void)kvbits::gguf::File::parse(std::span(bytes).first(bytes.size() - 1)); },
                Errc::corrupt_data, "");
  std::vector<std::byte> magic = bytes;
  magic[0] = std::byte{'X'};
  require_error([&] { (void)kvbits::gguf::File::parse(magic); }, Errc::corrupt_data, "");
  require_error([&] { (void)kvbits::gguf::File::parse(std::span(bytes).first(6)); }, Errc::corrupt_data, "");
}

TEST_CASE("X03 GGUF versions and tensor types the reader does not handle are unsupported",
          "[errors][gguf][X03]") {
  require_error([] { (void)kvbits::gguf::File::parse(gguf_bytes(1)); }, Errc::unsupported,
                "GGUF version 1 is not supported");
  kvbits::test::GgufWriter writer;
  writer.add_tensor("q4", {32}, kvbits::test::gguf_id::kQ4_0, std::vector<std::byte>(18));
  require_error([&] { (void)kvbits::gguf::File::parse(writer.build()); }, Errc::unsupported,
                "is not supported");
}

TEST_CASE("X04 GGUF lookups reject missing names and other types", "[errors][gguf][X04]") {
  const std::vector<std::byte> bytes = gguf_bytes();
  const kvbits::gguf::File file = kvbits::gguf::File::parse(bytes);
  require_error([&] { (void)file.tensor_f32("bias"); }, Errc::invalid_argument, "no tensor named 'bias'");
  require_error([&] { (void)file.get_uint("test.size"); }, Errc::invalid_argument,
                "no metadata key 'test.size'");
  require_error([&] { (void)file.get_string("test.count"); }, Errc::corrupt_data, "key 'test.count' holds");
  CHECK(file.get_uint("test.count") == 3);
}

namespace {

kvbits::model::Vocabulary three_pieces() {
  kvbits::model::Vocabulary vocabulary;
  vocabulary.add("<unk>", 0.0f, kvbits::model::TokenType::unknown);
  vocabulary.add("<s>", 0.0f, kvbits::model::TokenType::control);
  vocabulary.add("a", -1.0f, kvbits::model::TokenType::normal);
  return vocabulary;
}

}  // namespace

TEST_CASE("X05 the Tokenizer rejects vocabularies that break a rule", "[errors][tokenizer][X05]") {
  using kvbits::model::Tokenizer;
  using kvbits::model::TokenType;
  require_error([] { Tokenizer tokenizer(kvbits::model::Vocabulary{}); }, Errc::invalid_argument,
                "empty vocabulary");
  require_error(
      [] {
        Tokenizer tokenizer({"a", "b"}, {0.0f}, {TokenType::normal, TokenType::normal});
      },
      Errc::invalid_argument, "must have the same length");
  require_error(
      [] {
        Tokenizer tokenizer(three_pieces(), {0, 1, 7});
      },
      Errc::invalid_argument, "special id out of range");
  kvbits::model::Vocabulary bytes = three_pieces();
  bytes.add("<0xZZ>", 0.0f, TokenType::byte);
  require_error([&] { Tokenizer tokenizer(bytes); }, Errc::invalid_argument, "is not of the form <0xXX>");
}

TEST_CASE("X06 the Tokenizer rejects token ids out of range", "[errors][tokenizer][X06]") {
  const kvbits::model::Tokenizer tokenizer(three_pieces());
  require_error([&] { (void)tokenizer.piece(3); }, Errc::invalid_argument, "token id out of range");
  require_error([&] { (void)tokenizer.token_text(-1); }, Errc::invalid_argument, "token id out of range");
  const std::vector<std::int32_t> ids = {2, 2, 9};
  require_error([&] { (void)tokenizer.decode(ids); }, Errc::invalid_argument, "token id out of range");
}
